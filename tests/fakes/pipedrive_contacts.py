"""A fake Pipedrive company (persons API v2, leads v1) on pytest-httpserver, under /<domain>/ as
tests/contract/test_pipedrive.py serves it: GET /api/v2/persons (updated_since, sort_by=update_time,
sort_direction, cursor and limit; ids), GET /api/v2/persons/search (term, fields=email|phone,
exact_match), GET / PATCH /api/v2/persons/{id}, POST /api/v2/persons, POST /api/v1/leads.
Rate limited calls answer 429 with x-ratelimit-reset: 1 (no Retry-After, as Pipedrive's API does)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.crm_contacts import FakeCrm, answer


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _cursor(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


class FakePipedrive(FakeCrm):
    def __init__(self, httpserver, domain: str = "acme", token: str = "") -> None:
        super().__init__(httpserver)
        self.token = token
        self.leads: list[dict] = []
        base = f"/{domain}/api/v2/persons"
        httpserver.expect_request(base, method="GET").respond_with_handler(self._list)
        httpserver.expect_request(base, method="POST").respond_with_handler(self._create)
        httpserver.expect_request(base + "/search", method="GET").respond_with_handler(self._search)
        person = re.compile(re.escape(base) + r"/\d+")
        httpserver.expect_request(person, method="GET").respond_with_handler(self._get)
        httpserver.expect_request(person, method="PATCH").respond_with_handler(self._update)
        httpserver.expect_request(f"/{domain}/api/v1/leads", method="POST").respond_with_handler(self._lead)

    def authorised(self, request: Request) -> bool:
        return bool(self.token) and request.headers.get("x-api-token") == self.token

    def unauthorised(self) -> Response:
        return answer({"success": False, "error": "unauthorized access", "errorCode": 401}, 401)

    def refuse_limited(self) -> Response:
        body = {"success": False, "error": "Request over limit", "errorCode": 429}
        return answer(body, 429, {"x-ratelimit-limit": "80", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"})

    # ----- the shared test interface ------------------------------------------------------------

    def add(self, name: str, email: str | None = None, phone: str | None = None, modified: float | None = None) -> str:
        with self._lock:
            person_id = str(self._next_serial())
            when = self.clock() if modified is None else modified
            self.records[person_id] = {
                "name": name,
                "emails": [{"value": email, "primary": True, "label": "work"}] if email else [],
                "phones": [{"value": phone, "primary": True, "label": "work"}] if phone else [],
                "add_time": when,
                "update_time": when,
            }
            return person_id

    def change(self, person_id: str, name: str | None = None, email: str | None = None, modified: float | None = None):
        record = self.records[person_id]
        if name is not None:
            record["name"] = name
        if email is not None:
            record["emails"] = [{"value": email, "primary": True, "label": "work"}]
        record["update_time"] = self.clock() if modified is None else modified

    def name_of(self, person_id: str) -> str:
        return self.records[person_id]["name"]

    def emails(self) -> list[str]:
        return [e["value"] for r in self.records.values() for e in r["emails"] if e.get("primary")]

    # ----- routes -------------------------------------------------------------------------------

    def _json(self, person_id: str) -> dict:
        record = self.records[person_id]
        return {
            "id": int(person_id),
            "name": record["name"],
            "emails": record["emails"],
            "phones": record["phones"],
            "add_time": rfc3339(record["add_time"]),
            "update_time": rfc3339(record["update_time"]),
            "owner_id": 1,
            "visible_to": 3,
        }

    def _page(self, ids: list[str], request: Request) -> Response:
        limit = min(int(request.args.get("limit") or 100), 500)
        cursor = request.args.get("cursor")
        offset = json.loads(base64.b64decode(cursor))["offset"] if cursor else 0
        page = ids[offset : offset + limit]
        following = _cursor(offset + limit) if offset + limit < len(ids) else None
        body = {"success": True, "data": [self._json(i) for i in page], "additional_data": {"next_cursor": following}}
        return answer(body)

    def _list(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        items = self._selected(request)
        if since := request.args.get("updated_since"):
            items = [(i, r) for i, r in items if r["update_time"] >= _seconds(since)]
        if request.args.get("sort_by") == "update_time":
            items.sort(key=lambda kv: (kv[1]["update_time"], int(kv[0])))
            if request.args.get("sort_direction") == "desc":
                items.reverse()
        return self._page([i for i, _ in items], request)

    def _search(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        term, fields = (request.args.get("term") or "").lower(), request.args.get("fields") or "name,email,phone"
        if request.args.get("exact_match") != "true" or len(term) < 1:
            return answer({"success": False, "error": "fake: exact_match searches only"}, 400)
        keys = [k + "s" for k in fields.split(",") if k in ("email", "phone")]
        with self._lock:
            hits = [
                i
                for i, r in self.records.items()
                if any(str(e["value"]).lower() == term for key in keys for e in r[key])
            ]
        items = [
            {
                "result_score": 1.0,
                "item": {
                    "id": int(i),
                    "type": "person",
                    "name": self.records[i]["name"],
                    "emails": [e["value"] for e in self.records[i]["emails"]],
                    "phones": [p["value"] for p in self.records[i]["phones"]],
                },
            }
            for i in hits
        ]
        return answer({"success": True, "data": {"items": items}, "additional_data": {"next_cursor": None}})

    def _get(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        person_id = request.path.rsplit("/", 1)[-1]
        if person_id not in self.records:
            return answer({"success": False, "error": "Person not found", "errorCode": 404}, 404)
        return answer({"success": True, "data": self._json(person_id)})

    def _create(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body: dict[str, Any] = json.loads(request.data)
        if not str(body.get("name") or "").strip():
            return answer({"success": False, "error": "Name must be given.", "errorCode": 400}, 400)
        with self._lock:
            person_id = str(self._next_serial())
            now = self.clock()
            self.records[person_id] = {
                "name": body["name"],
                "emails": body.get("emails") or [],
                "phones": body.get("phones") or [],
                "add_time": now,
                "update_time": now,
            }
        return answer({"success": True, "data": self._json(person_id)}, 200)

    def _update(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        person_id = request.path.rsplit("/", 1)[-1]
        body = json.loads(request.data)
        with self._lock:
            record = self.records[person_id]
            for key in ("name", "emails", "phones"):
                if key in body:
                    record[key] = body[key]
            record["update_time"] = self.clock()
        return answer({"success": True, "data": self._json(person_id)})

    def _lead(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = json.loads(request.data)
        if not body.get("title") or str(body.get("person_id")) not in self.records:
            return answer({"success": False, "error": "A lead needs a title and a person or organization."}, 400)
        lead = {"id": f"adf21080-0e10-11eb-879b-05d71fb426e{len(self.leads)}", **body}
        self.leads.append(lead)
        return answer({"success": True, "data": lead}, 201)
