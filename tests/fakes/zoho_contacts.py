"""A fake Zoho CRM on pytest-httpserver, served as tests/contract/test_zoho.py serves one: the accounts
server under /accounts.zoho.com/, the API under /zohoapis. GET /crm/v2/{module} (If-Modified-Since:
records modified at or after it, 304 when none; sort_by=Modified_Time, sort_order; page and per_page,
2,000 records at most by page number; ids), GET /crm/v2/{module}/search (criteria of equals joined by
or; 204 when none), GET /crm/v2/{module}/{id}, POST (insert) and PUT (update) with up to 100 records,
each with its own status (Last_Name is mandatory). Contacts and Leads alike.

``limit_next(n)``: the next n calls answer 429 TOO_MANY_REQUESTS (Zoho sends no Retry-After)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.crm_contacts import FakeSplitNameCrm, answer

ACCESS_TOKEN = "1000.sync.access.aa11bb22cc33dd44ee55ff6677889900"
PAGE_CAP = 2_000
IST = timezone(timedelta(hours=5, minutes=30))


def zoho_time(seconds: float) -> str:
    """Zoho's times carry the organisation's offset (India's, here)."""
    return datetime.fromtimestamp(seconds, IST).isoformat(timespec="seconds")


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _criteria(text: str) -> list[tuple[str, str]] | None:
    """((Email:equals:a)or(Email:equals:b)) -> [(Email, a), (Email, b)]; None for anything else."""
    inner = text[1:-1] if text.startswith("(") and text.endswith(")") else ""
    parts = re.split(r"(?<!\\)\)or\(", inner[1:-1]) if inner.startswith("(") else []
    found = []
    for part in parts:
        match = re.fullmatch(r"(\w+):equals:(.+)", part)
        if match is None:
            return None
        found.append((match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))))
    return found or None


class FakeZoho(FakeSplitNameCrm):
    def __init__(self, httpserver, module: str = "Contacts") -> None:
        super().__init__(httpserver)
        self.module = module
        self.api_domain = self.base + "/zohoapis"
        httpserver.expect_request("/accounts.zoho.com/oauth/v2/token", method="POST").respond_with_json(
            {"access_token": ACCESS_TOKEN, "api_domain": self.api_domain, "token_type": "Bearer", "expires_in": 3600}
        )
        base = f"/zohoapis/crm/v2/{module}"
        httpserver.expect_request(base, method="GET").respond_with_handler(self._list)
        httpserver.expect_request(base, method="POST").respond_with_handler(self._insert)
        httpserver.expect_request(base, method="PUT").respond_with_handler(self._update)
        httpserver.expect_request(base + "/search", method="GET").respond_with_handler(self._search)
        httpserver.expect_request(re.compile(re.escape(base) + r"/\d+"), method="GET").respond_with_handler(self._get)

    def authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Zoho-oauthtoken {ACCESS_TOKEN}"

    def unauthorised(self) -> Response:
        return answer(
            {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}, 401
        )

    def refuse_limited(self) -> Response:
        body = {"code": "TOO_MANY_REQUESTS", "details": {}, "message": "too many requests", "status": "error"}
        return answer(body, 429)

    # ----- the shared test interface ------------------------------------------------------------

    FIRST, LAST, EMAIL, PHONE, MODIFIED = "First_Name", "Last_Name", "Email", "Phone", "Modified_Time"

    def new_id(self) -> str:
        return str(4876876000000_000000 + self._next_serial())

    # ----- routes -------------------------------------------------------------------------------

    def _json(self, record_id: str) -> dict:
        record = self.records[record_id]
        return {"id": record_id, **record, "Modified_Time": zoho_time(record["Modified_Time"])}

    def _page(self, ids: list[str], request: Request) -> Response:
        page, per_page = int(request.args.get("page") or 1), min(int(request.args.get("per_page") or 200), 200)
        if page * per_page > PAGE_CAP:
            body = {"code": "LIMIT_REACHED", "details": {}, "message": "limit reached", "status": "error"}
            return answer(body, 400)
        chunk = ids[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(ids)
        if not chunk:
            return Response(status=204)
        info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": more}
        return answer({"data": [self._json(i) for i in chunk], "info": info})

    def _list(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        items = self._selected(request)
        if since := request.headers.get("If-Modified-Since"):
            items = [(i, r) for i, r in items if r["Modified_Time"] >= _seconds(since)]
            if not items:
                return Response(status=304)
        if request.args.get("sort_by") == "Modified_Time":
            items.sort(
                key=lambda kv: (kv[1]["Modified_Time"], int(kv[0])), reverse=request.args.get("sort_order") == "desc"
            )
        return self._page([i for i, _ in items], request)

    def _search(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        criteria = _criteria(request.args.get("criteria") or "")
        if criteria is None or len(criteria) > 10:
            body = {"code": "INVALID_QUERY", "details": {}, "message": "invalid query formed", "status": "error"}
            return answer(body, 400)
        with self._lock:
            ids = [
                i
                for i, r in self.records.items()
                if any(str(r.get(name) or "").lower() == value.lower() for name, value in criteria)
            ]
        return self._page(ids, request)

    def _get(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        record_id = request.path.rsplit("/", 1)[-1]
        if record_id not in self.records:
            return Response(status=204)
        return answer({"data": [self._json(record_id)]})

    def _write(self, request: Request, inserting: bool) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        records = json.loads(request.data).get("data") or []
        if not 1 <= len(records) <= 100:
            return answer({"code": "LIMIT_EXCEEDED", "details": {}, "message": "100 records at most"}, 400)
        results: list[dict[str, Any]] = []
        with self._lock:
            for record in records:
                if inserting and not record.get("Last_Name"):
                    results.append(
                        {
                            "code": "MANDATORY_NOT_FOUND",
                            "details": {"api_name": "Last_Name"},
                            "message": "required field not found",
                            "status": "error",
                        }
                    )
                    continue
                values = {k: v for k, v in record.items() if k != "id"}
                if inserting:
                    record_id = self.new_id()
                    self.records[record_id] = {"First_Name": None, "Email": None, "Phone": None, **values}
                else:
                    record_id = str(record["id"])
                    self.records[record_id].update(values)
                now = self.clock()
                self.records[record_id]["Modified_Time"] = now
                details = {"id": record_id, "Modified_Time": zoho_time(now), "Created_Time": zoho_time(now)}
                message = "record added" if inserting else "record updated"
                results.append({"code": "SUCCESS", "details": details, "message": message, "status": "success"})
        ok = all(r["status"] == "success" for r in results)
        return answer(
            {"data": results},
            (201 if inserting else 200) if ok else 207 if any(r["status"] == "success" for r in results) else 400,
        )

    def _insert(self, request: Request) -> Response:
        return self._write(request, inserting=True)

    def _update(self, request: Request) -> Response:
        return self._write(request, inserting=False)
