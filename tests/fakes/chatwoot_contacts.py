"""The fake Chatwoot's contacts (tests/fakes/chatwoot.py mixes this in): create, update, show, list with
paging (15 a page, as Chatwoot), search and filter (equal_to on email / phone_number).

Known differences from the description, which the fake follows the server in (and patches the checked
description for, in `patch_spec`):
- POST .../contacts answers {"payload": {"contact": {...}, "contact_inbox": {...}}} (the description says
  a payload array).
- GET and PUT .../contacts/{id} answer {"payload": {...}} with 200 (the description: an array; PUT 204).
Contacts carry `updated_at` (epoch seconds, as Chatwoot's contact view sends it).

Sized for tens of thousands of contacts: `contacts` keeps id order (ids only grow), so lists need no sort,
and the "already taken" check looks e-mails and phones up in an index kept by add_contact and the update
route (a test that assigns a FakeContact's email or phone_number directly bypasses that check).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

PAGE_SIZE = 15
CONTACT = r"/api/v1/accounts/(?P<account_id>\d+)/contacts"
CONTACT_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", CONTACT, "list_contacts"),
    ("POST", CONTACT, "create_contact"),
    ("GET", CONTACT + r"/search", "search_contacts"),
    ("POST", CONTACT + r"/filter", "filter_contacts"),
    ("GET", CONTACT + r"/(?P<contact_id>\d+)", "show_contact"),
    ("PUT", CONTACT + r"/(?P<contact_id>\d+)", "update_contact"),
)


def patch_spec(paths: dict) -> None:
    one = {"type": "object", "properties": {"payload": {"type": "object"}}, "required": ["payload"]}
    ok = {"description": "Success", "content": {"application/json": {"schema": one}}}
    base = "/api/v1/accounts/{account_id}/contacts"
    paths[base]["post"]["responses"]["200"] = ok
    paths[base + "/{id}"]["get"]["responses"]["200"] = ok
    put = paths[base + "/{id}"]["put"]["responses"]
    put.pop("204", None)
    put["200"] = ok


@dataclass
class FakeContact:
    id: int
    account_id: int
    name: str = ""
    email: str | None = None
    phone_number: str | None = None
    custom_attributes: dict = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0
    inbox_id: int | None = None


class ContactsMixin:
    contacts: dict[int, FakeContact]
    clock: Any  # () -> epoch seconds (int); tests may replace it

    def _contacts_init(self) -> None:
        self.contacts = {}
        self._keys: dict[tuple[int, str, str], int] = {}  # (account, "email"/"phone", value) -> contact id
        self.clock = lambda: int(time.time())

    def add_contact(
        self,
        account_id: int,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        updated_at: int | None = None,
    ) -> FakeContact:
        with self._lock:  # type: ignore[attr-defined]
            now = self.clock() if updated_at is None else updated_at
            contact = FakeContact(
                self._next_id("contact"),
                account_id,
                name,
                email and email.lower(),
                phone,
                created_at=now,
                updated_at=now,
            )  # type: ignore[attr-defined]
            self.contacts[contact.id] = contact
            self._index(contact)
            return contact

    def _index(self, contact: FakeContact) -> None:
        if contact.email:
            self._keys.setdefault((contact.account_id, "email", contact.email), contact.id)
        if contact.phone_number:
            self._keys.setdefault((contact.account_id, "phone", contact.phone_number), contact.id)

    def contacts_in(self, account_id: int) -> list[FakeContact]:
        with self._lock:  # type: ignore[attr-defined]
            return [c for c in self.contacts.values() if c.account_id == account_id]

    @staticmethod
    def _contact_json(c: FakeContact) -> dict:
        return {
            "id": c.id,
            "name": c.name,
            "email": c.email,
            "phone_number": c.phone_number,
            "identifier": None,
            "thumbnail": "",
            "blocked": False,
            "availability_status": "offline",
            "additional_attributes": {},
            "custom_attributes": dict(c.custom_attributes),
            "last_activity_at": None,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "contact_inboxes": [],
        }

    def _page_of(self, items: list[FakeContact], page: Any) -> Any:
        try:
            number = max(1, int(float(page or 1)))
        except ValueError:
            number = 1
        chosen = items[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        body = {
            "meta": {"count": len(items), "current_page": str(number)},
            "payload": [self._contact_json(c) for c in chosen],
        }
        return self._reply_json(200, body)  # type: ignore[attr-defined]

    @staticmethod
    def _query(received: Any) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(received.query))

    def _do_list_contacts(self, received: Any, body: dict, account_id: str) -> Any:
        _, account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        items = [
            c for c in self.contacts_in(account.id) if c.email or c.phone_number
        ]  # in id order  # Chatwoot lists resolved contacts
        return self._page_of(items, self._query(received).get("page"))

    def _do_search_contacts(self, received: Any, body: dict, account_id: str) -> Any:
        _, account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        q = (self._query(received).get("q") or "").lower()
        items = [
            c
            for c in self.contacts_in(account.id)
            if q and (q in (c.email or "") or q in (c.phone_number or "") or q in c.name.lower())
        ]
        return self._page_of(items, self._query(received).get("page"))

    def _do_filter_contacts(self, received: Any, body: dict, account_id: str) -> Any:
        _, account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        wanted: list[tuple[str, set[str]]] = []
        for item in body.get("payload") or []:
            key = item.get("attribute_key")
            if key not in ("email", "phone_number") or item.get("filter_operator") != "equal_to":
                return self._reply_error(422, f"filter not supported by the fake: {key}")  # type: ignore[attr-defined]
            wanted.append((key, {str(v).lower() for v in item.get("values") or []}))
        items = [
            c
            for c in self.contacts_in(account.id)
            if any((getattr(c, key) or "").lower() in values for key, values in wanted)
        ]
        return self._page_of(items, self._query(received).get("page"))

    def _contact_in(self, account_id: int, contact_id: str) -> FakeContact | None:
        contact = self.contacts.get(int(contact_id))
        return contact if contact is not None and contact.account_id == account_id else None

    def _do_show_contact(self, received: Any, body: dict, account_id: str, contact_id: str) -> Any:
        _, account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        contact = self._contact_in(account.id, contact_id)
        if contact is None:
            return self._reply_error(404, "Resource could not be found")  # type: ignore[attr-defined]
        return self._reply_json(200, {"payload": self._contact_json(contact)})  # type: ignore[attr-defined]

    def _taken(self, account_id: int, email: str | None, phone: str | None, but: int | None = None) -> str | None:
        for kind, value, said in (
            ("email", email, "Email has already been taken"),
            ("phone", phone, "Phone number has already been taken"),
        ):
            if not value:
                continue
            holder = self.contacts.get(self._keys.get((account_id, kind, value), 0))
            if holder is None or (holder.email if kind == "email" else holder.phone_number) != value:
                # the indexed one changed: look once more, and index whoever holds it now
                holder = (
                    next(
                        (
                            c
                            for c in self.contacts_in(account_id)
                            if (c.email if kind == "email" else c.phone_number) == value
                        ),
                        None,
                    )
                    if (account_id, kind, value) in self._keys
                    else None
                )
                if holder is not None:
                    self._keys[(account_id, kind, value)] = holder.id
                else:
                    self._keys.pop((account_id, kind, value), None)
            if holder is not None and holder.id != but:
                return said
        return None

    def _do_create_contact(self, received: Any, body: dict, account_id: str) -> Any:
        _, account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        email = str(body.get("email") or "").strip().lower() or None
        phone = body.get("phone_number") or None
        if said := self._taken(account.id, email, phone):
            return self._reply_invalid(said, "email" if "Email" in said else "phone_number")  # type: ignore[attr-defined]
        contact = self.add_contact(account.id, str(body.get("name") or ""), email, phone)
        contact.custom_attributes = dict(body.get("custom_attributes") or {})
        contact.inbox_id = body.get("inbox_id")
        inbox = {"source_id": f"src-{contact.id}", "inbox": {"id": contact.inbox_id}}
        return self._reply_json(200, {"payload": {"contact": self._contact_json(contact), "contact_inbox": inbox}})  # type: ignore[attr-defined]

    def _do_update_contact(self, received: Any, body: dict, account_id: str, contact_id: str) -> Any:
        _, account, _ = self._account_member(received, account_id)  # type: ignore[attr-defined]
        contact = self._contact_in(account.id, contact_id)
        if contact is None:
            return self._reply_error(404, "Resource could not be found")  # type: ignore[attr-defined]
        email = str(body["email"]).strip().lower() if body.get("email") else contact.email
        phone = body.get("phone_number") or contact.phone_number
        if said := self._taken(account.id, email, phone, but=contact.id):
            return self._reply_invalid(said, "email")  # type: ignore[attr-defined]
        contact.email, contact.phone_number = email, phone
        if body.get("name"):
            contact.name = str(body["name"])
        self._index(contact)
        contact.custom_attributes.update(body.get("custom_attributes") or {})
        contact.updated_at = self.clock()
        return self._reply_json(200, {"payload": self._contact_json(contact)})  # type: ignore[attr-defined]
