"""Zoho CRM's side of a contact sync (core.sync): the Contacts (or Leads) module over the v2 API.

- Reading: GET /crm/v2/{module} with If-Modified-Since (the cursor: records modified at or after it),
  sort_by=Modified_Time ascending, 200 a page, page by page while info.more_records. Zoho serves at most
  2,000 records by page number, so past that the read starts again from the newest Modified_Time it saw.
  304 (nothing modified) ends the read. The resume position is (since, page).
- Finding: GET /crm/v2/{module}/search with criteria ((Email:equals:...)or...), 10 values a search,
  then the same with Phone.
- Writing: POST (insert) and PUT (update) /crm/v2/{module} with up to 100 records; each record's own
  status (a refused one fails alone), then the written records read back (GET ?ids=). Last_Name is
  mandatory. Nothing is ever deleted.
- 429 (API credits or concurrency): waited out (Retry-After, else one second; wait_out_rate_limit's bounds).
The access token and api_domain come from providers.zoho (cached; a rejected one replaced once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from core.catalog import TestContext
from core.http import read_json
from core.redaction import redact
from core.results import ProviderFailure
from core.sync.contacts import Contact, CrmSide, Fields, Page, epoch_seconds, send_waiting_out_limits, split_name
from core.sync.errors import SyncSideError
from providers import zoho

API = "/crm/v2"
PAGE_SIZE = 200
PAGE_CAP = 2_000  # records a read reaches by page number
WRITE_BATCH = 100
SEARCH_VALUES = 10  # criteria a search may hold
FIELDS = "First_Name,Last_Name,Email,Phone,Modified_Time"
RECORD_URL = "https://crm.zoho.{dc}/crm/tab/{module}/{id}"


def contact_of(item: Any) -> Contact | None:
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        return None
    name = " ".join(str(item.get(k) or "").strip() for k in ("First_Name", "Last_Name")).strip()
    modified = epoch_seconds(item.get("Modified_Time"))
    return Contact(str(item["id"]), name, item.get("Email") or None, item.get("Phone") or None, modified)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _criterion(field_name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace(",", "\\,")
    return f"({field_name}:equals:{escaped})"


class ZohoContacts(CrmSide):
    label = "Zoho CRM"

    SECRET_FIELDS = ("clientSecret", "refreshToken")

    RECORDS: ClassVar[dict[str, str]] = {"contacts": "Contacts", "leads": "Leads"}  # the module

    def _request(self, method: str, path: str, access: dict, headers: dict, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {access['access_token']}", "Accept": "application/json"} | headers
        url = access["api_domain"] + API + path
        return send_waiting_out_limits(
            "Zoho CRM", self._context.http, method, url, self._secrets, self._budget_left, headers=headers, **kwargs
        )

    def _send(self, method: str, path: str, headers: dict | None = None, **kwargs: Any) -> requests.Response:
        """The answer (2xx, or a write's 400 with per-record statuses); anything else raises."""
        try:
            access, cached = zoho._access(self._config, self._context, self._issued)
            response = self._request(method, path, access, headers or {}, **kwargs)
            if cached and zoho._is_invalid_token(response):  # revoked early: one new token
                access, _ = zoho._access(self._config, self._context, self._issued, fresh=True)
                response = self._request(method, path, access, headers or {}, **kwargs)
        except ProviderFailure as exc:
            raise SyncSideError(redact(str(exc), self._secrets())) from None
        if response.status_code >= 400 and not (method in ("POST", "PUT") and self._statuses(response)):
            message = redact(self._explain(response), self._secrets())
            raise SyncSideError(message, per_item=response.status_code in (400, 422))
        return response

    def _explain(self, response: requests.Response) -> str:
        body = read_json(response)
        code = str(body.get("code") or "") if isinstance(body, dict) else ""
        if code == "OAUTH_SCOPE_MISMATCH":
            return (
                f"The Zoho refresh token lacks the scope to read and write {self._object_name} (OAUTH_SCOPE_MISMATCH). "
                f"Generate a new one with ZohoCRM.modules.{self._object_name}.ALL (or ZohoCRM.modules.ALL)."
            )
        if code == "INVALID_MODULE":
            return f"This Zoho CRM organisation has no {self._object_name} module (INVALID_MODULE). Check its modules."
        return zoho._explain(response, None)

    @staticmethod
    def _statuses(response: requests.Response) -> list[dict]:
        body = read_json(response)
        data = body.get("data") if isinstance(body, dict) else None
        return [d for d in data if isinstance(d, dict) and "status" in d] if isinstance(data, list) else []

    def _records(self, response: requests.Response) -> tuple[list[Contact], bool]:
        """(contacts, more_records) of a read; 204 and 304 are no records."""
        if response.status_code in (204, 304) or not response.content.strip():
            return [], False
        body = read_json(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SyncSideError(
                f"Zoho CRM answered a read of {self._object_name} in an unexpected shape. Try again later."
            )
        info = body.get("info") if isinstance(body, dict) else None
        more = bool(info.get("more_records")) if isinstance(info, dict) else False
        return [c for c in (contact_of(i) for i in data) if c is not None], more

    # ----- reading ------------------------------------------------------------------------------

    def changed(self, cursor: str | None, position: dict) -> Iterator[Page]:
        since: str | None = position.get("since", cursor)
        page = int(position.get("page") or 1)
        newest = epoch_seconds(since)
        while True:
            params = {
                "fields": FIELDS,
                "sort_by": "Modified_Time",
                "sort_order": "asc",
                "page": page,
                "per_page": PAGE_SIZE,
            }
            headers = {"If-Modified-Since": since} if since else {}
            contacts, more = self._records(self._send("GET", f"/{self._object_name}", headers, params=params))
            newest = max([newest, *(c.modified for c in contacts)])
            if not more:
                yield Page(contacts, {}, done=True, cursor=_iso(newest) if newest else since)
                return
            if page * PAGE_SIZE >= PAGE_CAP:  # as far as page numbers reach: again from the newest seen
                start = newest if newest > epoch_seconds(since) else epoch_seconds(since) + 1
                since, page = _iso(start), 1
            else:
                page += 1
            yield Page(contacts, {"since": since, "page": page})

    def _search(self, field_name: str, values: list[str]) -> list[Contact]:
        found: list[Contact] = []
        for start in range(0, len(values), SEARCH_VALUES):
            criteria = "or".join(_criterion(field_name, v) for v in values[start : start + SEARCH_VALUES])
            for page in range(1, 11):  # 2,000 people sharing ten e-mail addresses at the most
                params = {"criteria": f"({criteria})", "page": page, "per_page": PAGE_SIZE}
                contacts, more = self._records(self._send("GET", f"/{self._object_name}/search", params=params))
                found += contacts
                if not more:
                    break
        return found

    def find(self, emails: list[str], phones: list[str]) -> list[Contact]:
        found = {c.id: c for c in self._search("Email", emails) + self._search("Phone", phones)}
        return list(found.values())

    def get(self, contact_id: str) -> Contact | None:
        try:
            contacts, _ = self._records(self._send("GET", f"/{self._object_name}/{contact_id}"))
        except SyncSideError:
            return None
        return contacts[0] if contacts else None

    # ----- writing ------------------------------------------------------------------------------

    @staticmethod
    def _record(fields: Fields, creating: bool) -> dict:
        record: dict[str, Any] = {}
        first, last = split_name(fields.name)
        if not last:  # one word: the mandatory Last_Name
            first, last = "", first
        if last:
            record["First_Name"], record["Last_Name"] = first or None, last
        elif creating:
            record["Last_Name"] = fields.email or fields.phone or "Unknown"
        if fields.email:
            record["Email"] = fields.email.lower()
        if fields.phone:
            record["Phone"] = fields.phone
        return record

    def _write(self, method: str, records: list[dict]) -> list[Contact | SyncSideError]:
        outcomes: list[str | SyncSideError] = []
        for start in range(0, len(records), WRITE_BATCH):
            chunk = records[start : start + WRITE_BATCH]
            statuses = self._statuses(self._send(method, f"/{self._object_name}", json={"data": chunk, "trigger": []}))
            if len(statuses) != len(chunk):
                raise SyncSideError("Zoho CRM answered a batch write in an unexpected shape. Nothing more was sent.")
            for status in statuses:
                found = status.get("details")
                details: dict = found if isinstance(found, dict) else {}
                if status.get("status") == "success" and details.get("id"):
                    outcomes.append(str(details["id"]))
                else:
                    code, said = status.get("code") or "refused", str(status.get("message") or "")[:200]
                    field_name = details.get("api_name")
                    where = f", field {field_name}" if field_name else ""
                    outcomes.append(
                        SyncSideError(
                            f"Zoho CRM refused a record in {self._object_name} ({code}{where}: {said}).", True
                        )
                    )
        ids = [o for o in outcomes if isinstance(o, str)]
        read: dict[str, Contact] = {}
        for start in range(0, len(ids), WRITE_BATCH):
            params = {"ids": ",".join(ids[start : start + WRITE_BATCH]), "fields": FIELDS}
            read |= {c.id: c for c in self._records(self._send("GET", f"/{self._object_name}", params=params))[0]}
        results: list[Contact | SyncSideError] = []
        for outcome in outcomes:
            if isinstance(outcome, str) and outcome not in read:
                raise SyncSideError("Zoho CRM did not show a record it had just written. The next run pairs it.")
            results.append(read[outcome] if isinstance(outcome, str) else outcome)
        return results

    def create(self, items: list[Fields]) -> Sequence[Contact | SyncSideError]:
        return self._write("POST", [self._record(f, True) for f in items])

    def update(self, items: list[tuple[str, Fields]]) -> Sequence[Contact | SyncSideError]:
        return self._write("PUT", [{**self._record(f, False), "id": i} for i, f in items])

    def link_for(self, contact_id: str) -> str | None:
        dc = str(self._config.get("dataCentre") or "com")
        return RECORD_URL.format(dc=dc, module=self._object_name, id=contact_id)


def contacts(
    config: dict, context: TestContext, budget_left: Callable[[], float] | None = None, crm_object: str = "contacts"
) -> ZohoContacts:
    return ZohoContacts(config, context, budget_left, crm_object)
