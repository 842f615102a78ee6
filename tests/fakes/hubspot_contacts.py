"""A fake HubSpot CRM contacts API on pytest-httpserver: search (filters GTE on lastmodifieddate, IN / EQ on
email and phone, sorted, paged with `after`, at most 10,000 results a search), batch create and update,
read one. ``limit_next(n)`` answers the next n calls 429 with Retry-After: 1."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

SEARCH_CAP = 10_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeHubSpot:
    def __init__(self, httpserver) -> None:
        # pytest-httpserver's werkzeug handler writes an answer's head and body apart: without TCP_NODELAY
        # each answer waits for the client's delayed ACK (about 40 ms on Linux). Read per connection.
        WSGIRequestHandler.disable_nagle_algorithm = True
        self.server = httpserver
        self.contacts: dict[str, dict[str, Any]] = {}  # id -> properties (lastmodifieddate in ms, as int)
        self._next = 100
        self._lock = threading.Lock()
        self.limited = 0
        self.calls: list[tuple[str, dict]] = []
        self.clock = lambda: int(time.time() * 1000)
        base = "/crm/v3/objects/contacts"
        httpserver.expect_request(base + "/search", method="POST").respond_with_handler(self._search)
        httpserver.expect_request(base + "/batch/create", method="POST").respond_with_handler(self._create)
        httpserver.expect_request(base + "/batch/update", method="POST").respond_with_handler(self._update)
        httpserver.expect_request(re.compile(base + r"/\d+"), method="GET").respond_with_handler(self._get)
        httpserver.expect_request("/account-info/v3/details").respond_with_json({"portalId": 4242})

    def limit_next(self, times: int = 1) -> None:
        self.limited = times

    def add(self, name: str, email: str | None = None, phone: str | None = None, modified: int | None = None) -> str:
        with self._lock:
            self._next += 1
            first, _, last = name.partition(" ")
            self.contacts[str(self._next)] = {
                "firstname": first,
                "lastname": last,
                "email": email.lower() if email else None,
                "phone": phone,
                "lastmodifieddate": modified if modified is not None else self.clock(),
            }
            return str(self._next)

    def _json(self, item_id: str) -> dict:
        props = dict(self.contacts[item_id])
        props["lastmodifieddate"] = iso(props["lastmodifieddate"])
        return {"id": item_id, "properties": props, "updatedAt": props["lastmodifieddate"], "archived": False}

    def _gate(self, request: Request) -> Response | None:
        self.calls.append((request.path, json.loads(request.data or b"{}")))
        if request.headers.get("Authorization", "")[:7] != "Bearer ":
            return Response(json.dumps({"status": "error", "category": "INVALID_AUTHENTICATION"}), 401)
        if self.limited > 0:
            self.limited -= 1
            body = {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "policyName": "TEN_SECONDLY_ROLLING",
            }
            return Response(json.dumps(body), 429, {"Retry-After": "1"}, content_type="application/json")
        return None

    def _get(self, request: Request) -> Response:
        item_id = request.path.rsplit("/", 1)[-1]
        if item_id not in self.contacts:
            return Response(json.dumps({"status": "error", "message": "not found"}), 404)
        return Response(json.dumps(self._json(item_id)), 200, content_type="application/json")

    def _search(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = json.loads(request.data)
        with self._lock:
            items = list(self.contacts.items())
        for group in body.get("filterGroups") or []:
            for f in group["filters"]:
                name, op = f["propertyName"], f["operator"]
                if op == "GTE":
                    items = [(i, p) for i, p in items if p[name] is not None and p[name] >= int(f["value"])]
                elif op == "IN":
                    values = {str(v).lower() for v in f["values"]}
                    items = [(i, p) for i, p in items if (p.get(name) or "").lower() in values]
                elif op == "EQ":
                    items = [(i, p) for i, p in items if (p.get(name) or "").lower() == str(f["value"]).lower()]
                else:
                    return Response(json.dumps({"message": f"fake: operator {op}"}), 400)
        if body.get("sorts"):
            items.sort(key=lambda kv: (kv[1]["lastmodifieddate"], int(kv[0])))
        start, limit = int(body.get("after") or 0), min(int(body.get("limit") or 10), 200)
        if start >= SEARCH_CAP:
            return Response(json.dumps({"status": "error", "message": "paging past 10000"}), 400)
        page = items[start : start + limit]
        answer: dict[str, Any] = {"total": len(items), "results": [self._json(i) for i, _ in page]}
        if start + limit < min(len(items), SEARCH_CAP):
            answer["paging"] = {"next": {"after": str(start + limit)}}
        return Response(json.dumps(answer), 200, content_type="application/json")

    def _create(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        created = []
        for item in json.loads(request.data)["inputs"]:
            p = item["properties"]
            name = f"{p.get('firstname', '')} {p.get('lastname', '')}".strip()
            created.append(self.add(name, p.get("email"), p.get("phone")))
        body = {"status": "COMPLETE", "results": [self._json(i) for i in reversed(created)]}  # any order
        return Response(json.dumps(body), 201, content_type="application/json")

    def _update(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        done = []
        with self._lock:
            for item in json.loads(request.data)["inputs"]:
                props = self.contacts[item["id"]]
                props.update({k: v for k, v in item["properties"].items() if v not in (None, "")})
                props["lastmodifieddate"] = self.clock()
                done.append(item["id"])
        body = {"status": "COMPLETE", "results": [self._json(i) for i in done]}
        return Response(json.dumps(body), 200, content_type="application/json")
