"""Databases: PostgreSQL (psycopg 3) and MySQL / MariaDB (PyMySQL), two providers sharing one form.

The connection test connects, runs ``SELECT 1``, and reports the server version, whether the connection is
encrypted, and whether the user can write:

- PostgreSQL: writable unless the server is a standby or the session defaults to read-only, and then only if
  the user is a superuser, may CREATE in its current schema, or holds INSERT, UPDATE or DELETE on some table.
  Only catalog functions are queried (``has_schema_privilege``, ``has_table_privilege``): nothing is written.
- MySQL / MariaDB: ``SHOW GRANTS`` is parsed for INSERT, UPDATE, DELETE, CREATE or ALL on every database, on
  the configured one (wildcard grants included) or on one of its tables; a server with ``read_only`` on is
  reported read-only. The grant text itself (it holds a password hash) is never reported.

Timeouts: the connect timeout is the console's HTTP connect timeout (HTTP_CONNECT_TIMEOUT, 5 s by default,
at least 2 s for PostgreSQL, whose client library rounds lower values up) and every query or read after it
gets the HTTP read timeout (HTTP_READ_TIMEOUT, 15 s). Both are read from the test context's HTTP session;
without one, those defaults apply.

Errors are plain sentences (authentication failed, database does not exist, host unreachable, timeout,
encryption required or unavailable); the password is never part of one. What a failure was is also noted
for core.http.observe (core.integrations.classify reads it): the driver's code (PyMySQL's errno, or the
SQLSTATE), or the transport kind (timeout, network, tls, blocked).

What the app server has of its own is never offered to a customer's server: no ~/.pgpass or PGPASSWORD
fallback, no client certificate, no Kerberos/GSSAPI; PostgreSQL may only ask for a password (or nothing).

The outbound address guard (core.http.vet_host) applies as it does to every HTTP call: the host is resolved
once, refused unless each address is public or admitted by OUTBOUND_ALLOW, and the client then connects to
those vetted addresses (PostgreSQL: hostaddr, with host kept for the certificate check; MySQL: a socket
opened here, with the host name kept for TLS), so a DNS answer that changes afterwards cannot redirect it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.catalog import Provider, TestContext
from core.fields import FieldSpec
from core.http import (
    BlockedAddressError,
    DeadlineSocket,
    HttpPolicy,
    Transport,
    deadline,
    note_database_code,
    note_transport,
    remaining,
    vet_host,
)
from core.redaction import redact
from core.results import TestResult
from core.tiers import Tier

SSL_MODES = ("disable", "prefer", "require", "verify-full")
DEFAULT_POLICY = HttpPolicy()
APPLICATION_NAME = "IntegrationsConsole connection test"
# libpq falls back to a password file when the password is empty; point it at one that never exists.
_NO_PASSFILE = str(Path(__file__).with_name(".no-pgpass"))
HOST_PATTERN = r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?|\[?[0-9A-Fa-f:.]{2,45}\]?"


def _fields(default_port: int, engine: str) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(
            "host",
            "Host",
            "text",
            required=True,
            pattern=HOST_PATTERN,
            pattern_message="Enter only the server's host name or IP address, without a scheme or a port.",
            placeholder="db.example.com",
            help=f"The {engine} server's host name or IP address.",
        ),
        FieldSpec("port", "Port", "number", required=True, default=default_port, help=f"Usually {default_port}."),
        FieldSpec(
            "database",
            "Database",
            "text",
            required=True,
            pattern=r"[^\s/][^/]{0,63}",
            pattern_message="Enter the database's name only (at most 64 characters, no slashes).",
            placeholder="app_production",
        ),
        FieldSpec(
            "user",
            "User",
            "text",
            required=True,
            pattern=r"\S.{0,79}",
            pattern_message="Enter the user name (at most 80 characters).",
            placeholder="console_readonly",
            help="A read-only user is enough for the test; the result says whether this one can write.",
        ),
        FieldSpec(
            "password",
            "Password",
            "password",
            sensitive=True,
            help="Stored encrypted. Leave empty only if the server asks this user for no password.",
        ),
        FieldSpec(
            "sslMode",
            "SSL mode",
            "select",
            options=SSL_MODES,
            default="prefer",
            help=(
                "disable: never encrypt. prefer: encrypt when the server offers it. require: always encrypt "
                "(the certificate is not checked). verify-full: always encrypt, and check the certificate and "
                "host name against the system's trusted authorities."
            ),
        ),
    )


def check(config: dict) -> dict[str, str]:
    """The port is a whole number from 1 to 65535."""
    port = config.get("port")
    if port is None or isinstance(port, bool):
        return {}
    try:
        number = float(port)
    except (TypeError, ValueError):
        return {}  # the field's own check says "Enter a number."
    if not number.is_integer() or not 1 <= number <= 65535:
        return {"port": "Enter a port number from 1 to 65535."}
    return {}


# ----- shared ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    engine: str
    host: str
    port: int
    database: str
    user: str
    password: str
    ssl_mode: str
    connect_timeout: float
    read_timeout: float
    total_timeout: float = 35.0  # the policy's request deadline: the whole test, connect to last row

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.engine} at {host}:{self.port}"


def _policy(context: TestContext | None) -> HttpPolicy:
    """The console's timeouts, as the test context's HTTP session carries them (make_session's policy)."""
    policy = getattr(getattr(context, "http", None), "policy", None)
    return policy if isinstance(policy, HttpPolicy) else DEFAULT_POLICY


def _target(engine: str, config: dict, context: TestContext | None, default_port: int) -> _Target:
    policy = _policy(context)
    return _Target(
        engine=engine,
        host=str(config["host"]).strip().strip("[]"),
        port=int(float(config.get("port") or default_port)),
        database=str(config["database"]).strip(),
        user=str(config["user"]).strip(),
        password=config.get("password") or "",
        ssl_mode=config.get("sslMode") or "prefer",
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
        total_timeout=policy.request_deadline,
    )


def _failure(message: str, target: _Target) -> TestResult:
    message = redact(message, [target.password])
    details = {"engine": target.engine, "host": target.host, "port": target.port, "database": target.database}
    return TestResult(False, message, details, error=message)


def _transport_problem(text: str, target: _Target, waited: float | None = None) -> str | None:
    """What a failed connection attempt says about the network, in words; None when it is not that."""
    lower = text.lower()
    if "timeout expired" in lower or "timed out" in lower:
        note_transport(Transport.TIMEOUT)
        return (
            f"{target.where} did not answer within {max(1, round(waited or target.connect_timeout))} seconds "
            "(timeout). Check the host and port, and that a firewall lets this server through."
        )
    if "connection refused" in lower:
        note_transport(Transport.NETWORK)
        return (
            f"{target.where} refused the connection: nothing listens on port {target.port} there. "
            "Check the port, and that the server accepts TCP connections."
        )
    if any(
        hint in lower
        for hint in ("could not translate host name", "name or service not known", "getaddrinfo", "errno -2]")
    ) or any(
        hint in lower
        for hint in ("nodename nor servname", "temporary failure in name resolution", "no address associated")
    ):
        note_transport(Transport.NETWORK)
        return f"The host name {target.host} could not be found (DNS). Check it for typos."
    if "network is unreachable" in lower or "no route to host" in lower or "host is unreachable" in lower:
        note_transport(Transport.NETWORK)
        return f"{target.where} is unreachable from this server (no route to the host). Check the address."
    return None


def _fallback(text: str, target: _Target) -> str:
    first = redact(text.strip().splitlines()[0] if text.strip() else "", [target.password])[:200]
    return f"The connection to {target.where} failed: {first or 'no reason given'}."


def _vetted_addresses(target: _Target, context: TestContext | None) -> list[str]:
    """The addresses target.host may be reached at (core.http.vet_host); raises BlockedAddressError or OSError."""
    return vet_host(target.host, target.port, _policy(context))


def _refused(exc: BlockedAddressError, target: _Target) -> TestResult:
    note_transport(Transport.BLOCKED)
    return _failure(f"The address of {target.where} was refused: {exc.explanation}", target)


def _success(target: _Target, facts: dict, started: float) -> TestResult:
    latency_ms = round((time.monotonic() - started) * 1000)
    access = "can write" if facts["canWrite"] else "read-only"
    details = {
        "engine": facts.get("engine", target.engine),
        "serverVersion": facts["serverVersion"],
        "host": target.host,
        "port": target.port,
        "database": facts.get("database") or target.database,
        "user": facts.get("user") or target.user,
        "encrypted": facts["encrypted"],
        "canWrite": facts["canWrite"],
        "access": facts["access"],
        "latencyMs": latency_ms,
    }
    message = (
        f"Connected to {details['engine']} {facts['serverVersion']} at {target.host}:{target.port}, database "
        f"{details['database']}, as {details['user']} ({access}; "
        f"{'encrypted' if facts['encrypted'] else 'not encrypted'}) in {latency_ms} ms."
    )
    return TestResult(True, message, details)


# ----- PostgreSQL ------------------------------------------------------------------------------

_PG_PROBE = """
SELECT current_setting('server_version'),
       current_user,
       current_database(),
       current_schema(),
       pg_is_in_recovery(),
       current_setting('default_transaction_read_only') = 'on',
       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),
       coalesce(has_schema_privilege(current_schema(), 'CREATE'), false),
       EXISTS (
           SELECT 1
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_%'
              AND has_schema_privilege(n.oid, 'USAGE')
              AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE')
       )
"""


def _pg_access(row: tuple) -> tuple[bool, str]:
    _, _, _, schema, standby, read_only, superuser, create_in_schema, table_write = row
    if standby:
        return False, "read-only: the server is a standby (in recovery)"
    if read_only:
        return False, "read-only: default_transaction_read_only is on for this user or database"
    if superuser:
        return True, "superuser: can read and write everything"
    if create_in_schema:
        return True, f"can create tables in schema {schema}"
    if table_write:
        return True, "can insert, update or delete rows in at least one table"
    where = f"schema {schema}" if schema else "any schema on its search path"
    return False, f"read-only: no CREATE in {where}, and no INSERT, UPDATE or DELETE on any table"


def _pg_connect_args(target: _Target, addresses: list[str] | None = None) -> dict:
    """libpq's parameters; with the vetted addresses, it connects to exactly those (hostaddr), one attempt
    each, and still checks a verify-full certificate against the host name."""
    args = {
        "host": ",".join([target.host] * len(addresses)) if addresses else target.host,
        "port": target.port,
        "dbname": target.database,
        "user": target.user,
        "password": target.password,
        "passfile": _NO_PASSFILE,
        "sslmode": target.ssl_mode,
        "sslcertmode": "disable",
        "gssencmode": "disable",
        "require_auth": "password,md5,scram-sha-256,none",
        # libpq's connect_timeout bounds the whole start-up (a trickled greeting too); it rounds below 2 up.
        "connect_timeout": max(2, math.ceil(remaining(target.connect_timeout) or target.connect_timeout)),
        "application_name": APPLICATION_NAME,
        "autocommit": True,
    }
    if addresses:
        args["hostaddr"] = ",".join(addresses)
    if target.ssl_mode == "verify-full":
        args["sslrootcert"] = "system"  # the operating system's trusted authorities
    return args


@contextlib.contextmanager
def _cut_off_at_deadline(fd: int):
    """libpq reads the connected socket itself, with no timeout of ours: at the deadline shut it down
    (through a duplicate descriptor, so a number reused after close is never touched), which ends any
    read in progress with an error. statement_timeout bounds the server's work; this bounds the wire."""
    watched = socket.socket(fileno=os.dup(fd))
    left = remaining()
    timer = threading.Timer(left, _shut, (watched,)) if left is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
            timer.join(1)
        watched.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _postgres_sqlstate(exc: Exception, text: str) -> str | None:
    """The SQLSTATE of a failure: psycopg's, or, for a failed connection (libpq hands over only the server's
    FATAL text, psycopg's sqlstate is None then), the one the server sent with that text."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate
    lower = text.lower()
    if "password authentication failed" in lower or "no password supplied" in lower:
        return "28P01"  # invalid_password
    if re.search(r'FATAL:\s+role ".*" does not exist', text) or "no pg_hba.conf entry" in lower:
        return "28000"  # invalid_authorization_specification
    if re.search(r'FATAL:\s+database ".*" does not exist', text):
        return "3D000"  # invalid_catalog_name
    if re.search(r"FATAL:\s+permission denied", text):
        return "42501"  # insufficient_privilege (no CONNECT on the database)
    if "too many clients" in lower or "remaining connection slots" in lower:
        return "53300"  # too_many_connections
    if "the database system is starting up" in lower or "the database system is shutting down" in lower:
        return "57P03"  # cannot_connect_now
    return None


def _note_postgres(exc: Exception, text: str) -> str | None:
    """Note what the failure was for core.http.observe; returns its SQLSTATE."""
    lower = text.lower()
    sqlstate = _postgres_sqlstate(exc, text)
    if ("no pg_hba.conf entry" in lower and "no encryption" in lower) or "server does not support ssl" in lower:
        note_transport(Transport.TLS)  # the SSL mode and the server disagree about encryption
    elif "certificate" in lower or ("ssl" in lower and "verify" in lower):
        note_transport(Transport.TLS)
    elif sqlstate:
        note_database_code("postgresql", sqlstate)
    return sqlstate


def _explain_postgres(exc: Exception, target: _Target, waited: float | None = None) -> str:
    text = str(exc)
    lower = text.lower()
    sqlstate = _note_postgres(exc, text)
    if (
        "password authentication failed" in lower
        or "no password supplied" in lower
        or sqlstate == "28P01"
        or re.search(r'FATAL:\s+role ".*" does not exist', text)
    ):
        return f"{target.where} refused user {target.user}: authentication failed. Check the user name and password."
    if "authentication method requirement" in lower:
        return (
            f"{target.where} asked for an authentication method other than a password (such as Kerberos or a "
            "client certificate), which the console does not use. Give this user password authentication."
        )
    if sqlstate == "3D000" or re.search(r'FATAL:\s+database ".*" does not exist', text):
        return f"{target.where} has no database called {target.database}. Check its name (names are case-sensitive)."
    if "no pg_hba.conf entry" in lower:
        if "no encryption" in lower:
            return f"{target.where} requires an encrypted connection (SSL). Set the SSL mode to require or verify-full."
        return (
            f"{target.where} does not accept connections from this server for user {target.user} and database "
            f"{target.database} (pg_hba.conf). Ask its administrator to allow them."
        )
    if "server does not support ssl" in lower:
        return (
            f"{target.where} does not offer encrypted connections (SSL), but the SSL mode {target.ssl_mode} needs "
            "one. Enable SSL on the server, or choose prefer or disable if an unencrypted connection is acceptable."
        )
    if "certificate" in lower or ("ssl" in lower and "verify" in lower):
        return (
            f"The certificate of {target.where} could not be verified: it is not signed by a trusted authority or "
            "does not name this host. Fix the certificate, or use SSL mode require (no certificate check)."
        )
    if sqlstate == "57014" or "statement timeout" in lower:
        return f"{target.where} did not answer a query within {target.read_timeout:g} seconds (timeout)."
    if "too many clients" in lower or "remaining connection slots" in lower or sqlstate == "53300":
        return f"{target.where} has no free connections (too many clients). Try again later."
    if "starting up" in lower or "shutting down" in lower or "in recovery mode" in lower:
        return f"{target.where} is starting up or shutting down. Try again in a minute."
    return _transport_problem(text, target, waited) or _fallback(text, target)


def test_postgres(config: dict, context: TestContext) -> TestResult:
    import psycopg  # here, not at the top: only a database test needs the driver, and it is slow to import

    target = _target("PostgreSQL", config, context, 5432)
    started = time.monotonic()
    try:
        addresses = _vetted_addresses(target, context)
    except BlockedAddressError as exc:
        return _refused(exc, target)
    except OSError as exc:  # the name does not resolve
        return _failure(_explain_postgres(exc, target), target)
    try:
        with (
            deadline(target.total_timeout),
            psycopg.connect(**_pg_connect_args(target, addresses)) as conn,
            _cut_off_at_deadline(conn.pgconn.socket),
        ):
            statement_ms = str(max(1, round(target.read_timeout * 1000)))
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (statement_ms,))
            one = conn.execute("SELECT 1").fetchone()
            row = conn.execute(_PG_PROBE).fetchone()
            encrypted = bool(conn.info.pgconn.ssl_in_use)
    except (psycopg.Error, OSError) as exc:
        waited = time.monotonic() - started
        # Cut off at the deadline: whatever libpq said then (a closed connection), it was a timeout.
        cause = TimeoutError("timed out") if waited >= target.total_timeout else exc
        return _failure(_explain_postgres(cause, target, waited), target)
    if one is None or one[0] != 1 or row is None:
        return _failure(f"{target.where} connected but did not answer SELECT 1 as expected.", target)
    can_write, access = _pg_access(row)
    facts = {
        "serverVersion": row[0],
        "user": row[1],
        "database": row[2],
        "encrypted": encrypted,
        "canWrite": can_write,
        "access": access,
    }
    return _success(target, facts, started)


# ----- MySQL / MariaDB -------------------------------------------------------------------------

# Privileges that change data or schema. ALL and ALL PRIVILEGES include them.
_WRITE_PRIVILEGES = frozenset({"ALL", "ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP"})
_NAME = r"(?:`(?:[^`]|``)*`|\*|[^\s.`]+)"
_GRANT = re.compile(
    rf"GRANT\s+(?P<privileges>.+?)\s+ON\s+(?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE(?:\s+BODY)?)\s+)?"
    rf"(?P<db>{_NAME})\.(?P<table>{_NAME})\s+TO\s",
    re.IGNORECASE | re.DOTALL,
)


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") and name.endswith("`") else name


def _split_privileges(text: str) -> set[str]:
    """'SELECT, INSERT (a, b), UPDATE' -> {'SELECT', 'INSERT', 'UPDATE'} (column lists dropped)."""
    names, depth, current = set(), 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            names.add(" ".join(current.split()).upper())
            current = ""
        elif depth == 0:
            current += char
    names.add(" ".join(current.split()).upper())
    return {name for name in names if name}


def _like(pattern: str, value: str) -> bool:
    """MySQL's database-level grant names are LIKE patterns: % and _, with \\ escaping either."""
    regex, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            regex += re.escape(pattern[index + 1])
            index += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        index += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None


def write_scope(grants: list[str], database: str) -> str | None:
    """Where SHOW GRANTS lets the user write: 'every database', 'database X', 'some tables of X', or None."""
    scopes = set()
    for line in grants:
        match = _GRANT.match(line.strip())
        if not match or not (_split_privileges(match["privileges"]) & _WRITE_PRIVILEGES):
            continue
        db, table = _unquote(match["db"]), _unquote(match["table"])
        if db == "*":
            scopes.add(0)
        elif table == "*" and _like(db, database):
            scopes.add(1)
        elif db == database:
            scopes.add(2)
    if not scopes:
        return None
    return ("every database", f"database {database}", f"some tables of {database}")[min(scopes)]


def _mysql_connect_args(target: _Target) -> dict:
    args = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "password": target.password,
        "database": target.database,
        "connect_timeout": target.connect_timeout,
        "read_timeout": target.read_timeout,
        "write_timeout": target.read_timeout,
        "charset": "utf8mb4",
        "autocommit": True,
        "local_infile": False,
        "program_name": APPLICATION_NAME,
        "defer_connect": True,  # test_mysql opens the socket to a vetted address and hands it over
    }
    if target.ssl_mode == "disable":
        args["ssl_disabled"] = True
    elif target.ssl_mode == "require":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        args["ssl"] = context  # encrypt or fail, certificate unchecked
    elif target.ssl_mode == "verify-full":
        args["ssl"] = ssl.create_default_context()  # trusted authority and host name checked
    # prefer: PyMySQL's default, encrypting when the server offers it.
    return args


def _explain_mysql(exc: Exception, target: _Target, waited: float | None = None) -> str:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc.args[1]) if code is not None and len(exc.args) > 1 else str(exc)
    lower = text.lower()
    if code is not None:
        note_database_code("mysql", str(code))  # for core.http.observe (a later transport note outranks it)
    if (
        "ssl is required but the server doesn't support it" in lower
        or isinstance(exc, ssl.SSLError)
        or "certificate verify failed" in lower
    ):
        note_transport(Transport.TLS)
    if code == 1045:
        return f"{target.where} refused user {target.user}: authentication failed. Check the user name and password."
    if code == 1049:
        return f"{target.where} has no database called {target.database}. Check its name."
    if code == 1044:
        return (
            f"{target.where} does not let user {target.user} use database {target.database}, or it does not "
            "exist. Check the name, and grant the user access to it."
        )
    if code == 1130:
        return (
            f"{target.where} does not accept connections from this server for user {target.user} "
            "(the user's allowed hosts exclude it)."
        )
    if code == 3159 or "insecure transport" in lower:
        return f"{target.where} requires an encrypted connection (SSL). Set the SSL mode to require or verify-full."
    if "ssl is required but the server doesn't support it" in lower:
        return (
            f"{target.where} does not offer encrypted connections (SSL), but the SSL mode {target.ssl_mode} needs "
            "one. Enable SSL on the server, or choose prefer or disable if an unencrypted connection is acceptable."
        )
    if isinstance(exc, ssl.SSLCertVerificationError) or "certificate verify failed" in lower:
        return (
            f"The certificate of {target.where} could not be verified: it is not signed by a trusted authority or "
            "does not name this host. Fix the certificate, or use SSL mode require (no certificate check)."
        )
    if code == 1040:
        return f"{target.where} has no free connections (too many clients). Try again later."
    if code == 1129:
        return f"{target.where} has blocked this server after too many failed connections (FLUSH HOSTS unblocks)."
    if code == 2013 and "timed out" not in lower:
        return f"{target.where} closed the connection during the handshake. Check the port is a MySQL server's."
    return _transport_problem(text, target, waited) or _fallback(text, target)


def _mysql_facts(conn, target: _Target) -> dict:
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
        one = cursor.fetchone()
        if one is None or one[0] != 1:
            raise _Unexpected("did not answer SELECT 1 as expected")
        cursor.execute("SELECT VERSION(), CURRENT_USER(), DATABASE(), @@read_only")
        version, user, database, read_only = cursor.fetchone()
        cursor.execute("SHOW GRANTS")
        grants = [str(row[0]) for row in cursor.fetchall()]
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        cipher = cursor.fetchone()
    scope = write_scope(grants, database or target.database)
    if int(read_only or 0):
        can_write, access = False, "read-only: the server has read_only on"
    elif scope:
        can_write, access = True, f"can write to {scope}"
    else:
        can_write, access = False, f"read-only: no INSERT, UPDATE, DELETE or CREATE grant on {target.database}"
    return {
        "engine": "MariaDB" if "mariadb" in str(version).lower() else "MySQL",
        "serverVersion": str(version),
        "user": str(user).rsplit("@", 1)[0],
        "database": database,
        "encrypted": bool(cipher and cipher[1]),
        "canWrite": can_write,
        "access": access,
    }


class _Unexpected(Exception):
    pass


def _mysql_socket(addresses: list[str], target: _Target) -> socket.socket:
    import pymysql

    """A TCP connection to the first vetted address that answers (PyMySQL keeps the host name for TLS)."""
    error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = DeadlineSocket(family, socket.SOCK_STREAM)  # each read and write within the test's deadline
        try:
            sock.settimeout(target.connect_timeout)
            sock.connect((address, target.port))
        except OSError as exc:
            sock.close()
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return sock
    # In PyMySQL's own words, so the explanation is the same as when it connects by itself.
    raise pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on {target.host!r} ({error})")


def test_mysql(config: dict, context: TestContext) -> TestResult:
    target = _target("MySQL", config, context, 3306)
    started = time.monotonic()
    try:
        addresses = _vetted_addresses(target, context)
    except BlockedAddressError as exc:
        return _refused(exc, target)
    except OSError as exc:  # the name does not resolve
        return _failure(_explain_mysql(exc, target), target)
    with deadline(target.total_timeout):
        return _test_mysql(target, addresses, started)


def _test_mysql(target: _Target, addresses: list[str], started: float) -> TestResult:
    import pymysql  # here, not at the top: only a database test needs the driver

    try:
        conn = pymysql.connect(**_mysql_connect_args(target))
        conn.connect(_mysql_socket(addresses, target))
    except (pymysql.MySQLError, OSError) as exc:
        return _failure(_explain_mysql(exc, target, time.monotonic() - started), target)
    try:
        facts = _mysql_facts(conn, target)
    except _Unexpected as exc:
        return _failure(f"{target.where} connected but {exc}.", target)
    except (pymysql.MySQLError, OSError) as exc:
        return _failure(_explain_mysql(exc, target, time.monotonic() - started), target)
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return _success(target, facts, started)


# ----- the providers ---------------------------------------------------------------------------

POSTGRESQL = Provider(
    key="POSTGRESQL",
    name="PostgreSQL",
    description="A PostgreSQL database: connects, runs SELECT 1, and reports the version and write access.",
    category="DATABASE",
    fields=_fields(5432, "PostgreSQL"),
    test=test_postgres,
    min_tier=Tier.PRO_PLUS,
    docs_url="https://www.postgresql.org/docs/current/libpq-connect.html",
    check=check,
)

MYSQL = Provider(
    key="MYSQL",
    name="MySQL / MariaDB",
    description="A MySQL or MariaDB database: connects, runs SELECT 1, and reports the version and write access.",
    category="DATABASE",
    fields=_fields(3306, "MySQL or MariaDB"),
    test=test_mysql,
    min_tier=Tier.PRO_PLUS,
    docs_url="https://dev.mysql.com/doc/refman/8.4/en/show-grants.html",
    check=check,
)

PROVIDERS = (POSTGRESQL, MYSQL)
