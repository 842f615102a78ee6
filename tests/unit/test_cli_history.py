"""manage.py integrations history and prune-history, end to end as subprocesses (tests/unit/test_cli.py's Cli)."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pytest

from core.models import utcnow
from tests.unit.test_cli import Cli


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("cli-history"))
    assert cli("db", "upgrade").returncode == 0
    add = ["users", "add", "alice", "--name", "Alice", "--email", "alice@example.com", "--password-stdin"]
    assert cli(*add, stdin="alice-password-1\n").returncode == 0
    return cli


@pytest.fixture(scope="module")
def integrations(cli) -> dict[str, int]:
    """A Chatwoot integration of the first administrator's, and one of alice's."""
    config = json.dumps({"baseUrl": "http://127.0.0.1:9", "accountId": "7", "apiKey": "history-token-1234567"})
    ids = {}
    for who in ("admin", "alice"):
        added = cli(
            "integrations", "add", "--as", who, "--name", f"{who.title()} desk", "--provider", "CHATWOOT", "--json",
            stdin=config,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        ids[who] = json.loads(added.stdout)["id"]
    return ids


def store_checks(cli: Cli, integration_id: int, checks: list[tuple[datetime, bool, int | None, int | None, str]]):
    """Rows as core.integrations.checks writes them: (at, success, latency_ms, http_status, message)."""
    import sqlite3

    with sqlite3.connect(cli.db_path) as conn:
        conn.executemany(
            "INSERT INTO check_history (integration_id, at, success, check_class, latency_ms, http_status, code, "
            "message, trigger) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'schedule')",
            [
                (
                    integration_id,
                    at.isoformat(sep=" "),
                    success,
                    "ok" if success else "auth",
                    latency,
                    status,
                    None if status or success else "28P01",
                    message,
                )
                for at, success, latency, status, message in checks
            ],
        )


@pytest.fixture(scope="module")
def checked(cli, integrations) -> int:
    now = utcnow()
    integration_id = integrations["alice"]
    store_checks(
        cli,
        integration_id,
        [(now - timedelta(days=d, hours=1), True, 100 + d, 200, "Connected") for d in range(1, 4)]
        + [(now - timedelta(minutes=5), False, None, None, "password authentication failed")]
        + [(now - timedelta(minutes=1), False, 900, 401, "The token was refused.")],
    )
    return integration_id


def test_history_prints_the_last_checks_and_uptime(cli, checked):
    shown = cli("integrations", "history", str(checked))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Integration {checked}: Alice desk (Chatwoot), health: Not checked yet"
    assert lines[1] == "  uptime: 7 days 60.00%, 30 days 60.00%; latency p50 102 ms, p95 103 ms"
    assert lines[2].split() == ["WHEN", "(UTC)", "RESULT", "CLASS", "LATENCY", "STATUS/CODE", "MESSAGE"]
    assert "failed" in lines[3] and "HTTP 401" in lines[3] and "The token was refused." in lines[3]
    assert "28P01" in lines[4] and "password authentication failed" in lines[4]
    assert len(lines) == 3 + 5
    limited = cli("integrations", "history", str(checked), "--limit", "2")
    assert len(limited.stdout.splitlines()) == 3 + 2


def test_history_json(cli, checked):
    shown = cli("integrations", "history", str(checked), "--json", "--as", "alice")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["id"], data["name"], data["health"]) == (checked, "Alice desk", "unknown")
    assert data["uptime7d"] == pytest.approx(0.6) and data["latencyP95Ms"] == 103
    first = data["checks"][0]
    assert first | {"at": None} == {
        "at": None,
        "success": False,
        "class": "auth",
        "latencyMs": 900,
        "httpStatus": 401,
        "code": None,
        "message": "The token was refused.",
        "trigger": "schedule",
    }
    datetime.fromisoformat(first["at"])


def test_history_of_someone_elses_integration_reads_like_a_missing_one(cli, integrations):
    theirs = cli("integrations", "history", str(integrations["admin"]), "--as", "alice")
    missing = cli("integrations", "history", "99999", "--as", "alice")
    assert theirs.returncode == missing.returncode == 2
    assert theirs.stderr.strip() == f"Error: Integration {integrations['admin']} was not found."
    assert missing.stderr.strip() == "Error: Integration 99999 was not found."


def test_history_without_checks_says_so(cli, integrations):
    shown = cli("integrations", "history", str(integrations["admin"]))
    assert shown.returncode == 0
    assert "uptime: 7 days no checks, 30 days no checks; latency p50 -, p95 -" in shown.stdout
    assert shown.stdout.rstrip().endswith("No check is stored yet.")


def test_a_bad_limit_is_refused(cli, checked):
    refused = cli("integrations", "history", str(checked), "--limit", "0")
    assert refused.returncode == 2 and "between 1 and 1000" in refused.stderr


def test_prune_history_rolls_up_and_deletes_old_checks(cli, integrations):
    integration_id = integrations["admin"]
    # Noon of a day long past: both checks fall on that one day whatever the hour this runs at.
    old = datetime.combine(utcnow().date() - timedelta(days=200), time(12))
    store_checks(cli, integration_id, [(old, True, 50, 200, "ok"), (old + timedelta(hours=1), False, None, 500, "x")])
    pruned = cli("integrations", "prune-history", "--json")
    assert pruned.returncode == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert (report["deleted"], report["daysRolledUp"], report["rollupRows"]) == (2, 1, 1)
    assert cli.rows("SELECT checks, failures FROM check_rollups WHERE integration_id = ?", integration_id) == [(2, 1)]
    assert cli.rows("SELECT count(*) FROM check_history WHERE integration_id = ?", integration_id) == [(0,)]
    again = cli("integrations", "prune-history")
    assert again.returncode == 0 and again.stdout.startswith("Rolled up 0 days into 0 daily summaries and deleted 0")
