"""The statistics ledgers stay exact under two processes writing at once through the service layer.

Two `tests.multiprocess.ledger_writer` processes run a random mix of creates, deletes, checks recording
a status, pauses, resumes, transfers, tier changes and ledger folds on one database; afterwards every
ledger equals a full recount. On SQLite (the test database) and on PostgreSQL when TEST_DATABASE_URL
names one (run the suite with it to cover both).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.integrations import ledgers

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = 150
WAIT_SECONDS = 180


def test_two_processes_writing_at_once_leave_the_ledgers_exact(ctx, database_url, admin, member, other_member):
    usernames = ["root", "alice", "bob"]
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.multiprocess.ledger_writer",
                database_url,
                str(seed),
                str(OPERATIONS),
                *usernames,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    reports = []
    for writer in writers:
        try:
            out, err = writer.communicate(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            writer.kill()
            out, err = writer.communicate()
        assert writer.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    for report in reports:  # each process really wrote, of every kind that needs no luck
        for kind in ("create", "check", "tier", "compact"):
            assert report["done"].get(kind, 0) > 0, report
    with ctx.engine.connect() as conn:
        assert ledgers.differences(conn) == []
        kept = ledgers.summed(conn)
    assert sum(n for (n,) in kept["stat_integration_counts"].values()) > 0
