"""`python -m tests.faults.logged_worker --workers N`: exactly `python manage.py worker --workers N`, with
Python's logging at INFO on standard error, so Huey's "<job> executed in" lines tell which worker ran which
job (the console itself configures no logging: a worker prints its warnings only)."""

from __future__ import annotations

import logging
import sys

import manage

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.exit(manage.main(["worker", *sys.argv[1:]]))
