"""manage.py end to end: every command against its own SQLite file.

Every run goes through `Cli.__call__`, which also checks that no output ever holds the canary
secret or a traceback. A run calls manage.main() in this process, with the environment, working
directory, standard input and output it would have as a program (a subprocess costs over a second of
imports); `program=True` runs the script itself, which the first `db upgrade` of a fresh database, the
top-level `--help` and one failing command still do, so the script is proved to run as a program.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from unittest import mock

import bcrypt
import pytest

import manage
from core.crypto import is_encrypted, key_bytes, key_id
from core.fields import MASK
from tests.unit.test_crypto import v1_value

MANAGE = Path(manage.__file__).resolve()
CANARY = "canary-SECRET-token-123"
KEY = "0f" * 32
COOKIE_KEY = "cli-test-cookie-key-" + "k" * 32
OUR_SETTINGS = ("DATABASE_URL", "INTEGRATION_", "COOKIE_", "CONSOLE_", "HTTP_", "OUTBOUND_")
FIRST_ADMIN = re.compile(r"^Created the first administrator: user name admin, password (\S+) \(one-time: you choose")


class Cli:
    def __init__(self, root: Path):
        self.root = root
        self.db_path = root / "data" / "console.db"  # data/ does not exist yet, as on a fresh clone
        env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_SETTINGS)}
        env.update(
            DATABASE_URL=f"sqlite:///{self.db_path}",
            INTEGRATION_ENCRYPTION_KEY=KEY,
            COOKIE_KEY=COOKIE_KEY,
            CONSOLE_SECRETS_DIR=str(root / "secrets"),
            HTTP_MAX_RETRIES="0",
            OUTBOUND_ALLOW="127.0.0.0/8,::1",  # the closed port the connection test tries is on 127.0.0.1
            PYTHONIOENCODING="utf-8",
        )
        self.env = env

    def start(self, *args: str, stdin: str = "", **env: str) -> tuple[subprocess.Popen, str]:
        popen = subprocess.Popen(
            [sys.executable, str(MANAGE), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            env={**self.env, **env},
            cwd=self.root,
        )
        return popen, stdin

    @staticmethod
    def finish(started: tuple[subprocess.Popen, str]) -> subprocess.CompletedProcess:
        popen, stdin = started
        stdout, stderr = popen.communicate(stdin, timeout=60)
        return Cli.checked(subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr))

    @staticmethod
    def checked(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
        for text in (done.stdout, done.stderr):
            assert CANARY not in text
            assert "Traceback" not in text
        return done

    def run_in_process(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        """manage.main(args) as `python manage.py args` would run it: only this environment, in root, stdin
        a pipe (not a terminal), stdout and stderr captured; a log record that Python's last-resort handler
        would print to the program's stderr is written to it here too."""
        stdout, stderr = io.StringIO(), io.StringIO()
        last_resort = logging.StreamHandler(stderr)
        last_resort.setLevel(logging.WARNING)
        root_logger = logging.getLogger()
        previous_cwd = os.getcwd()
        root_logger.addHandler(last_resort)
        try:
            with (
                mock.patch.dict(os.environ, {**self.env, **env}, clear=True),
                mock.patch.object(sys, "stdin", io.StringIO(stdin)),
                contextlib.redirect_stdout(stdout),
                contextlib.redirect_stderr(stderr),
            ):
                os.chdir(self.root)
                try:
                    code = manage.main(list(args))
                except SystemExit as exited:  # argparse's usage errors and --help
                    code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
        finally:
            os.chdir(previous_cwd)
            root_logger.removeHandler(last_resort)
        return self.checked(
            subprocess.CompletedProcess(["manage.py", *args], code, stdout.getvalue(), stderr.getvalue())
        )

    def __call__(self, *args: str, stdin: str = "", program: bool = False, **env: str) -> subprocess.CompletedProcess:
        if program:
            return self.finish(self.start(*args, stdin=stdin, **env))
        return self.run_in_process(*args, stdin=stdin, **env)

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, params).fetchall()

    def password_works(self, username: str, password: str) -> bool:
        [(hashed,)] = self.rows("SELECT password_hash FROM users WHERE username = ?", username)
        return bcrypt.checkpw(password.encode(), hashed.encode())


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("cli"))
    cli.first_upgrade = cli("db", "upgrade", program=True)  # the script itself, on a fresh clone
    cli.second_upgrade = cli("db", "upgrade")
    cli.add_alice = cli(
        "users", "add", "alice", "--name", "Alice Member", "--email", "alice@example.com", "--password-stdin",
        stdin="alice-password-1\n",
    )  # fmt: skip
    return cli


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def integrations(cli, closed_port) -> dict[str, int]:
    """One Chatwoot integration added from a file by the default admin, one from stdin as alice."""
    config = {"baseUrl": f"http://127.0.0.1:{closed_port}", "accountId": "7", "apiKey": CANARY}
    path = cli.root / "chatwoot.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    from_file = cli(
        "integrations", "add", "--name", "Admin desk", "--provider", "CHATWOOT", "--config", str(path), "--json"
    )
    from_stdin = cli(
        "integrations", "add", "--as", "alice", "--name", "Alice desk", "--provider", "chatwoot", "--json",
        stdin=json.dumps(config),
    )  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    assert from_stdin.returncode == 0, from_stdin.stderr
    return {"admin": json.loads(from_file.stdout)["id"], "alice": json.loads(from_stdin.stdout)["id"]}


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*prefix, name))


def test_help_of_every_command_exits_0(capsys):
    top = subprocess.run([sys.executable, str(MANAGE), "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0
    assert "users" in top.stdout and "integrations" in top.stdout

    paths = dict(_command_paths(manage.build_parser()))
    expected = {
        ("db", "upgrade"),
        ("users", "add"),
        ("users", "list"),
        ("users", "set-tier"),
        ("users", "set-role"),
        ("users", "reset-password"),
        ("integrations", "add"),
        ("integrations", "list"),
        ("integrations", "show"),
        ("integrations", "test"),
        ("keys", "generate"),
        ("keys", "rotate"),
        ("alerts", "test"),
    }
    assert expected <= set(paths)
    for path, parser in paths.items():
        with pytest.raises(SystemExit) as exited:
            manage.main([*path, "--help"])
        assert exited.value.code == 0, path
        assert parser.description, f"{' '.join(path)} has no description"
        assert capsys.readouterr().out.startswith(f"usage: {' '.join(('manage.py', *path))}")


def test_db_upgrade_creates_the_first_admin_once(cli):
    assert cli.first_upgrade.returncode == 0, cli.first_upgrade.stderr
    lines = [m for line in cli.first_upgrade.stdout.splitlines() if (m := FIRST_ADMIN.match(line))]
    assert len(lines) == 1
    password = lines[0].group(1)
    assert cli.password_works("admin", password)
    assert cli.first_upgrade.stdout.count(password) == 1

    assert cli.second_upgrade.returncode == 0, cli.second_upgrade.stderr
    assert "administrator" not in cli.second_upgrade.stdout
    assert password not in cli.second_upgrade.stdout + cli.second_upgrade.stderr


def test_users_add_from_stdin_and_list_json(cli):
    assert cli.add_alice.returncode == 0, cli.add_alice.stderr
    assert cli.password_works("alice", "alice-password-1")

    listed = cli("users", "list", "--json")
    assert listed.returncode == 0
    users = {u["username"]: u for u in json.loads(listed.stdout)}
    assert {"admin", "alice"} <= set(users)
    assert users["alice"] | {"id": 0} == {
        "id": 0,
        "username": "alice",
        "name": "Alice Member",
        "email": "alice@example.com",
        "role": "member",
        "tier": "FREE",
        "active": True,
        "version": 1,
        "must_change_password": False,
    }
    assert "$2b$" not in listed.stdout  # no bcrypt hash


def test_account_lifecycle_tier_role_and_passwords(cli):
    add = ["users", "add", "bob", "--name", "Bob", "--email", "bob@example.com", "--password-stdin"]
    assert cli(*add, stdin="bob-password-1\n").returncode == 0

    tier = cli("users", "set-tier", "bob", "team")
    assert (tier.returncode, tier.stdout.strip()) == (0, "bob is now on the Team tier.")
    role = cli("users", "set-role", "bob", "admin")
    assert (role.returncode, role.stdout.strip()) == (0, "bob is now an admin.")

    chosen = cli("users", "reset-password", "bob", "--password-stdin", stdin="bob-password-2\n")
    assert chosen.returncode == 0 and "bob-password-2" not in chosen.stdout
    assert cli.password_works("bob", "bob-password-2")

    generated = cli("users", "reset-password", "bob")  # stdin is not a terminal: generate and print once
    assert generated.returncode == 0
    password = re.search(r"New password for bob: (\S+) ", generated.stdout).group(1)
    assert cli.password_works("bob", password)
    assert cli.rows("SELECT must_change_password FROM users WHERE username = 'bob'") == [(True,)]

    [(tier_value, role_value)] = cli.rows("SELECT tier, role FROM users WHERE username = 'bob'")
    assert (tier_value, role_value) == ("TEAM", "admin")


def test_the_last_admin_cannot_be_demoted_from_the_cli(tmp_path):
    cli = Cli(tmp_path)  # its own database: the module's has a second administrator by now
    assert cli("db", "upgrade").returncode == 0
    demoted = cli("users", "set-role", "admin", "member")
    assert (demoted.returncode, demoted.stdout) == (2, "")
    assert "admin is the last active administrator" in demoted.stderr, demoted.stderr
    assert cli.rows("SELECT role, active FROM users WHERE username = 'admin'") == [("admin", 1)]


ERRORS = {
    "bad tier": (["users", "set-tier", "alice", "GOLD"], "", {}, "Unknown tier 'GOLD'"),
    "no such user": (["users", "set-role", "nobody", "admin"], "", {}, "There is no user called 'nobody'"),
    "invalid user": (
        ["users", "add", "carol", "--name", "C", "--email", "nope", "--password-stdin"],
        "carol-pw-123",
        {},
        "email:",
    ),
    "no password": (["users", "add", "carol", "--name", "C", "--email", "c@example.com"], "", {}, "--password-stdin"),
    "bad JSON": (
        ["integrations", "add", "--name", "X", "--provider", "CHATWOOT"],
        '{"baseUrl": ',
        {},
        "not valid JSON",
    ),
    "no provider": (
        ["integrations", "add", "--name", "X", "--provider", "NOPE"],
        "{}",
        {},
        "no provider called 'NOPE'",
    ),
    "no integration": (["integrations", "show", "999"], "", {}, "Integration 999 was not found"),
    "wrong key": (["users", "list"], "", {"INTEGRATION_ENCRYPTION_KEY": "ab" * 32}, "does not open the data"),
    "bad setting": (["users", "list"], "", {"COOKIE_KEY": "short"}, "COOKIE_KEY must be at least 32 characters"),
}


def test_errors_exit_2_with_a_plain_message(cli):
    for case, (args, stdin, env, expected) in ERRORS.items():
        proc = cli(*args, stdin=stdin, program=case == "wrong key", **env)  # one as the script itself
        assert (proc.returncode, proc.stdout) == (2, ""), case
        assert expected in proc.stderr, f"{case}: {proc.stderr}"
        assert len(proc.stderr.strip().splitlines()) <= 4, f"{case}: {proc.stderr}"


def listed(proc) -> list[dict]:
    return json.loads(proc.stdout)["integrations"]


def test_integrations_from_file_and_stdin_show_only_the_mask(cli, integrations):
    listed = json.loads(cli("integrations", "list", "--json").stdout)
    assert (listed["total"], listed["offset"], listed["limit"]) == (2, 0, 200)
    everything = listed["integrations"]
    assert {i["id"]: i["owner"] for i in everything} == {integrations["admin"]: "admin", integrations["alice"]: "alice"}
    assert all(i["configuration"]["apiKey"] == MASK for i in everything)
    assert all(i["configuration"]["accountId"] == "7" for i in everything)
    assert isinstance(everything[0]["created_at"], str)

    hers = json.loads(cli("integrations", "list", "--as", "alice", "--json").stdout)["integrations"]
    assert [i["id"] for i in hers] == [integrations["alice"]]

    # A page at a time, counted in SQL: the table on standard output, where the rest is on standard error.
    first = cli("integrations", "list", "--limit", "1")
    assert len(first.stdout.splitlines()) == 2  # the header and one row
    assert first.stderr.strip() == "Showing 1–1 of 2. Next: --offset 1."
    second = cli("integrations", "list", "--limit", "1", "--offset", "1", "--json")
    assert [i["id"] for i in json.loads(second.stdout)["integrations"]] != [everything[0]["id"]]
    searched = json.loads(cli("integrations", "list", "--search", "alice", "--json").stdout)
    assert [i["id"] for i in searched["integrations"]] == [integrations["alice"]]
    assert cli("integrations", "list", "--limit", "0").returncode == 2
    assert cli("integrations", "show", str(integrations["admin"]), "--as", "alice").returncode == 2

    shown = cli("integrations", "show", str(integrations["alice"]), "--json")
    assert json.loads(shown.stdout)["configuration"]["apiKey"] == MASK
    text = cli("integrations", "show", str(integrations["alice"]), "--as", "alice")
    assert text.returncode == 0 and f'apiKey: "{MASK}"' in text.stdout


def test_secrets_are_only_ciphertext_in_the_database(cli, integrations):
    rows = cli.rows("SELECT * FROM integrations")
    assert len(rows) == 2
    assert not any(CANARY in str(value) for row in rows for value in row)
    for (configuration,) in cli.rows("SELECT configuration FROM integrations"):
        assert is_encrypted(json.loads(configuration)["apiKey"])
    for file in cli.db_path.parent.glob("console.db*"):  # the database and its WAL
        assert CANARY.encode() not in file.read_bytes()


def test_integration_test_against_a_closed_port_exits_1(cli, integrations):
    failed = cli("integrations", "test", str(integrations["alice"]), "--as", "alice")
    assert failed.returncode == 1
    assert failed.stderr.startswith("Connection test failed: ") and failed.stderr.count("\n") == 1

    as_json = cli("integrations", "test", str(integrations["admin"]), "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["success"] is False


def test_keys_generate_prints_64_hex(cli):
    proc = cli("keys", "generate")
    assert proc.returncode == 0
    assert re.fullmatch(r"[0-9a-f]{64}\n", proc.stdout)
    assert "INTEGRATION_ENCRYPTION_KEY" in proc.stderr


def test_keys_rotate_json_moves_every_secret_to_the_newest_key(tmp_path):
    """The documented procedure end to end: the new key first in INTEGRATION_ENCRYPTION_KEYS, rotate, drop
    the old one."""
    cli = Cli(tmp_path)  # its own database: the shared one must keep working with KEY
    assert cli("db", "upgrade").returncode == 0
    config = {"baseUrl": "https://chat.example.com", "accountId": "7", "apiKey": CANARY}
    add = ["integrations", "add", "--name", "Desk", "--provider", "CHATWOOT", "--json"]
    added = cli(*add, stdin=json.dumps(config))
    assert added.returncode == 0, added.stderr
    integration_id = json.loads(added.stdout)["id"]
    new_key = "7b" * 32
    new_id, old_id = key_id(key_bytes(new_key)), key_id(key_bytes(KEY))
    ring = {"INTEGRATION_ENCRYPTION_KEYS": f"{new_key}, {KEY}"}

    rotated = cli("keys", "rotate", "--json", "--batch-size", "1", **ring)
    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert (report["re_encrypted"], report["already_current"], report["failed"]) == (2, 0, 0)  # apiKey, key check
    assert report["key_id"] == new_id and report["ring"] == [new_id, old_id] and report["failures"] == []
    [(configuration,)] = cli.rows("SELECT configuration FROM integrations")
    assert json.loads(configuration)["apiKey"].startswith(f"enc:v2:{new_id}:")
    [(outcome, details)] = cli.rows("SELECT outcome, details FROM audit_events WHERE action = 'keys.rotate'")
    assert outcome == "success" and json.loads(details)["re_encrypted"] == 2

    again = cli("keys", "rotate", "--json", **ring)
    assert again.returncode == 0
    assert {k: json.loads(again.stdout)[k] for k in ("re_encrypted", "already_current", "failed")} == {
        "re_encrypted": 0,
        "already_current": 2,
        "failed": 0,
    }
    as_text = cli("keys", "rotate", **ring)
    assert as_text.returncode == 0
    assert "Nothing to re-encrypt" in as_text.stdout and "already current: 2" in as_text.stdout

    # The old key can go now; the old key alone no longer opens the database.
    assert cli("integrations", "list", INTEGRATION_ENCRYPTION_KEYS=new_key).returncode == 0
    refused = cli("users", "list")  # INTEGRATION_ENCRYPTION_KEY=KEY only
    assert refused.returncode == 2 and "does not open the data" in refused.stderr

    # A value still under the old key, with only the new key configured: reported, not silently skipped.
    stale = v1_value(KEY, CANARY)
    with sqlite3.connect(cli.db_path) as conn:
        conn.execute(
            "UPDATE integrations SET configuration = json_set(configuration, '$.apiKey', ?) WHERE id = ?",
            (stale, integration_id),
        )
    one_key = cli("keys", "rotate", "--json", INTEGRATION_ENCRYPTION_KEYS=new_key)
    assert one_key.returncode == 1
    failed = json.loads(one_key.stdout)
    assert (failed["re_encrypted"], failed["already_current"], failed["failed"]) == (0, 1, 1)
    assert failed["failures"] == [
        {
            "integration_id": integration_id,
            "field": "apiKey",
            "reason": f"written with key {old_id}, which is not in the ring",
        }
    ]
    assert stale not in one_key.stdout
    [(configuration,)] = cli.rows("SELECT configuration FROM integrations")
    assert json.loads(configuration)["apiKey"] == stale  # left as stored
    in_text = cli("keys", "rotate", INTEGRATION_ENCRYPTION_KEYS=new_key)
    assert in_text.returncode == 1
    expected = f"integration {integration_id}, apiKey: written with key {old_id}, which is not in the ring"
    assert expected in in_text.stdout


def test_keys_rotate_refuses_a_bad_batch_size_and_a_ring_with_a_key_twice(cli):
    assert cli("keys", "rotate", "--batch-size", "0").returncode == 2
    twice = cli("keys", "rotate", INTEGRATION_ENCRYPTION_KEYS=f"{KEY},{KEY}")
    assert twice.returncode == 2 and "lists the same key twice" in twice.stderr


def test_export_masks_secrets_and_import_encrypts_them(cli, integrations, closed_port):
    exported = cli("integrations", "export", "--as", "alice")
    assert exported.returncode == 0, exported.stderr
    [row] = json.loads(exported.stdout)["integrations"]
    assert row["name"] == "Alice desk" and row["configuration"]["apiKey"] == "••••••••"
    as_csv = cli("integrations", "export", "--format", "csv")
    assert as_csv.returncode == 0 and as_csv.stdout.startswith("id,name,type,provider")

    # The export itself cannot be imported blindly: its secrets are masks.
    refused = cli("integrations", "import", "-", "--as", "alice", stdin=exported.stdout)
    assert refused.returncode == 1 and "API Access Token is required" in refused.stderr

    filled = [{"name": "Imported desk", "provider": "CHATWOOT", "configuration": {
        "baseUrl": f"http://127.0.0.1:{closed_port}", "accountId": "7", "apiKey": CANARY}}]  # fmt: skip
    imported = cli("integrations", "import", "-", "--as", "alice", stdin=json.dumps(filled))
    assert imported.returncode == 0, imported.stderr
    stored = cli.rows("SELECT configuration FROM integrations WHERE name = ?", "Imported desk")
    assert stored and CANARY not in stored[0][0] and "enc:v2:" in stored[0][0]


def test_import_refuses_a_deeply_nested_an_oversized_or_a_non_utf8_file_with_a_sentence(cli):
    """json.loads on 100,000 nested lists raised RecursionError (a traceback); a file of any size was read."""
    deep = cli.root / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    nested = cli("integrations", "import", str(deep))
    assert nested.returncode == 2 and "levels deep" in nested.stderr, nested.stderr

    big = cli.root / "big.json"  # valid JSON, one entry: before, it was parsed whole and reported per entry
    big.write_text('["' + "x" * (20 * 2**20) + '"]', encoding="utf-8")
    oversized = cli("integrations", "import", str(big))
    assert oversized.returncode == 2 and "larger than 20 MB" in oversized.stderr, oversized.stderr

    latin1 = cli.root / "latin1.json"
    latin1.write_bytes(b'[{"name": "Caf\xe9"}]')  # Latin-1, not UTF-8
    undecodable = cli("integrations", "import", str(latin1))
    assert undecodable.returncode == 2 and "not UTF-8 text" in undecodable.stderr, undecodable.stderr


def test_add_refuses_a_deeply_nested_an_oversized_or_a_non_utf8_configuration_with_a_sentence(cli):
    """integrations add --config FILE parsed any file: deep nesting raised RecursionError, Latin-1 a traceback."""
    cases = {
        "deep.json": ("[" * 100_000 + "]" * 100_000).encode(),
        "big.json": ('{"x": "' + "y" * (300 * 1024) + '"}').encode(),
        "latin1.json": b'{"name": "Caf\xe9"}',
    }
    expected = {"deep.json": "levels deep", "big.json": "over 256 KB", "latin1.json": "not UTF-8 text"}
    for name, content in cases.items():
        (cli.root / name).write_bytes(content)
        added = cli("integrations", "add", "--name", "X", "--provider", "CHATWOOT", "--config", str(cli.root / name))
        assert added.returncode == 2 and expected[name] in added.stderr, (name, added.stderr)
        assert "Traceback" not in added.stderr


def test_check_all_prints_a_summary_and_exits_1_when_something_fails(cli, integrations):
    """Every integration here points at a closed port, so every check fails."""
    alices = [v for v in listed(cli("integrations", "list", "--as", "alice", "--json")) if v["is_active"]]
    everyone = [v for v in listed(cli("integrations", "list", "--json")) if v["is_active"]]
    n = len(alices)
    own = cli("integrations", "check-all", "--as", "alice")
    assert own.returncode == 1, own.stderr
    assert re.fullmatch(rf"Checked {n} of {n}: 0 connected, {n} failing\. \(\d+\.\d s\)\n", own.stdout)
    assert f"failing: integration {integrations['alice']} (Alice desk): " in own.stderr

    report = json.loads(cli("integrations", "check-all", "--everyone", "--json").stdout)
    assert (report["total"], report["checked"], report["failing"]) == (len(everyone),) * 3
    assert {f["id"] for f in report["failures"]} == {v["id"] for v in everyone}

    shown = json.loads(cli("integrations", "show", str(integrations["alice"]), "--as", "alice", "--json").stdout)
    assert shown["status"] == "error" and shown["last_checked_at"]


def test_check_all_refuses_other_scopes_to_members_and_unknown_providers(cli, integrations):
    refused = cli("integrations", "check-all", "--as", "alice", "--everyone")
    assert refused.returncode == 2 and "Only administrators" in refused.stderr
    unknown = cli("integrations", "check-all", "--everyone", "--provider", "nosuch")
    assert unknown.returncode == 2 and "Choose one of" in unknown.stderr
    none_match = cli("integrations", "check-all", "--everyone", "--provider", "hubspot")
    assert none_match.returncode == 0 and none_match.stdout.startswith("Checked 0 of 0")
