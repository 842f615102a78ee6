"""Salesforce's side of a contact sync (core.sync): Contact (or Lead) records over the REST API.

- Reading: a SOQL query, SystemModstamp at or after the cursor, ORDER BY SystemModstamp, Id, in batches
  (Sforce-Query-Options batchSize) followed by nextRecordsUrl. A batch's resume position is the
  SystemModstamp and Id of its last record, so a resumed read is a new query past that pair
  (nextRecordsUrl locators expire).
- Finding: SOQL WHERE Email IN (...) (100 values a query), then Phone IN (...).
- Writing: sObject Collections (POST / PATCH /composite/sobjects, 200 records a call, allOrNone false:
  a refused record fails alone), then the written records read back by Id. A Lead needs a Company:
  "[not provided]", as Salesforce's own web-to-lead does. Nothing is ever deleted.
- Limits: a 429 is waited out (Retry-After, else one second); REQUEST_LIMIT_EXCEEDED (the org's daily
  allocation, 403) ends the run with a sentence, to carry on at a later run.
The access token and instance URL come from providers.salesforce (cached; a revoked one replaced once).
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
from providers import salesforce

API_VERSION = salesforce.FALLBACK_API_VERSION
PAGE_SIZE = 200  # the query batch size (Salesforce: 200 to 2,000) and a collection's most records
IN_AT_ONCE = 100
FIELDS = ("Id", "FirstName", "LastName", "Email", "Phone", "SystemModstamp")
NO_COMPANY = "[not provided]"
MAX_PAGES_A_QUERY = 10_000  # bounds a query's nextRecordsUrl chain


def contact_of(item: Any) -> Contact | None:
    if not isinstance(item, dict) or not item.get("Id"):
        return None
    name = " ".join(str(item.get(k) or "").strip() for k in ("FirstName", "LastName")).strip()
    modified = epoch_seconds(_iso(item.get("SystemModstamp")))
    return Contact(str(item["Id"]), name, item.get("Email") or None, item.get("Phone") or None, modified)


def _iso(value: Any) -> str:
    """Salesforce's 2026-12-01T10:00:00.000+0000 as ISO 8601 Python reads (+00:00)."""
    text = str(value or "")
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    return text


def _soql_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceContacts(CrmSide):
    label = "Salesforce"

    SECRET_FIELDS = ("clientSecret", "refreshToken")

    RECORDS: ClassVar[dict[str, str]] = {"contacts": "Contact", "leads": "Lead"}  # the sObject

    def _request(self, method: str, path: str, access: dict, **kwargs: Any) -> requests.Response:
        headers = {**salesforce._bearer(access), "Sforce-Query-Options": f"batchSize={PAGE_SIZE}"}
        url = path if path.startswith("http") else access["instance_url"] + path
        return send_waiting_out_limits(
            "Salesforce", self._context.http, method, url, self._secrets, self._budget_left, headers=headers, **kwargs
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            access, cached = salesforce._access(self._config, self._context, self._issued)
            response = self._request(method, path, access, **kwargs)
            if response.status_code == 401 and cached:  # revoked early: one new token
                access, _ = salesforce._access(self._config, self._context, self._issued, fresh=True)
                response = self._request(method, path, access, **kwargs)
        except ProviderFailure as exc:
            raise SyncSideError(redact(str(exc), self._secrets())) from None
        if response.status_code >= 400:
            raise SyncSideError(redact(self._explain(response), self._secrets()), per_item=response.status_code == 400)
        return read_json(response) if response.content.strip() else None

    def _explain(self, response: requests.Response) -> str:
        code, _ = salesforce._errors(response)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return (
                "Salesforce refused the sync: the org's daily API allocation is used up (REQUEST_LIMIT_EXCEEDED). "
                "The sync carries on from here at a later run, once the last 24 hours' usage falls below it."
            )
        if code == "INVALID_TYPE" or (code == "NOT_FOUND" and response.status_code == 404):
            return (
                f"Salesforce has no {self._object_name} object for this user ({code}). "
                "Check the user's object permissions."
            )
        return salesforce._explain(response, salesforce._usage(response))

    def _query(self, soql: str) -> Iterator[list[dict]]:
        """The records of a SOQL query, batch by batch (nextRecordsUrl followed)."""
        answer = self._send("GET", f"/services/data/v{API_VERSION}/query", params={"q": soql})
        for _ in range(MAX_PAGES_A_QUERY):
            records = answer.get("records") if isinstance(answer, dict) else None
            if not isinstance(records, list):
                raise SyncSideError("Salesforce answered a query in an unexpected shape. Try again later.")
            yield [r for r in records if isinstance(r, dict)]
            following = answer.get("nextRecordsUrl")
            if answer.get("done", True) or not isinstance(following, str) or not following.startswith("/services/"):
                return
            answer = self._send("GET", following)

    def _select(self, where: str, order: bool = False) -> str:
        soql = f"SELECT {', '.join(FIELDS)} FROM {self._object_name} WHERE {where}"
        return soql + (" ORDER BY SystemModstamp ASC, Id ASC" if order else "")

    # ----- reading ------------------------------------------------------------------------------

    def changed(self, cursor: str | None, position: dict) -> Iterator[Page]:
        if position.get("stamp") and position.get("id"):
            stamp, last = _soql_time(float(position["stamp"])), _quoted(str(position["id"]))
            where = f"SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > {last})"
        elif cursor:
            where = f"SystemModstamp >= {_soql_time(epoch_seconds(cursor))}"
        else:
            where = "SystemModstamp != null"
        newest = epoch_seconds(cursor)
        batches = self._query(self._select(where, order=True))
        batch = next(batches, [])
        while True:
            contacts = [c for c in (contact_of(r) for r in batch) if c is not None]
            newest = max([newest, *(c.modified for c in contacts)])
            following = next(batches, None)
            if following is None:
                yield Page(contacts, {}, done=True, cursor=_soql_time(newest) if newest else cursor)
                return
            last = contacts[-1] if contacts else None
            yield Page(contacts, {"stamp": last.modified, "id": last.id} if last else dict(position))
            batch = following

    def _by(self, field_name: str, values: list[str]) -> list[Contact]:
        found: list[Contact] = []
        for start in range(0, len(values), IN_AT_ONCE):
            listed = ", ".join(_quoted(v) for v in values[start : start + IN_AT_ONCE])
            for batch in self._query(self._select(f"{field_name} IN ({listed})")):
                found += [c for c in (contact_of(r) for r in batch) if c is not None]
        return found

    def find(self, emails: list[str], phones: list[str]) -> list[Contact]:
        found = {c.id: c for c in self._by("Email", emails) + self._by("Phone", phones)}
        return list(found.values())

    def get(self, contact_id: str) -> Contact | None:
        path = f"/services/data/v{API_VERSION}/sobjects/{self._object_name}/{contact_id}"
        try:
            return contact_of(self._send("GET", path, params={"fields": ",".join(FIELDS)}))
        except SyncSideError:
            return None

    # ----- writing ------------------------------------------------------------------------------

    def _record(self, fields: Fields, creating: bool) -> dict:
        record: dict[str, Any] = {"attributes": {"type": self._object_name}}
        first, last = split_name(fields.name)
        if not last:  # one word: Salesforce's required LastName
            first, last = "", first
        if last:
            record["FirstName"], record["LastName"] = first, last
        elif creating:
            record["LastName"] = fields.email or fields.phone or "Unknown"
        if fields.email:
            record["Email"] = fields.email.lower()
        if fields.phone:
            record["Phone"] = fields.phone
        if creating and self._object_name == "Lead":
            record["Company"] = NO_COMPANY
        return record

    def _collection(self, method: str, records: list[dict]) -> list[str | SyncSideError]:
        """Each record's id, or its refusal, in order."""
        results: list[str | SyncSideError] = []
        for start in range(0, len(records), PAGE_SIZE):
            body = {"allOrNone": False, "records": records[start : start + PAGE_SIZE]}
            answer = self._send(method, f"/services/data/v{API_VERSION}/composite/sobjects", json=body)
            if not isinstance(answer, list) or len(answer) != len(body["records"]):
                raise SyncSideError("Salesforce answered a batch write in an unexpected shape. Nothing more was sent.")
            for result in answer:
                if isinstance(result, dict) and result.get("success") and result.get("id"):
                    results.append(str(result["id"]))
                    continue
                errors = result.get("errors") if isinstance(result, dict) else None
                first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
                code, said = str(first.get("statusCode") or "refused"), str(first.get("message") or "")[:200]
                results.append(
                    SyncSideError(
                        f"Salesforce refused a {self._object_name} ({code}{': ' + said if said else ''}).", True
                    )
                )
        return results

    def _read_back(self, outcomes: list[str | SyncSideError]) -> list[Contact | SyncSideError]:
        ids = [o for o in outcomes if isinstance(o, str)]
        read = {c.id: c for c in self._by("Id", ids)}
        results: list[Contact | SyncSideError] = []
        for outcome in outcomes:
            if isinstance(outcome, SyncSideError):
                results.append(outcome)
            elif outcome in read:
                results.append(read[outcome])
            else:
                raise SyncSideError("Salesforce did not show a record it had just written. The next run pairs it.")
        return results

    def create(self, items: list[Fields]) -> Sequence[Contact | SyncSideError]:
        return self._read_back(self._collection("POST", [self._record(f, True) for f in items]))

    def update(self, items: list[tuple[str, Fields]]) -> Sequence[Contact | SyncSideError]:
        records = [{**self._record(f, False), "id": i} for i, f in items]
        return self._read_back(self._collection("PATCH", records))

    def link_for(self, contact_id: str) -> str | None:
        # The record in Lightning Experience: acme.my.salesforce.com -> acme.lightning.force.com.
        base = str(self._config.get("instanceUrl") or "").rstrip("/")
        lightning = base.replace(".my.salesforce.com", ".lightning.force.com")
        return f"{lightning}/lightning/r/{self._object_name}/{contact_id}/view"


def contacts(
    config: dict, context: TestContext, budget_left: Callable[[], float] | None = None, crm_object: str = "contacts"
) -> SalesforceContacts:
    return SalesforceContacts(config, context, budget_left, crm_object)
