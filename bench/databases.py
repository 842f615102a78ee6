"""The benchmark databases: for each size of dataset (10k, 100k, 1m integrations) a SQLite file under
bench/.data and a schema `size_<size>` of PostgreSQL's `bench` database on 127.0.0.1 (BENCH_PG_DATABASE
names another), each holding that dataset (regenerated only when missing or different), and the keys
they use."""

from __future__ import annotations

import json
import os
import secrets
import time

import psycopg
from psycopg import sql

from bench import generate
from bench.common import DATA_DIR, Target
from core.crypto import generate_key

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "bench")
KEYS_FILE = DATA_DIR / "keys.json"


def sqlite_url(size: str) -> str:
    return f"sqlite:///{DATA_DIR / f'bench-{size}.db'}"


def postgres_url(schema: str) -> str:
    """A URL of the bench database whose connections put `schema` first on their search path."""
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}?options=-csearch_path%3D{schema}"


def url_for(database: str, size: str) -> str:
    return sqlite_url(size) if database == "sqlite" else postgres_url(f"size_{size}")


def bench_keys() -> dict[str, str]:
    """The encryption and cookie keys of the benchmark databases, made once (git-ignored, never the app's)."""
    if KEYS_FILE.is_file():
        return json.loads(KEYS_FILE.read_text())
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    keys = {"encryption": generate_key(), "cookie": secrets.token_urlsafe(48)}
    KEYS_FILE.write_text(json.dumps(keys))
    KEYS_FILE.chmod(0o600)
    return keys


def app_env(url: str, keys: dict[str, str]) -> dict[str, str]:
    """What an app process needs to open a benchmark database (and nothing of the developer's own set-up)."""
    return {
        "DATABASE_URL": url,
        "INTEGRATION_ENCRYPTION_KEY": keys["encryption"],
        "COOKIE_KEY": keys["cookie"],
        "CONSOLE_SECRETS_DIR": str(DATA_DIR / "secrets"),
        "CONSOLE_ENV": "development",
        # An app the benchmarks serve checks nothing: the datasets' hosts are made-up names that must never
        # be looked up, and the engine's load has figures of its own (workers, health check). Their pages
        # are measured as with workers in processes of their own (REDIS_URL's default).
        "ENGINE_EMBEDDED_WORKERS": "0",
    }


def postgres_problem() -> str | None:
    """Create the `bench` database when a server answers; otherwise say why PostgreSQL is skipped."""
    try:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3, autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DATABASE)))
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL server answers on {PG_HOST}:{PG_PORT} as {PG_USER} ({first_line})"
    return None


def prepared(database: str, url: str, spec: generate.Spec, size: str, log=print) -> Target:
    """The target with the dataset in place: reused when its marker matches, generated otherwise."""
    keys = bench_keys()
    if generate.is_current(url, spec, keys["encryption"]):
        log(f"{database}: reusing the dataset at {url}")
    else:
        log(f"{database}: generating the dataset at {url} …")
        started = time.perf_counter()
        summary = generate.generate(url, keys["encryption"], spec, log=log)
        log(
            f"{database}: generated {summary.users:,} users, {summary.integrations:,} integrations "
            f"({summary.secrets:,} encrypted values), {summary.audit_events:,} audit events, "
            f"{summary.check_records:,} checks in {time.perf_counter() - started:.1f} s"
        )
    return Target(database, url, app_env(url, keys), size)
