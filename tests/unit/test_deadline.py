"""One total deadline from connect to last byte, headers included (issue 10, item 5).

Raw socket servers on 127.0.0.1 trickle one byte every 0.2 s: HTTP response headers, an HTTP body, a
MySQL greeting and a PostgreSQL authentication request. Each read arrives well within the per-read
timeout, so only a total deadline ends the call; with a 1.5 s deadline every call ends within 1.5 s plus
a small margin, with a sentence about the timeout.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from core.catalog import TestContext
from core.http import HttpPolicy, describe_exception, make_session
from core.tokens import MemoryTokens
from providers import database
from tests.conftest import LOOPBACK_ALLOW

DRIP = 0.2  # seconds between bytes
POLICY = HttpPolicy(outbound_allow=LOOPBACK_ALLOW, connect_timeout=0.5, read_timeout=0.5, max_retries=0)
DEADLINE = POLICY.request_deadline  # 0.5 + 2 x 0.5 = 1.5 s
MARGIN = 0.8


class Trickler:
    """Accepts connections on 127.0.0.1; to each sends `head` at once, then `drip` one byte per DRIP
    seconds (at most 150 bytes: 30 s), until the client hangs up. `first` is sent only after the client
    has written something (an HTTP request), else straight away (a database greeting)."""

    def __init__(self, head: bytes, drip: bytes, wait_for_request: bool):
        self.head, self.drip, self.wait_for_request = head, drip[:150], wait_for_request
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 30
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                if self.wait_for_request:
                    conn.recv(65536)
                conn.sendall(self.head)
                for byte in self.drip:
                    if self.stop.wait(DRIP):
                        return
                    conn.sendall(bytes([byte]))
                    self.sent += 1
            except OSError:
                return  # the client hung up: what the test wants

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)  # it looks at stop every 0.2 s; closing under its accept() raised EBADF
        self.listener.close()


@pytest.fixture
def trickler() -> Iterator:
    made: list[Trickler] = []

    def make(head: bytes, drip: bytes, wait_for_request: bool = True) -> Trickler:
        made.append(Trickler(head, drip, wait_for_request))
        return made[-1]

    yield make
    for server in made:
        server.close()


def timed(call) -> tuple[float, object]:
    started = time.monotonic()
    try:
        outcome = call()
    except Exception as exc:
        outcome = exc
    return time.monotonic() - started, outcome


def test_a_server_trickling_its_headers_is_cut_off_at_the_deadline(trickler):
    server = trickler(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a" * 150)
    took, outcome = timed(lambda: make_session(POLICY).get(f"http://127.0.0.1:{server.port}/"))

    assert isinstance(outcome, requests.exceptions.ReadTimeout), outcome
    assert took < DEADLINE + MARGIN, f"the call took {took:.1f} s against a deadline of {DEADLINE} s"
    assert describe_exception(outcome, "The CRM") == (
        "The CRM accepted the connection but did not answer in time. Try again later."
    )
    assert server.sent >= 3  # it did trickle: each byte came well within the 0.5 s read timeout


def test_a_server_trickling_its_body_is_cut_off_at_the_deadline(trickler):
    server = trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 150\r\n\r\n", b"b" * 150)
    took, outcome = timed(lambda: make_session(POLICY).get(f"http://127.0.0.1:{server.port}/"))

    assert isinstance(outcome, requests.exceptions.ReadTimeout), outcome
    assert took < DEADLINE + MARGIN, f"the call took {took:.1f} s against a deadline of {DEADLINE} s"


def db_context() -> TestContext:
    return TestContext(make_session(POLICY), MemoryTokens())


def test_a_mysql_server_trickling_its_greeting_ends_within_the_bound(trickler):
    greeting = b"\x0a" + b"8.0.36\x00" + struct.pack("<I", 7) + b"abcdefgh\x00" + b"\x00" * 100
    packet = struct.pack("<I", len(greeting))[:3] + b"\x00" + greeting
    server = trickler(packet[:2], packet[2:], wait_for_request=False)
    config = {"host": "127.0.0.1", "port": server.port, "user": "u", "password": "p", "database": "d"}

    took, result = timed(lambda: database.test_mysql(config, db_context()))

    assert not result.success
    assert "timeout" in result.message.lower() or "in time" in result.message.lower(), result.message
    assert took < POLICY.check_deadline and took < DEADLINE + MARGIN, f"took {took:.1f} s"


def test_a_postgres_server_trickling_its_answer_ends_within_the_bound(trickler):
    # An AuthenticationCleartextPassword request ('R', length 8, code 3), padded, one byte at a time.
    # "N" refuses the SSLRequest at once; then the answer to the start-up message trickles.
    answer = b"R" + struct.pack("!II", 8, 3) + b"N" * 100
    server = trickler(b"N", answer, wait_for_request=True)
    config = {"host": "127.0.0.1", "port": server.port, "user": "u", "password": "p", "database": "d"}

    took, result = timed(lambda: database.test_postgres(config, db_context()))

    assert not result.success
    assert "timeout" in result.message.lower() or "within" in result.message.lower(), result.message
    assert took < DEADLINE + MARGIN + 1, f"took {took:.1f} s"


@pytest.mark.parametrize(
    "policy",
    [HttpPolicy(), POLICY, HttpPolicy(connect_timeout=60, read_timeout=120, max_retries=5)],
    ids=["default", "small", "the largest the settings allow"],
)
def test_a_lease_outlives_the_deadline_of_the_check_it_guards(policy):
    from core.integrations import leases

    lease = leases.lease_time(policy).total_seconds()
    assert lease > policy.check_deadline + 30  # a margin, not a tie
    assert policy.check_deadline >= policy.request_deadline


def test_the_service_leases_for_longer_than_a_check_may_take(ctx, admin):
    from core.integrations import leases

    created = ctx.integrations.create(
        admin,
        "A",
        "API",
        {
            "baseUrl": "http://127.0.0.1:9/api",
            "kind": "REST",
            "path": "/",
            "authType": "BEARER",
            "credentials": '{"token": "t-0123456789"}',
            "method": "GET",
            "expectedStatus": 200,
        },
    )
    holder = leases.new_holder()
    assert ctx.integrations.claim_checks([created.id], holder)
    from core.models import Integration, utcnow

    with ctx.factory() as session:
        until = session.get(Integration, created.id).check_lease_until
    policy = make_session(HttpPolicy(connect_timeout=2, read_timeout=2)).policy  # the suite's settings
    assert (until.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).total_seconds() > policy.check_deadline
