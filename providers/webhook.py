"""Webhook: an outgoing webhook that the console signs, so the receiver can tell a delivery is genuine.

Every delivery is one ``POST`` of a JSON body to the target URL (redirects are not followed, and a failed
delivery is not retried by the HTTP session), with these headers:

==========================  =======================================================================
``Content-Type``            ``application/json``
``X-Console-Event``         the event's name, e.g. ``integration.created`` (the list is ``EVENTS``)
``X-Console-Delivery``      a unique id per delivery (``dlv_`` and 24 hex digits), to ignore repeats
``X-Console-Timestamp``     when the delivery was signed, in whole seconds since the Unix epoch
``X-Console-Signature``     ``v1=`` + hex(HMAC-SHA256(signing secret, f"{timestamp}.{body}")), where
                            body is the exact request body (UTF-8 bytes). Several comma-separated
                            ``v1=`` values may be sent in future (while a secret is being changed);
                            a delivery is genuine if any of them matches.
==========================  =======================================================================

The receiver recomputes the HMAC over the raw body bytes it received (before any JSON parsing), compares it
in constant time, and refuses a timestamp more than 5 minutes away from its own clock, which stops replays
of an old delivery. ``VERIFY_SNIPPET`` is that check in Python, for a page to show (``st.code``); a test
executes exactly that text against a real delivery.

The signing secret is sensitive (encrypted at rest, masked in forms, kept out of results and audit
events). Left empty, one is generated (``whsec_`` and 43 URL-safe characters, 256 random bits) by
``prepare``, which the integration service calls on the checked configuration before encrypting it.

The connection test delivers a signed sample payload (``"test": true``) for the first configured event
and reports the receiver's status and the round-trip time; any 2xx status is a success.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from core.catalog import Provider, TestContext
from core.fields import FieldSpec, is_blank
from core.http import describe_exception, wait_phrase
from core.results import TestResult, without_secrets
from core.signing import (
    HEADER_DELIVERY,
    HEADER_EVENT,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MIN_SECRET_LENGTH,
    SECRET_PREFIX,
    SIGNATURE_VERSION,
    TOLERANCE_SECONDS,
    generate_secret,
    signature,
    signed_headers,
)
from core.tiers import Tier

EVENTS = (
    "integration.created",
    "integration.updated",
    "integration.deleted",
    "integration.tested",
    "agent.created",
    "agent.removed",
)
DEFAULT_EVENTS = "integration.created, integration.tested"
# The signing itself (core.signing) is shared with the signed alert channel; re-exported here for receivers' docs.
__all__ = [
    "EVENTS",
    "HEADER_DELIVERY",
    "HEADER_EVENT",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MIN_SECRET_LENGTH",
    "PROVIDER",
    "SECRET_PREFIX",
    "SIGNATURE_VERSION",
    "TOLERANCE_SECONDS",
    "VERIFY_SNIPPET",
    "generate_secret",
    "signature",
    "signed_delivery",
]

# What a receiver runs to check a delivery. A page shows it with st.code(VERIFY_SNIPPET, language="python");
# tests/contract/test_webhook.py executes this exact text against a real delivery.
VERIFY_SNIPPET = '''\
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300  # refuse deliveries signed more than 5 minutes away from now (replays)


def verify(secret, headers, body, now=None):
    """True when `body`, the raw request body as bytes, was signed with `secret` within the tolerance.

    `headers` is the request's headers as any mapping (names in any case). Flask:
        if not verify(SIGNING_SECRET, request.headers, request.get_data()): abort(401)
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get("x-console-timestamp", "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    signed = timestamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    offered = [part.strip() for part in lowered.get("x-console-signature", "").split(",")]
    return any(
        hmac.compare_digest(part[len("v1="):], expected) for part in offered if part.startswith("v1=")
    )
'''


def parse_events(text: str | None) -> tuple[list[str], list[str]]:
    """(known events in EVENTS order without repeats, unknown names as written)."""
    names = [part.strip() for part in (text or "").split(",") if part.strip()]
    unknown = [name for name in names if name not in EVENTS]
    return [event for event in EVENTS if event in names], unknown


FIELDS = (
    FieldSpec(
        "url",
        "Target URL",
        "url",
        required=True,
        pattern=r"https?://.+",
        placeholder="https://hooks.example.com/console",
        help="Where each event is POSTed as JSON. Use https:// so deliveries are encrypted on the way.",
    ),
    FieldSpec(
        "events",
        "Events",
        "text",
        required=True,
        default=DEFAULT_EVENTS,
        placeholder=DEFAULT_EVENTS,
        help=f"Comma-separated event names, from: {', '.join(EVENTS)}.",
    ),
    FieldSpec(
        "secret",
        "Signing secret",
        "password",
        sensitive=True,
        min_length=MIN_SECRET_LENGTH,
        default_factory=lambda: generate_secret(),  # defined below; called when a form opens
        help=(
            "A new strong secret is filled in: reveal it with the eye icon and give it to the receiver "
            "before you save, or paste your own. Once saved it is never shown again. Deliveries are "
            f"signed with it ({HEADER_SIGNATURE})."
        ),
    ),
)


def check(config: dict) -> dict[str, str]:
    """Every event name must be one of EVENTS, and at least one must be given."""
    text = config.get("events")
    if not isinstance(text, str) or is_blank(text):
        return {}  # the field's own rule says it is required
    known, unknown = parse_events(text)
    if unknown:
        return {"events": f"Unknown event {', '.join(unknown)}. Choose from: {', '.join(EVENTS)}."}
    if not known:
        return {"events": "Choose at least one event."}
    return {}


def prepare(config: dict) -> dict:
    """Before sealing: the events written canonically, and a signing secret generated when there is none."""
    prepared = dict(config)
    known, _ = parse_events(prepared.get("events"))
    if known:
        prepared["events"] = ", ".join(known)
    if is_blank(prepared.get("secret")):
        prepared["secret"] = generate_secret()
    return prepared


def sample_payload(event: str, delivery_id: str, now: datetime) -> dict:
    """What a delivery of `event` looks like, marked as a test."""
    subject = (
        {"agent": {"id": 0, "name": "Sample Agent", "email": "agent@example.com"}}
        if event.startswith("agent.")
        else {"integration": {"id": 0, "name": "Sample integration", "type": "CRM", "status": "connected"}}
    )
    return {
        "id": delivery_id,
        "event": event,
        "createdAt": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "test": True,
        "data": subject,
    }


def signed_delivery(secret: str, event: str, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one delivery of a sample `event`, signed with `secret`."""
    moment = time.time() if now is None else now
    delivery_id = "dlv_" + uuid.uuid4().hex[:24]
    payload = sample_payload(event, delivery_id, datetime.fromtimestamp(moment, UTC))
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return body, signed_headers(secret, event, delivery_id, str(int(moment)), body)


def _explain(response: requests.Response, where: str) -> str:
    status = response.status_code
    if 300 <= status < 400:
        target = response.headers.get("Location", "")[:200]
        return (
            f"{where} redirected the delivery ({status}{' to ' + target if target else ''}). Deliveries do not "
            "follow redirects: enter the final address."
        )
    if status in (401, 403):
        return (
            f"{where} refused the delivery ({status}). If it verifies signatures, check it has this webhook's "
            "signing secret and a correct clock."
        )
    if status == 404:
        return f"{where} has nothing at this address (404). Check the target URL."
    if status == 410:
        return f"{where} says this webhook is gone (410). Check the target URL."
    if status == 429:
        return f"{where} is rate limiting deliveries. {wait_phrase(response)}"
    if status >= 500:
        return f"{where} failed to take the delivery ({status}). Check the receiver's logs."
    return f"{where} answered the delivery with status {status}."


def test_connection(config: dict, context: TestContext) -> TestResult:
    secret = config.get("secret")
    if not isinstance(secret, str) or is_blank(secret):  # validated as text before a test runs
        message = "This webhook has no signing secret yet. Save it to have one generated, or enter one."
        return TestResult(False, message, error=message)
    if problems := check(config):
        message = next(iter(problems.values()))
        return TestResult(False, message, {"field_errors": problems}, error=message)
    known, _ = parse_events(config.get("events"))
    event = known[0] if known else EVENTS[0]
    url = config["url"]
    where = f"The receiver at {urlsplit(url).netloc}"
    body, headers = signed_delivery(secret, event)
    details = {"event": event, "deliveryId": headers[HEADER_DELIVERY], "encrypted": url.lower().startswith("https:")}
    started = time.monotonic()
    try:
        response = context.http.post(url, data=body, headers=headers, allow_redirects=False)
    except requests.RequestException as exc:
        message = describe_exception(exc, where)
        return without_secrets(TestResult(False, message, details, error=message), [secret])
    latency_ms = round((time.monotonic() - started) * 1000)
    details |= {"status": response.status_code, "latencyMs": latency_ms}
    if not 200 <= response.status_code < 300:
        message = _explain(response, where)
        if answer := response.text.strip():
            details["response"] = answer[:200]
        return without_secrets(TestResult(False, message, details, error=message), [secret])
    message = f"Delivered a signed sample {event} event to {url}: status {response.status_code} in {latency_ms} ms."
    return without_secrets(TestResult(True, message, details), [secret])


PROVIDER = Provider(
    key="WEBHOOK",
    name="Outgoing webhook",
    description="Signed JSON deliveries of console events (HMAC-SHA256) to a URL of yours.",
    category="WEBHOOK",
    fields=FIELDS,
    test=test_connection,
    min_tier=Tier.PRO_PLUS,
    check=check,
    prepare=prepare,
    guide=("How your receiver verifies a delivery", VERIFY_SNIPPET),
)
