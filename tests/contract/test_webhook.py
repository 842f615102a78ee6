"""The outgoing webhook, through the integration service, against pytest-httpserver on 127.0.0.1.

The receiver's verification code (providers.webhook.VERIFY_SNIPPET, the text a page shows) is executed as it
stands against real deliveries captured by the server: it accepts them, and refuses a tampered body, a
wrong secret and a stale timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from core.crypto import field_context, is_encrypted
from core.errors import ValidationError
from core.fields import MASK
from core.models import Integration
from providers import webhook

SECRET = "whsec_test-" + "Kp3Vn8Qr2Ls6Tx9Wb4Yd7Zf1"
OTHER_SECRET = "whsec_other-" + "Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8"


pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


def hook_config(httpserver, **changes) -> dict:
    config = {"url": httpserver.url_for("/hooks/console"), "events": "integration.created, agent.created"}
    if "secret" not in changes:
        config["secret"] = SECRET
    return config | {k: v for k, v in changes.items() if v is not None}


def deliveries(httpserver):
    return [request for request, _ in httpserver.log if request.path == "/hooks/console"]


def verifier():
    """The page's snippet, executed as it stands: its verify() function."""
    namespace: dict = {}
    exec(webhook.VERIFY_SNIPPET, namespace)  # the exact text a receiver would copy
    return namespace["verify"]


def stored_secret(ctx, integration_id: int) -> str:
    with ctx.factory() as session:
        return session.get(Integration, integration_id).configuration["secret"]


# ----- a delivery ----------------------------------------------------------------------------------------


def test_delivery_is_signed_and_documented_headers_are_sent(httpserver, ctx, pro, audit_texts, assert_no_secret):
    httpserver.expect_request("/hooks/console", method="POST").respond_with_data("ok", status=200)
    before = int(time.time())
    result = ctx.integrations.test_configuration(pro, "WEBHOOK", hook_config(httpserver))
    after = int(time.time())

    assert result.success, result.message
    assert result.details["status"] == 200
    assert isinstance(result.details["latencyMs"], int)
    assert result.details["event"] == "integration.created"
    assert result.message.startswith("Delivered a signed sample integration.created event to ")
    assert_no_secret(SECRET, result.as_dict(), *audit_texts())

    (request,) = deliveries(httpserver)
    body = request.get_data()
    timestamp = request.headers["X-Console-Timestamp"]
    assert before <= int(timestamp) <= after
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Console-Event"] == "integration.created"
    assert request.headers["X-Console-Delivery"] == result.details["deliveryId"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    assert request.headers["X-Console-Signature"] == "v1=" + expected
    payload = json.loads(body)
    assert payload["event"] == "integration.created"
    assert payload["test"] is True
    assert payload["id"] == result.details["deliveryId"]
    assert SECRET not in body.decode()


def test_the_shown_snippet_verifies_a_real_delivery(httpserver, ctx, pro):
    httpserver.expect_request("/hooks/console", method="POST").respond_with_data("", status=204)
    assert ctx.integrations.test_configuration(pro, "WEBHOOK", hook_config(httpserver)).success
    (request,) = deliveries(httpserver)
    verify = verifier()
    body, headers = request.get_data(), request.headers
    timestamp = int(headers["X-Console-Timestamp"])

    assert verify(SECRET, headers, body) is True
    assert verify(SECRET, {k.lower(): v for k, v in headers.items()}, body) is True  # any header case
    # A tampered body, a wrong secret, a changed timestamp:
    assert verify(SECRET, headers, body.replace(b'"test":true', b'"test":false')) is False
    assert verify(SECRET, headers, body + b" ") is False
    assert verify(OTHER_SECRET, headers, body) is False
    moved = {**dict(headers.items()), "X-Console-Timestamp": str(timestamp + 1)}
    assert verify(SECRET, moved, body) is False
    # Stale (or future) by more than 5 minutes: refused; within them: accepted.
    assert verify(SECRET, headers, body, now=timestamp + 301) is False
    assert verify(SECRET, headers, body, now=timestamp - 301) is False
    assert verify(SECRET, headers, body, now=timestamp + 299) is True
    # Missing or malformed headers are refused, never an exception.
    assert verify(SECRET, {}, body) is False
    assert verify(SECRET, {**dict(headers.items()), "X-Console-Signature": "v0=abc"}, body) is False
    # During a secret change several v1= values may be offered; one match is enough.
    signature = headers["X-Console-Signature"]
    assert verify(SECRET, {**dict(headers.items()), "X-Console-Signature": f"v1=00ff, {signature}"}, body) is True


def test_a_stale_delivery_captured_from_the_wire_is_refused(httpserver, monkeypatch):
    """The delivery itself signed six minutes ago (the sender's clock), verified now."""
    httpserver.expect_request("/hooks/console", method="POST").respond_with_data("", status=200)
    from core.catalog import TestContext
    from core.http import HttpPolicy, make_session
    from core.tokens import MemoryTokens
    from tests.conftest import LOOPBACK_ALLOW

    real_time = time.time
    monkeypatch.setattr(webhook.time, "time", lambda: real_time() - 360)
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW))
    result = webhook.test_connection(hook_config(httpserver), TestContext(session, MemoryTokens()))
    monkeypatch.undo()

    assert result.success, result.message
    (request,) = deliveries(httpserver)
    verify = verifier()
    assert verify(SECRET, request.headers, request.get_data()) is False
    assert verify(SECRET, request.headers, request.get_data(), now=real_time() - 360) is True


# ----- the signing secret ---------------------------------------------------------------------------------


def test_empty_secret_is_generated_stored_encrypted_and_signs_deliveries(
    httpserver, ctx, pro, audit_texts, assert_no_secret
):
    httpserver.expect_request("/hooks/console", method="POST").respond_with_data("", status=200)
    created = ctx.integrations.create(pro, "Ops hook", "WEBHOOK", hook_config(httpserver, secret=""))

    sealed = stored_secret(ctx, created.id)
    assert is_encrypted(sealed)
    secret = ctx.cipher.decrypt(sealed, field_context(created.id, "secret"))
    assert secret.startswith("whsec_") and len(secret) >= 40
    assert created.configuration["secret"] == MASK
    assert created.type == "WEBHOOK"

    result = ctx.integrations.test(pro, created.id)
    assert result.success, result.message
    (request,) = deliveries(httpserver)
    assert verifier()(secret, request.headers, request.get_data()) is True
    assert_no_secret(
        secret, result.as_dict(), *audit_texts(), [v.configuration for v in ctx.integrations.list_integrations(pro)]
    )


def test_each_webhook_gets_its_own_secret(httpserver, ctx, pro):
    first = ctx.integrations.create(pro, "One", "WEBHOOK", hook_config(httpserver, secret=""))
    second = ctx.integrations.create(pro, "Two", "WEBHOOK", hook_config(httpserver, secret=""))
    secrets = [ctx.cipher.decrypt(stored_secret(ctx, v.id), field_context(v.id, "secret")) for v in (first, second)]
    assert secrets[0] != secrets[1]


def test_an_entered_secret_is_kept_and_the_mask_keeps_it_on_edit(httpserver, ctx, pro):
    created = ctx.integrations.create(pro, "Ops hook", "WEBHOOK", hook_config(httpserver))
    sealed = stored_secret(ctx, created.id)
    assert ctx.cipher.decrypt(sealed, field_context(created.id, "secret")) == SECRET

    for returned in (MASK, ""):
        view = ctx.integrations.get(pro, created.id)
        edited = {**view.configuration, "secret": returned, "events": "agent.created"}
        ctx.integrations.update(pro, created.id, view.version, configuration=edited)
        assert stored_secret(ctx, created.id) == sealed  # neither regenerated nor re-encrypted


def test_a_short_secret_is_refused(httpserver, ctx, pro):
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(pro, "Ops hook", "WEBHOOK", hook_config(httpserver, secret="too-short"))
    assert set(raised.value.errors) == {"secret"}
    assert "too-short" not in str(raised.value)


# ----- events ---------------------------------------------------------------------------------------------


def test_events_are_checked_against_the_list(httpserver, ctx, pro):
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(pro, "Hook", "WEBHOOK", hook_config(httpserver, events="integration.created, oops"))
    assert raised.value.errors["events"].startswith("Unknown event oops. Choose from: integration.created")
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(pro, "Hook", "WEBHOOK", hook_config(httpserver, events=" , ,"))
    assert raised.value.errors == {"events": "Choose at least one event."}


def test_events_are_stored_in_canonical_form(httpserver, ctx, pro):
    created = ctx.integrations.create(
        pro, "Hook", "WEBHOOK", hook_config(httpserver, events="agent.created,integration.created , agent.created")
    )
    assert created.configuration["events"] == "integration.created, agent.created"


def test_the_form_offers_default_events_and_lists_them_all():
    events = webhook.PROVIDER.field("events")
    assert events.default == "integration.created, integration.tested"
    for name in webhook.EVENTS:
        assert name in events.help


# ----- failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "refused the delivery (401). If it verifies signatures"),
        (404, "nothing at this address (404)"),
        (410, "says this webhook is gone (410)"),
        (500, "failed to take the delivery (500)"),
    ],
)
def test_receiver_failures_in_plain_words(httpserver, ctx, pro, audit_texts, assert_no_secret, status, expected):
    # The receiver's error text echoes the secret, as a careless one might: it never reaches the result.
    httpserver.expect_request("/hooks/console", method="POST").respond_with_data(f"bad secret {SECRET}", status=status)
    result = ctx.integrations.test_configuration(pro, "WEBHOOK", hook_config(httpserver))

    assert not result.success
    assert expected in result.message
    assert result.details["status"] == status
    assert "[redacted]" in result.details["response"]
    assert_no_secret(SECRET, result.as_dict(), *audit_texts())
    assert len(deliveries(httpserver)) == 1  # a delivery is never retried


def test_a_redirect_is_not_followed(httpserver, ctx, pro):
    httpserver.expect_request("/hooks/console", method="POST").respond_with_data(
        "", status=302, headers={"Location": "https://elsewhere.example/hook"}
    )
    result = ctx.integrations.test_configuration(pro, "WEBHOOK", hook_config(httpserver))

    assert not result.success
    assert "redirected the delivery (302 to https://elsewhere.example/hook)" in result.message


def test_unreachable_receiver(httpserver, ctx, pro, closed_port):
    config = hook_config(httpserver, url=f"http://127.0.0.1:{closed_port}/hooks")
    result = ctx.integrations.test_configuration(pro, "WEBHOOK", config)

    assert not result.success
    assert "refused the connection" in result.message


def test_delivery_headers_are_documented_in_the_module():
    for header in ("X-Console-Timestamp", "X-Console-Signature", "X-Console-Event", "X-Console-Delivery"):
        assert header in webhook.__doc__
    assert 'hex(HMAC-SHA256(signing secret, f"{timestamp}.{body}"))' in webhook.__doc__
