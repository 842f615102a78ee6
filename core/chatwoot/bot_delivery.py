"""The greeting bot's delivery check: what Chatwoot itself delivered to the receiver.

The addresses (core.chatwoot.bot_keys.reachability_problem) and the self-test only say what the console
can tell about itself. This reads the recent conversations of the inboxes the bot was attached to, through
Chatwoot's conversations list (GET .../conversations?inbox_id=&status=all&page=), and compares them with
what the receiver recorded: a conversation with a visitor's message, started after the bot was attached
(or its receiver last changed), that the receiver never heard of means Chatwoot could not deliver it.

Bounded: at most MAX_INBOXES inboxes and MAX_PAGES pages of each, every request under the client's
deadline. The sentence never holds the receiver's secret (the address is shown up to its receiver id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.chatwoot.bot_api import BAD_RESPONSE
from core.chatwoot.client import ChatwootClient, ChatwootError
from core.models import AuditEvent, ChatwootBot, ChatwootBotConversation, ChatwootBotEvent

MAX_INBOXES = 5
MAX_PAGES = 2  # Chatwoot pages 25 conversations
PAGE_SIZE = 25
# Chatwoot posts to an agent bot from a background job: a conversation this young may still be on its way.
GRACE = timedelta(minutes=2)
INCOMING = 0  # Chatwoot's message_type of a visitor's message


@dataclass(frozen=True)
class SeenConversation:
    id: int  # Chatwoot's display id, the one the receiver records
    inbox_id: int
    created_at: datetime  # naive UTC, like the models' columns
    from_visitor: bool  # a visitor's message is among what the list shows of it


@dataclass(frozen=True)
class DeliveryCheck:
    """The check's outcome: ``delivered`` True (fine), False (conversations never reached the receiver) or
    None (nothing to check, or Chatwoot could not be asked); ``sentence`` says it, with what to do."""

    delivered: bool | None
    sentence: str
    missed: int = 0
    checked_at: datetime | None = None


def _number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _from_visitor(item: dict) -> bool:
    shown = [m for m in item.get("messages") or [] if isinstance(m, dict)]
    last = item.get("last_non_activity_message")
    if isinstance(last, dict):
        shown.append(last)
    return any(_number(m.get("message_type")) == INCOMING for m in shown)


def _conversation(item: Any) -> SeenConversation | None:
    if not isinstance(item, dict):
        return None
    display_id, inbox_id, created = (
        _number(item.get("id")),
        _number(item.get("inbox_id")),
        _number(item.get("created_at")),
    )
    if display_id is None or inbox_id is None or created is None:
        return None
    at = datetime.fromtimestamp(created, UTC).replace(tzinfo=None)
    return SeenConversation(display_id, inbox_id, at, _from_visitor(item))


def list_conversations(client: ChatwootClient, inbox_id: int, page: int) -> list[SeenConversation]:
    """GET .../conversations?inbox_id=&status=all&page=: one page of the inbox's conversations, newest
    activity first. Raises ChatwootError."""
    path = f"{client.account_path()}/conversations?inbox_id={int(inbox_id)}&status=all&page={int(page)}"
    answer = client.call("GET", path)
    data = answer.get("data") if isinstance(answer, dict) else None
    items = data.get("payload") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ChatwootError(
            "Chatwoot's answer (a list of conversations) was not in the expected shape. Is the base URL a "
            "Chatwoot server?",
            reason=BAD_RESPONSE,
        )
    return [c for c in (_conversation(item) for item in items[:PAGE_SIZE]) if c is not None]


def attached_inboxes(factory: sessionmaker, integration_id: int) -> dict[int, datetime]:
    """Each inbox the bot was attached to, with when it started listening there: the later of its last
    attachment and the bot's last creation (a new receiver address), from the audit log."""
    with factory() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.at, AuditEvent.details)
            .where(
                AuditEvent.integration_id == integration_id,
                AuditEvent.action.in_(("chatwoot_bot.create", "chatwoot_bot.attach")),
                AuditEvent.outcome == "success",
            )
            .order_by(AuditEvent.id)
        ).all()
    created: datetime | None = None
    since: dict[int, datetime] = {}
    for action, at, details in rows:
        if action == "chatwoot_bot.create":
            created = at
        inbox_id = _number((details or {}).get("inbox_id"))
        if action == "chatwoot_bot.attach" and inbox_id is not None:
            since[inbox_id] = at
    # Chatwoot's times are whole seconds: a conversation of the attachment's own second counts.
    return {inbox: (max(at, created) if created else at).replace(microsecond=0) for inbox, at in since.items()}


def known_conversations(factory: sessionmaker, integration_id: int, ids: set[int]) -> set[int]:
    """Which of ``ids`` the receiver recorded an event or a conversation of."""
    if not ids:
        return set()
    with factory() as session:
        bot_id = session.scalar(select(ChatwootBot.id).where(ChatwootBot.integration_id == integration_id))
        if bot_id is None:
            return set()
        talked = session.scalars(
            select(ChatwootBotConversation.conversation_id).where(
                ChatwootBotConversation.bot_id == bot_id, ChatwootBotConversation.conversation_id.in_(ids)
            )
        ).all()
        heard = session.scalars(
            select(ChatwootBotEvent.conversation_id).where(
                ChatwootBotEvent.bot_id == bot_id, ChatwootBotEvent.conversation_id.in_(ids)
            )
        ).all()
    return {int(i) for i in (*talked, *heard) if i is not None}


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _names(counts: dict[str, int]) -> str:
    parts = [f"{n} conversation{'s' if n != 1 else ''} in {name}" for name, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def check(
    factory: sessionmaker,
    client: ChatwootClient,
    integration_id: int,
    receiver_address: str,
    inbox_names: dict[int, str],
    now: datetime,
) -> DeliveryCheck:
    """Compare the attached inboxes' recent conversations with what the receiver recorded.

    ``receiver_address`` is already masked (no secret); ``now`` is naive UTC."""
    inboxes = sorted(attached_inboxes(factory, integration_id).items(), key=lambda kv: kv[1], reverse=True)
    if not inboxes:
        return DeliveryCheck(
            None,
            "The greeting bot was not attached to an inbox from the console yet, so there is no delivery to check: "
            "create a website inbox on the Chat widget page (with Auto-create inboxes on) and check again.",
            checked_at=now,
        )
    candidates: list[SeenConversation] = []
    for inbox_id, since in inboxes[:MAX_INBOXES]:
        for page in range(1, MAX_PAGES + 1):
            try:
                seen = list_conversations(client, inbox_id, page)
            except ChatwootError as exc:
                name = inbox_names.get(inbox_id) or f"inbox {inbox_id}"
                return DeliveryCheck(
                    None,
                    f"The delivery check could not read the conversations of {name} from Chatwoot: {exc}",
                    checked_at=now,
                )
            candidates += [
                c for c in seen if c.inbox_id == inbox_id and c.from_visitor and since <= c.created_at <= now - GRACE
            ]
            # Newest activity first: a page with nothing after `since` ends this inbox's reading.
            if len(seen) < PAGE_SIZE or all(c.created_at < since for c in seen):
                break
    unique = {c.id: c for c in candidates}
    if not unique:
        return DeliveryCheck(
            None,
            "No visitor started a conversation in the bot's inboxes since it was attached (a minute or two ago "
            "is not counted yet), so there is no delivery to check yet.",
            checked_at=now,
        )
    known = known_conversations(factory, integration_id, set(unique))
    missed = [c for c in unique.values() if c.id not in known]
    if not missed:
        return DeliveryCheck(True, "Chatwoot delivered every recent conversation to the receiver.", checked_at=now)
    counts: dict[str, int] = {}
    for c in sorted(missed, key=lambda c: c.created_at):
        name = inbox_names.get(c.inbox_id) or f"inbox {c.inbox_id}"
        counts[name] = counts.get(name, 0) + 1
    first = min(c.created_at for c in missed)
    sentence = (
        f"Chatwoot has {_names(counts)} since {_when(first)} that never reached the receiver at "
        f"{receiver_address}: Chatwoot's server cannot reach it. Set PUBLIC_BASE_URL to an address Chatwoot's "
        "server can reach (a public host name, or a tunnel or proxy to the console that passes /bots/ through), "
        "restart the console, then check again."
    )
    return DeliveryCheck(False, sentence, missed=len(missed), checked_at=now)


__all__ = ["DeliveryCheck", "SeenConversation", "check", "list_conversations"]
