"""The greeting bot's rules, with no I/O: its settings, office hours, what an event from Chatwoot says,
and what the bot does about it.

What Chatwoot posts to an agent bot's outgoing URL (its AgentBotListener; the payloads are the records'
webhook_data plus ``event``):
- ``message_created``: the message (``id``, ``content``, ``message_type`` "incoming" | "outgoing" |
  "activity" | "template", ``private``, ``sender`` {``type``: "contact" | "user" | "agent_bot"},
  ``conversation`` {``id``: the display id the API paths take, ``status``}, ``account`` {``id``});
- ``webwidget_triggered``: a visitor opened the widget (``current_conversation`` when one exists);
- ``conversation_created`` / ``conversation_opened``: the conversation itself (``id``, ``status``).

The bot answers only a visitor's (``incoming``, not private, sender a contact) messages, never its own or
an agent's outgoing ones. A conversation is greeted once (welcome, or the out-of-hours reply); the
visitor's next message after the greeting (an answer to it, see answers_after), or any message holding
the hand-off keyword, opens the conversation for human agents, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.errors import ValidationError

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_MESSAGE = 1000
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
GREETING_EVENTS = ("conversation_created", "conversation_opened", "webwidget_triggered")


@dataclass(frozen=True)
class BotSettings:
    """What a person configures for the greeting bot of one Chatwoot integration."""

    welcome_message: str = "Hello! Thanks for reaching out. How can we help you today?"
    out_of_hours_message: str = "Thanks for your message. We are out of the office now and will reply when we are back."
    handoff_keyword: str = "agent"
    office_hours_enabled: bool = False
    timezone: str = "UTC"
    office_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    office_from: str = "09:00"
    office_to: str = "17:00"

    def problems(self) -> dict[str, str]:
        found: dict[str, str] = {}
        if not self.welcome_message.strip():
            found["welcome_message"] = "Write the welcome message the bot sends to a new conversation."
        for name, value in (
            ("welcome_message", self.welcome_message),
            ("out_of_hours_message", self.out_of_hours_message),
        ):
            if len(value) > MAX_MESSAGE:
                found[name] = f"Keep each message within {MAX_MESSAGE} characters."
        if len(self.handoff_keyword) > 100:
            found["handoff_keyword"] = "Keep the hand-off keyword within 100 characters."
        if self.office_hours_enabled:
            if not self.out_of_hours_message.strip():
                found["out_of_hours_message"] = "Write the reply the bot sends outside office hours."
            if not self.office_days or any(d not in range(7) for d in self.office_days):
                found["office_days"] = "Choose at least one office day."
            for name, value in (("office_from", self.office_from), ("office_to", self.office_to)):
                if not _TIME.fullmatch(value):
                    found[name] = "Give office hours as HH:MM, for example 09:00."
            if self.office_from == self.office_to and "office_from" not in found:
                found["office_to"] = "Office hours must end at another time than they start."
        if not _known_zone(self.timezone):
            found["timezone"] = "Choose a time zone such as Europe/Berlin or America/New_York."
        return found

    def validate(self) -> None:
        if problems := self.problems():
            raise ValidationError(problems)

    def in_office_hours(self, now_utc: datetime) -> bool:
        """Whether ``now_utc`` (naive UTC) is within office hours; always True when they are off."""
        if not self.office_hours_enabled:
            return True
        local = now_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(self.timezone))
        start, end, at = _clock(self.office_from), _clock(self.office_to), local.time().replace(tzinfo=None)
        if start < end:
            return local.weekday() in self.office_days and start <= at < end
        # Overnight hours (22:00 to 06:00) belong to the day they start on.
        if at >= start:
            return local.weekday() in self.office_days
        return at < end and (local.weekday() - 1) % 7 in self.office_days

    def hours_text(self) -> str:
        if not self.office_hours_enabled:
            return "Office hours are off: the bot always sends the welcome message."
        days = ", ".join(DAY_NAMES[d] for d in sorted(self.office_days))
        return f"{days}, {self.office_from} to {self.office_to} ({self.timezone})."


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _known_zone(name: str) -> bool:
    if name not in available_timezones() and name != "UTC":
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def days_text(days: tuple[int, ...]) -> str:
    return ",".join(str(d) for d in sorted(set(days)))


def parse_days(text: str | None) -> tuple[int, ...]:
    return tuple(sorted({int(p) for p in (text or "").split(",") if p.strip().isdigit() and int(p) < 7}))


# ----- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotEvent:
    """What the bot needs of one posted event (no visitor text: only whether it held the keyword)."""

    kind: str
    key: str  # the dedupe key: a retried webhook has the same one
    conversation_id: int | None
    incoming: bool  # a visitor's own public message
    wants_human: bool


def _id(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = int(value)
    return number if number == value and 0 < number < 2**63 else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def read_event(payload: Any, handoff_keyword: str) -> BotEvent | None:
    """The event, or None for one the bot has nothing to do with (or cannot read)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        return None
    kind = payload["event"][:40]
    if kind == "message_created":
        message_id = _id(payload.get("id"))
        conversation_id = _id(_dict(payload.get("conversation")).get("id"))
        if message_id is None or conversation_id is None:
            return None
        sender_type = str(_dict(payload.get("sender")).get("type") or "contact").lower()
        incoming = (
            payload.get("message_type") in ("incoming", 0)
            and payload.get("private") is not True
            and sender_type == "contact"
        )
        content = payload.get("content")
        content = content if isinstance(content, str) else ""
        return BotEvent(
            kind, f"message:{message_id}", conversation_id, bool(incoming), incoming and _asks(content, handoff_keyword)
        )
    if kind in ("conversation_created", "conversation_opened"):
        conversation_id = _id(payload.get("id"))
        if conversation_id is None:
            return None
        return BotEvent(kind, f"{kind}:{conversation_id}", conversation_id, False, False)
    if kind == "webwidget_triggered":
        conversation_id = _id(_dict(payload.get("current_conversation")).get("id"))
        if conversation_id is None:
            return None  # the widget was opened, no conversation yet: nothing to answer in
        return BotEvent(kind, f"widget:{conversation_id}", conversation_id, False, False)
    return None


def _asks(content: str, keyword: str) -> bool:
    word = keyword.strip().casefold()
    if not word:
        return False
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", content.casefold()) is not None


# ----- what the bot does --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One thing the bot does: "welcome" or "out_of_hours" (a reply), or "handoff" (open the conversation)."""

    action: str
    text: str = ""


def greeting(settings: BotSettings, now_utc: datetime) -> Step:
    if settings.in_office_hours(now_utc):
        return Step("welcome", settings.welcome_message)
    return Step("out_of_hours", settings.out_of_hours_message)


def answers_after(kind: str, incoming_now: int) -> int:
    """How many of the visitor's messages a greeting sent on ``kind`` comes after: a later message is an
    answer to it. A greeting on the visitor's message comes after it; one on conversation_created after
    the message that created the conversation (its event may arrive first); one when the widget opened
    on an existing conversation after the messages seen so far."""
    if kind == "message_created":
        return incoming_now
    if kind in ("conversation_created", "conversation_opened"):
        return max(incoming_now, 1)
    return incoming_now


def decide(
    event: BotEvent,
    settings: BotSettings,
    now_utc: datetime,
    *,
    greeted: bool,
    handed_off: bool,
    incoming_seen: int,
    answer_after: int = 1,
) -> list[Step]:
    """The steps for one event, given what the bot already did in its conversation. ``incoming_seen``
    counts the visitor's messages before this one; ``answer_after`` is answers_after() of the greeting."""
    if handed_off or event.conversation_id is None:
        return []
    if event.kind in GREETING_EVENTS:
        return [] if greeted else [greeting(settings, now_utc)]
    if event.kind != "message_created" or not event.incoming:
        return []  # the bot's own or an agent's message, a private note, an activity: never answered
    steps = [] if greeted else [greeting(settings, now_utc)]
    if event.wants_human or (greeted and incoming_seen >= answer_after):
        steps.append(Step("handoff"))
    return steps
