"""Chatwoot's side of a contact sync: a Chatwoot account's contacts through the Application API.

- Reading: Chatwoot has no "changed since" listing (its list sorts by name, e-mail, phone or last
  activity only), so each read pages through GET .../contacts (15 a page, oldest id first) and hands on
  only the contacts whose own modified time (`updated_at`, else the later of `created_at` and
  `last_activity_at`) is at or after the cursor. The page number is the resume position.
- Finding: POST .../contacts/filter with the e-mail addresses, then the phone numbers (equal_to, OR).
- Writing: POST .../contacts (into the account's first API inbox, else its first inbox: the description
  requires an inbox) and PUT .../contacts/{id}; the CRM's id and record address go into
  custom_attributes (crm_id, crm_url). Nothing is ever deleted.
- 429: waited out (Retry-After, bounded by core.sync.contacts.wait_out_rate_limit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import requests

from core.chatwoot.client import SERVICE, explain_status
from core.http import read_json
from core.redaction import redact
from core.sync.contacts import Contact, Fields, Page, normalise_email, send_waiting_out_limits
from core.sync.errors import SyncSideError

API_INBOX = "Channel::Api"


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def contact_of(item: Any) -> Contact | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int | float):
        return None
    modified = _float(item.get("updated_at")) or max(
        _float(item.get("created_at")), _float(item.get("last_activity_at"))
    )
    return Contact(
        id=str(int(item["id"])),
        name=str(item.get("name") or ""),
        email=item.get("email") or None,
        phone=item.get("phone_number") or None,
        modified=modified,
    )


def _one(body: Any) -> Any:
    """A contact from Chatwoot's {"payload": {"contact": {...}}}, {"payload": {...}} or {"payload": [{...}]}."""
    payload = body.get("payload") if isinstance(body, dict) else None
    if isinstance(payload, list):
        payload = payload[0] if payload else None
    if isinstance(payload, dict) and isinstance(payload.get("contact"), dict):
        payload = payload["contact"]
    return payload if payload is not None else body


class ChatwootContacts:
    label = "Chatwoot"

    def __init__(
        self,
        base_url: str,
        token: str,
        account_id: int,
        session: requests.Session,
        budget_left: Callable[[], float] | None = None,
    ):
        self._base = base_url.rstrip("/") + f"/api/v1/accounts/{int(account_id)}"
        self._token = token
        self._session = session
        self._budget_left = budget_left
        self._inbox_id: int | None = None

    def _send(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> Any:
        headers = {"api_access_token": self._token, "Accept": "application/json"}

        response = send_waiting_out_limits(
            SERVICE,
            self._session,
            method,
            self._base + path,
            lambda: [self._token],
            self._budget_left,
            headers=headers,
            json=body,
            params=params,
        )
        if response.status_code >= 400:
            raise SyncSideError(
                redact(explain_status(response), [self._token]), per_item=response.status_code in (400, 409, 422)
            )
        return read_json(response) if response.content.strip() else None

    # ----- reading ------------------------------------------------------------------------------

    def changed(self, cursor: str | None, position: dict) -> Iterator[Page]:
        since = _float(cursor)
        page = int(position.get("page") or 1)
        newest = _float(position.get("newest")) or since
        while True:
            body = self._send("GET", "/contacts", params={"page": page})
            items = body.get("payload") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise SyncSideError("Chatwoot's contact list was not in the expected shape. Is this a Chatwoot server?")
            contacts = [c for c in (contact_of(i) for i in items) if c is not None]
            newest = max([newest, *(c.modified for c in contacts)])
            fresh = [c for c in contacts if c.modified >= since]
            done = not items
            yield Page(fresh, {"page": page + 1, "newest": newest}, done=done, cursor=str(newest) if done else None)
            if done:
                return
            page += 1

    def find(self, emails: list[str], phones: list[str]) -> list[Contact]:
        found: dict[str, Contact] = {}
        for key, values in (("email", emails), ("phone_number", phones)):
            for start in range(0, len(values), 100):
                chunk = values[start : start + 100]
                page = 1
                while chunk:
                    query = [{"attribute_key": key, "filter_operator": "equal_to", "values": chunk}]
                    body = self._send("POST", "/contacts/filter", body={"payload": query}, params={"page": page})
                    items = body.get("payload") if isinstance(body, dict) else None
                    if not isinstance(items, list) or not items:
                        break
                    for contact in (contact_of(i) for i in items):
                        if contact is not None:
                            found[contact.id] = contact
                    page += 1
        return list(found.values())

    def get(self, contact_id: str) -> Contact | None:
        try:
            return contact_of(_one(self._send("GET", f"/contacts/{int(contact_id)}")))
        except SyncSideError:
            return None

    # ----- writing ------------------------------------------------------------------------------

    def _inbox(self) -> int:
        if self._inbox_id is None:
            body = self._send("GET", "/inboxes")
            inboxes = [i for i in (body or {}).get("payload") or [] if isinstance(i, dict) and "id" in i]
            if not inboxes:
                raise SyncSideError(
                    "The Chatwoot account has no inbox to add contacts to. Create one (an API inbox is best), "
                    "then run the sync again."
                )
            chosen = next((i for i in inboxes if i.get("channel_type") == API_INBOX), inboxes[0])
            self._inbox_id = int(chosen["id"])
        return self._inbox_id

    @staticmethod
    def _body(fields: Fields) -> dict:
        body: dict[str, Any] = {}
        if fields.name:
            body["name"] = fields.name
        if fields.email:
            body["email"] = normalise_email(fields.email) or fields.email
        if fields.phone:
            body["phone_number"] = fields.phone
        attributes = {k: v for k, v in (("crm_id", fields.crm_id), ("crm_url", fields.crm_url)) if v}
        if attributes:
            body["custom_attributes"] = attributes
        return body

    def create(self, items: list[Fields]) -> list[Contact]:
        created = []
        for fields in items:
            body = {"inbox_id": self._inbox(), **self._body(fields)}
            contact = contact_of(_one(self._send("POST", "/contacts", body=body)))
            if contact is None:
                raise SyncSideError("Chatwoot answered a new contact in an unexpected shape. Nothing more was sent.")
            created.append(contact)
        return created

    def update(self, items: list[tuple[str, Fields]]) -> list[Contact]:
        updated = []
        for contact_id, fields in items:
            contact = contact_of(_one(self._send("PUT", f"/contacts/{int(contact_id)}", body=self._body(fields))))
            if contact is None:
                raise SyncSideError("Chatwoot answered a changed contact in an unexpected shape.")
            updated.append(contact)
        return updated

    def link_for(self, contact_id: str) -> str | None:
        return None
