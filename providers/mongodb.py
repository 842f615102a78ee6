"""MongoDB (pymongo): a host and port with a user, or a mongodb:// / mongodb+srv:// connection string.

The connection test runs ``hello``, ``ping``, ``buildInfo``, ``listDatabases`` (names only) and
``connectionStatus`` (with privileges), and reports the server version, the replica set (if any), how many
databases the user may see, and whether the user can write: "can write" when some privilege grants insert,
update or remove on a database (or on every resource), "read only" otherwise. Nothing is ever written.

One configuration, one way to connect: ``connectWith`` chooses HOST (host, port, user, password, auth
source, TLS) or CONNECTION_STRING (the whole string, stored encrypted: its password is a secret). The fields
of the other way are hidden in the form and dropped when the configuration is saved, so a stored
configuration never holds both.

The outbound address guard (core.http.vet_host) vets every host BEFORE pymongo connects: each host of the
string (a replica set lists several), and for mongodb+srv every target of the ``_mongodb._tcp`` SRV record,
which is resolved here with dnspython within the test's deadline (the targets must lie in the host's parent
domain, as the SRV specification requires; a TXT record may add authSource and replicaSet). pymongo then
connects to the vetted seeds one at a time with directConnection, so it never follows a member list a server
announces (which could name any address), and its name lookups are pinned to the addresses vetted here
(see _pinned), so the host name still drives TLS (SNI and the certificate's host name check) while the
address connected to is the one the guard allowed: a DNS answer that changes afterwards cannot redirect it.

Timeouts: pymongo's connectTimeoutMS and serverSelectionTimeoutMS are the console's connect timeout,
socketTimeoutMS its read timeout, and timeoutMS what is left of the test's one total deadline
(HttpPolicy.request_deadline), which also bounds the DNS questions.

Failures are noted for core.integrations.classify: MongoDB's error code (18 authentication failed,
13 unauthorized, ...) through core.http.note_database_code("mongodb", code), or the transport kind.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from core.catalog import Provider, TestContext
from core.fields import FieldSpec, is_blank
from core.http import (
    BlockedAddressError,
    DeadlineExceeded,
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
from providers.database import APPLICATION_NAME, DEFAULT_POLICY, HOST_PATTERN
from providers.database import check as port_check

DEFAULT_PORT = 27017
CONNECT_WITH = ("HOST", "CONNECTION_STRING")
MAX_SEEDS = 32  # hosts of a string or targets of an SRV record: more is refused, not cut
# Connection-string options the test understands; any other is refused with a sentence, so nothing the
# app server has of its own (a client certificate file, cloud credentials, a proxy past the address guard)
# can be asked for through one.
_OPTIONS = {
    "authsource": "authSource",
    "authmechanism": "authMechanism",
    "replicaset": "replicaSet",
    "tls": "tls",
    "ssl": "tls",
    "tlsallowinvalidcertificates": "tlsAllowInvalidCertificates",
    "tlsallowinvalidhostnames": "tlsAllowInvalidHostnames",
    "tlsinsecure": "tlsInsecure",
    # Accepted and ignored: the test's own values apply.
    "appname": "",
    "retrywrites": "",
    "retryreads": "",
    "w": "",
    "readpreference": "",
    "directconnection": "",
    "connecttimeoutms": "",
    "sockettimeoutms": "",
    "serverselectiontimeoutms": "",
    "timeoutms": "",
    "maxpoolsize": "",
    "minpoolsize": "",
}
_MECHANISMS = ("DEFAULT", "SCRAM-SHA-1", "SCRAM-SHA-256")
_SRV_TXT_OPTIONS = {"authsource": "authSource", "replicaset": "replicaSet", "loadbalanced": ""}
_WRITE_ACTIONS = frozenset({"insert", "update", "remove"})
_HOST_RE = re.compile(HOST_PATTERN)
_NO_USER = "A password is set but no user: enter the user the password belongs to, or clear the password."


_ON_HOST = ("connectWith", ("HOST",))
FIELDS = (
    FieldSpec(
        "connectWith",
        "Connect with",
        "select",
        options=CONNECT_WITH,
        default="HOST",
        help=(
            "HOST: the host, port, user, password, auth source and TLS fields. CONNECTION_STRING: one "
            "mongodb:// or mongodb+srv:// string holding all of it. Only the chosen way is kept when you save."
        ),
    ),
    FieldSpec(
        "connectionString",
        "Connection string",
        "password",
        required=True,
        sensitive=True,
        shown_when=("connectWith", ("CONNECTION_STRING",)),
        placeholder="mongodb+srv://reporting:<password>@cluster0.example.net/?authSource=admin",
        help=(
            "Stored encrypted (it holds the password). mongodb+srv:// looks up the hosts in DNS (SRV) and uses "
            "TLS unless tls=false; every host must pass the console's address checks."
        ),
    ),
    FieldSpec(
        "host",
        "Host",
        "text",
        required=True,
        pattern=HOST_PATTERN,
        pattern_message="Enter only the server's host name or IP address, without a scheme or a port.",
        placeholder="mongo.example.com",
        help="The MongoDB server's host name or IP address (one member is enough for a replica set).",
        shown_when=_ON_HOST,
    ),
    FieldSpec(
        "port", "Port", "number", required=True, default=DEFAULT_PORT, help="Usually 27017.", shown_when=_ON_HOST
    ),
    FieldSpec(
        "user",
        "User",
        "text",
        pattern=r"\S.{0,127}",
        pattern_message="Enter the user name (at most 128 characters).",
        placeholder="console_readonly",
        help="Empty: connect without signing in. A read-only user is enough; the result says whether it can write.",
        shown_when=_ON_HOST,
    ),
    FieldSpec(
        "password",
        "Password",
        "password",
        sensitive=True,
        help="Stored encrypted.",
        shown_when=_ON_HOST,
    ),
    FieldSpec(
        "authSource",
        "Auth source",
        "text",
        default="admin",
        pattern=r"[^\s/\\. \"$]{1,64}",
        pattern_message="Enter a database name (at most 64 characters; no spaces, dots, slashes or $).",
        help="The database the user is defined in; usually admin.",
        shown_when=_ON_HOST,
    ),
    FieldSpec(
        "tls",
        "Use TLS",
        "checkbox",
        default=False,
        help="Encrypt the connection and check the certificate and host name against the system's authorities.",
        shown_when=_ON_HOST,
    ),
)


# ----- the connection string -------------------------------------------------------------------------


class ConnectionStringError(ValueError):
    """A connection string the test cannot use; the message is a sentence for the form."""


@dataclass
class Parsed:
    srv: bool
    hosts: list[tuple[str, int]]
    user: str = ""
    password: str = ""
    database: str = ""  # the path's database: the default auth source
    options: dict[str, str] = field(default_factory=dict)  # canonical names (_OPTIONS) -> raw values


def _split_host(text: str) -> tuple[str, int | None]:
    """'h', 'h:1', '[::1]:1' -> (host, port or None); raises ConnectionStringError."""
    text = unquote_plus(text)
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        host, port_text = inside, rest[1:] if rest.startswith(":") else None
        if rest and not rest.startswith(":"):
            raise ConnectionStringError(f"The host {text} is not written as [address]:port.")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    if not host or not _HOST_RE.fullmatch(host):
        shown = host or "(empty)"
        raise ConnectionStringError(f"The host {shown} in the connection string is not a host name or address.")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConnectionStringError(f"The port of {host} in the connection string must be a number from 1 to 65535.")
    return host, int(port_text)


def parse_connection_string(text: str) -> Parsed:
    """The parts of a mongodb:// or mongodb+srv:// string (no DNS); raises ConnectionStringError."""
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("mongodb", "mongodb+srv"):
        raise ConnectionStringError("Start the connection string with mongodb:// or mongodb+srv://.")
    authority, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if "?" in authority:  # mongodb://host?x=y without the slash
        authority, _, query = authority.partition("?")
    userinfo, at, hosts_text = authority.rpartition("@")
    parsed = Parsed(srv=scheme == "mongodb+srv", hosts=[])
    if at:
        user, _, password = userinfo.partition(":")
        if any(char in part for part in (user, password) for char in "@:/"):
            raise ConnectionStringError("Percent-encode @, : and / in the user name and password (%40, %3A, %2F).")
        parsed.user, parsed.password = unquote_plus(user), unquote_plus(password)
        if not parsed.user:
            raise ConnectionStringError("The connection string has a password but no user name.")
    parts = [part for part in hosts_text.split(",")] if hosts_text else []
    if not parts or any(not part for part in parts):
        raise ConnectionStringError("Name at least one host in the connection string (host:port, comma-separated).")
    if len(parts) > MAX_SEEDS:
        raise ConnectionStringError(f"The connection string lists more than {MAX_SEEDS} hosts.")
    for part in parts:
        host, port = _split_host(part)
        if parsed.srv and (port is not None or len(parts) > 1):
            raise ConnectionStringError("A mongodb+srv:// string names one host and no port (DNS gives the rest).")
        parsed.hosts.append((host, port or DEFAULT_PORT))
    parsed.database = unquote_plus(path)
    if parsed.database and not re.fullmatch(r"[^\s/\\. \"$]{1,64}", parsed.database):
        raise ConnectionStringError(f"{parsed.database} in the connection string's path is not a database name.")
    for pair in re.split(r"[&;]", query) if query else []:
        key, eq, value = pair.partition("=")
        name = _OPTIONS.get(key.lower())
        if not eq or name is None:
            allowed = ", ".join(sorted({v for v in _OPTIONS.values() if v}))
            raise ConnectionStringError(
                f"The connection string option {key or pair} is not used by the console's test; keep to {allowed} "
                "(timeouts and the like are the console's own)."
            )
        if name:
            parsed.options[name] = unquote_plus(value)
    _check_options(parsed.options)
    return parsed


def _flag(options: dict[str, str], name: str) -> bool | None:
    value = options.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConnectionStringError(f"The connection string option {name} must be true or false.")


def _check_options(options: dict[str, str]) -> None:
    for name in ("tls", "tlsAllowInvalidCertificates", "tlsAllowInvalidHostnames", "tlsInsecure"):
        _flag(options, name)
    mechanism = options.get("authMechanism")
    if mechanism is not None and mechanism.upper() not in _MECHANISMS:
        raise ConnectionStringError(
            f"The authentication mechanism {mechanism} is not one the console uses: use SCRAM-SHA-256 or "
            "SCRAM-SHA-1 (a user name and password)."
        )
    for name in ("authSource", "replicaSet"):
        if name in options and not re.fullmatch(r"[^\s/\\\"$]{1,64}", options[name]):
            raise ConnectionStringError(f"The connection string option {name} is not a valid name.")


def check(config: dict) -> dict[str, str]:
    """The port's range; the connection string's form."""
    if config.get("connectWith") == "CONNECTION_STRING":
        text = config.get("connectionString")
        if isinstance(text, str) and not is_blank(text) and not text.startswith("•"):
            try:
                parse_connection_string(text)
            except ConnectionStringError as exc:
                return {"connectionString": str(exc)}
        return {}
    return port_check(config)  # a password without a user is refused by the test itself (_NO_USER)


# ----- what a test connects to -----------------------------------------------------------------------


@dataclass
class _Target:
    parsed: Parsed
    tls: bool
    auth_source: str
    policy: HttpPolicy
    secrets: list[str]

    @property
    def shown(self) -> str:
        """The hosts, for sentences (never the user info)."""
        if self.parsed.srv:
            return f"mongodb+srv://{self.parsed.hosts[0][0]}"
        return ",".join(_where(host, port) for host, port in self.parsed.hosts)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _policy(context: TestContext | None) -> HttpPolicy:
    policy = getattr(getattr(context, "http", None), "policy", None)
    return policy if isinstance(policy, HttpPolicy) else DEFAULT_POLICY


def _target(config: dict, context: TestContext | None) -> _Target:
    """Raises ConnectionStringError."""
    policy = _policy(context)
    if config.get("connectWith") == "CONNECTION_STRING":
        text = str(config.get("connectionString") or "")
        parsed = parse_connection_string(text)
        tls = _flag(parsed.options, "tls")
        auth_source = parsed.options.get("authSource") or parsed.database or "admin"
        # The password is the secret (redact also catches its URL-encoded form); the rest of the string (the
        # scheme, hosts, user and options) is what the sentences name anyway.
        secrets = [parsed.password]
        return _Target(parsed, parsed.srv if tls is None else tls, auth_source, policy, secrets)
    host = str(config["host"]).strip().strip("[]")
    port = int(float(config.get("port") or DEFAULT_PORT))
    password = str(config.get("password") or "")
    parsed = Parsed(srv=False, hosts=[(host, port)], user=str(config.get("user") or "").strip(), password=password)
    auth_source = str(config.get("authSource") or "admin").strip()
    return _Target(parsed, bool(config.get("tls")), auth_source, policy, [password])


def _failure(message: str, target: _Target | None, secrets: list[str] | None = None, **details: Any) -> TestResult:
    message = redact(message, [s for s in (secrets or (target.secrets if target else [])) if s])
    if target is not None:
        details = {"engine": "MongoDB", "hosts": target.shown, **details}
    return TestResult(False, message, details, error=message)


# ----- SRV and TXT ----------------------------------------------------------------------------------


class _DnsProblem(Exception):
    """A sentence about the SRV lookup; the transport kind is already noted."""


def _lifetime(policy: HttpPolicy) -> float:
    return remaining(policy.connect_timeout) or policy.connect_timeout


def _srv_seeds(target: _Target) -> list[tuple[str, int]]:
    """The SRV record's targets (each in the host's parent domain), and the TXT record's options applied."""
    import dns.exception
    import dns.resolver

    host = target.parsed.hosts[0][0].rstrip(".").lower()
    if "." not in host:
        raise _DnsProblem(f"mongodb+srv:// needs a host name with a domain, such as cluster0.example.net, not {host}.")
    # The SRV specification: targets share the host's parent domain (the host itself when it has two labels).
    parent = host.split(".", 1)[1] if host.count(".") >= 2 else host
    resolver = dns.resolver.Resolver()
    name = f"_mongodb._tcp.{host}"
    try:
        answer = resolver.resolve(name, "SRV", lifetime=_lifetime(target.policy))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
        note_transport(Transport.NETWORK)
        raise _DnsProblem(f"DNS has no SRV record {name}: check the host name of the mongodb+srv:// string.") from exc
    except dns.exception.Timeout as exc:
        note_transport(Transport.TIMEOUT)
        raise _DnsProblem(f"DNS did not answer for the SRV record {name} in time (timeout).") from exc
    except dns.exception.DNSException as exc:
        note_transport(Transport.NETWORK)
        raise _DnsProblem(f"The SRV record {name} could not be looked up (DNS: {type(exc).__name__}).") from exc
    records = list(answer)
    if len(records) > MAX_SEEDS:
        raise _DnsProblem(f"The SRV record {name} lists more than {MAX_SEEDS} hosts.")
    seeds: list[tuple[str, int]] = []
    for record in sorted(records, key=lambda r: (getattr(r, "priority", 0), -getattr(r, "weight", 0))):
        target_host = str(record.target).rstrip(".").lower()
        if not target_host.endswith("." + parent):
            note_transport(Transport.BLOCKED)
            raise _DnsProblem(
                f"The SRV record {name} names {target_host}, which is not in {parent}; MongoDB's rules (and the "
                "console) only follow SRV targets in the host's own domain."
            )
        seeds.append((target_host, int(record.port)))
    if not seeds:
        raise _DnsProblem(f"The SRV record {name} lists no hosts.")
    _apply_txt(resolver, host, target)
    return seeds


def _apply_txt(resolver: Any, host: str, target: _Target) -> None:
    import dns.exception
    import dns.resolver

    try:
        answer = resolver.resolve(host, "TXT", lifetime=_lifetime(target.policy))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return
    except dns.exception.Timeout as exc:
        note_transport(Transport.TIMEOUT)
        raise _DnsProblem(f"DNS did not answer for the TXT record of {host} in time (timeout).") from exc
    except dns.exception.DNSException as exc:
        note_transport(Transport.NETWORK)
        raise _DnsProblem(f"The TXT record of {host} could not be looked up (DNS: {type(exc).__name__}).") from exc
    records = list(answer)
    if len(records) > 1:
        raise _DnsProblem(f"{host} has {len(records)} TXT records; MongoDB allows one (authSource, replicaSet).")
    for record in records:
        text = b"".join(getattr(record, "strings", ())).decode("utf-8", "replace")
        for pair in text.split("&") if text else []:
            key, _, value = pair.partition("=")
            name = _SRV_TXT_OPTIONS.get(key.lower())
            if name is None:
                raise _DnsProblem(f"The TXT record of {host} holds {key}, which MongoDB does not allow there.")
            if name:
                target.parsed.options.setdefault(name, value)  # the connection string wins over DNS
    target.auth_source = target.parsed.options.get("authSource") or target.parsed.database or "admin"


# ----- pinning pymongo's name lookups to the vetted addresses ----------------------------------------

_PINS: dict[str, list[list[str]]] = {}
_PINS_LOCK = threading.Lock()
_SHIM_INSTALLED = False


class _PinnedSocketModule(types.ModuleType):
    """pymongo.pool_shared's view of the socket module: getaddrinfo answers only with vetted addresses.

    A name no test has pinned is refused (nothing else in the console uses pymongo), so pymongo cannot
    reach an address the guard has not seen, even one a server announces."""

    def __init__(self) -> None:
        super().__init__("socket")

    def __getattr__(self, name: str) -> Any:
        return getattr(socket, name)

    @staticmethod
    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> list:
        key = str(host).strip("[]").rstrip(".").lower()
        with _PINS_LOCK:
            addresses = [a for pinned in _PINS.get(key, []) for a in pinned]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} was not vetted by the console's address guard")
        infos: list = []
        for address in dict.fromkeys(addresses):
            infos += socket.getaddrinfo(address, port, family, type, proto, socket.AI_NUMERICHOST)
        return infos


def _install_shim() -> None:
    global _SHIM_INSTALLED
    with _PINS_LOCK:
        if _SHIM_INSTALLED:
            return
        import pymongo.pool_shared

        # Only the sync pool's _create_connection reads pool_shared.socket.getaddrinfo (pymongo==4.20.0, pinned).
        setattr(pymongo.pool_shared, "socket", _PinnedSocketModule())  # noqa: B010
        _SHIM_INSTALLED = True


@contextlib.contextmanager
def _pinned(host: str, addresses: list[str]) -> Iterator[None]:
    """While the block runs, pymongo resolves host to exactly these (vetted) addresses."""
    _install_shim()
    key = host.strip("[]").rstrip(".").lower()
    with _PINS_LOCK:
        _PINS.setdefault(key, []).append(addresses)
    try:
        yield
    finally:
        with _PINS_LOCK:
            _PINS[key].remove(addresses)
            if not _PINS[key]:
                del _PINS[key]


# ----- the test --------------------------------------------------------------------------------------


class _Permission(Exception):
    def __init__(self, message: str, facts: dict):
        super().__init__(message)
        self.facts = facts


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _client_args(target: _Target, host: str, port: int) -> dict:
    policy, options = target.policy, target.parsed.options
    left = remaining(policy.request_deadline) or policy.request_deadline
    args: dict[str, Any] = {
        "host": host,
        "port": port,
        "directConnection": True,
        "connectTimeoutMS": _ms(min(policy.connect_timeout, left)),
        "serverSelectionTimeoutMS": _ms(min(policy.connect_timeout, left)),
        "socketTimeoutMS": _ms(min(policy.read_timeout, left)),
        "timeoutMS": _ms(left),
        "appname": APPLICATION_NAME,
        "retryReads": False,
        "retryWrites": False,
        "maxPoolSize": 1,
        "tls": target.tls,
    }
    if target.parsed.user:
        args |= {"username": target.parsed.user, "password": target.parsed.password, "authSource": target.auth_source}
        mechanism = (options.get("authMechanism") or "DEFAULT").upper()
        if mechanism != "DEFAULT":
            args["authMechanism"] = mechanism
    if target.tls:
        insecure = _flag(options, "tlsInsecure")
        if insecure:
            args["tlsInsecure"] = True
        else:
            for name in ("tlsAllowInvalidCertificates", "tlsAllowInvalidHostnames"):
                if _flag(options, name):
                    args[name] = True
    return args


def _write_access(status: dict) -> tuple[bool | None, str]:
    """(can write, how) from connectionStatus' authInfo with showPrivileges."""
    info = status.get("authInfo") or {}
    users = info.get("authenticatedUsers") or []
    databases: set[str] = set()
    for privilege in info.get("authenticatedUserPrivileges") or []:
        if not _WRITE_ACTIONS & set(privilege.get("actions") or []):
            continue
        resource = privilege.get("resource") or {}
        if resource.get("anyResource") or resource.get("db") == "":
            return True, "can write to every database"
        if isinstance(resource.get("db"), str):
            databases.add(resource["db"])
    if databases:
        return True, f"can write to database {sorted(databases)[0]}" + (
            f" and {len(databases) - 1} more" if len(databases) > 1 else ""
        )
    if not users:
        return None, ""  # nobody signed in: decided by whether the server checks access (see _probe)
    return False, "read only: no role grants insert, update or remove on any database"


def _probe(client: Any, where: str, policy: HttpPolicy) -> dict:
    """The test's commands; pymongo.timeout holds them to the console's timeouts and the one deadline: the
    server selection, handshake, sign-in and hello to the connect timeout (a silent server fails then), and
    every command together to what is left of the deadline."""
    import pymongo

    with pymongo.timeout(remaining(policy.connect_timeout)):
        hello = client.admin.command("hello")
    with pymongo.timeout(remaining()):
        return _commands(client, where, hello)


def _commands(client: Any, where: str, hello: dict) -> dict:
    from pymongo.errors import OperationFailure

    client.admin.command("ping")
    build = client.admin.command("buildInfo")
    facts: dict[str, Any] = {
        "serverVersion": str(build.get("version") or "unknown"),
        "replicaSet": hello.get("setName"),
        "role": "primary"
        if hello.get("isWritablePrimary") or hello.get("ismaster")
        else "secondary"
        if hello.get("secondary")
        else "other",
    }
    status = client.admin.command("connectionStatus", showPrivileges=True)
    users = (status.get("authInfo") or {}).get("authenticatedUsers") or []
    facts["user"] = str(users[0].get("user")) if users else None
    try:
        listed = client.admin.command("listDatabases", nameOnly=True)
    except OperationFailure as exc:
        if exc.code == 13:
            note_database_code("mongodb", "13")
            who = f"user {facts['user']}" if facts["user"] else "a connection without a user"
            raise _Permission(
                f"Connected to MongoDB {facts['serverVersion']} at {where}, but {who} may not list its databases "
                "(not authorized, code 13). Grant the user a role that may (read on its databases, or "
                "clusterMonitor), or enter a user that has one.",
                facts,
            ) from exc
        raise
    facts["databases"] = len(listed.get("databases") or [])
    can_write, access = _write_access(status)
    if can_write is None:
        can_write, access = True, "can write: the server lets anyone in without a user (no access control)"
    facts["canWrite"], facts["access"] = can_write, access
    return facts


def _explain(exc: Exception, target: _Target, where: str, waited: float) -> str:
    from pymongo.errors import ConfigurationError, NetworkTimeout, OperationFailure, ServerSelectionTimeoutError

    text = str(exc)
    lower = text.lower()
    code = getattr(exc, "code", None)
    if isinstance(exc, OperationFailure) and code is not None:
        note_database_code("mongodb", str(code))
        user = target.parsed.user
        if code == 18:
            return (
                f"MongoDB at {where} refused user {user}: authentication failed. Check the user name, the "
                f"password and the auth source ({target.auth_source})."
            )
        if code == 13:
            return f"MongoDB at {where} did not authorize the test's commands for user {user or '(none)'} (code 13)."
        if code == 50:
            return f"MongoDB at {where} did not finish a command within the time limit (timeout)."
        first = redact(text.splitlines()[0] if text else "", target.secrets)[:200]
        return f"MongoDB at {where} answered with error {code}: {first}"
    if isinstance(exc, ConfigurationError):
        return f"pymongo cannot use these settings for {where}: {redact(text, target.secrets)[:200]}"
    if any(hint in lower for hint in ("ssl handshake failed", "certificate", "[ssl", "wrong version number")):
        note_transport(Transport.TLS)
        return (
            f"The secure connection (TLS) to MongoDB at {where} failed: the certificate was not trusted or does "
            "not name this host, or the server does not speak TLS. Check the certificate, or turn TLS off if "
            "the server does not use it."
        )
    if "connection refused" in lower:
        note_transport(Transport.NETWORK)
        return (
            f"MongoDB at {where} refused the connection: nothing listens on that port. Check the port, and that "
            "the server accepts TCP connections."
        )
    # pymongo's messages all end with "(configured timeouts: ...)": only "timed out" says it was one.
    if "timed out" in lower or isinstance(exc, TimeoutError | ServerSelectionTimeoutError | NetworkTimeout):
        note_transport(Transport.TIMEOUT)
        return (
            f"MongoDB at {where} did not answer within {max(1, round(waited))} seconds (timeout). Check the host "
            "and port, and that a firewall lets this server through."
        )
    note_transport(Transport.NETWORK)
    first = redact(text.splitlines()[0] if text else "", target.secrets)[:200]
    return f"The connection to MongoDB at {where} failed: {first or 'no reason given'}."


def _vet_all(seeds: list[tuple[str, int]], target: _Target) -> list[tuple[str, int, list[str]]]:
    """Every seed's vetted addresses; raises BlockedAddressError for the first one refused, OSError."""
    return [(host, port, vet_host(host, port, target.policy)) for host, port in seeds]


def test_mongodb(config: dict, context: TestContext) -> TestResult:
    try:
        target = _target(config, context)
    except ConnectionStringError as exc:  # a stored string saved before a rule (the form checks it)
        whole = config.get("connectionString")  # unparsed: redact all of it (over-redaction is harmless here)
        return _failure(str(exc), None, [whole] if isinstance(whole, str) else [])
    if target.parsed.password and not target.parsed.user:
        return _failure(_NO_USER, target, field_errors={"user": _NO_USER})  # classified as configuration
    started = time.monotonic()
    with deadline(target.policy.request_deadline):
        return _test(target, started)


def _test(target: _Target, started: float) -> TestResult:
    from pymongo import MongoClient
    from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError, ServerSelectionTimeoutError

    try:
        seeds = _srv_seeds(target) if target.parsed.srv else target.parsed.hosts
        vetted = _vet_all(seeds, target)  # every host, before anything connects
    except _DnsProblem as exc:
        return _failure(str(exc), target)
    except DeadlineExceeded:
        return _failure(f"Looking up {target.shown} took longer than the test may (timeout).", target)
    except BlockedAddressError as exc:
        note_transport(Transport.BLOCKED)
        return _failure(f"The address of MongoDB at {target.shown} was refused: {exc.explanation}", target)
    except OSError:
        note_transport(Transport.NETWORK)
        return _failure(f"A host of {target.shown} could not be found (DNS). Check it for typos.", target)
    message = ""
    for host, port, addresses in vetted:  # at most MAX_SEEDS, each within the one deadline
        where = _where(host, port)
        tried = time.monotonic()
        with _pinned(host, addresses):  # through close(), which may still talk to the server
            client = MongoClient(**_client_args(target, host, port))
            try:
                facts = _probe(client, where, target.policy)
            except _Permission as exc:
                return _failure(str(exc), target, **exc.facts)
            except OperationFailure as exc:  # the server answered: another member would answer the same
                return _failure(_explain(exc, target, where, time.monotonic() - tried), target)
            except (ConnectionFailure, PyMongoError, OSError) as exc:
                waited = time.monotonic() - tried  # measured before close()
                if isinstance(exc, ServerSelectionTimeoutError):  # no server answered: the connect timeout ran out
                    waited = min(waited, target.policy.connect_timeout)
                message = _explain(exc, target, where, waited)
                try:
                    remaining()
                except DeadlineExceeded:
                    break
                continue
            finally:
                client.close()
        return _success(target, where, facts, started)
    return _failure(message or f"No host of {target.shown} could be reached.", target)


def _success(target: _Target, where: str, facts: dict, started: float) -> TestResult:
    latency_ms = round((time.monotonic() - started) * 1000)
    member = f", replica set {facts['replicaSet']} ({facts['role']})" if facts.get("replicaSet") else ""
    user = f"as {facts['user']}" if facts.get("user") else "without a user"
    details = {
        "engine": "MongoDB",
        "serverVersion": facts["serverVersion"],
        "host": where,
        "hosts": target.shown,
        "replicaSet": facts.get("replicaSet"),
        "role": facts["role"],
        "user": facts.get("user"),
        "databases": facts["databases"],
        "encrypted": target.tls,
        "canWrite": facts["canWrite"],
        "access": facts["access"],
        "latencyMs": latency_ms,
    }
    message = (
        f"Connected to MongoDB {facts['serverVersion']} at {where}{member}, {user} ({facts['access']}; "
        f"{facts['databases']} database{'s' if facts['databases'] != 1 else ''} visible; "
        f"{'encrypted' if target.tls else 'not encrypted'}) in {latency_ms} ms."
    )
    return TestResult(True, redact(message, [s for s in target.secrets if s]), details)


PROVIDER = Provider(
    key="MONGODB",
    name="MongoDB",
    description="A MongoDB server or replica set: runs hello, ping and buildInfo, and reports the version and "
    "write access.",
    category="DATABASE",
    fields=FIELDS,
    test=test_mongodb,
    min_tier=Tier.PRO_PLUS,
    docs_url="https://www.mongodb.com/docs/manual/reference/connection-string/",
    check=check,
)
