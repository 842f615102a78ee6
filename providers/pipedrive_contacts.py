"""Pipedrive's side of a contact sync (core.sync): persons through the API v2, and leads through v1.

- Reading: GET /api/v2/persons with updated_since (RFC 3339, the cursor), sort_by=update_time ascending,
  100 a page, paged with the answer's additional_data.next_cursor. The resume position is (since, cursor).
- Finding: GET /api/v2/persons/search?term=<value>&fields=email|phone&exact_match=true (one term a
  search), then the persons found read in full with GET /api/v2/persons?ids=... (their update_time).
- Writing: POST /api/v2/persons and PATCH /api/v2/persons/{id} (Pipedrive has no batch write); an update
  makes the synced e-mail and phone primary and keeps the person's other ones. With the lead object,
  a new person also gets a lead (POST /api/v1/leads with person_id and a title): the person is what the
  sync pairs and reads, the lead is what a sales team works. Nothing is ever deleted.
- 429: waited out (Retry-After, else x-ratelimit-reset, else one second; wait_out_rate_limit's bounds).
The token and company domain come from providers.pipedrive (an API token, or the cached OAuth token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import requests

from core.catalog import TestContext
from core.http import read_json, retry_after_seconds
from core.redaction import redact
from core.results import ProviderFailure
from core.sync.contacts import Contact, CrmSide, Fields, Page, epoch_seconds, send_waiting_out_limits
from core.sync.errors import SyncSideError
from providers import pipedrive

PERSONS = "/api/v2/persons"
LEADS = "/api/v1/leads"
PAGE_SIZE = 100  # Pipedrive allows up to 500
IDS_AT_ONCE = 100  # GET /api/v2/persons?ids= takes up to 100
RECORD_URL = "https://{domain}.pipedrive.com/person/{id}"
LEAD_TITLE = "{name} (from Chatwoot)"


def _values(items: Any) -> list[str]:
    """The values of Pipedrive's emails/phones: [{value, primary, label}] (primary first), or plain strings."""
    found: list[tuple[bool, str]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("value"):
            found.append((not item.get("primary"), str(item["value"])))
        elif isinstance(item, str) and item:
            found.append((True, item))
    return [value for _, value in sorted(found, key=lambda pair: pair[0])]


def contact_of(item: Any) -> Contact | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int | str) or item.get("id") in ("", None):
        return None
    emails, phones = _values(item.get("emails")), _values(item.get("phones"))
    modified = epoch_seconds(item.get("update_time")) or epoch_seconds(item.get("add_time"))
    name = str(item.get("name") or "").strip()
    return Contact(str(item["id"]), name, emails[0] if emails else None, phones[0] if phones else None, modified)


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _limited(response: object) -> float | None:
    assert isinstance(response, requests.Response)
    if response.status_code != 429:
        return None
    seconds = retry_after_seconds(response)
    if seconds is None:
        reset = response.headers.get("x-ratelimit-reset", "").strip()
        seconds = int(reset) if reset.isdigit() else 1
    return float(seconds)


class PipedriveContacts(CrmSide):
    label = "Pipedrive"

    SECRET_FIELDS = ("apiToken", "clientSecret", "refreshToken")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._leads = self._crm_object == "leads"
        self._domain = str(self._config["companyDomain"]).strip().lower()

    def _send(self, method: str, path: str, params: dict | None = None, body: dict | None = None) -> Any:
        try:
            headers = pipedrive._headers(self._config, self._context, self._issued)
        except ProviderFailure as exc:
            raise SyncSideError(redact(str(exc), self._secrets())) from None
        response = send_waiting_out_limits(
            f"Pipedrive ({self._domain}.pipedrive.com)",
            self._context.http,
            method,
            pipedrive._url(self._domain, path),
            self._secrets,
            self._budget_left,
            _limited,
            headers=headers,
            params=params,
            json=body,
        )
        if response.status_code >= 400:
            message = redact(pipedrive._explain(response, self._domain), self._secrets())
            raise SyncSideError(message, per_item=response.status_code in (400, 409, 422))
        answer = read_json(response)
        if not isinstance(answer, dict) or answer.get("success") is False:
            raise SyncSideError("Pipedrive answered in an unexpected shape. Check the company domain; try again later.")
        return answer

    @staticmethod
    def _next_cursor(answer: dict) -> str | None:
        extra = answer.get("additional_data")
        cursor = extra.get("next_cursor") if isinstance(extra, dict) else None
        return str(cursor) if cursor else None

    @staticmethod
    def _contacts(answer: dict) -> list[Contact]:
        data = answer.get("data")
        return [c for c in (contact_of(i) for i in (data if isinstance(data, list) else [])) if c is not None]

    # ----- reading ------------------------------------------------------------------------------

    def changed(self, cursor: str | None, position: dict) -> Iterator[Page]:
        since = position.get("since", cursor)
        after = position.get("cursor")
        newest = epoch_seconds(since)
        while True:
            params: dict[str, Any] = {"sort_by": "update_time", "sort_direction": "asc", "limit": PAGE_SIZE}
            if since:
                params["updated_since"] = since
            if after:
                params["cursor"] = after
            answer = self._send("GET", PERSONS, params)
            contacts = self._contacts(answer)
            newest = max([newest, *(c.modified for c in contacts)])
            after = self._next_cursor(answer)
            if not after:
                done_cursor = _rfc3339(newest) if newest else since
                yield Page(contacts, {"since": since, "cursor": None}, done=True, cursor=done_cursor)
                return
            yield Page(contacts, {"since": since, "cursor": after})

    def _read_ids(self, ids: list[str]) -> list[Contact]:
        found: list[Contact] = []
        for start in range(0, len(ids), IDS_AT_ONCE):
            chunk = ids[start : start + IDS_AT_ONCE]
            found += self._contacts(self._send("GET", PERSONS, {"ids": ",".join(chunk), "limit": IDS_AT_ONCE}))
        return found

    def find(self, emails: list[str], phones: list[str]) -> list[Contact]:
        ids: dict[str, str] = {}  # person id -> the value it was found by
        for field_name, values in (("email", emails), ("phone", phones)):
            for value in values:
                after: str | None = None
                for _ in range(20):  # at most 20 pages of people sharing one e-mail or phone
                    params = {"term": value, "fields": field_name, "exact_match": "true", "limit": PAGE_SIZE}
                    answer = self._send("GET", PERSONS + "/search", params | ({"cursor": after} if after else {}))
                    data = answer.get("data")
                    items = data.get("items") if isinstance(data, dict) else None
                    for entry in items if isinstance(items, list) else []:
                        item = entry.get("item") if isinstance(entry, dict) else None
                        if isinstance(item, dict) and item.get("id") not in (None, ""):
                            ids.setdefault(str(item["id"]), value)
                    after = self._next_cursor(answer)
                    if not after:
                        break
        # A person found by a secondary e-mail or phone is presented with it, so the sync pairs them.
        return [self._as_found(c, ids.get(c.id)) for c in self._read_ids(list(ids))]

    def _as_found(self, contact: Contact, value: str | None) -> Contact:
        if not value or value in (contact.key_email, contact.key_phone):
            return contact
        if "@" in value:
            return replace(contact, email=value)
        return replace(contact, phone=value)

    def get(self, contact_id: str) -> Contact | None:
        try:
            answer = self._send("GET", f"{PERSONS}/{int(contact_id)}")
        except (SyncSideError, ValueError):
            return None
        return contact_of(answer.get("data"))

    # ----- writing ------------------------------------------------------------------------------

    @staticmethod
    def _entries(value: str | None, current: list[str]) -> list[dict] | None:
        """The synced value as the primary entry, the person's other values kept; None: leave them."""
        if not value:
            return None
        others = [v for v in current if v.lower() != value.lower()]
        return [{"value": value, "primary": True, "label": "work"}] + [
            {"value": v, "primary": False, "label": "other"} for v in others
        ]

    def _body(self, fields: Fields, current: dict | None = None) -> dict:
        current = current or {}
        body: dict[str, Any] = {}
        name = fields.name.strip() or (None if current else (fields.email or fields.phone))
        if name:
            body["name"] = name
        emails = self._entries(fields.email, _values(current.get("emails")))
        phones = self._entries(fields.phone, _values(current.get("phones")))
        if emails:
            body["emails"] = emails
        if phones:
            body["phones"] = phones
        return body

    def _one(self, write: Callable[[], Any], what: str) -> Contact | SyncSideError:
        try:
            contact = contact_of(write().get("data"))
        except SyncSideError as exc:
            if not exc.per_item:
                raise
            return exc
        if contact is None:
            raise SyncSideError(f"Pipedrive answered a {what} in an unexpected shape. Nothing more was sent.")
        return contact

    def create(self, items: list[Fields]) -> Sequence[Contact | SyncSideError]:
        results: list[Contact | SyncSideError] = []
        for fields in items:
            person = self._one(lambda fields=fields: self._send("POST", PERSONS, body=self._body(fields)), "new person")
            if isinstance(person, Contact) and self._leads:
                title = LEAD_TITLE.format(name=person.name or person.key_email or person.key_phone)[:255]
                self._send("POST", LEADS, body={"title": title, "person_id": int(person.id)})
            results.append(person)
        return results

    def update(self, items: list[tuple[str, Fields]]) -> Sequence[Contact | SyncSideError]:
        results: list[Contact | SyncSideError] = []
        for contact_id, fields in items:
            try:
                current = self._send("GET", f"{PERSONS}/{int(contact_id)}").get("data")
            except SyncSideError as exc:
                if "(404)" not in str(exc):
                    raise
                results.append(
                    SyncSideError(
                        f"Pipedrive has no person {contact_id} any more (404): it was deleted "
                        "or merged there. Nothing was changed in Pipedrive.",
                        per_item=True,
                    )
                )
                continue
            body = self._body(fields, current if isinstance(current, dict) else {})
            results.append(
                self._one(lambda i=contact_id, b=body: self._send("PATCH", f"{PERSONS}/{int(i)}", body=b), "person")
            )
        return results

    def link_for(self, contact_id: str) -> str | None:
        return RECORD_URL.format(domain=self._domain, id=contact_id)


def contacts(
    config: dict, context: TestContext, budget_left: Callable[[], float] | None = None, crm_object: str = "contacts"
) -> PipedriveContacts:
    return PipedriveContacts(config, context, budget_left, crm_object)
