"""The one outbound HTTP session factory: timeouts, bounded retries, plain errors, and the outbound
address guard. Redaction is core.redaction's.

The address guard: every connection a session from make_session opens (the first request and every redirect
hop) resolves its host once, refuses it unless every address it resolves to is a public internet address
or is admitted by the allow-list (OUTBOUND_ALLOW), and then connects to one of exactly those vetted
addresses. The Host header, TLS SNI and certificate check keep using the host name, so nothing changes for
the server, and a DNS answer that changes between the check and the connect (rebinding) cannot redirect
the connection. ``vet_host`` gives non-HTTP clients (the database providers) the same check.

Observation: inside ``with observe() as seen:`` every outbound call of this context is noted on ``seen``
(an Observed): the last HTTP status and its host, the last transport failure's kind, and what core.oauth
and the database providers add (an OAuth error code, a driver's error code). core.integrations.classify
reads it, so a check's outcome is classified without reading any English message.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import ipaddress
import re
import socket
import ssl
import sys
import time
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlparse, urlsplit

import requests
from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from requests.models import PreparedRequest
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.poolmanager import PoolManager
from urllib3.response import BaseHTTPResponse
from urllib3.util.connection import allowed_gai_family
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_SECONDS = 10
MAX_BODY_BYTES = 2 * 1024 * 1024
# A connection test makes at most this many requests (an OAuth token, the call itself, a refreshed token
# and one more), so a check's deadline is this many request deadlines; core.integrations.leases leases for longer.
REQUESTS_PER_CHECK = 4
USER_AGENT = "IntegrationsConsole/1.0"


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_retries: int = 2
    backoff_factor: float = 0.3
    # OUTBOUND_ALLOW: host names and networks the address guard admits although they are not public.
    outbound_allow: tuple[str, ...] = ()

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    @property
    def request_deadline(self) -> float:
        """Seconds one call may take in all, from the first connect to the last byte of the answer,
        headers, redirects, retries and their waits included (5 + 2 x 15 = 35 s by default)."""
        return self.connect_timeout + 2 * self.read_timeout

    @property
    def check_deadline(self) -> float:
        """Seconds a whole connection test may take (REQUESTS_PER_CHECK request deadlines)."""
        return REQUESTS_PER_CHECK * self.request_deadline


# ----- observing what outbound calls met ---------------------------------------------------------------
# A connection test's outcome is classified (core.integrations.classify) from what its calls met, not from
# the sentences a provider wrote. Each active `observe` block gets every note made in its context; with
# none active a note costs one context variable read.


class Transport(StrEnum):
    """How an outbound call failed before (or while) an answer arrived."""

    TLS = "tls"  # the TLS handshake or certificate check failed
    TIMEOUT = "timeout"  # a connect or read timeout, or the total deadline (DeadlineExceeded)
    NETWORK = "network"  # refused, reset, unreachable, or a host name that does not resolve
    BLOCKED = "blocked"  # the outbound address guard refused the destination
    TOO_LARGE = "too_large"  # the answer was larger than MAX_BODY_BYTES
    REDIRECT = "redirect"  # a redirect not followed: a body to another origin, or too many hops
    INVALID_ADDRESS = "invalid_address"  # not a web address requests can send to


Signal = Literal["http", "transport", "oauth", "database"]
DatabaseEngine = Literal["postgresql", "mysql", "mongodb"]


@dataclass
class Observed:
    """What the outbound calls of one `observe` block met; each field holds the last one noted.

    `latest` says which kind of note came last, so a later failure outranks an earlier one (a token
    endpoint's 200 and then a refused connection is a network failure). Never holds a secret: a status,
    a host name (no path or query), an enumerated kind, and short error codes.
    """

    status: int | None = None  # the last HTTP answer's status
    host: str | None = None  # that answer's host name
    transport: Transport | None = None  # the last transport failure
    oauth_error: str | None = None  # a token endpoint's error ("invalid_grant"), noted by core.oauth
    database_code: str | None = None  # a driver's code (PyMySQL errno "1045", SQLSTATE "28P01")
    database_engine: DatabaseEngine | None = None  # whose code database_code is
    latest: Signal | None = None
    responses: int = 0  # HTTP answers noted


_OBSERVERS: contextvars.ContextVar[tuple[Observed, ...]] = contextvars.ContextVar("outbound_observers", default=())


@contextlib.contextmanager
def observe() -> Generator[Observed]:
    """Note what the outbound calls inside the block meet on the Observed it yields.

    Nestable: an inner block gets the notes made inside it, and every enclosing block gets them too."""
    seen = Observed()
    token = _OBSERVERS.set((*_OBSERVERS.get(), seen))
    try:
        yield seen
    finally:
        _OBSERVERS.reset(token)


def note_response(status: int, url: str | None) -> None:
    """An HTTP answer arrived (make_session's sessions note each call's final answer themselves)."""
    observers = _OBSERVERS.get()
    if not observers:
        return
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        host = None
    for seen in observers:
        seen.status, seen.host, seen.latest = status, host, "http"
        seen.responses += 1


def note_transport(kind: Transport) -> None:
    """A call failed on the way (the database providers note their connection failures here too)."""
    for seen in _OBSERVERS.get():
        seen.transport, seen.latest = kind, "transport"


def note_oauth_error(code: str) -> None:
    """A token endpoint refused to issue a token with this OAuth error code (core.oauth notes it)."""
    for seen in _OBSERVERS.get():
        seen.oauth_error, seen.latest = code, "oauth"


def note_database_code(engine: DatabaseEngine, code: str) -> None:
    """A database driver's error code: PyMySQL's errno, PostgreSQL's SQLSTATE (providers.database), MongoDB's
    error code (providers.mongodb)."""
    for seen in _OBSERVERS.get():
        seen.database_engine, seen.database_code, seen.latest = engine, code, "database"


def transport_kind(exc: BaseException) -> Transport:
    """The Transport kind of an exception an outbound call raised."""
    if isinstance(exc, BlockedAddressError):
        return Transport.BLOCKED
    if isinstance(exc, requests.exceptions.SSLError | ssl.SSLError | SSLError):
        return Transport.TLS
    if isinstance(exc, requests.exceptions.Timeout | TimeoutError | ReadTimeoutError | ConnectTimeoutError):
        return Transport.TIMEOUT  # DeadlineExceeded is a TimeoutError
    if isinstance(exc, ResponseTooLargeError):
        return Transport.TOO_LARGE
    if isinstance(exc, RedirectRefusedError | requests.exceptions.TooManyRedirects):
        return Transport.REDIRECT
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.URLRequired,
    ):
        return Transport.INVALID_ADDRESS
    return Transport.NETWORK


# ----- one total deadline ---------------------------------------------------------------------------
# requests' read timeout is per socket read: a server that sends one byte a second never trips it. So
# every socket an outbound call opens (HTTP, TLS, MySQL) sets its timeout, before each read and write,
# to what is left of the deadline of the work it belongs to (the innermost `deadline` block).

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("outbound_deadline", default=None)


class DeadlineExceeded(TimeoutError):
    """The work's total deadline passed (a TimeoutError, so every client reports it as a timeout)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Bound everything outbound inside the block to `seconds` from now (or less, inside a tighter block)."""
    when = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(when if outer is None else min(outer, when))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining(cap: float | None = None) -> float | None:
    """Seconds left of the current deadline, no more than cap; None without deadline or cap.
    Raises DeadlineExceeded once it has passed."""
    when = _DEADLINE.get()
    if when is None:
        return cap
    left = when - time.monotonic()
    if left <= 0:
        note_transport(Transport.TIMEOUT)
        raise DeadlineExceeded("timed out: the total deadline passed")
    return left if cap is None else min(cap, left)


class _DeadlineSocketMixin(socket.socket):
    """Before each blocking call: the timeout the client asked for, or what is left of the deadline.

    The methods pass their arguments on untouched (*args: Any), as they stand in for both socket.socket's
    and ssl.SSLSocket's versions, whose parameters differ."""

    _asked_timeout: float | None = None

    def settimeout(self, value: float | None, /) -> None:
        self._asked_timeout = value
        super().settimeout(value)

    def _bound(self) -> None:
        if _DEADLINE.get() is not None:
            super().settimeout(remaining(self._asked_timeout))

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._bound()
        return super().recv(*args, **kwargs)

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._bound()
        return super().recv_into(*args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._bound()
        return super().send(*args, **kwargs)

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._bound()
        return super().sendall(*args, **kwargs)

    def connect(self, *args: Any, **kwargs: Any) -> None:
        self._bound()
        return super().connect(*args, **kwargs)


class DeadlineSocket(_DeadlineSocketMixin, socket.socket):
    """A TCP socket held to the current deadline; the database providers connect with one too."""


class _DeadlineSSLSocket(_DeadlineSocketMixin, ssl.SSLSocket):
    def read(self, *args: Any, **kwargs: Any) -> bytes:
        self._bound()
        return super().read(*args, **kwargs)  # pyright: ignore[reportDeprecated]  # SSLSocket.recv calls it; the override must too

    def do_handshake(self, *args: Any, **kwargs: Any) -> None:
        self._bound()
        return super().do_handshake(*args, **kwargs)


def hold_tls_to_deadline(context: ssl.SSLContext) -> ssl.SSLContext:
    """context, whose TLS sockets are held to the current deadline on every read, write and handshake
    (for clients that wrap their own sockets, such as smtplib's STARTTLS and implicit TLS)."""
    context.sslsocket_class = _DeadlineSSLSocket
    return context


class _CappedRetry(Retry):
    """Honours Retry-After, but never waits longer than a page can afford."""

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else _wait_within_deadline(min(seconds, MAX_RETRY_AFTER_SECONDS))

    def get_backoff_time(self) -> float:
        return _wait_within_deadline(super().get_backoff_time())


def _wait_within_deadline(seconds: float) -> float:
    """A wait before a retry never outlasts the deadline (the retry then fails at once as a timeout)."""
    try:
        left = remaining()
    except DeadlineExceeded:
        return 0
    return seconds if left is None else min(seconds, left)


# ----- the outbound address guard ---------------------------------------------------------------------

OUTBOUND_ALLOW = "OUTBOUND_ALLOW"
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (family, socket address) as socket.getaddrinfo gives them: (host, port) for IPv4, (host, port, flow, scope) for IPv6.
_Target = tuple[int, tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]]
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What inet_aton accepts besides the dotted quad: 2130706433, 0177.0.0.1, 0x7f.1, 127.1.
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")
_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*")


class BlockedAddressError(requests.RequestException):
    """The address guard refused a destination; the message says which rule and how to allow it."""

    def __init__(self, explanation: str, *, host: str | None = None, address: str | None = None, **kwargs: Any):
        self.explanation, self.host, self.address = explanation, host, address
        super().__init__(f"refused: {explanation}", **kwargs)


class _Refusal(Exception):
    """Carries a BlockedAddressError through urllib3, which would retry or wrap any OSError."""

    def __init__(self, error: BlockedAddressError):
        super().__init__(str(error))
        self.error = error


def _numeric_address(host: str) -> _IPAddress | None:
    """The address a host written as a number stands for: 10.0.0.1, ::1, and inet_aton's other forms."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    bare = host.rstrip(".")
    if bare and _NUMERIC_HOST.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: _IPAddress) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for or tunnels to, and the name of that form."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "an IPv4-mapped IPv6 address"
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "an IPv4-compatible IPv6 address"
    if address.sixtofour is not None:
        return address.sixtofour, "a 6to4 address"
    if address.teredo is not None:
        return address.teredo[1], "a Teredo address"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "a NAT64 address"
    return None


def address_problem(address: _IPAddress) -> str | None:
    """Why the guard refuses an address ("a private address"), or None when it is a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner, form = embedded
        if form in ("an IPv4-mapped IPv6 address", "an IPv4-compatible IPv6 address"):
            return f"{form} (it stands for {inner})"
        if problem := address_problem(inner):
            return f"{form} that leads to {inner}, {problem}"
        if form == "a NAT64 address":
            return None  # a public IPv4 address reached through the network's NAT64 gateway
    v6 = isinstance(address, ipaddress.IPv6Address)
    if address.is_unspecified:
        return "the unspecified address (it reaches this server itself)"
    if address.is_loopback:
        return "a loopback address (this server itself)"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services such as 169.254.169.254 answer)"
    if address.is_multicast:
        return "a multicast address"
    if not v6 and address in _CGNAT:
        return "a shared address of a carrier-grade NAT (100.64.0.0/10)"
    if v6 and address in _UNIQUE_LOCAL:
        return "a unique-local IPv6 address (fc00::/7), the IPv6 kind of private address"
    if v6 and address.is_site_local:
        return "a site-local IPv6 address (fec0::/10)"
    if any(address in network for network in _RFC1918):
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose address, not a public internet address"
    return None


def parse_allow_list(entries: Iterable[str]) -> tuple[str, ...]:
    """OUTBOUND_ALLOW's entries, normalised: host names (lower case) and networks ("10.20.0.0/16").

    Raises ValueError naming the first entry that is neither. A lone address is a network of one.
    """
    normalised: list[str] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            network = entry.replace("[", "").replace("]", "") if entry.startswith("[") else entry  # [fd00::]/8
            normalised.append(str(ipaddress.ip_network(network, strict=False)))
            continue
        except ValueError:
            pass
        if _NUMERIC_HOST.fullmatch(entry) and _numeric_address(entry) is not None:
            raise ValueError(f"{raw.strip()!r} is a numeric shorthand: write the address as 127.0.0.1 or a network")
        try:
            name = entry.rstrip(".").encode("idna").decode("ascii")
        except UnicodeError:
            name = ""
        if not _HOST_NAME.fullmatch(name) or name.rsplit(".", 1)[-1].isdigit():
            raise ValueError(f"{raw.strip()!r} is neither a host name nor a network such as 10.20.0.0/16")
        normalised.append(name)
    return tuple(dict.fromkeys(normalised))


class _AddressGuard:
    """Resolves a host once and hands out only the addresses it may connect to."""

    def __init__(self, allow: Iterable[str] = ()):
        self.names: set[str] = set()
        self.networks: list[_Network] = []
        for entry in parse_allow_list(allow):
            try:
                self.networks.append(ipaddress.ip_network(entry))
            except ValueError:
                self.names.add(entry)

    def _admits(self, address: _IPAddress) -> bool:
        forms = [address]
        embedded = _embedded_ipv4(address)
        if embedded is not None and embedded[1] in ("an IPv4-mapped IPv6 address", "an IPv4-compatible IPv6 address"):
            forms.append(embedded[0])
        return any(form.version == n.version and form in n for form in forms for n in self.networks)

    def vet(self, host: str, address: _IPAddress) -> None:
        """Raise BlockedAddressError unless host may be reached at address."""
        if self._admits(address):
            return
        problem = address_problem(address)
        if problem is not None:
            raise _blocked(host, address, problem)

    def resolve(self, host: str, port: int) -> list[_Target]:
        """[(family, sockaddr)] for host, every one of them vetted; raises BlockedAddressError or gaierror."""
        host = host.strip("[]")
        numeric = _numeric_address(host)
        try:
            if numeric is not None:  # parsed here, so a numeric trick never becomes a DNS question
                self.vet(host, numeric)
                canonical = host if isinstance(numeric, ipaddress.IPv6Address) else str(numeric)
                infos = socket.getaddrinfo(canonical, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
            else:
                infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
        except UnicodeError as exc:  # a label the IDNA codec refuses (longer than 63 characters, say)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from exc
        targets: list[_Target] = list(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in infos))
        if not targets:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if numeric is None and host.rstrip(".").lower() in self.names:
            return targets  # the administrator trusts this name, wherever it points
        for _, sockaddr in targets:  # every address must pass: the connection may use any of them
            self.vet(host, ipaddress.ip_address(sockaddr[0]))
        return targets


def _blocked(host: str, address: _IPAddress, problem: str) -> BlockedAddressError:
    shown = str(address)
    embedded = _embedded_ipv4(address)
    if _numeric_address(host) is None:
        hint = host.rstrip(".").lower()
        what = f"{host} resolves to {shown}, {problem}"
    else:
        mapped = embedded is not None and embedded[1].startswith(("an IPv4-mapped", "an IPv4-compatible"))
        hint = str(embedded[0]) if embedded is not None and mapped else shown.split("%")[0]
        try:
            ipaddress.ip_address(host)
            what = f"{host} is {problem}"  # written as an address
        except ValueError:
            what = f"{host} stands for {shown}, {problem}"  # 2130706433, 0177.0.0.1, 127.1, ...
    explanation = (
        f"{what}; this console only connects to public addresses. An administrator can allow it with "
        f"{OUTBOUND_ALLOW}={hint} (a comma-separated list: keep any entries already there)."
    )
    return BlockedAddressError(explanation, host=host, address=shown)


def vet_host(host: str, port: int, policy: HttpPolicy | None = None) -> list[str]:
    """Resolve host once and return the addresses it may be connected to, in resolver order.

    For clients that do not go through make_session (the database providers): connect to these addresses,
    not to the name, so the answer that was checked is the one used. Raises BlockedAddressError when any
    address the name resolves to is refused, socket.gaierror when it does not resolve.
    """
    policy = policy or HttpPolicy()
    return [str(sockaddr[0]) for _, sockaddr in _AddressGuard(policy.outbound_allow).resolve(host, port)]


def _connect_to(
    targets: list[_Target],
    timeout: object,
    source_address: tuple[str, int] | None,
    socket_options: Sequence[tuple[int, int, int | bytes]] | None,
) -> socket.socket:
    """urllib3's create_connection, minus its own name resolution: only the vetted addresses are tried."""
    error: OSError | None = None
    for family, sockaddr in targets:
        sock = None
        try:
            sock = DeadlineSocket(family, socket.SOCK_STREAM)
            for option in socket_options or ():
                sock.setsockopt(*option)
            # urllib3's timeout: seconds, None, or its "no timeout given" sentinel (which means none here).
            sock.settimeout(float(timeout) if isinstance(timeout, int | float) else None)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error or OSError("no address to connect to")


class _GuardedConnectionMixin(HTTPConnection):
    """Opens the socket to a vetted address; the host name stays for the Host header, SNI and certificate."""

    def __init__(self, *args: Any, address_guard: _AddressGuard, **kwargs: Any):
        self._address_guard = address_guard
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        try:
            targets = self._address_guard.resolve(self._dns_host, self.port)
        except BlockedAddressError as exc:
            raise _Refusal(exc) from None
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        try:
            sock = _connect_to(targets, self.timeout, self.source_address, self.socket_options)
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def connect(self) -> None:
        super().connect()
        if type(self.sock) is ssl.SSLSocket:  # urllib3 wrapped the socket for TLS: hold that one to it too
            self.sock.__class__ = _DeadlineSSLSocket


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


# urllib3 declares ConnectionCls as its BaseHTTP(S)Connection protocols, which its own HTTP(S)Connection
# does not satisfy under pyright (default_socket_options is Final there, mutable in the protocol).
class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection  # pyright: ignore[reportAssignmentType]  # urllib3's protocol, see above


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection  # pyright: ignore[reportAssignmentType]  # urllib3's protocol, see above


class _GuardedPoolManager(PoolManager):
    def __init__(self, address_guard: _AddressGuard, **kwargs: Any):
        super().__init__(**kwargs)
        self._address_guard = address_guard
        self.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["address_guard"] = self._address_guard
        return pool


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, policy: HttpPolicy):
        self._policy = policy
        self._address_guard = _AddressGuard(policy.outbound_allow)
        retry = _CappedRetry(
            total=policy.max_retries,
            connect=policy.max_retries,
            # A read timeout is not retried (it already cost the whole read budget). False, not 0: with 0
            # urllib3 wraps it in MaxRetryError and requests reports a ConnectionError, not a ReadTimeout.
            read=False,
            status=policy.max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
            backoff_factor=policy.backoff_factor,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        super().__init__(max_retries=retry)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = _GuardedPoolManager(
            self._address_guard, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Behind a proxy the guard could not see where a request really goes, so none is used.
        raise BlockedAddressError("requests are never sent through a proxy (the address guard could not check them).")

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        if timeout is None:
            timeout = self._policy.timeout
        try:
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        except _Refusal as refusal:
            refusal.error.request = request
            raise refusal.error from None


# Headers a redirect to another origin keeps. requests drops only Authorization there; a credential in
# any other header (Chatwoot's api_access_token, a CRM's X-API-Key) would be handed to the new host.
_CROSS_ORIGIN_SAFE_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "user-agent", "connection"}
    | {"content-type", "content-length", "transfer-encoding"}
)


class ResponseTooLargeError(requests.RequestException):
    """The answer was larger than any answer we ask for can be."""


class RedirectRefusedError(requests.RequestException):
    """A redirect would have re-sent a request's body to another host; the message names both hosts."""


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of url, the port spelt out: http://a and http://a:80 are one origin."""
    parts = urlparse(url)
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _shown_origin(origin: tuple[str, str, int | None]) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS.get(scheme) else f"{scheme}://{host}:{port}"


class _Session(requests.Session):
    def __init__(self, policy: HttpPolicy):
        super().__init__()
        self._policy = policy

    @property
    def policy(self) -> HttpPolicy:
        """The timeouts this session enforces; non-HTTP clients (databases) use the same ones."""
        return self._policy

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Every call's one way out and back: its final answer or its failure is noted for `observe`."""
        try:
            response = self._bounded_request(method, url, *args, **kwargs)
        except (requests.RequestException, HTTPError, OSError) as exc:
            note_transport(transport_kind(exc))
            raise
        note_response(response.status_code, response.url)
        return response

    def _bounded_request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # One deadline for the whole call: connect, headers, redirects, retries and body (the sockets
        # enforce it on every read, so a server trickling its headers byte by byte is cut off too). The
        # body is read here, bounded in size, so a huge answer cannot fill memory.
        kwargs["stream"] = True
        with deadline(self._policy.request_deadline):
            try:
                response = super().request(method, url, *args, **kwargs)
                chunks: list[bytes] = []
                size = 0
                try:
                    while chunk := response.raw.read1(64 * 1024, decode_content=True):  # what has arrived
                        size += len(chunk)
                        if size > MAX_BODY_BYTES:
                            raise ResponseTooLargeError(f"answer larger than {MAX_BODY_BYTES} bytes")
                        chunks.append(chunk)
                        remaining()
                finally:
                    response.close()
            except (DeadlineExceeded, ReadTimeoutError) as exc:  # the latter from the body, read here
                raise requests.exceptions.ReadTimeout(f"the answer took too long to arrive ({exc})") from None
        # requests has no public way to hand a Response a body read elsewhere; .content returns _content.
        response._content = b"".join(chunks)  # pyright: ignore[reportPrivateUsage]  # see above
        return response

    def rebuild_auth(self, prepared_request: PreparedRequest, response: requests.Response) -> None:
        # requests keeps the body only on 307 and 308 (on 301/302/303 it turns the request into a GET
        # without one, before this runs). A body that is still here would be re-sent to the new address:
        # refused whenever that is another origin (scheme, host and port), whatever the body holds. The
        # session cannot tell which bytes of a form or JSON body are a secret (a client_secret, a new
        # agent's password), and a service that really moved answers the same request at its new address,
        # so refusing every body is the rule that needs no guess and costs a correct caller nothing.
        # Stricter than should_strip_auth, which lets http://a go to https://a: a body never changes origin.
        old_url, new_url = response.request.url or "", prepared_request.url or ""  # always set on a sent request
        before, after = _origin(old_url), _origin(new_url)
        if prepared_request.body and before != after:
            raise RedirectRefusedError(
                f"{_shown_origin(before)} answered {response.status_code} and redirected the request to "
                f"{_shown_origin(after)}; the console never re-sends a request's body (it may hold a secret) "
                f"to another host, so it was not sent there. If the service has moved, enter its new address.",
                request=prepared_request,
                response=response,
            )
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(old_url, new_url):
            for name in [n for n in prepared_request.headers if n.lower() not in _CROSS_ORIGIN_SAFE_HEADERS]:
                del prepared_request.headers[name]


def make_session(policy: HttpPolicy | None = None) -> requests.Session:
    """Every outbound call goes through a session made here."""
    policy = policy or HttpPolicy()
    session = _Session(policy)
    adapter = _TimeoutAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = 5
    session.trust_env = False  # no proxy or .netrc from the environment leaks credentials
    return session


def describe_exception(exc: requests.RequestException, service: str) -> str:
    """Map a transport failure to a sentence a person can act on."""
    if isinstance(exc, BlockedAddressError):
        return f"The address of {service} was refused: {exc.explanation}"
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            f"The secure connection to {service} failed (TLS certificate problem). "
            "Check the address uses the right host name and a valid certificate."
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"{service} did not accept a connection in time. Check the address and that the server is up."
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"{service} accepted the connection but did not answer in time. Try again later."
    if isinstance(exc, ResponseTooLargeError):
        return f"{service} sent a far larger answer than expected. Check the address points at its API."
    if isinstance(exc, RedirectRefusedError):
        return f"{service} redirected a request to another host and it was not followed: {exc}"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return f"{service} redirected too many times. Check the base address."
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return f"The address of {service} is not a valid web address."
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
            return f"The host name of {service} could not be found (DNS). Check the address for typos."
        if "Connection refused" in text:
            return f"{service} refused the connection. Check the address and port, and that the server is running."
        return f"Could not connect to {service}. Check the address and your network."
    return f"The request to {service} failed. Try again, and check the address if it keeps failing."


def read_json(response: requests.Response) -> object | None:
    """The response body as JSON, or None when it is not JSON (an HTML error page, say)."""
    try:
        return response.json()
    except ValueError:
        return None


def explain_status(response: requests.Response, service: str, target: str = "this path") -> str:
    """The usual HTTP refusals of a REST service as sentences that say what to check next."""
    status = response.status_code
    if status == 401:
        return f"{service} refused the credentials (401). Check them and the authentication type."
    if status == 403:
        return f"{service} accepted the credentials, but they lack permission for {target} (403)."
    if status == 404:
        return f"{service} has nothing at {target} (404). Check the base URL and the path."
    if status == 429:
        return f"{service} is rate limiting requests. {wait_phrase(response)}"
    if status >= 500:
        return f"{service} is unavailable ({status}). Try again later."
    return f"{service} answered with status {status}."


def retry_after_seconds(response: requests.Response) -> int | None:
    """Retry-After in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, round((when - datetime.now(UTC)).total_seconds()))


def wait_phrase(response: requests.Response) -> str:
    """'Wait 30 seconds and try again.', from the server's Retry-After when it gives one."""
    seconds = retry_after_seconds(response)
    if seconds is None:
        return "Wait a minute and try again."
    if seconds <= 1:
        return "Try again in a moment."
    return f"Wait {seconds} seconds and try again."
