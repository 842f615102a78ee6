"""Auto-created inboxes and the greeting bot against the fake Chatwoot (checked against Chatwoot's OpenAPI
description), with the receiver route driven as Starlette serves it and the replies run by engine workers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from starlette.requests import Request

import bot_routes
from core.chatwoot.bots import BOTS_OFF
from core.chatwoot.greeting import BotSettings
from core.chatwoot.helpdesk import HelpdeskError
from core.chatwoot.inboxes import INBOXES_OFF
from core.errors import ValidationError
from core.models import AuditEvent, ChatwootBot, EngineLease, utcnow
from tests.conftest import wait_for
from ui import state

PUBLIC = "https://console.example.com"
INBOXES = "/api/v1/accounts/1/inboxes/"
AGENT_BOTS = "/api/v1/accounts/1/agent_bots"
SHOP = ("https://www.shop.example/", "#1F93FF", "Hi there", "We reply within minutes")


@pytest.fixture
def desk(ctx, fake_chatwoot, monkeypatch):
    """desk(actor, inboxes=True, bots=True) -> a Chatwoot integration id with those toggles; the console's
    PUBLIC_BASE_URL is PUBLIC and the receiver route uses the test's services."""
    ctx.bots.public_base_url = PUBLIC
    monkeypatch.setattr(state, "context", lambda: ctx)

    def make(actor, *, inboxes: bool = True, bots: bool = True) -> int:
        config = {
            "baseUrl": fake_chatwoot.url,
            "accountId": str(fake_chatwoot.seed.account_id),
            "apiKey": fake_chatwoot.seed.admin.access_token,
            "features": {"autoCreateInboxes": inboxes, "autoCreateBots": bots, "syncContacts": False},
        }
        return ctx.integrations.create(actor, "Support desk", "CHATWOOT", config).id

    return make


def posts(fake, path: str) -> int:
    return len(fake.requests_to(path, "POST"))


def audit_rows(ctx, prefix: str) -> list[AuditEvent]:
    with ctx.factory() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        return [r for r in rows if r.action.startswith(prefix)]


# ----- inboxes -------------------------------------------------------------------------------------------


def test_ensuring_a_website_inbox_twice_creates_one(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin, bots=False)
    inbox, created = ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP)
    assert created and inbox.is_website and inbox.website_token
    assert fake_chatwoot.inboxes[inbox.id].widget_color == "#1F93FF"
    assert fake_chatwoot.inboxes[inbox.id].welcome_tagline == "We reply within minutes"
    again, created_again = ctx.inboxes.ensure_website_inbox(admin, integration_id, "http://shop.example", *SHOP[1:])
    assert (again.id, created_again) == (inbox.id, False)
    assert posts(fake_chatwoot, INBOXES) == 1
    seeded, made = ctx.inboxes.ensure_website_inbox(admin, integration_id, "https://ACME.test/", *SHOP[1:])
    assert not made and seeded.name == "Website" and posts(fake_chatwoot, INBOXES) == 1
    assert [(r.outcome, r.details["created"]) for r in audit_rows(ctx, "chatwoot.inbox")] == [
        ("success", True),
        ("success", False),
        ("success", False),
    ]
    assert not fake_chatwoot.requests_to(AGENT_BOTS)  # bots off: no agent bot


def run_at_once(*calls):
    """Run the calls in threads started together; their results (or exceptions), in order."""
    import threading

    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i, call):
        start.wait(5)
        try:
            results[i] = call()
        except Exception as exc:  # handed back to the test to assert on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads), "a call did not finish within 30 s"
    return results


def test_two_requests_at_once_create_one_inbox_and_one_bot(ctx, admin, fake_chatwoot, desk):
    """A double click on "Create a website inbox": each request's look-up is slow enough that, without the
    site's lease, both would find nothing and both create; with it the second finds the first's inbox."""
    integration_id = desk(admin)
    fake_chatwoot.set_delay(0.4, "/api/v1/accounts/1/inboxes")
    first, second = run_at_once(
        lambda: ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP),
        lambda: ctx.inboxes.ensure_website_inbox(admin, integration_id, "http://shop.example", *SHOP[1:]),
    )
    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    assert first[0].id == second[0].id and sorted([first[1], second[1]]) == [False, True]
    assert posts(fake_chatwoot, INBOXES) == 1 and posts(fake_chatwoot, AGENT_BOTS) == 1
    with ctx.factory() as session:  # both leases were given back
        assert not session.scalars(select(EngineLease.name).where(EngineLease.name.like("inbox:%"))).all()
        assert not session.scalars(select(EngineLease.name).where(EngineLease.name.like("agent_bot:%"))).all()


def test_two_inboxes_made_at_once_share_one_bot(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin)
    fake_chatwoot.set_delay(0.3, AGENT_BOTS)
    first, second = run_at_once(
        lambda: ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP),
        lambda: ctx.inboxes.ensure_website_inbox(admin, integration_id, "https://blog.example", *SHOP[1:]),
    )
    assert first[1] and second[1] and posts(fake_chatwoot, INBOXES) == 2
    [bot] = fake_chatwoot.agent_bots.values()
    assert fake_chatwoot.inboxes[first[0].id].agent_bot_id == bot.id == fake_chatwoot.inboxes[second[0].id].agent_bot_id


def test_a_request_waiting_too_long_for_the_site_is_told_to_try_again(ctx, admin, fake_chatwoot, desk, monkeypatch):
    from core.chatwoot import bot_api, inboxes, leases

    integration_id = desk(admin)
    site = bot_api.normalise_site(SHOP[0])
    taken = leases.claim_marker(
        ctx.factory, inboxes.lease_name(integration_id, site), "someone else", utcnow() + timedelta(minutes=3)
    )
    assert taken
    monkeypatch.setattr(leases, "WAIT_SECONDS", 0.5)
    with pytest.raises(HelpdeskError) as busy:
        ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP)
    assert str(busy.value) == inboxes.BUSY and busy.value.reason == "busy"
    assert posts(fake_chatwoot, INBOXES) == 0


def test_with_the_toggle_off_no_inbox_is_created(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin, inboxes=False)
    assert ctx.inboxes.auto_create_allowed(admin, integration_id) == (False, INBOXES_OFF)
    with pytest.raises(HelpdeskError) as refused:
        ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP)
    assert str(refused.value) == INBOXES_OFF and refused.value.reason == "feature_off"
    assert [r.method for r in fake_chatwoot.requests if r.method != "GET"] == []
    assert [r.outcome for r in audit_rows(ctx, "chatwoot.inbox")] == ["denied"]


def test_inbox_fields_are_checked_before_any_call(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin)
    with pytest.raises(ValidationError) as invalid:
        ctx.inboxes.ensure_website_inbox(admin, integration_id, "javascript:alert(1)", "red", "x" * 300, "")
    assert set(invalid.value.errors) == {"website_url", "colour", "title"}
    assert not fake_chatwoot.requests


# ----- the bot in Chatwoot -------------------------------------------------------------------------------


def test_the_bot_is_created_once_and_attached_to_the_inboxes_the_console_creates(
    ctx, admin, fake_chatwoot, desk, audit_texts, assert_no_secret
):
    integration_id = desk(admin)
    first, _ = ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP)
    second, _ = ctx.inboxes.ensure_website_inbox(admin, integration_id, "https://blog.example", *SHOP[1:])
    status = ctx.bots.ensure_bot(admin, integration_id)
    assert posts(fake_chatwoot, AGENT_BOTS) == 1
    [bot] = fake_chatwoot.agent_bots.values()
    assert fake_chatwoot.inboxes[first.id].agent_bot_id == bot.id == fake_chatwoot.inboxes[second.id].agent_bot_id
    assert status.chatwoot_bot_id == bot.id and status.reachability is None
    assert bot.outgoing_url.startswith(PUBLIC + "/bots/chatwoot/")
    receiver_id, secret = urlsplit(bot.outgoing_url).path.split("/")[3:5]
    assert len(secret) >= 43 and status.receiver_address == f"{PUBLIC}/bots/chatwoot/{receiver_id}/…"
    with ctx.factory() as session:
        row = session.scalar(select(ChatwootBot))
        assert row is not None and row.access_token and row.access_token.startswith("enc:v2:")
        stored = repr({c.name: getattr(row, c.name) for c in ChatwootBot.__table__.columns})
    for hidden in (bot.access_token, secret):
        assert_no_secret(hidden, stored, repr(status), *audit_texts())
    assert fake_chatwoot.inboxes[1].agent_bot_id is None  # the seeded inbox was not touched


def test_a_bot_whose_row_was_lost_is_found_by_its_receiver_address_and_re_pointed(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin)
    ctx.bots.ensure_bot(admin, integration_id)
    with ctx.factory.begin() as session:
        row = session.scalar(select(ChatwootBot))
        assert row is not None
        row.chatwoot_bot_id, row.access_token = None, None
    ctx.bots.ensure_bot(admin, integration_id)
    assert posts(fake_chatwoot, AGENT_BOTS) == 1 and len(fake_chatwoot.agent_bots) == 1
    assert len(fake_chatwoot.requests_to(AGENT_BOTS + "/1", "PATCH")) == 1


def test_with_the_bots_toggle_off_no_bot_is_created(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin, bots=False)
    with pytest.raises(HelpdeskError, match="Auto-create bots toggle is off"):
        ctx.bots.ensure_bot(admin, integration_id)
    assert ctx.bots.status(admin, integration_id).state_text == BOTS_OFF
    assert not fake_chatwoot.requests_to(AGENT_BOTS)


def test_without_a_public_address_the_inbox_is_made_and_the_bot_says_why_not(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin)
    ctx.bots.public_base_url = None
    ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP)
    status = ctx.bots.status(admin, integration_id)
    assert status.chatwoot_bot_id is None and not fake_chatwoot.agent_bots
    assert status.reachability and "PUBLIC_BASE_URL is not set" in status.reachability
    assert status.last_error and "PUBLIC_BASE_URL" in status.last_error


# ----- the receiver --------------------------------------------------------------------------------------


def post(path: str, payload: object | bytes):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    parts = path.split("/")
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "path_params": {"receiver_id": parts[3], "secret": parts[4]},
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("203.0.113.9", 40000),
        "scheme": "https",
        "server": ("console.example.com", 443),
    }
    return asyncio.run(bot_routes.bot_event(Request(scope, receive)))


def message(message_id: int, conversation_id: int, content: str, *, kind: str = "incoming", sender: str = "contact"):
    """A message_created event as Chatwoot's AgentBotListener posts it (the message's webhook_data)."""
    return {
        "event": "message_created",
        "id": message_id,
        "content": content,
        "content_type": "text",
        "content_attributes": {},
        "message_type": kind,
        "private": False,
        "created_at": "2026-12-01T10:00:00.000Z",
        "source_id": None,
        "additional_attributes": {},
        "sender": {"id": 7, "name": "Visitor", "type": sender},
        "account": {"id": 1, "name": "Acme Support"},
        "conversation": {"id": conversation_id, "status": "pending", "inbox_id": 3, "channel": "Channel::WebWidget"},
        "inbox": {"id": 3, "name": "shop.example"},
    }


@pytest.fixture
def live_bot(ctx, admin, fake_chatwoot, desk, workers):
    """A created inbox with the greeting bot and a pending conversation in it; engine workers running.
    Returns (integration id, receiver path with its secret, conversation id)."""
    integration_id = desk(admin)
    inbox, _ = ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP)
    [bot] = fake_chatwoot.agent_bots.values()
    conversation = fake_chatwoot.add_conversation(1, inbox.id)
    workers(2, periodic=False)
    return integration_id, urlsplit(bot.outgoing_url).path, conversation.display_id


def bot_messages(fake, conversation_id: int) -> list[str]:
    return [m.content for m in fake.messages_in(1, conversation_id) if m.sender_type == "agent_bot"]


def test_a_visitor_is_welcomed_once_and_handed_to_agents_when_answering(
    ctx, admin, fake_chatwoot, live_bot, audit_texts, assert_no_secret, caplog
):
    caplog.set_level(logging.DEBUG)
    integration_id, path, conversation = live_bot
    welcome = BotSettings().welcome_message
    assert post(path, message(101, conversation, "Hello?")).status_code == 200
    wait_for(lambda: bot_messages(fake_chatwoot, conversation), what="the welcome reply")
    assert post(path, message(101, conversation, "Hello?")).body == b'{"result":"duplicate"}'  # a retried webhook
    own = post(path, message(102, conversation, welcome, kind="outgoing", sender="agent_bot"))  # the bot's own
    assert own.body == b'{"result":"ignored"}'
    post(path, message(103, conversation, "Agents reply", kind="outgoing", sender="user"))
    assert fake_chatwoot.conversations[(1, conversation)].status == "pending"
    post(path, message(104, conversation, "I need help with my order"))
    wait_for(lambda: fake_chatwoot.conversations[(1, conversation)].status == "open", what="the hand-off")
    assert bot_messages(fake_chatwoot, conversation) == [welcome]
    wait_for(lambda: audit_rows(ctx, "chatwoot_bot.handoff"), what="the hand-off's audit event")
    replies = [(r.action, r.outcome, r.details.get("kind")) for r in audit_rows(ctx, "chatwoot_bot.")]
    assert ("chatwoot_bot.reply", "success", "welcome") in replies
    assert ("chatwoot_bot.handoff", "success", "handoff") in replies
    status = ctx.bots.status(admin, integration_id)
    assert status.last_event_kind == "message_created" and status.last_event_at is not None
    token = next(iter(fake_chatwoot.agent_bots.values())).access_token
    secret = path.rsplit("/", 1)[1]
    for hidden in (token, secret):
        assert_no_secret(hidden, caplog.text, repr(status), *audit_texts())


def test_a_widget_opened_on_a_conversation_greets_it_once_and_the_next_message_hands_off(
    ctx, admin, fake_chatwoot, live_bot
):
    _, path, conversation = live_bot
    triggered = {  # a contact_inbox's webhook_data, as AgentBotListener#webwidget_triggered posts it
        "event": "webwidget_triggered",
        "id": 12,
        "contact": {"id": 7, "name": "Visitor"},
        "inbox": {"id": 3, "name": "shop.example"},
        "account": {"id": 1, "name": "Acme Support"},
        "current_conversation": {"id": conversation, "status": "pending", "inbox_id": 3},
        "source_id": "c0ffee",
        "event_info": {"widget_language": "en", "browser_language": "en", "referer": "https://shop.example/"},
    }
    assert post(path, triggered).body == b'{"result":"queued"}'
    assert post(path, triggered).body == b'{"result":"duplicate"}'
    wait_for(lambda: bot_messages(fake_chatwoot, conversation), what="the welcome")
    post(path, message(601, conversation, "Where is my parcel?"))
    wait_for(lambda: fake_chatwoot.conversations[(1, conversation)].status == "open", what="the hand-off")
    assert bot_messages(fake_chatwoot, conversation) == [BotSettings().welcome_message]


def test_old_events_are_pruned(ctx, fake_chatwoot, live_bot):
    from core.models import ChatwootBotEvent

    _, path, conversation = live_bot
    post(path, message(701, conversation, "Hi"))
    wait_for(lambda: bot_messages(fake_chatwoot, conversation), what="the welcome")
    assert ctx.bot_receiver.prune(utcnow()) == 0
    assert ctx.bot_receiver.prune(utcnow() + timedelta(days=31)) == 1
    with ctx.factory() as session:
        assert session.scalar(select(ChatwootBotEvent)) is None


def test_the_hand_off_keyword_opens_the_conversation_at_once(ctx, admin, fake_chatwoot, live_bot):
    integration_id, path, conversation = live_bot
    ctx.bots.save_settings(admin, integration_id, BotSettings(handoff_keyword="Human"))
    post(path, message(201, conversation, "a HUMAN please!"))
    wait_for(lambda: fake_chatwoot.conversations[(1, conversation)].status == "open", what="the hand-off")
    assert len(bot_messages(fake_chatwoot, conversation)) == 1


def test_out_of_office_hours_the_bot_sends_the_out_of_hours_reply(ctx, admin, fake_chatwoot, live_bot):
    integration_id, path, conversation = live_bot
    later = utcnow() + timedelta(hours=3)
    settings = BotSettings(
        out_of_hours_message="We are closed; back at nine.",
        office_hours_enabled=True,
        office_days=tuple(range(7)),
        office_from=f"{later.hour:02d}:00",
        office_to=f"{(later.hour + 1) % 24:02d}:00",
    )
    ctx.bots.save_settings(admin, integration_id, settings)
    post(path, message(301, conversation, "Anyone there?"))
    wait_for(lambda: bot_messages(fake_chatwoot, conversation), what="the out-of-hours reply")
    assert bot_messages(fake_chatwoot, conversation) == ["We are closed; back at nine."]
    assert fake_chatwoot.conversations[(1, conversation)].status == "pending"


def test_a_forged_secret_or_receiver_is_refused_without_any_call_to_chatwoot(ctx, fake_chatwoot, live_bot):
    _, path, conversation = live_bot
    before = len(fake_chatwoot.requests)
    receiver_id = path.split("/")[3]
    for forged in (f"/bots/chatwoot/{receiver_id}/{'x' * 43}", f"/bots/chatwoot/{'0' * 16}/{path.split('/')[4]}"):
        answer = post(forged, message(401, conversation, "hi"))
        assert answer.status_code == 404 and answer.body == b'{"result":"not found"}'
    assert post(path, b"x" * (200 * 1024)).status_code == 413
    assert post(path, b"{not json").status_code == 400
    assert post(path, {"event": "conversation_typing_on"}).body == b'{"result":"ignored"}'
    assert len(fake_chatwoot.requests) == before
    with ctx.factory() as session:
        assert session.scalar(select(ChatwootBot.last_event_kind)) == "conversation_typing_on"


# ----- the self-test -------------------------------------------------------------------------------------


@pytest.fixture
def served_routes():
    """The bot routes served by uvicorn on 127.0.0.1 (a free port); yields the address."""
    import socket
    import threading

    import uvicorn
    from starlette.applications import Starlette

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=bot_routes.ROUTES), "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


def test_the_self_test_posts_a_signed_event_to_the_public_address(ctx, admin, fake_chatwoot, desk, served_routes):
    integration_id = desk(admin)
    ctx.bots.public_base_url = served_routes
    status = ctx.bots.self_test(admin, integration_id)
    assert status.self_test_ok is True and "answered the signed test event" in (status.self_test_message or "")
    # An address that answers, but is not this console (here: the Chatwoot server itself), fails the test.
    ctx.bots.public_base_url = fake_chatwoot.url
    fake_chatwoot.allow_unrouted = True
    status = ctx.bots.self_test(admin, integration_id)
    assert status.self_test_ok is False and "not as this console's receiver" in (status.self_test_message or "")
    assert [r.outcome for r in audit_rows(ctx, "chatwoot_bot.self_test")] == ["success", "failure"]


def test_a_self_test_event_with_a_wrong_signature_is_refused(ctx, admin, fake_chatwoot, desk, served_routes):
    import requests

    integration_id = desk(admin)
    ctx.bots.public_base_url = served_routes
    address = ctx.bots.save_settings(admin, integration_id, BotSettings()).receiver_address or ""
    forged = {"event": "console_self_test", "nonce": "n", "at": 0, "signature": "0" * 64}
    answer = requests.post(address.rstrip("…") + "self-test", json=forged, timeout=5)
    assert answer.status_code == 404 and "proof" not in answer.text


def test_a_key_rotation_re_encrypts_the_bot_token_and_the_receiver_keeps_working(ctx, admin, fake_chatwoot, desk):
    from core.chatwoot.bot_keys import secret_matches, token_context
    from core.crypto import FieldCipher, generate_key
    from core.rotation import KeyRotation
    from providers import CATALOG
    from tests.conftest import TEST_KEY

    integration_id = desk(admin)
    ctx.bots.ensure_bot(admin, integration_id)
    [bot] = fake_chatwoot.agent_bots.values()
    secret = urlsplit(bot.outgoing_url).path.rsplit("/", 1)[1]
    ring = FieldCipher([generate_key(), TEST_KEY])
    report = KeyRotation(ctx.factory, ring, CATALOG).run()
    assert not report.failures
    with ctx.factory() as session:
        row = session.scalar(select(ChatwootBot))
        assert row is not None and ring.is_current(row.access_token)
        assert ring.decrypt(row.access_token, token_context(row.id)) == bot.access_token
        assert secret_matches(ring, secret, row.secret_hash) and not secret_matches(ring, "x" * 43, row.secret_hash)


# ----- the delivery check --------------------------------------------------------------------------------


@pytest.fixture
def attached(ctx, admin, fake_chatwoot, desk):
    """A website inbox the greeting bot was just attached to. Returns (integration id, inbox id, the
    receiver's path with its secret, the secret)."""
    integration_id = desk(admin)
    inbox, _ = ctx.inboxes.ensure_website_inbox(admin, integration_id, *SHOP)
    [bot] = fake_chatwoot.agent_bots.values()
    path = urlsplit(bot.outgoing_url).path
    return integration_id, inbox.id, path, path.split("/")[4]


def later() -> datetime:
    """The checks run ten minutes on: conversations made now are past the grace of a late delivery."""
    return utcnow() + timedelta(minutes=10)


def test_the_delivery_check_finds_conversations_that_never_reached_the_receiver(
    ctx, admin, fake_chatwoot, attached, assert_no_secret
):
    integration_id, inbox_id, _path, secret = attached
    for text in ("Hello?", "Anyone there?", "Hi"):
        fake_chatwoot.add_conversation(1, inbox_id, visitor_message=text)
    fake_chatwoot.add_conversation(1, inbox_id)  # no visitor message: not counted
    fake_chatwoot.add_conversation(1, inbox_id, visitor_message="old", created_at=int(time.time()) - 3600)
    fake_chatwoot.add_conversation(
        1, inbox_id, visitor_message="late", created_at=int(time.time()) + 540
    )  # may still be on its way
    check = ctx.bots.delivery_check(admin, integration_id, later())
    assert check.delivered is False and check.missed == 3, check
    assert check.sentence.startswith("Chatwoot has 3 conversations in www.shop.example since ")
    receiver_id = _path.split("/")[3]
    assert f"never reached the receiver at {PUBLIC}/bots/chatwoot/{receiver_id}/…" in check.sentence
    assert "Set PUBLIC_BASE_URL" in check.sentence
    assert_no_secret(secret, check.sentence, repr(check))
    [listed] = {r.query for r in fake_chatwoot.requests_to("/api/v1/accounts/1/conversations", "GET")}
    assert "status=all" in listed and f"inbox_id={inbox_id}" in listed


def test_the_delivery_check_says_every_conversation_was_delivered(ctx, admin, fake_chatwoot, attached):
    integration_id, inbox_id, path, _secret = attached
    first = fake_chatwoot.add_conversation(1, inbox_id, visitor_message="Hello?")
    second = fake_chatwoot.add_conversation(1, inbox_id, visitor_message="Hi")
    assert post(path, message(201, first.display_id, "Hello?")).status_code == 200
    assert ctx.bots.delivery_check(admin, integration_id, later()).missed == 1  # the second one is still missing
    assert post(path, message(202, second.display_id, "Hi")).status_code == 200
    check = ctx.bots.delivery_check(admin, integration_id, later())
    assert (check.delivered, check.sentence) == (True, "Chatwoot delivered every recent conversation to the receiver.")


def test_the_delivery_check_reads_at_most_two_pages_of_an_inbox(ctx, admin, fake_chatwoot, attached):
    integration_id, inbox_id, _path, _secret = attached
    for _ in range(60):
        fake_chatwoot.add_conversation(1, inbox_id, visitor_message="Hello?")
    check = ctx.bots.delivery_check(admin, integration_id, later())
    assert check.delivered is False and check.missed == 50
    assert len(fake_chatwoot.requests_to("/api/v1/accounts/1/conversations", "GET")) == 2


def test_a_chatwoot_error_in_the_delivery_check_is_its_own_sentence(
    ctx, admin, fake_chatwoot, attached, assert_no_secret
):
    integration_id, inbox_id, _path, secret = attached
    fake_chatwoot.add_conversation(1, inbox_id, visitor_message="Hello?")
    fake_chatwoot.force("/api/v1/accounts/1/conversations", 500, {"error": "Internal error"}, times=5)
    check = ctx.bots.delivery_check(admin, integration_id, later())
    assert check.delivered is None and check.missed == 0
    assert check.sentence.startswith(
        "The delivery check could not read the conversations of www.shop.example from Chatwoot:"
    )
    assert "never reached" not in check.sentence
    assert_no_secret(secret, check.sentence)


def test_without_an_attached_inbox_the_delivery_check_has_nothing_to_check(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin)
    assert "not in Chatwoot yet" in ctx.bots.delivery_check(admin, integration_id, later()).sentence
    ctx.bots.ensure_bot(admin, integration_id)
    check = ctx.bots.delivery_check(admin, integration_id, later())
    assert check.delivered is None and "not attached to an inbox" in check.sentence
    assert not fake_chatwoot.requests_to("/api/v1/accounts/1/conversations")
