"""The greeting bot's rules (core/chatwoot/greeting.py), site normalising and the receiver's reachability."""

from __future__ import annotations

from datetime import datetime

import pytest

from core.chatwoot.bot_api import normalise_site
from core.chatwoot.bot_keys import reachability_problem
from core.chatwoot.greeting import BotEvent, BotSettings, answers_after, decide, read_event
from core.errors import ValidationError

MONDAY_10_UTC = datetime(2026, 11, 30, 10, 0)  # a Monday


def event(kind="message_created", incoming=True, wants_human=False, conversation=5) -> BotEvent:
    return BotEvent(kind, f"k-{kind}", conversation, incoming, wants_human)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.Shop.example/", "http://shop.example"),
        ("https://shop.example:443/en/", "shop.example/en"),
        ("HTTPS://SHOP.EXAMPLE.", "https://shop.example/"),
    ],
)
def test_one_site_however_its_address_is_written(a, b):
    assert normalise_site(a) == normalise_site(b) != ""


def test_other_sites_stay_apart_and_non_web_addresses_are_nothing():
    assert normalise_site("https://shop.example/en") != normalise_site("https://shop.example/de")
    assert normalise_site("https://shop.example:8443") != normalise_site("https://shop.example")
    assert normalise_site("javascript:alert(1)") == normalise_site("") == normalise_site(None) == ""


def test_office_hours_in_the_configured_zone_with_overnight_hours():
    berlin = BotSettings(office_hours_enabled=True, timezone="Europe/Berlin", office_from="09:00", office_to="17:00")
    assert berlin.in_office_hours(MONDAY_10_UTC)  # 11:00 in Berlin
    assert not berlin.in_office_hours(datetime(2026, 11, 30, 16, 30))  # 17:30 in Berlin
    assert not berlin.in_office_hours(datetime(2026, 11, 29, 10, 0))  # Sunday
    night = BotSettings(office_hours_enabled=True, office_days=(0,), office_from="22:00", office_to="06:00")
    assert night.in_office_hours(datetime(2026, 11, 30, 23, 0))  # Monday 23:00
    assert night.in_office_hours(datetime(2026, 12, 1, 5, 0))  # Tuesday 05:00, Monday's night
    assert not night.in_office_hours(datetime(2026, 12, 1, 23, 0))  # Tuesday's night
    assert BotSettings().in_office_hours(datetime(2026, 11, 29, 3, 0))  # hours off: always


def test_settings_are_checked_with_sentences():
    with pytest.raises(ValidationError) as invalid:
        BotSettings(
            welcome_message=" ", office_hours_enabled=True, office_days=(), office_from="9", timezone="Mars/Olympus"
        ).validate()
    assert set(invalid.value.errors) == {"welcome_message", "office_days", "office_from", "timezone"}


def test_greeted_once_then_handed_off_when_the_visitor_answers():
    settings = BotSettings()
    first = decide(event(), settings, MONDAY_10_UTC, greeted=False, handed_off=False, incoming_seen=0)
    assert [s.action for s in first] == ["welcome"] and first[0].text == settings.welcome_message
    answer = decide(event(), settings, MONDAY_10_UTC, greeted=True, handed_off=False, incoming_seen=1)
    assert [s.action for s in answer] == ["handoff"]
    assert decide(event(), settings, MONDAY_10_UTC, greeted=True, handed_off=True, incoming_seen=2) == []


def test_a_conversation_greeted_when_it_opened_hands_off_on_the_answer_not_the_first_message():
    settings = BotSettings()
    opened = decide(
        event("conversation_created", False), settings, MONDAY_10_UTC, greeted=False, handed_off=False, incoming_seen=0
    )
    assert [s.action for s in opened] == ["welcome"]
    assert decide(event(), settings, MONDAY_10_UTC, greeted=True, handed_off=False, incoming_seen=0) == []
    assert decide(event(wants_human=True), settings, MONDAY_10_UTC, greeted=True, handed_off=False, incoming_seen=0)


def test_after_a_greeting_when_the_widget_opened_the_first_message_is_the_answer():
    settings = BotSettings()
    steps = decide(event(), settings, MONDAY_10_UTC, greeted=True, handed_off=False, incoming_seen=0, answer_after=0)
    assert [s.action for s in steps] == ["handoff"]
    assert answers_after("webwidget_triggered", 0) == 0
    assert answers_after("conversation_created", 0) == answers_after("message_created", 1) == 1


def test_outgoing_and_private_messages_are_never_answered():
    for outgoing in (event(incoming=False),):
        assert decide(outgoing, BotSettings(), MONDAY_10_UTC, greeted=False, handed_off=False, incoming_seen=0) == []


def test_out_of_hours_reply():
    closed = BotSettings(
        office_hours_enabled=True, office_from="20:00", office_to="21:00", out_of_hours_message="Closed."
    )
    [step] = decide(event(), closed, MONDAY_10_UTC, greeted=False, handed_off=False, incoming_seen=0)
    assert (step.action, step.text) == ("out_of_hours", "Closed.")


def test_reading_chatwoots_events():
    message = {
        "event": "message_created",
        "id": 9,
        "content": "Can I talk to an AGENT?",
        "message_type": "incoming",
        "private": False,
        "sender": {"type": "contact"},
        "conversation": {"id": 4},
    }
    read = read_event(message, "agent")
    assert read == BotEvent("message_created", "message:9", 4, True, True)
    assert read_event({**message, "content": "agentur"}, "agent").wants_human is False  # a word, not a part
    assert (
        read_event({**message, "message_type": "outgoing", "sender": {"type": "agent_bot"}}, "agent").incoming is False
    )
    assert read_event({**message, "private": True}, "agent").incoming is False
    assert read_event({**message, "sender": {"type": "user"}}, "agent").incoming is False
    widget = {"event": "webwidget_triggered", "current_conversation": {"id": 4}}
    assert read_event(widget, "") == BotEvent("webwidget_triggered", "widget:4", 4, False, False)
    assert read_event({"event": "webwidget_triggered"}, "") is None
    assert read_event({"event": "message_created", "id": True, "conversation": {"id": 4}}, "") is None
    assert read_event([1, 2], "") is None


def test_an_unreachable_receiver_is_named():
    assert "PUBLIC_BASE_URL is not set" in (reachability_problem(None, "https://app.chatwoot.com") or "")
    for local in ("http://localhost:8501", "http://127.0.0.1:8501", "http://10.0.0.5", "http://console.internal"):
        assert "cannot reach it" in (reachability_problem(local, "https://app.chatwoot.com") or ""), local
    assert reachability_problem("http://10.0.0.5", "http://10.0.0.9:3000") is None  # both on one network
    assert reachability_problem("https://console.example.com", "https://app.chatwoot.com") is None
