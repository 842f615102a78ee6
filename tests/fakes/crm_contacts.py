"""What the CRM contact fakes (tests/fakes/<crm>_contacts.py) share: a record store keyed by id with each
record's own modified time (epoch seconds), a clock tests may replace, a switchable rate limit
(``limit_next(n)``: the next n API calls are refused the CRM's way), and the calls seen.

Every fake offers the same handful of methods, so one set of contract tests drives them all:
add(name, email, phone, modified) -> id, change(id, name=, email=, modified=), name_of(id), emails(),
records (id -> record).
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response


def answer(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status, headers or {}, content_type="application/json")


class FakeCrm(ABC):
    def __init__(self, httpserver) -> None:
        # pytest-httpserver's werkzeug handler writes an answer's head and body apart: without TCP_NODELAY
        # each answer waits for the client's delayed ACK (about 40 ms on Linux).
        WSGIRequestHandler.disable_nagle_algorithm = True
        self.server = httpserver
        self.base = f"http://{httpserver.host}:{httpserver.port}"
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._serial = 0
        self.limited = 0
        self.calls: list[tuple[str, str]] = []
        self.clock = lambda: float(int(time.time()))

    def limit_next(self, times: int = 1) -> None:
        self.limited = times

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _gate(self, request: Request) -> Response | None:
        """The call recorded; refused when unauthorised (self.authorised) or rate limited (self.refuse_limited)."""
        self.calls.append((request.method, request.path))
        if not self.authorised(request):
            return self.unauthorised()
        if self.limited > 0:
            self.limited -= 1
            return self.refuse_limited()
        return None

    # Each fake says how it authorises and how it refuses.
    @abstractmethod
    def authorised(self, request: Request) -> bool: ...

    @abstractmethod
    def unauthorised(self) -> Response: ...

    @abstractmethod
    def refuse_limited(self) -> Response: ...
