"""A fake Salesforce org on pytest-httpserver, served as tests/contract/test_salesforce.py serves one: the
My Domain's token endpoint under /acme.my.salesforce.com/, the instance under /instance. It answers the
SOQL queries the sync sends (SystemModstamp >=, the (SystemModstamp, Id) keyset, IN lists; ORDER BY
SystemModstamp, Id) in batches of the Sforce-Query-Options batchSize with nextRecordsUrl, sObject
Collections create and update (allOrNone false: a record without LastName, or a Lead without Company,
fails alone), and GET of one record. Contact and Lead alike.

``limit_next(n)``: the next n calls answer 429 with Retry-After: 1; ``exhaust()``: every call answers
403 REQUEST_LIMIT_EXCEEDED (the org's daily allocation) until ``restore()``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.crm_contacts import FakeSplitNameCrm, answer

VERSION = "62.0"
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQsync.access.token.0123456789"
PREFIX = {"Contact": "003", "Lead": "00Q"}
_TIME = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
_QUERY = re.compile(r"SELECT (?P<fields>[\w, ]+) FROM (?P<sobject>\w+) WHERE (?P<where>.+?)(?P<order> ORDER BY .+)?$")


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _values(listed: str) -> set[str]:
    return {v.replace("\\'", "'").replace("\\\\", "\\") for v in re.findall(r"'((?:[^'\\]|\\.)*)'", listed)}


class FakeSalesforce(FakeSplitNameCrm):
    def __init__(self, httpserver, sobject: str = "Contact") -> None:
        super().__init__(httpserver)
        self.sobject = sobject
        self.exhausted = False
        self._cursors: dict[str, tuple[list[str], list[str]]] = {}  # locator -> (ids left, fields)
        self.instance_url = self.base + "/instance"
        httpserver.expect_request("/acme.my.salesforce.com/services/oauth2/token", method="POST").respond_with_json(
            {"access_token": ACCESS_TOKEN, "instance_url": self.instance_url, "token_type": "Bearer"}
        )
        data = f"/instance/services/data/v{VERSION}"
        httpserver.expect_request(data + "/query", method="GET").respond_with_handler(self._query)
        httpserver.expect_request(re.compile(re.escape(data) + r"/query/[\w-]+")).respond_with_handler(self._more)
        httpserver.expect_request(data + "/composite/sobjects", method="POST").respond_with_handler(self._create)
        httpserver.expect_request(data + "/composite/sobjects", method="PATCH").respond_with_handler(self._update)
        one = re.compile(re.escape(data) + r"/sobjects/(Contact|Lead)/\w+")
        httpserver.expect_request(one, method="GET").respond_with_handler(self._get)

    def authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"

    def unauthorised(self) -> Response:
        return answer([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)

    def refuse_limited(self) -> Response:
        body = [{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        return answer(body, 429, {"Retry-After": "1"})

    def exhaust(self) -> None:
        self.exhausted = True

    def restore(self) -> None:
        self.exhausted = False

    def _checked(self, request: Request) -> Response | None:
        if (refused := self._gate(request)) is not None:
            return refused
        if self.exhausted:
            body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
            return answer(body, 403, {"Sforce-Limit-Info": "api-usage=15000/15000"})
        return None

    # ----- the shared test interface ------------------------------------------------------------

    def new_id(self) -> str:
        return PREFIX[self.sobject] + f"{self._next_serial():012d}AAA"

    # ----- routes -------------------------------------------------------------------------------

    def _json(self, record_id: str, fields: list[str]) -> dict:
        record = self.records[record_id]
        url = f"/services/data/v{VERSION}/sobjects/{self.sobject}/{record_id}"
        body: dict[str, Any] = {"attributes": {"type": self.sobject, "url": url}}
        for name in fields:
            if name == "Id":
                body["Id"] = record_id
            elif name == "SystemModstamp":
                body[name] = stamp(record[name])
            else:
                body[name] = record.get(name)
        return body

    def _where(self, where: str) -> list[str] | None:
        """The ids of the records a WHERE clause the sync sends selects; None for any other clause."""
        items = list(self.records.items())
        if where == "SystemModstamp != null":
            return [i for i, _ in items]
        if match := re.fullmatch(rf"SystemModstamp >= {_TIME}", where):
            since = _seconds(match.group(1))
            return [i for i, r in items if r["SystemModstamp"] >= since]
        if match := re.fullmatch(rf"SystemModstamp > {_TIME} OR \(SystemModstamp = {_TIME} AND Id > '(\w+)'\)", where):
            since, last = _seconds(match.group(1)), match.group(3)
            return [i for i, r in items if r["SystemModstamp"] > since or (r["SystemModstamp"] == since and i > last)]
        if match := re.fullmatch(r"(Email|Phone|Id) IN \((.*)\)", where):
            name, wanted = match.group(1), _values(match.group(2))
            if name == "Id":
                return [i for i, _ in items if i in wanted]
            wanted = {w.lower() for w in wanted}
            return [i for i, r in items if str(r.get(name) or "").lower() in wanted]
        return None

    def _batch(self, ids: list[str], fields: list[str], size: int) -> Response:
        page, rest = ids[:size], ids[size:]
        body: dict[str, Any] = {
            "totalSize": len(ids),
            "done": not rest,
            "records": [self._json(i, fields) for i in page],
        }
        if rest:
            locator = f"01gxx0000004{len(self._cursors):03d}-{size}"
            self._cursors[locator] = (rest, fields)
            body["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{locator}"
        return answer(body)

    def _query(self, request: Request) -> Response:
        if (refused := self._checked(request)) is not None:
            return refused
        match = _QUERY.fullmatch(request.args.get("q") or "")
        with self._lock:
            ids = self._where(match.group("where")) if match else None
        if match is None or ids is None or match.group("sobject") != self.sobject:
            return answer([{"message": "fake: unexpected query", "errorCode": "MALFORMED_QUERY"}], 400)
        if match.group("order") == " ORDER BY SystemModstamp ASC, Id ASC":
            ids.sort(key=lambda i: (self.records[i]["SystemModstamp"], i))
        fields = [f.strip() for f in match.group("fields").split(",")]
        size = re.search(r"batchSize=(\d+)", request.headers.get("Sforce-Query-Options", ""))
        return self._batch(ids, fields, int(size.group(1)) if size else 2000)

    def _more(self, request: Request) -> Response:
        if (refused := self._checked(request)) is not None:
            return refused
        locator = request.path.rsplit("/", 1)[-1]
        if locator not in self._cursors:
            return answer([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}], 400)
        with self._lock:
            left, fields = self._cursors.pop(locator)
            ids = [i for i in left if i in self.records]
        return self._batch(ids, fields, int(locator.rsplit("-", 1)[-1]))

    def _get(self, request: Request) -> Response:
        if (refused := self._checked(request)) is not None:
            return refused
        record_id = request.path.rsplit("/", 1)[-1]
        if record_id not in self.records:
            return answer([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], 404)
        fields = (request.args.get("fields") or "Id").split(",")
        return answer(self._json(record_id, fields))

    def _refusal(self, record: dict, creating: bool) -> dict | None:
        if creating and not record.get("LastName"):
            return {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]"}
        if creating and self.sobject == "Lead" and not record.get("Company"):
            return {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Company]"}
        if str(record.get("Email") or "").startswith("refused@"):
            return {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address"}
        return None

    def _collection(self, request: Request, creating: bool) -> Response:
        if (refused := self._checked(request)) is not None:
            return refused
        body = json.loads(request.data)
        if body.get("allOrNone") is not False or len(body.get("records") or []) > 200:
            return answer(
                [{"message": "fake: allOrNone false, 200 records at most", "errorCode": "INVALID_FIELD"}], 400
            )
        results = []
        with self._lock:
            for record in body["records"]:
                if record.get("attributes", {}).get("type") != self.sobject:
                    return answer([{"message": "fake: wrong type", "errorCode": "INVALID_TYPE"}], 400)
                if (error := self._refusal(record, creating)) is not None:
                    results.append({"success": False, "errors": [{**error, "fields": []}]})
                    continue
                values = {k: v for k, v in record.items() if k not in ("attributes", "id")}
                if creating:
                    record_id = self.new_id()
                    self.records[record_id] = {"FirstName": None, "Email": None, "Phone": None, **values}
                else:
                    record_id = record["id"]
                    self.records[record_id].update(values)
                self.records[record_id]["SystemModstamp"] = self.clock()
                results.append({"id": record_id, "success": True, "errors": []})
        return answer(results, 200)

    def _create(self, request: Request) -> Response:
        return self._collection(request, creating=True)

    def _update(self, request: Request) -> Response:
        return self._collection(request, creating=False)
