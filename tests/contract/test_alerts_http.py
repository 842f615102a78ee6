"""The Slack-compatible and signed-webhook alert channels against pytest-httpserver on 127.0.0.1: the body
they post, the signature the receiver's own verification code accepts, and the outbound address guard."""

from __future__ import annotations

import json
import time
from functools import partial

import pytest

from core.alerts.channels import DeliveryError, SignedWebhookChannel, SlackChannel, Target
from core.alerts.messages import change_message, sample_alert
from core.http import HttpPolicy, make_session
from providers import webhook
from tests.conftest import LOOPBACK_ALLOW
from tests.contract.alerts_helpers import Clock

SECRET = "whsec_alerts-" + "Mv4Tq8Zr1Xs5Yd9Wk2Lp"
LOOPBACK = partial(make_session, HttpPolicy(2, 2, 0, outbound_allow=LOOPBACK_ALLOW))


def failing_message():
    return change_message(
        kind="worsened",
        integration_id=7,
        name="Acme <b>CRM</b> @here",
        provider="HubSpot",
        old="connected",
        new="failing",
        check_message="HubSpot is unavailable (503). Try again later.",
        when=Clock()(),
        base_url="https://console.example",
        message_id="dlv_" + "0" * 23 + "7",
    )


def test_slack_gets_the_subject_and_text_as_plain_text(httpserver):
    httpserver.expect_request("/services/T/B/x", method="POST").respond_with_data("ok")
    SlackChannel(LOOPBACK).send(Target(httpserver.url_for("/services/T/B/x")), failing_message())
    [(request, _)] = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    text = json.loads(request.get_data())["text"]
    assert text.startswith("*Failing: Acme &lt;b&gt;CRM&lt;/b&gt; @here (HubSpot)*\n")  # no markup, no mention link
    assert "https://console.example/integration?id=7" in text
    assert "Fix what the last check's message names, then test it again." in text


def test_the_signed_webhook_is_accepted_by_the_receivers_own_verifier(httpserver):
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("", status=204)
    message = failing_message()
    SignedWebhookChannel(LOOPBACK).send(Target(httpserver.url_for("/hooks/alerts"), SECRET), message)
    [(request, _)] = httpserver.log
    namespace: dict = {}
    exec(webhook.VERIFY_SNIPPET, namespace)  # the code the webhook form shows a receiver
    verify = namespace["verify"]
    body = request.get_data()
    assert verify(SECRET, request.headers, body)
    assert not verify(SECRET + "x", request.headers, body)
    assert not verify(SECRET, request.headers, body.replace(b"failing", b"healthy"))
    assert request.headers["X-Console-Event"] == "alert.worsened"
    assert request.headers["X-Console-Delivery"] == message.id
    payload = json.loads(body)
    assert payload["kind"] == "worsened" and payload["integration"] == {
        "id": 7,
        "name": "Acme <b>CRM</b> @here",
        "provider": "HubSpot",
    }
    assert (payload["old"], payload["new"], payload["path"]) == ("connected", "failing", "/integration?id=7")
    assert payload["next_step"] == "Fix what the last check's message names, then test it again."
    assert SECRET not in body.decode()


def test_a_webhook_signed_long_ago_is_refused_by_the_verifier(httpserver):
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    SignedWebhookChannel(LOOPBACK).send(
        Target(httpserver.url_for("/hooks/alerts"), SECRET), sample_alert(Clock()(), None, "x"), now=time.time() - 3600
    )
    namespace: dict = {}
    exec(webhook.VERIFY_SNIPPET, namespace)
    [(request, _)] = httpserver.log
    assert not namespace["verify"](SECRET, request.headers, request.get_data())


def test_the_address_guard_applies_to_alert_webhooks(httpserver):
    guarded = partial(make_session, HttpPolicy(2, 2, 0))  # no OUTBOUND_ALLOW: loopback is refused
    url = httpserver.url_for("/services/T/B/" + "guardedTokenValue123")
    with pytest.raises(DeliveryError) as refused:
        SlackChannel(guarded).send(Target(url), sample_alert(Clock()(), None, "x"))
    assert "was refused" in refused.value.message and "loopback" in refused.value.message
    assert not refused.value.retryable
    assert "guardedTokenValue" not in refused.value.message
    assert httpserver.log == []


def test_a_redirect_is_not_followed(httpserver):
    httpserver.expect_request("/moved", method="POST").respond_with_data("", status=302, headers={"Location": "/x"})
    with pytest.raises(DeliveryError) as failed:
        SlackChannel(LOOPBACK).send(Target(httpserver.url_for("/moved")), sample_alert(Clock()(), None, "x"))
    assert "redirected the alert (302)" in failed.value.message and not failed.value.retryable
    assert len(httpserver.log) == 1
