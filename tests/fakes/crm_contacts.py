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

    def _selected(self, request: Request) -> list[tuple[str, dict]]:
        """The records, in id order, or only those of the request's ids=a,b,c."""
        with self._lock:
            items = list(self.records.items())
        if request.args.get("ids"):
            wanted = set(request.args["ids"].split(","))
            items = [(i, r) for i, r in items if i in wanted]
        return items

    # Each fake says how it authorises and how it refuses.
    @abstractmethod
    def authorised(self, request: Request) -> bool: ...

    @abstractmethod
    def unauthorised(self) -> Response: ...

    @abstractmethod
    def refuse_limited(self) -> Response: ...


class FakeSplitNameCrm(FakeCrm):
    """A CRM whose records hold a name as first and last (Salesforce, Zoho CRM): the shared test interface
    over its own field names (FIRST, LAST, EMAIL, PHONE, MODIFIED) and record ids (new_id)."""

    FIRST, LAST, EMAIL, PHONE, MODIFIED = "FirstName", "LastName", "Email", "Phone", "SystemModstamp"

    @abstractmethod
    def new_id(self) -> str: ...

    def _split(self, name: str) -> tuple[str | None, str]:
        first, _, last = name.partition(" ")
        return (first, last) if last else (None, first)

    def add(self, name: str, email: str | None = None, phone: str | None = None, modified: float | None = None) -> str:
        first, last = self._split(name)
        with self._lock:
            record_id = self.new_id()
            self.records[record_id] = {
                self.FIRST: first,
                self.LAST: last,
                self.EMAIL: email,
                self.PHONE: phone,
                self.MODIFIED: self.clock() if modified is None else modified,
            }
            return record_id

    def change(self, record_id: str, name: str | None = None, email: str | None = None, modified: float | None = None):
        record = self.records[record_id]
        if name is not None:
            record[self.FIRST], record[self.LAST] = self._split(name)
        if email is not None:
            record[self.EMAIL] = email
        record[self.MODIFIED] = self.clock() if modified is None else modified

    def name_of(self, record_id: str) -> str:
        record = self.records[record_id]
        return " ".join(str(record.get(k) or "") for k in (self.FIRST, self.LAST)).strip()

    def emails(self) -> list[str]:
        return [r[self.EMAIL] for r in self.records.values() if r.get(self.EMAIL)]
