"""Benchmark data: a migrated database of staff, integrations, 30 days of audit events and check history.

    python -m bench.generate --url sqlite:///bench/.data/bench-100k.db --key <64 hex characters> --size 100k

One size of dataset (Spec.for_size: 10k, 100k or 1m integrations; users, audit events and checks in
proportion): one administrator `bench_admin`, one member `bench_member` with exactly 200 integrations,
the rest in every tier; configurations follow the providers' own FieldSpecs, every sensitive value is
really encrypted with core.crypto.FieldCipher bound to field_context(id, field) (so the ids are assigned
here). Integrations are made in parallel processes, one block of ids each (every ciphertext is made for
its own id and field: none is reused), since making a million of them in one process takes minutes.
Rows go in with COPY on PostgreSQL and insert() executemany in chunks on SQLite, in one transaction; the
dataset's description is stored last (app_meta `bench_dataset`), so a run that stopped half-way is
regenerated, never reused.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import itertools
import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
from sqlalchemy import JSON, Engine, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from core import db, fields
from core.catalog import Provider
from core.crypto import FieldCipher, field_context
from core.integrations import ledgers
from core.keys import verify_key
from core.models import AppMeta, AuditEvent, CheckRecord, Integration, User, utcnow
from core.natural import natural_key
from core.tiers import FEATURE_MIN_TIER, UNLIMITED, Tier, limit
from providers import CATALOG

GENERATOR_VERSION = 3  # bump when the data changes shape: cached datasets are then regenerated
MARKER = "bench_dataset"
ADMIN = "bench_admin"
MEMBER = "bench_member"
ADMIN_INDEX, MEMBER_INDEX = 0, 1

TIER_WEIGHTS = {
    Tier.FREE: 25,
    Tier.STARTER: 20,
    Tier.TEAM: 15,
    Tier.PRO_PLUS: 15,
    Tier.BUSINESS: 12,
    Tier.ENTERPRISE: 13,
}
PROVIDER_WEIGHTS = {
    "CHATWOOT": 30,
    "HUBSPOT": 12,
    "CUSTOM": 14,
    "SALESFORCE": 10,
    "PIPEDRIVE": 8,
    "ZOHO": 7,
    "POSTGRESQL": 6,
    "MYSQL": 4,
    "API": 5,
    "WEBHOOK": 4,
}
STATUS_WEIGHTS = {"connected": 70, "error": 12, "unknown": 18}
# (action, outcome, weight, whether it names an integration)
AUDIT_MIX = (
    ("integration.test", "success", 62, True),
    ("integration.test", "failure", 20, True),
    ("integration.test", "denied", 2, True),
    ("integration.update", "success", 6, True),
    ("integration.create", "success", 4, True),
    ("integration.pause", "success", 2, True),
    ("integration.resume", "success", 2, True),
    ("integration.delete", "success", 1, True),
    ("user.set_tier", "success", 1, False),
)
ERROR_MESSAGES = (
    "{provider} refused the credentials (401 Unauthorized). Check the token and test again.",
    "Could not reach {host}: the connection timed out after 5 s. Check the address and that the server is up.",
    "{host} could not be found (the DNS lookup failed). Check the address.",
    "{provider} is limiting requests (429 Too Many Requests). Try again in 60 seconds.",
    "{host} answered 503 Service Unavailable. Try again later.",
    "The certificate of {host} is not valid for that name. Check the address.",
    "A stored secret could not be decrypted. Enter it again and save.",
)
COMPANY_PARTS = (
    ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Soylent", "Nakatomi"),
    ("Logistics", "Health", "Retail", "Labs", "Foods", "Travel", "Energy", "Media", "Bank", "Motors", "Studios"),
)
FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Guido", "Radia")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen")
PATHS = ("/", "/api/health", "/v1/status", "/health", "/api/v2/ping")


SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
CHECK_CLASSES_FAILED = ("auth", "network", "timeout", "rate_limited", "provider_error")
BLOCK = 10_000  # integrations made per task of the parallel generation


def parse_sizes(text: str) -> list[str]:
    """'10k,100k' -> ['10k', '100k'] (smallest first); ValueError naming what is unknown."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise ValueError(f"unknown size(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SIZES)}")
    return sorted(set(names), key=SIZES.__getitem__)


@dataclass(frozen=True)
class Spec:
    users: int = 1_000
    integrations: int = 100_000
    member_integrations: int = 200
    audit_events: int = 300_000
    check_records: int = 200_000
    audit_days: int = 30
    seed: int = 1127

    @classmethod
    def for_size(cls, size: str) -> Spec:
        """The dataset of one size: 3 audit events and 2 checks of history per integration, one user per
        100 integrations (at least 1,000)."""
        n = SIZES[size]
        return cls(users=max(1_000, n // 100), integrations=n, audit_events=3 * n, check_records=2 * n)

    def marker(self, key_id: str) -> str:
        """What the stored dataset is: compared before reusing it (a new migration means a new dataset, so
        the figures are taken on the schema and indexes the app has now)."""
        from core.db import head_revision

        described = {**asdict(self), "version": GENERATOR_VERSION, "key": key_id, "schema": head_revision()}
        return json.dumps(described, sort_keys=True)


@dataclass(frozen=True)
class Summary:
    users: int
    integrations: int
    secrets: int
    audit_events: int
    check_records: int
    seconds: float


@dataclass(frozen=True)
class Owned:
    """What an audit event needs to know about an integration."""

    id: int
    owner_index: int
    provider: str
    secrets: int


# ----- the dataset's marker ---------------------------------------------------------------------


def is_current(url: str, spec: Spec, key: str) -> bool:
    """True when the database at url holds exactly this dataset, written with this key. A dataset of an
    older schema (the same spec, generator and key) is first migrated in place, as production would be,
    instead of being written again: a new index costs seconds, a million rows written again minutes."""
    wanted = spec.marker(FieldCipher([key]).current_key_id)
    stored = _stored_marker(url)
    if stored is None or stored == wanted:
        return stored == wanted
    if {**json.loads(stored), "schema": None} != {**json.loads(wanted), "schema": None}:
        return False
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(update(AppMeta.__table__).where(AppMeta.key == MARKER).values(value=wanted))
    finally:
        engine.dispose()
    return True


def _stored_marker(url: str) -> str | None:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(AppMeta.value).where(AppMeta.key == MARKER))
    except SQLAlchemyError:
        return None  # no database or no tables yet
    finally:
        engine.dispose()


# ----- random values ------------------------------------------------------------------------------


def weighted(rng: random.Random, weights: dict) -> Callable[[], object]:
    """A fast picker over a {choice: weight} table."""
    choices = list(weights)
    cumulative = list(itertools.accumulate(weights.values()))
    total = cumulative[-1]
    return lambda: choices[bisect.bisect_right(cumulative, rng.random() * total)]


def secret_text(rng: random.Random) -> str:
    """A 40-character token, like an API key."""
    return base64.urlsafe_b64encode(rng.randbytes(30)).decode("ascii")


def company(rng: random.Random) -> str:
    return f"{rng.choice(COMPANY_PARTS[0])} {rng.choice(COMPANY_PARTS[1])} {rng.randint(1, 999)}"


def slug(name: str) -> str:
    return "-".join(name.lower().split())


def moment(rng: random.Random, now: datetime, days: float) -> datetime:
    """A time within the last `days` days, more of them recent."""
    return now - timedelta(seconds=(rng.random() ** 2) * days * 86400)


# ----- configurations shaped by the providers' FieldSpecs -----------------------------------------


def _url(spec: fields.FieldSpec, rng: random.Random, site: str) -> str:
    if spec.name == "instanceUrl":
        return f"https://{site}.my.salesforce.com"
    if spec.name == "tokenUrl":
        return f"https://auth.{site}.example.com/oauth/token"
    if spec.name == "baseUrl":
        return f"https://{rng.choice(('support', 'desk', 'api'))}.{site}.example.com"
    return f"https://hooks.{site}.example.com/integrations" if spec.name == "url" else f"https://{site}.example.com"


def _text(spec: fields.FieldSpec, rng: random.Random, name: str, site: str) -> str:
    by_name = {
        "name": lambda: f"{name} CRM",
        "accountId": lambda: str(rng.randint(1, 99_999)),
        "companyDomain": lambda: site[:60],
        "host": lambda: f"db-{rng.randint(1, 40)}.{site}.example.com",
        "database": lambda: site.replace("-", "_")[:60],
        "user": lambda: rng.choice(("app", "readonly", "console", "reporting")),
        "clientId": lambda: rng.randbytes(12).hex(),
        "username": lambda: "svc-account",
        "scope": lambda: rng.choice(("read", "read write", "crm.read")),
        "healthPath": lambda: rng.choice(PATHS),
        "path": lambda: rng.choice(PATHS),
    }
    if spec.name in by_name:
        return by_name[spec.name]()
    return spec.default if isinstance(spec.default, str) else site


def field_value(spec: fields.FieldSpec, config: dict, rng: random.Random, name: str, site: str) -> object:
    """A realistic value for one field, or None to leave an optional field out."""
    if not spec.required and spec.type in ("password", "text") and rng.random() < 0.3:
        return None
    if spec.type == "url":
        return _url(spec, rng, site)
    if spec.type == "select":
        return rng.choice(spec.options)
    if spec.type == "checkbox":
        return rng.random() < 0.8
    if spec.type == "number":
        return spec.default if spec.default is not None else rng.randint(1, 65_535)
    if spec.type == "json":
        return json.dumps({"note": _text(spec, rng, name, site)})
    if spec.name == "connectionString":  # MongoDB's: a whole mongodb+srv:// string, its password a secret
        return f"mongodb+srv://reporting:{secret_text(rng)}@cluster-{rng.randint(1, 9)}.{site}.example.com/"
    if spec.type == "password":
        return secret_text(rng)
    return _text(spec, rng, name, site)


def plain_config(provider: Provider, rng: random.Random, name: str) -> dict:
    """A configuration as a person would enter it: every shown field, secrets in clear."""
    config: dict = {}
    site = slug(name)
    for spec in provider.fields:  # a field that decides what is shown comes before the fields it controls
        if not spec.is_shown(config):
            continue
        value = field_value(spec, config, rng, name, site)
        if value is not None:
            fields.set_path(config, spec.name, value)
    # An optional field left out may be one the provider's own check needs in this mode (a private app's token).
    specs = {spec.name: spec for spec in provider.fields}
    for missing in provider.check(config) if provider.check else {}:
        if missing in specs:
            fields.set_path(
                config, missing, field_value(replace(specs[missing], required=True), config, rng, name, site)
            )
    return fields.normalise(provider.fields, config)


def seal(provider: Provider, config: dict, integration_id: int, cipher: FieldCipher) -> int:
    """Turn a configuration into its stored form, in place: each sensitive value encrypted, bound to this
    integration and field. Returns how many values were encrypted."""
    count = 0
    for name in fields.sensitive_names(provider.fields):
        value = fields.get_path(config, name)
        if isinstance(value, str) and value:
            fields.set_path(config, name, cipher.encrypt(value, field_context(integration_id, name)))
            count += 1
    return count


def host_of(config: dict) -> str:
    for value in (config.get("baseUrl"), config.get("instanceUrl"), config.get("apiEndpoint"), config.get("url")):
        if isinstance(value, str) and (host := urlsplit(value).hostname):
            return host
    return config.get("host") or (f"{config['companyDomain']}.pipedrive.com" if "companyDomain" in config else "")


def status_message(status: str, provider: Provider, config: dict, rng: random.Random) -> str | None:
    host = host_of(config) or "the service"
    if status == "connected":
        return f"Connected to {provider.name}: {host} answered 200 in {rng.randint(40, 900)} ms."
    if status == "error":
        return rng.choice(ERROR_MESSAGES).format(provider=provider.name, host=host)
    return None


# ----- users and who owns how many integrations ---------------------------------------------------


def user_tiers(spec: Spec, rng: random.Random) -> list[Tier]:
    pick = weighted(rng, TIER_WEIGHTS)
    return [Tier.ENTERPRISE, Tier.BUSINESS] + [pick() for _ in range(spec.users - 2)]


def user_rows(tiers: list[Tier], rng: random.Random, now: datetime) -> list[dict]:
    # Nobody signs in with a password in the benchmarks: one cheap hash of a random password serves all.
    password_hash = bcrypt.hashpw(rng.randbytes(16), bcrypt.gensalt(rounds=4)).decode("ascii")
    rows = []
    for index, tier in enumerate(tiers):
        username = ADMIN if index == ADMIN_INDEX else MEMBER if index == MEMBER_INDEX else f"user{index:05d}"
        rows.append(
            {
                "id": index + 1,
                "username": username,
                "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                "email": f"{username}@example.com",
                "password_hash": password_hash,
                "role": "admin" if index == ADMIN_INDEX else "member",
                "tier": tier.name,
                "active": index <= MEMBER_INDEX or rng.random() < 0.97,
                "created_at": moment(rng, now, 720),
            }
        )
    return rows


def spread(total: int, owners: list[int], counts: list[int], rng: random.Random) -> None:
    """Share `total` among owners unevenly (a few own many), adding to counts."""
    weights = [rng.paretovariate(1.2) for _ in owners]
    scale = total / sum(weights)
    shares = [int(w * scale) for w in weights]
    for k in range(total - sum(shares)):
        shares[k % len(shares)] += 1
    for owner, share in zip(owners, shares, strict=True):
        counts[owner] += share


def allocate(tiers: list[Tier], spec: Spec, rng: random.Random) -> list[int]:
    """Integrations per user: the member exactly spec.member_integrations, each tier within its limit,
    the unlimited tiers the rest."""
    counts = [0] * len(tiers)
    counts[MEMBER_INDEX] = min(spec.member_integrations, spec.integrations)
    remaining = spec.integrations - counts[MEMBER_INDEX]
    unlimited = []
    for index in range(MEMBER_INDEX + 1, len(tiers)):
        allowed = limit("integrations", tiers[index])
        if allowed == UNLIMITED:
            unlimited.append(index)
            continue
        counts[index] = min(rng.randint(0, allowed), remaining)
        remaining -= counts[index]
    spread(remaining, unlimited or [ADMIN_INDEX], counts, rng)
    return counts


# ----- integrations and audit events --------------------------------------------------------------


def providers_by_tier(rng: random.Random) -> dict[Tier, Callable[[], object]]:
    """For each tier, a picker over the providers its feature gates allow."""
    pickers = {}
    for tier in Tier:
        allowed = {
            key: weight
            for key, weight in PROVIDER_WEIGHTS.items()
            if tier >= FEATURE_MIN_TIER.get(CATALOG.get(key).category, Tier.FREE)
        }
        pickers[tier] = weighted(rng, allowed)
    return pickers


def owner_order(counts: list[int], rng: random.Random) -> list[int]:
    """The owner (user index) of each integration id 1..n, shuffled."""
    owners = [index for index, count in enumerate(counts) for _ in range(count)]
    rng.shuffle(owners)
    return owners


def integration_block(task: tuple) -> tuple[list[dict], list[Owned]]:
    """The integrations with ids first_id.. of one block, made with the block's own random stream (so the
    dataset is the same however many processes make it)."""
    tiers, owners, first_id, key, seed, now = task
    rng = random.Random(f"{seed}:{first_id}")
    cipher = FieldCipher([key])
    pick_provider = providers_by_tier(rng)
    pick_status = weighted(rng, STATUS_WEIGHTS)
    rows, owned = [], []
    for integration_id, owner in enumerate(owners, start=first_id):
        provider = CATALOG.get(pick_provider[tiers[owner]]())
        name = company(rng)
        configuration = plain_config(provider, rng, name)
        status = pick_status()
        message = status_message(status, provider, configuration, rng)
        secrets = seal(provider, configuration, integration_id, cipher)
        created = moment(rng, now, 720)
        owned.append(Owned(integration_id, owner, provider.key, secrets))
        rows.append(
            {
                "id": integration_id,
                "owner_id": owner + 1,
                "name": f"{name} — {provider.name}",
                "name_key": natural_key(f"{name} — {provider.name}"),  # what the model's default would set
                "type": provider.category,
                "provider": provider.key,
                "configuration": configuration,
                "is_active": rng.random() < 0.9,
                "status": status,
                "status_message": message,
                "last_checked_at": None if status == "unknown" else max(created, moment(rng, now, 30)),
                "version": rng.randint(1, 6),
                "created_at": created,
                "updated_at": created + (now - created) * rng.random(),
            }
        )
    return rows, owned


def integration_rows(
    tiers: list[Tier], owners: list[int], key: str, seed: int, now: datetime, owned: list[Owned], processes: int
) -> Iterator[dict]:
    """Every integration, ids 1..n, made by `processes` processes a block at a time, in id order; appends
    to `owned` as it goes."""
    tasks = [(tiers, owners[i : i + BLOCK], i + 1, key, seed, now) for i in range(0, len(owners), BLOCK)]
    if processes <= 1 or len(tasks) <= 1:
        blocks: Iterable = map(integration_block, tasks)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(processes)
        blocks = pool.imap(integration_block, tasks)
    try:
        for rows, block_owned in blocks:
            owned.extend(block_owned)
            yield from rows
    finally:
        if pool is not None:
            pool.terminate()


def audit_rows(spec: Spec, owned: list[Owned], users: list[dict], rng: random.Random, now: datetime) -> Iterator[dict]:
    if not owned:
        return
    pick = weighted(rng, {(a, o, named): w for a, o, w, named in AUDIT_MIX})
    names = {provider.key: provider.name for provider in CATALOG}
    for _ in range(spec.audit_events):
        action, outcome, names_integration = pick()
        target = rng.choice(owned)
        by_admin = not names_integration or rng.random() < 0.1
        actor = users[ADMIN_INDEX] if by_admin else users[target.owner_index]
        details = {"provider": target.provider}
        if action == "integration.test":
            failure = rng.choice(ERROR_MESSAGES).format(provider=names[target.provider], host="the server")
            details["message"] = "Connected." if outcome == "success" else failure
        elif action == "user.set_tier":
            details = {"username": users[target.owner_index]["username"], "tier": rng.choice(list(Tier)).name}
        yield {
            "at": moment(rng, now, spec.audit_days),
            "actor_id": actor["id"],
            "actor": actor["username"],
            "action": action,
            "integration_id": target.id if names_integration else None,
            "outcome": outcome,
            "details": details,
        }


def check_rows(spec: Spec, owned: list[Owned], rng: random.Random, now: datetime) -> Iterator[dict]:
    """Scheduled and manual checks over the last audit_days days: mostly successes, some failures."""
    if not owned:
        return
    for _ in range(spec.check_records):
        target = owned[int(rng.random() * len(owned))]
        success = rng.random() < 0.85
        yield {
            "integration_id": target.id,
            "at": moment(rng, now, spec.audit_days),
            "success": success,
            "check_class": "ok" if success else rng.choice(CHECK_CLASSES_FAILED),
            "latency_ms": rng.randint(40, 900) if success else rng.randint(900, 5000),
            "http_status": 200 if success else rng.choice((401, 429, 503, None)),
            "code": None,
            "message": "" if success else rng.choice(ERROR_MESSAGES).format(provider="The CRM", host="the server"),
            "trigger": "schedule" if rng.random() < 0.8 else "manual",
            "run_id": None,
        }


# ----- writing ------------------------------------------------------------------------------------


def chunks(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def insert_all(conn, table, rows: Iterable[dict], size: int) -> int:
    """The rows into table in conn's transaction: COPY on PostgreSQL, else insert() executemany one chunk
    at a time; returns how many rows went in. Every row has the same keys."""
    if conn.dialect.name == "postgresql":
        return copy_all(conn, table, rows)
    total = 0
    for chunk in chunks(rows, size):
        conn.execute(insert(table), chunk)
        total += len(chunk)
    return total


def copy_all(conn, table, rows: Iterable[dict]) -> int:
    """COPY ... FROM STDIN through psycopg, on the connection (and in the transaction) of conn."""
    from psycopg import sql
    from psycopg.types.json import Json

    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    columns = list(first)
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    total = 0
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in itertools.chain([first], iterator):
            copy.write_row([Json(row[c]) if c in json_columns else row[c] for c in columns])
            total += 1
    return total


def is_sqlite(url: str) -> bool:
    return make_url(db.normalise_url(url)).get_backend_name() == "sqlite"


def reset_database(url: str) -> None:
    """An empty database at the head migration (everything in it before is gone)."""
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(path + suffix).unlink(missing_ok=True)
    else:
        schema = postgres_schema(url)
        engine = db.make_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    db.upgrade(url)


def postgres_schema(url: str) -> str:
    """The schema a PostgreSQL URL's options put first on the search path (?options=-csearch_path=NAME),
    where the dataset of one size lives; public without one."""
    for option in parse_qs(urlsplit(url).query).get("options", []):
        for part in option.split():
            if part.startswith("-csearch_path="):
                return part.split("=", 1)[1].split(",")[0].strip('"')
    return "public"


def finish_postgresql(engine: Engine) -> None:
    """Sequences past the explicit ids, and statistics of every table as autovacuum would have them."""
    tables = ("users", "integrations", "audit_events", "check_history")
    with engine.begin() as conn:
        for table in tables:
            highest = f"(SELECT COALESCE(MAX(id), 1) FROM {table})"
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {highest})"))
    # Every table of the dataset's schema, the statistics ledgers among them: a server with autovacuum
    # off (as on some machines here) would otherwise plan their reads without statistics.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        every = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
        ).all()
        conn.execute(text(f"VACUUM ANALYZE {', '.join(every)}"))


def generate(
    url: str,
    key: str,
    spec: Spec | None = None,
    *,
    reset: bool = True,
    chunk: int = 5_000,
    processes: int | None = None,
    log=print,
) -> Summary:
    """Write the dataset. reset=False expects a migrated database whose tables are empty."""
    spec = spec or Spec()
    started = time.perf_counter()
    if reset:
        reset_database(url)
    rng = random.Random(spec.seed)
    cipher = FieldCipher([key])
    now = utcnow()
    tiers = user_tiers(spec, rng)
    users = user_rows(tiers, rng, now)
    counts = allocate(tiers, spec, rng)
    owners = owner_order(counts, rng)
    processes = processes or os.cpu_count() or 1
    owned: list[Owned] = []
    engine = db.make_engine(url)
    try:
        verify_key(db.make_session_factory(engine), cipher)  # the key check the app verifies at start
        # One recount of the statistics ledgers at the end, not a trigger-written row per row (ledgers.bulk_load).
        with engine.begin() as conn, ledgers.bulk_load(conn):
            insert_all(conn, User.__table__, users, chunk)
            made = integration_rows(tiers, owners, key, spec.seed, now, owned, processes)
            n_integrations = insert_all(conn, Integration.__table__, made, chunk)
            log(f"  {n_integrations:,} integrations written ({time.perf_counter() - started:.1f} s)")
            n_events = insert_all(conn, AuditEvent.__table__, audit_rows(spec, owned, users, rng, now), chunk)
            log(f"  {n_events:,} audit events written ({time.perf_counter() - started:.1f} s)")
            n_checks = insert_all(conn, CheckRecord.__table__, check_rows(spec, owned, rng, now), chunk)
            log(f"  {n_checks:,} checks of history written ({time.perf_counter() - started:.1f} s)")
        if engine.dialect.name == "postgresql":
            finish_postgresql(engine)
        db.refresh_planner_statistics(engine)  # on SQLite, as the engine does daily: the rows came after 0023
        with engine.begin() as conn:  # last: a dataset without its marker is never reused
            conn.execute(insert(AppMeta.__table__), [{"key": MARKER, "value": spec.marker(cipher.current_key_id)}])
    finally:
        engine.dispose()
    n_secrets = sum(o.secrets for o in owned)
    return Summary(len(users), n_integrations, n_secrets, n_events, n_checks, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the database to (re)create")
    parser.add_argument("--key", required=True, help="the encryption key (64 hex characters) the app will use")
    parser.add_argument("--size", choices=list(SIZES), default="100k", help="how many integrations (and the rest)")
    parser.add_argument("--seed", type=int, default=Spec().seed)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="processes making integrations")
    args = parser.parse_args(argv)
    spec = replace(Spec.for_size(args.size), seed=args.seed)
    summary = generate(args.url, args.key, spec, processes=args.processes)
    print(
        f"Generated {summary.users:,} users, {summary.integrations:,} integrations ({summary.secrets:,} encrypted "
        f"values), {summary.audit_events:,} audit events and {summary.check_records:,} checks in "
        f"{summary.seconds:.1f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
