"""A guard for every test: no request or connection may leave loopback.

tests/conftest.py applies it to every test (autouse), so no test can reach beyond loopback:

    @pytest.fixture(autouse=True)
    def loopback_only(monkeypatch):
        yield from guard(monkeypatch)

Every request sent through requests (and so through context.http and authlib) is checked before it is
sent, and every socket connection before it connects; anything for another host fails the test with the
address it would have reached. pytest's Failed is a BaseException, so no provider's `except Exception`
can swallow it; escapes are also collected and reported when the test ends.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from requests.adapters import HTTPAdapter

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def guard(monkeypatch: pytest.MonkeyPatch, requests_too: bool = True) -> Iterator[list[str]]:
    """requests_too=False checks sockets alone: for tests that prove the console refuses an address
    before connecting, and so must be allowed to ask for it."""
    escapes: list[str] = []
    real_send = HTTPAdapter.send
    real_connect = socket.socket.connect

    def send(self, request, *args, **kwargs):
        parts = urlsplit(request.url)
        if not _is_loopback(parts.hostname):
            escapes.append(f"{parts.scheme}://{parts.netloc}{parts.path}")
            pytest.fail(f"a request tried to leave 127.0.0.1: {request.method} {escapes[-1]}", pytrace=False)
        return real_send(self, request, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            escapes.append(f"socket {address[0]}:{address[1]}")
            pytest.fail(f"a connection tried to leave 127.0.0.1: {escapes[-1]}", pytrace=False)
        return real_connect(sock, address)

    if requests_too:
        monkeypatch.setattr(HTTPAdapter, "send", send)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield escapes
    assert not escapes, f"requests tried to leave 127.0.0.1: {escapes}"
