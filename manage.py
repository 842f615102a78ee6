#!/usr/bin/env python
"""Integrations Console command line: database, staff accounts, integrations and keys.

It reads the same settings as the web app (core.settings) and calls the same services through
app_context.build(); it holds no SQL, no cryptography and no HTTP of its own. Run
`python manage.py --help`, or `--help` after any command, for usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

import app_context
import manage_statistics
import manage_syncs
from core import db
from core.alerts.channels import DeliveryError
from core.audit import Actor
from core.catalog import UnknownProviderError
from core.crypto import generate_key
from core.engine.consumer import run_worker, start_embedded, stop_embedded
from core.engine.runs import RunProgress
from core.errors import ConsoleError, NotFoundError, PermissionDeniedError, ValidationError
from core.fields import MAX_JSON_DEPTH, json_too_deep
from core.integrations import exports
from core.integrations.checks import CheckAllScope
from core.integrations.service import LIST_STATUSES, MAX_PAGE_SIZE, ListQuery
from core.models import utcnow
from core.rotation import DEFAULT_BATCH_SIZE, KeyRotation, RotationInterrupted, RotationReport
from core.settings import Settings, load_settings
from core.tiers import Tier
from core.users import ROLES, first_admin_notice, random_password
from core.words import count
from providers import CATALOG

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
CHECK_ALL_POLL = 0.5  # seconds between looks at a check-all's progress


class CommandError(ConsoleError):
    """A problem with what was typed or piped in; the message says what to do."""


# ----- the start-up sequence, shared with the web app ----------------------------------------------


def prepare_database(settings: Settings | None = None) -> tuple[app_context.AppContext, str | None]:
    """Migrate, check the key and create the first administrator on an empty database (app_context.prepare)."""
    return app_context.prepare(settings or load_settings())


def open_context(settings: Settings | None = None) -> app_context.AppContext:
    """The services over an already migrated database, after the key check."""
    return app_context.build(settings or load_settings(), migrate=False)


# ----- small helpers --------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, default=_json_default))


def _print_table(headers: list[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [headers] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "never"


def _safe_url(url: str) -> str:
    try:
        return make_url(db.normalise_url(url)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the database layer itself
        return "the configured DATABASE_URL"


def _tier_argument(value: str) -> str:
    try:
        return Tier.parse(value).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _read_password_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("No password arrived on standard input.")
    return password


def _prompt_password(username: str) -> str:
    first = getpass.getpass(f"Password for {username}: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise CommandError("The two passwords differ. Nothing was changed.")
    return first


def _new_password(args: argparse.Namespace) -> str | None:
    """From --password-stdin, else from a prompt on a terminal, else None."""
    if args.password_stdin:
        return _read_password_stdin()
    if sys.stdin.isatty():
        return _prompt_password(args.username)
    return None


MAX_CONFIGURATION_CHARS = 256 * 1024


def _read_configuration(source: str) -> dict:
    if source == "-":
        if sys.stdin.isatty():
            print("Paste the configuration as JSON, then press Ctrl-D:", file=sys.stderr)
        text, where = sys.stdin.read(), "standard input"
    else:
        try:
            text, where = Path(source).read_text(encoding="utf-8"), source
        except OSError as exc:
            raise CommandError(f"Cannot read the configuration file {source}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"The configuration file {source} is not UTF-8 text; save it as UTF-8.") from exc
    # A configuration is a few fields; a huge or deeply nested file would only make json.loads fail badly.
    if len(text) > MAX_CONFIGURATION_CHARS:
        limit = MAX_CONFIGURATION_CHARS // 1024
        raise CommandError(f"The configuration on {where} is over {limit} KB; a configuration holds a few fields.")
    if json_too_deep(text, MAX_JSON_DEPTH):
        raise CommandError(f"The configuration on {where} nests more than {MAX_JSON_DEPTH} levels deep.")
    try:
        configuration = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"The configuration on {where} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})."
        ) from exc
    if not isinstance(configuration, dict):
        raise CommandError(f'The configuration on {where} must be a JSON object, like {{"baseUrl": ...}}.')
    return configuration


def _actor(context: app_context.AppContext, username: str | None) -> Actor:
    """The named user, or the first administrator when no --as was given.

    Built here, not by UserView.actor: whoever runs the CLI is on the server with its keys, so a one-time
    password still to be replaced (a sign-in's rule, e.g. the first administrator's) does not stop it."""
    if username:
        user = context.users.get_by_username(username)
        if not user.active:
            raise PermissionDeniedError(f"The account {user.username!r} is deactivated.")
    else:
        admins = [u for u in context.users.list() if u.role == "admin" and u.active]
        if not admins:
            raise NotFoundError("There is no active administrator. Run `python manage.py db upgrade`, or pass --as.")
        user = min(admins, key=lambda u: u.id)
    return Actor(user.id, user.username, user.role, user.tier)


def _flatten(config: dict, prefix: str = "") -> list[tuple[str, object]]:
    pairs = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        pairs += _flatten(value, name + ".") if isinstance(value, dict) else [(name, value)]
    return pairs


# ----- commands: one function each ------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    context, password = prepare_database(settings)
    context.engine.dispose()
    print(f"The database is up to date: {_safe_url(settings.database_url)}")
    if password:
        print(first_admin_notice(password))
    return EXIT_OK


def cmd_users_add(args: argparse.Namespace) -> int:
    password = _new_password(args)
    if password is None:
        raise CommandError("There is no terminal to ask for the password: pipe it in with --password-stdin.")
    user = open_context().users.create(None, args.username, args.name, args.email, password, args.role, args.tier)
    print(f"Added {user.username} ({user.role}, {Tier.parse(user.tier).label} tier).")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    users = open_context().users.list()
    if args.json:
        _print_json(users)
        return EXIT_OK
    rows = [[u.username, u.name, u.email, u.role, u.tier, "yes" if u.active else "no"] for u in users]
    _print_table(["USERNAME", "NAME", "EMAIL", "ROLE", "TIER", "ACTIVE"], rows)
    return EXIT_OK


def cmd_users_set_tier(args: argparse.Namespace) -> int:
    user = open_context().users.set_tier(None, args.username, args.tier)
    print(f"{user.username} is now on the {Tier.parse(user.tier).label} tier.")
    return EXIT_OK


def cmd_users_set_role(args: argparse.Namespace) -> int:
    user = open_context().users.set_role(None, args.username, args.role)
    print(f"{user.username} is now {'an' if user.role == 'admin' else 'a'} {user.role}.")
    return EXIT_OK


def cmd_users_reset_password(args: argparse.Namespace) -> int:
    password = _new_password(args)
    generated = password is None
    password = random_password() if generated else password
    # A generated password is a one-time one: the person must choose their own at the next sign-in.
    user = open_context().users.reset_password(None, args.username, password, one_time=generated)
    if generated:
        print(
            f"New password for {user.username}: {password} — pass it on safely; it is not shown again. "
            "It is a one-time password: they choose their own at the next sign-in."
        )
    else:
        print(f"The password of {user.username} was changed.")
    return EXIT_OK


def cmd_integrations_add(args: argparse.Namespace) -> int:
    configuration = _read_configuration(args.config)
    context = open_context()
    view = context.integrations.create(_actor(context, args.as_user), args.name, args.provider, configuration)
    if args.json:
        _print_json(view)
    else:
        print(f"Added integration {view.id}: {view.name} ({view.provider_name}), owned by {view.owner}.")
    return EXIT_OK


def cmd_integrations_list(args: argparse.Namespace) -> int:
    """One page, searched, filtered and counted in SQL as on the Integrations page: a million never load."""
    context = open_context()
    query = ListQuery(args.search, args.status, args.provider, offset=args.offset, limit=args.limit)
    page = context.integrations.page(_actor(context, args.as_user), query)
    if args.json:
        _print_json({"total": page.total, "offset": page.offset, "limit": page.limit, "integrations": page.views})
        return EXIT_OK
    rows = [
        [v.id, v.name, v.provider_name, v.owner, "yes" if v.is_active else "no", v.status, _when(v.last_checked_at)]
        for v in page.views
    ]
    _print_table(["ID", "NAME", "PROVIDER", "OWNER", "ACTIVE", "STATUS", "LAST CHECKED"], rows)
    shown = page.offset + len(page.views)
    if page.offset or shown < page.total:  # on standard error: the table alone goes down a pipe
        more = f" Next: --offset {shown}." if shown < page.total else ""
        print(f"Showing {page.offset + 1:,}–{shown:,} of {page.total:,}.{more}", file=sys.stderr)
    return EXIT_OK


def cmd_integrations_show(args: argparse.Namespace) -> int:
    context = open_context()
    view = context.integrations.get(_actor(context, args.as_user), args.id)
    if args.json:
        _print_json(view)
        return EXIT_OK
    print(f"Integration {view.id}: {view.name}")
    print(f"  provider: {view.provider_name} ({view.type}), owner: {view.owner}, version {view.version}")
    print(f"  active: {'yes' if view.is_active else 'no'}, status: {view.status} ({_when(view.last_checked_at)})")
    if view.status_message:
        print(f"  message: {view.status_message}")
    print("  configuration:")
    for name, value in _flatten(view.configuration):
        print(f"    {name}: {json.dumps(value, ensure_ascii=False)}")
    return EXIT_OK


def cmd_integrations_test(args: argparse.Namespace) -> int:
    context = open_context()
    result = context.integrations.test(_actor(context, args.as_user), args.id)
    if args.json:
        _print_json(result.as_dict())
    elif result.success:
        print(f"Connection test passed: {result.message}")
    else:
        print(f"Connection test failed: {result.message}", file=sys.stderr)
    return EXIT_OK if result.success else EXIT_FAILED


def cmd_integrations_check_all(args: argparse.Namespace) -> int:
    context = open_context()
    actor = _actor(context, args.as_user)
    if (args.everyone or args.tier or args.provider) and not actor.is_admin:
        raise PermissionDeniedError("Only administrators can check other people's integrations.")
    if args.provider:
        CATALOG.get(args.provider)  # an unknown key is an error, not an empty run
    scope = CheckAllScope(everyone=args.everyone, tier=args.tier, provider=args.provider)
    progress = run_check_all(context, actor, scope)
    failures = context.tasks.runs.failures(actor, progress.run_id)
    if args.json:
        _print_json(
            {
                "run": progress.run_id,
                "total": progress.total,
                "checked": progress.done,
                "connected": progress.connected,
                "failing": progress.failed,
                "skipped": progress.skipped,
                "seconds": round(progress.seconds, 2),
                "failures": [{"id": i, "name": n, "message": m} for i, n, m in failures],
            }
        )
    else:
        for integration_id, name, message in failures:
            print(f"failing: integration {integration_id} ({name}): {message}", file=sys.stderr)
        print(progress.line())
    return EXIT_FAILED if progress.failed else EXIT_OK


def run_check_all(context: app_context.AppContext, actor: Actor, scope: CheckAllScope) -> RunProgress:
    """Hand a check-all to the engine and wait for it: to the workers when a scheduler beats, else to
    consumer threads in this process for as long as the run lasts. Ctrl-C cancels what has not started."""
    tasks = context.tasks
    run_id = tasks.start_check_all(actor, scope)
    consumer = None
    if tasks.heartbeat().stale(utcnow(), context.settings.engine_tick_seconds):
        consumer = start_embedded(
            tasks.huey, max(1, context.settings.check_concurrency), context.settings.engine_tick_seconds, periodic=False
        )
    try:
        progress = tasks.progress(actor, run_id)
        while not progress.finished:
            time.sleep(CHECK_ALL_POLL)
            progress = tasks.progress(actor, run_id)
    except KeyboardInterrupt:
        progress = tasks.cancel(actor, run_id)
        print("Cancelled: checks under way finish, nothing more starts.", file=sys.stderr)
    finally:
        if consumer is not None:
            stop_embedded(consumer)
    return progress


def cmd_worker(args: argparse.Namespace) -> int:
    """Consumer threads for the task engine, until SIGTERM or Ctrl-C (checks under way finish first)."""
    context = open_context()
    settings = context.settings
    queue = f"Redis at {_redis_place(settings.redis_url)}" if settings.redis_url else settings.engine_queue_path
    print(f"Task engine worker: {count(args.workers, 'thread')} on {queue}. Stop with Ctrl-C.", file=sys.stderr)
    run_worker(context.tasks.huey, args.workers, settings.engine_tick_seconds)
    return EXIT_OK


def _redis_place(url: str) -> str:
    """host:port/db of a Redis URL, without any password it holds."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"


def cmd_alerts_test(args: argparse.Namespace) -> int:
    context = open_context()
    actor = _actor(context, args.as_user)
    address = args.to
    if address == "-":  # a Slack or webhook URL is a credential: keep it out of shell history
        address = sys.stdin.readline().strip()
    if not address:
        if args.channel != "email":
            raise CommandError(f"Give the {args.channel} URL with --to URL, or --to - to read it from standard input.")
        address = context.users.get_by_username(actor.username).email
    secret = None
    if args.channel == "webhook":
        if not args.secret_stdin:
            raise CommandError("A signed webhook needs its signing secret: pipe it in with --secret-stdin.")
        secret = sys.stdin.readline().strip()
        if not secret:
            raise CommandError("No signing secret arrived on standard input.")
    try:
        print(context.alerts.send_test_to(actor, args.channel, address, secret))
    except DeliveryError as exc:
        print(f"The test alert was not delivered: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _alerts_parser(commands: argparse._SubParsersAction) -> None:
    group = _group(commands, "alerts", "health alerts", "Alerts on changes of integrations' health (README, Alerts).")
    test = _command(
        group,
        "test",
        cmd_alerts_test,
        "send a test alert over one channel",
        "Send a test alert now, with the settings the app uses (SMTP_* for e-mail; OUTBOUND_ALLOW and HTTP_*\n"
        "for Slack and webhooks), and print what happened. E-mail goes to --to, or to the --as user's\n"
        "address. A Slack or webhook URL is a credential: pass --to - to read it from standard input.\n"
        "Exit status: 0 when it was delivered, 1 when it was not, 2 on an error.",
    )
    test.add_argument("--channel", required=True, choices=("email", "slack", "webhook"))
    test.add_argument("--to", metavar="ADDRESS_OR_URL", help="e-mail address or URL; '-': one line of standard input")
    test.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the webhook's signing secret from standard input (after the URL when --to -)",
    )
    _add_as(test)


def _percent(value: float | None) -> str:
    return "no checks" if value is None else f"{value * 100:.2f}%"


def cmd_integrations_history(args: argparse.Namespace) -> int:
    context = open_context()
    summary = context.integrations.check_summary(_actor(context, args.as_user), args.id, args.limit)
    view = summary.view
    if args.json:
        _print_json(
            {
                "id": view.id,
                "name": view.name,
                "health": summary.health.value,
                "uptime7d": summary.uptime_7,
                "uptime30d": summary.uptime_30,
                "latencyP50Ms": summary.p50_ms,
                "latencyP95Ms": summary.p95_ms,
                "checks": [
                    {
                        "at": c.at,
                        "success": c.success,
                        "class": c.check_class,
                        "latencyMs": c.latency_ms,
                        "httpStatus": c.http_status,
                        "code": c.code,
                        "message": c.message,
                        "trigger": c.trigger,
                    }
                    for c in summary.checks
                ],
            }
        )
        return EXIT_OK
    print(f"Integration {view.id}: {view.name} ({view.provider_name}), health: {summary.health.label}")
    latency = ", ".join(
        f"{name} {'-' if value is None else f'{value} ms'}"
        for name, value in (("p50", summary.p50_ms), ("p95", summary.p95_ms))
    )
    print(f"  uptime: 7 days {_percent(summary.uptime_7)}, 30 days {_percent(summary.uptime_30)}; latency {latency}")
    if not summary.checks:
        print("No check is stored yet.")
        return EXIT_OK
    rows = [
        [
            _when(c.at),
            "passed" if c.success else "failed",
            c.check_class,
            "" if c.latency_ms is None else f"{c.latency_ms} ms",
            c.status_or_code,
            c.message.replace("\n", " ")[:120],
        ]
        for c in summary.checks
    ]
    _print_table(["WHEN (UTC)", "RESULT", "CLASS", "LATENCY", "STATUS/CODE", "MESSAGE"], rows)
    return EXIT_OK


def cmd_integrations_prune_history(args: argparse.Namespace) -> int:
    context = open_context()
    report = context.integrations.history.prune(batch=args.batch_size)
    if args.json:
        _print_json(report.as_dict())
    else:
        summaries = count(report.rollup_rows, "daily summary", "daily summaries")
        print(
            f"Rolled up {count(report.days_rolled_up, 'day')} into {summaries} and deleted "
            f"{count(report.deleted, 'check')} from before {_when(report.cutoff)} "
            f"(CHECK_HISTORY_RETENTION_DAYS={context.settings.check_history_retention_days})."
        )
    return EXIT_OK


def cmd_keys_generate(args: argparse.Namespace) -> int:
    print(generate_key())
    print(
        "Set it as INTEGRATION_ENCRYPTION_KEY in the environment or .streamlit/secrets.toml, and back it up. "
        "For a new database; to rotate an existing one's key, put it first in INTEGRATION_ENCRYPTION_KEYS "
        "(new,old), restart, and run `python manage.py keys rotate`.",
        file=sys.stderr,
    )
    return EXIT_OK


def _print_rotation(report: RotationReport) -> None:
    others = [k for k in report.ring if k != report.key_id]
    ring = f"ring: {report.key_id}" + (f", then {', '.join(others)}" if others else " only")
    if report.re_encrypted:
        print(f"Re-encrypted under key {report.key_id} ({ring}).")
    elif report.failed:
        print(f"Nothing was re-encrypted under key {report.key_id} ({ring}): some values could not be opened.")
    else:
        print(f"Nothing to re-encrypt: every stored secret is already written with key {report.key_id} ({ring}).")
    print(f"  re-encrypted:    {report.re_encrypted}")
    if report.from_clear_text:
        print(f"    (of which stored in clear until now: {report.from_clear_text})")
    print(f"  already current: {report.already_current}")
    print(f"  failed:          {report.failed}")
    if report.failures:
        print("Left as stored (nothing was changed for these):")
        for failure in report.failures:
            print(f"  {failure.describe()}")
        print(
            "Add the key that wrote them to INTEGRATION_ENCRYPTION_KEYS (after the newest) and run again, or "
            "re-enter those secrets in the app and save. Do not drop an old key while anything fails."
        )


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    context = open_context()
    try:
        report = KeyRotation(context.factory, context.cipher, CATALOG).run(args.batch_size)
    except RotationInterrupted as exc:
        if args.json:
            _print_json({**exc.report.as_dict(), "interrupted": str(exc)})
        else:
            _print_rotation(exc.report)
        raise CommandError(str(exc)) from exc
    if args.json:
        _print_json(report.as_dict())
    else:
        _print_rotation(report)
    return EXIT_FAILED if report.failed else EXIT_OK


def _whole_number(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high, or a sentence naming what it counts."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from exc
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"use {what} between {low} and {high}")
        return number

    return parse


_batch_size = _whole_number(1, 10_000, "a batch size")
_check_limit = _whole_number(1, 1000, "a number of checks")
_list_offset = _whole_number(0, 10**12, "an offset")
_list_limit = _whole_number(1, MAX_PAGE_SIZE, "a page size")


# ----- the parser -----------------------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter
EXAMPLES = """\
examples:
  python manage.py db upgrade
  printf '%s' "$PASSWORD" | python manage.py users add alice --name "Alice Doe" --email alice@example.com \\
      --tier STARTER --password-stdin
  python manage.py integrations add --as alice --name "Support desk" --provider CHATWOOT --config chatwoot.json
  python manage.py integrations test 1
  python manage.py alerts test --channel email --to ops@example.com

Settings come from the environment or .streamlit/secrets.toml (DATABASE_URL, INTEGRATION_ENCRYPTION_KEY,
COOKIE_KEY, ...), exactly as for the web app. Errors exit with status 2."""


def _group(parent: argparse._SubParsersAction, name: str, summary: str, description: str) -> argparse._SubParsersAction:
    parser = parent.add_parser(name, help=summary, description=description, formatter_class=_FORMATTER)
    return parser.add_subparsers(title="commands", dest=f"{name}_command", required=True, metavar="COMMAND")


def _command(
    group: argparse._SubParsersAction, name: str, func: Callable, summary: str, description: str = ""
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=summary, description=description or summary, formatter_class=_FORMATTER)
    parser.set_defaults(func=func)
    return parser


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text (times as ISO 8601)")


def _add_as(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USERNAME",
        help="act as this user: a member sees only their own integrations, an administrator sees all "
        "(default: the first administrator)",
    )


def _add_password_stdin(parser: argparse.ArgumentParser, otherwise: str) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from standard input (one line) instead of a prompt; {otherwise}",
    )


def _db_parser(commands: argparse._SubParsersAction) -> None:
    group = _group(commands, "db", "database migrations", "Create or update the database schema.")
    _command(
        group,
        "upgrade",
        cmd_db_upgrade,
        "apply every pending migration (safe to run on every start)",
        "Apply every pending migration to DATABASE_URL, then check INTEGRATION_ENCRYPTION_KEY against the\n"
        "stored data. On an empty database it also creates the administrator 'admin' and prints its\n"
        "random password once; sign in with it and change it.",
    )


def _users_parser(commands: argparse._SubParsersAction) -> None:
    group = _group(
        commands,
        "users",
        "staff accounts",
        "Add and change the staff accounts that sign in to the console. Passwords are never taken\n"
        "from the command line: they are prompted for, or piped in with --password-stdin.",
    )
    add = _command(
        group,
        "add",
        cmd_users_add,
        "add a staff account",
        "Add a staff account. The password (10 characters or more) is asked for twice on a terminal,\n"
        "or read from standard input with --password-stdin.",
    )
    add.add_argument("username", metavar="USERNAME", help="2-64 lower-case letters, digits, '.', '-' or '_'")
    add.add_argument("--name", required=True, help="the person's full name")
    add.add_argument("--email", required=True, help="the person's e-mail address")
    add.add_argument("--role", choices=ROLES, default="member", help="admin or member (default: member)")
    add.add_argument("--tier", type=_tier_argument, default="FREE", help=f"one of {_tiers()} (default: FREE)")
    _add_password_stdin(add, "needed when there is no terminal")

    _add_json(_command(group, "list", cmd_users_list, "list every staff account"))

    tier = _command(group, "set-tier", cmd_users_set_tier, "change a user's subscription tier")
    tier.add_argument("username", metavar="USERNAME")
    tier.add_argument("tier", metavar="TIER", type=_tier_argument, help=f"one of {_tiers()}")

    role = _command(group, "set-role", cmd_users_set_role, "make a user an administrator or a member")
    role.add_argument("username", metavar="USERNAME")
    role.add_argument("role", metavar="ROLE", choices=ROLES, help="admin or member")

    reset = _command(
        group,
        "reset-password",
        cmd_users_reset_password,
        "set a new password for a user",
        "Set a new password: asked for twice on a terminal, read from standard input with\n"
        "--password-stdin, or else generated at random and printed once.",
    )
    reset.add_argument("username", metavar="USERNAME")
    _add_password_stdin(reset, "without it and without a terminal, a random password is generated and printed once")


def cmd_integrations_export(args: argparse.Namespace) -> int:
    context = open_context()
    views = context.integrations.list_integrations(_actor(context, args.as_user))
    print(exports.export_csv(views) if args.format == "csv" else exports.export_json(views), end="")
    return EXIT_OK


def _read_text(source: str, limit: int) -> str:
    """At most ``limit`` + 1 characters: enough for the service to see that a file is over ``limit``."""
    if source == "-":
        return sys.stdin.read(limit + 1)
    try:
        with Path(source).open(encoding="utf-8") as file:
            return file.read(limit + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read {source}: {exc.strerror}.") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"{source} is not UTF-8 text, as an export is.") from exc


def cmd_integrations_import(args: argparse.Namespace) -> int:
    text = _read_text(args.file, exports.MAX_IMPORT_BYTES)
    context = open_context()
    report = exports.import_json(context.integrations, _actor(context, args.as_user), text)
    print(f"Imported {count(len(report.created), 'integration')}: {', '.join(map(str, report.created)) or 'none'}.")
    for position, why in report.failed:
        print(f"Entry {position} was not imported: {why}", file=sys.stderr)
    return EXIT_FAILED if report.failed else EXIT_OK


def _integrations_parser(commands: argparse._SubParsersAction) -> None:
    group = _group(
        commands,
        "integrations",
        "customers' CRM and helpdesk connections",
        "Add, list, show and test integrations with the same rules as the web app (ownership, tier\n"
        "limits, validation, encryption of secrets, audit). Secrets are always shown masked.",
    )
    add = _command(
        group,
        "add",
        cmd_integrations_add,
        "add an integration from a JSON configuration",
        "Add an integration. The configuration is a JSON object read from a file or from standard input,\n"
        'never from the command line, e.g. for Chatwoot: {"baseUrl": "https://app.chatwoot.com",\n'
        '"accountId": "1", "apiKey": "..."}. Secret values are encrypted before they are stored.',
    )
    add.add_argument("--name", required=True, help="a name to recognise the integration by")
    add.add_argument(
        "--provider",
        required=True,
        type=str.upper,
        help=f"provider key: {', '.join(p.key for p in CATALOG if p.available)}",
    )
    add.add_argument("--config", default="-", metavar="FILE", help="JSON file; '-' or omitted: standard input")
    _add_as(add)
    _add_json(add)

    listing = _command(
        group, "list", cmd_integrations_list, "list the integrations the actor can see, a page at a time"
    )
    listing.add_argument("--search", default="", help="in the name (administrators: or the owner), or #ID")
    listing.add_argument("--status", choices=LIST_STATUSES, help="only those in this state")
    listing.add_argument("--provider", type=str.upper, metavar="KEY", help="only this provider, e.g. HUBSPOT")
    listing.add_argument("--offset", type=_list_offset, default=0, metavar="N", help="skip the first N (default 0)")
    listing.add_argument(
        "--limit", type=_list_limit, default=MAX_PAGE_SIZE, metavar="N", help=f"at most N (default {MAX_PAGE_SIZE})"
    )
    _add_as(listing)
    _add_json(listing)

    show = _command(group, "show", cmd_integrations_show, "show one integration, secrets masked")
    show.add_argument("id", metavar="ID", type=int)
    _add_as(show)
    _add_json(show)

    test = _command(
        group,
        "test",
        cmd_integrations_test,
        "test a saved integration's connection",
        "Test a saved integration with its stored secrets and record the outcome on it.\n"
        "Exit status: 0 when the test passes, 1 when it fails, 2 on an error.",
    )
    test.add_argument("id", metavar="ID", type=int)
    _add_as(test)
    _add_json(test)

    history = _command(
        group,
        "history",
        cmd_integrations_history,
        "show an integration's last checks and its uptime",
        "Show the last checks of an integration (when, class, latency, HTTP status or driver code, message)\n"
        "with its uptime over 7 and 30 days and the latency p50/p95 of its successful checks.",
    )
    history.add_argument("id", metavar="ID", type=int)
    history.add_argument("--limit", type=_check_limit, default=50, metavar="N", help="checks to show (default: 50)")
    _add_as(history)
    _add_json(history)

    prune = _command(
        group,
        "prune-history",
        cmd_integrations_prune_history,
        "roll up and delete checks older than the retention (daily, for cron)",
        "Roll every day of checks older than CHECK_HISTORY_RETENTION_DAYS up into one daily summary per\n"
        "integration, then delete those checks in batches. Safe to interrupt and run again.\n"
        "Cron example: 15 3 * * * cd /srv/console && .venv/bin/python manage.py integrations prune-history",
    )
    prune.add_argument("--batch-size", type=_batch_size, default=5000, metavar="N", help="rows per transaction")
    _add_json(prune)

    check_all = _command(
        group,
        "check-all",
        cmd_integrations_check_all,
        "re-test every active integration (for cron)",
        "Re-test every active integration of the actor (administrators: --everyone, optionally only one\n"
        "--tier or --provider) concurrently, at most CHECK_CONCURRENCY at once and CHECK_PER_HOST per\n"
        "customer host. Each result is stored on its integration. An integration being checked by\n"
        "another process at the time is skipped. Prints one summary line; failures go to standard error.\n"
        "Exit status: 0 when nothing is failing, 1 when something is, 2 on an error.\n"
        "Cron example: */30 * * * * cd /srv/console && .venv/bin/python manage.py integrations check-all --everyone",
    )
    check_all.add_argument("--everyone", action="store_true", help="every user's integrations (administrators)")
    check_all.add_argument("--tier", type=str.upper, choices=[t.name for t in Tier], help="only owners of this tier")
    check_all.add_argument("--provider", type=str.upper, help="only this provider key")
    _add_as(check_all)
    _add_json(check_all)

    export = _command(
        group,
        "export",
        cmd_integrations_export,
        "print the integrations the actor can see, secrets masked",
        "Print the integrations the actor can see as JSON (default) or CSV. Every secret is masked.",
    )
    export.add_argument("--format", choices=("json", "csv"), default="json")
    _add_as(export)

    imported = _command(
        group,
        "import",
        cmd_integrations_import,
        "create integrations from a JSON file",
        "Create integrations from a JSON list of {name, provider, configuration} (or an export with its\n"
        "secrets filled in), read from FILE or standard input ('-'). Each is validated and its secrets\n"
        "encrypted like any new integration; a masked or encrypted secret is refused for that entry.\n"
        "Exit status: 0 when every entry was imported, 1 when some were not, 2 on an error.",
    )
    imported.add_argument("file", metavar="FILE", help="JSON file, or '-' for standard input")
    _add_as(imported)


def _keys_parser(commands: argparse._SubParsersAction) -> None:
    group = _group(commands, "keys", "encryption keys", "Encryption keys for the integrations' secret values.")
    _command(
        group,
        "generate",
        cmd_keys_generate,
        "print a new random INTEGRATION_ENCRYPTION_KEY",
        "Print a new random 256-bit key as 64 hexadecimal characters (the hint goes to standard error,\n"
        "so KEY=$(python manage.py keys generate) captures only the key).",
    )
    rotate = _command(
        group,
        "rotate",
        cmd_keys_rotate,
        "re-encrypt every stored secret under the newest key",
        "Re-encrypt every stored secret (integrations' secret fields, cached access tokens, the key check)\n"
        "under the first key of INTEGRATION_ENCRYPTION_KEYS, in batches of one transaction each. Safe to\n"
        "interrupt and run again: values already written with the newest key are counted as already\n"
        "current and left alone. A value no key in the ring opens is reported (integration and field) and\n"
        "left as stored. Procedure: `keys generate`, set INTEGRATION_ENCRYPTION_KEYS=<new>,<old>, restart\n"
        "the app, run `keys rotate` until failed is 0, then drop the old key.\n"
        "Exit status: 0 when nothing failed, 1 when some values failed, 2 on an error.",
    )
    rotate.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"rows per transaction (default: {DEFAULT_BATCH_SIZE})",
    )
    _add_json(rotate)


def _tiers() -> str:
    return ", ".join(t.name for t in Tier)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="manage.py",
        description="Integrations Console administration: database, staff accounts, integrations and keys.",
        epilog=EXAMPLES,
        formatter_class=_FORMATTER,
    )
    commands = parser.add_subparsers(title="command groups", dest="command", required=True, metavar="GROUP")
    _db_parser(commands)
    _users_parser(commands)
    _integrations_parser(commands)
    _keys_parser(commands)
    _worker_parser(commands)
    _alerts_parser(commands)
    manage_syncs.register(commands, _command, _group, _add_as, _add_json, open_context, _actor)
    manage_statistics.register(commands, _command, _group, _add_json, open_context)
    return parser


def _worker_parser(commands: argparse._SubParsersAction) -> None:
    worker = _command(
        commands,
        "worker",
        cmd_worker,
        "run task engine consumers (scheduled checks, check-all runs, alerts)",
        "Run consumer threads of the task engine until SIGTERM or Ctrl-C; checks under way finish first.\n"
        "With REDIS_URL set, start as many workers as you like, on any machine that reaches Redis and the\n"
        "database: the caps (CHECK_CONCURRENCY, CHECK_PER_HOST) hold across all of them, and exactly one\n"
        "of them plans the schedule at a time. Without REDIS_URL the queue is a SQLite file\n"
        "(ENGINE_QUEUE_PATH), so every worker must run on this machine.",
    )
    worker.add_argument(
        "--workers",
        type=_whole_number(1, 64, "a number of worker threads"),
        default=4,
        metavar="N",
        help="consumer threads (default: 4)",
    )


# ----- errors and the entry point -------------------------------------------------------------------


def _error_message(exc: ConsoleError) -> str:
    """The sentence of any service error, with the fields or the choices spelt out where it has them."""
    if isinstance(exc, ValidationError):
        return "Some values need attention:\n" + "\n".join(f"  {name}: {text}" for name, text in exc.errors.items())
    if isinstance(exc, UnknownProviderError):
        return f"{exc} Choose one of: {', '.join(p.key for p in CATALOG if p.available)}."
    return exc.message


def _database_message(exc: SQLAlchemyError) -> str:
    """A database failure no service turned into a sentence (a migration, a missing table)."""
    detail = str(exc.orig).splitlines()[0] if isinstance(exc, DBAPIError) and exc.orig else type(exc).__name__
    # The driver's own message only: SQLAlchemy's text would add the statement's parameters.
    return (
        f"The database refused the operation ({detail}). Check DATABASE_URL, and run "
        "`python manage.py db upgrade` if the database is new."
    )


def _fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # a TextIOWrapper's; a replaced stream may lack it
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")  # a non-UTF-8 terminal must not crash on the mask
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConsoleError as exc:  # every service error, and CommandError: a sentence a person can act on
        return _fail(_error_message(exc))
    except SQLAlchemyError as exc:
        return _fail(_database_message(exc))
    except KeyboardInterrupt:
        print("\nInterrupted; nothing more was changed.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
