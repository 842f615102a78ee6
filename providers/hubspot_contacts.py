"""HubSpot's side of a contact sync (core.sync): CRM contacts through the CRM v3 API.

- Reading: POST /crm/v3/objects/contacts/search, lastmodifieddate GTE the cursor (milliseconds), sorted
  ascending, 100 a page, paged with `after`. A search returns at most 10,000 results, so past that the
  read starts a new search from the last modified time it saw. The resume position is (since, after).
- Finding: the same search with email IN (100 values a search), then phone IN (numbers stored in E.164).
- Writing: POST .../contacts/batch/create and .../batch/update (100 a call). Nothing is ever deleted.
- 429: waited out (Retry-After, else one second; bounded by core.sync.contacts.wait_out_rate_limit).
The access token comes from providers.hubspot (a private app's token, or the cached OAuth token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests

from core.catalog import TestContext
from core.http import read_json
from core.redaction import redact
from core.results import ProviderFailure
from core.sync.contacts import Contact, CrmSide, Fields, Page, retry_after_429, send_waiting_out_limits
from core.sync.errors import SyncSideError
from providers import hubspot

CONTACTS = "/crm/v3/objects/contacts"
PROPERTIES = ["email", "firstname", "lastname", "phone", "lastmodifieddate"]
PAGE_SIZE = 100
SEARCH_CAP = 10_000  # HubSpot's search returns no result past this many
RECORD_URL = "https://app.hubspot.com/contacts/{portal}/record/0-1/{id}"


def _millis(value: Any) -> float:
    """Epoch seconds from HubSpot's ISO 8601 times or epoch milliseconds."""
    if value in (None, ""):
        return 0.0
    try:
        return float(value) / 1000.0
    except (TypeError, ValueError):
        pass
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def contact_of(item: Any) -> Contact | None:
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        return None
    found = item.get("properties")
    props: dict = found if isinstance(found, dict) else {}
    name = " ".join(str(props.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
    modified = _millis(props.get("lastmodifieddate")) or _millis(item.get("updatedAt"))
    return Contact(str(item["id"]), name, props.get("email") or None, props.get("phone") or None, modified)


def _properties(fields: Fields) -> dict:
    props: dict[str, str] = {}
    if fields.name:
        first, _, last = fields.name.strip().partition(" ")
        props["firstname"] = first
        props["lastname"] = last.strip()
    if fields.email:
        props["email"] = fields.email.lower()
    if fields.phone:
        props["phone"] = fields.phone
    return props


class HubSpotContacts(CrmSide):
    label = "HubSpot"

    SECRET_FIELDS = ("accessToken", "clientSecret", "refreshToken")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._portal: str | None = None

    def _send(self, method: str, path: str, body: dict | None = None) -> Any:
        try:
            token = hubspot._access_token(self._config, self._context, self._issued)
        except ProviderFailure as exc:
            raise SyncSideError(redact(str(exc), self._secrets())) from None
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

        def limited(response: object) -> float | None:
            assert isinstance(response, requests.Response)
            if response.status_code != 429 or "DAILY" in response.text:
                return None  # the daily allowance does not come back within a run
            return retry_after_429(response)

        response = send_waiting_out_limits(
            "HubSpot",
            self._context.http,
            method,
            hubspot._url(path),
            self._secrets,
            self._budget_left,
            limited,
            headers=headers,
            json=body,
        )
        if response.status_code >= 400:
            raise SyncSideError(
                redact(hubspot._explain(response), self._secrets()), per_item=response.status_code in (400, 409, 422)
            )
        return read_json(response)

    def _search(self, filters: list[dict], after: str | None = None, sort: bool = True) -> dict:
        body: dict[str, Any] = {"filterGroups": [{"filters": filters}], "properties": PROPERTIES, "limit": PAGE_SIZE}
        if sort:
            body["sorts"] = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
        if after:
            body["after"] = after
        answer = self._send("POST", CONTACTS + "/search", body)
        if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
            raise SyncSideError("HubSpot's contact search answered in an unexpected shape. Try again later.")
        return answer

    # ----- reading ------------------------------------------------------------------------------

    def changed(self, cursor: str | None, position: dict) -> Iterator[Page]:
        since = int(position.get("since") or cursor or 0)
        after = position.get("after")
        newest = since
        while True:
            answer = self._search([{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since)}], after)
            contacts = [c for c in (contact_of(i) for i in answer["results"]) if c is not None]
            newest = max([newest, *(int(c.modified * 1000) for c in contacts)])
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if after and int(after) >= SEARCH_CAP:
                # The search's cap: a new search from the newest time seen (one millisecond on if 10,000
                # contacts share one, the only way forward).
                since, after = (newest if newest > since else since + 1), None
                yield Page(contacts, {"since": since, "after": None})
                continue
            if not after:
                yield Page(contacts, {"since": since, "after": None}, done=True, cursor=str(newest))
                return
            yield Page(contacts, {"since": since, "after": after})

    def find(self, emails: list[str], phones: list[str]) -> list[Contact]:
        found: dict[str, Contact] = {}
        for key, values in (("email", emails), ("phone", phones)):
            for start in range(0, len(values), PAGE_SIZE):
                chunk, after = values[start : start + PAGE_SIZE], None
                while True:
                    answer = self._search([{"propertyName": key, "operator": "IN", "values": chunk}], after, False)
                    for contact in (contact_of(i) for i in answer["results"]):
                        if contact is not None:
                            found[contact.id] = contact
                    after = ((answer.get("paging") or {}).get("next") or {}).get("after")
                    if not after:
                        break
        return list(found.values())

    def get(self, contact_id: str) -> Contact | None:
        try:
            answer = self._send("GET", f"{CONTACTS}/{contact_id}?properties={','.join(PROPERTIES)}")
        except SyncSideError:
            return None
        return contact_of(answer)

    # ----- writing ------------------------------------------------------------------------------

    def _batch(self, action: str, inputs: list[dict]) -> list[Contact]:
        results: list[Contact] = []
        for start in range(0, len(inputs), PAGE_SIZE):
            answer = self._send("POST", f"{CONTACTS}/batch/{action}", {"inputs": inputs[start : start + PAGE_SIZE]})
            items = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(items, list):
                raise SyncSideError(f"HubSpot's batch {action} answered in an unexpected shape.")
            results += [c for c in (contact_of(i) for i in items) if c is not None]
        return results

    def create(self, items: list[Fields]) -> list[Contact]:
        created = self._batch("create", [{"properties": _properties(f)} for f in items])
        # A batch's results need not come in the order sent: matched back by e-mail, then phone.
        by_key = {c.key_email or c.key_phone: c for c in created}
        ordered = []
        for fields in items:
            probe = Contact("", fields.name, fields.email, fields.phone)
            match = by_key.get(probe.key_email or probe.key_phone)
            if match is None:
                raise SyncSideError("HubSpot did not confirm every new contact. The next run finds and pairs them.")
            ordered.append(match)
        return ordered

    def update(self, items: list[tuple[str, Fields]]) -> list[Contact]:
        updated = {c.id: c for c in self._batch("update", [{"id": i, "properties": _properties(f)} for i, f in items])}
        return [updated[i] for i, _ in items if i in updated]

    def link_for(self, contact_id: str) -> str | None:
        if self._portal is None:
            try:
                details = self._send("GET", hubspot.DETAILS_PATH)
            except SyncSideError:
                details = None
            self._portal = str(details.get("portalId")) if isinstance(details, dict) and details.get("portalId") else ""
        return RECORD_URL.format(portal=self._portal, id=contact_id) if self._portal else None


def contacts(config: dict, context: TestContext, budget_left: Callable[[], float] | None = None) -> HubSpotContacts:
    return HubSpotContacts(config, context, budget_left)
