"""`python -m bench.profiled_worker OUT.json --workers N`: `manage.py worker` with cProfile in every thread
(a consumer's jobs run in its worker threads, which cProfile does not see from the main one); when the
worker stops, the functions with the most cumulative time are written to OUT.json, the project's and the
libraries' apart, for the line that explains a missed worker target."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.profile import profiled, project_path

SHOWN = 8


def top_functions(stats: dict) -> dict[str, list[tuple[str, float, int]]]:
    """(where, cumulative seconds, calls) of the costliest functions, in the project and outside it."""
    project, libraries = [], []
    for (filename, line, function), (_cc, calls, _tt, cumulative, _callers) in stats.items():
        where = project_path(filename)
        if where is not None and not where.startswith((".venv/", "bench/")):
            project.append((f"{where}:{line} {function}", cumulative, calls))
        elif "threading.py" not in filename and "huey" not in filename and filename.startswith("/"):
            libraries.append((f"{Path(filename).name}:{line} {function}", cumulative, calls))
    return {
        "project": sorted(project, key=lambda item: -item[1])[:SHOWN],
        "libraries": sorted(libraries, key=lambda item: -item[1])[:SHOWN],
    }


def main() -> int:
    out = Path(sys.argv[1])
    import manage

    try:
        with profiled(every_thread=True) as profile:
            return manage.main(["worker", *sys.argv[2:]])
    finally:  # a worker stopped by a signal still writes what it recorded
        if stats := profile.stats():
            out.write_text(json.dumps(top_functions(stats)))


if __name__ == "__main__":
    sys.exit(main())
