"""BotReceiver: the receiver's side of the greeting bot. Chatwoot posts each agent-bot event to
/bots/chatwoot/<receiver id>/<secret> (bot_routes.py); receive() checks the secret against its keyed hash
in constant time, reads what the bot needs (no visitor text is kept), stores the event once per key (a
retried webhook is a duplicate, answered but never acted on twice) and hands it to the task engine, so
the answer is immediate. process() (the engine task "chatwoot_bot_event") greets, answers out of hours
or hands the conversation to human agents through Chatwoot's API with the bot's own access token; each
reply and hand-off is claimed by one conditional UPDATE first (never sent twice) and audited.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from huey import Huey
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core import audit
from core.chatwoot import bot_api
from core.chatwoot.bot_keys import (
    MAX_BODY,
    SELF_TEST_WINDOW,
    secret_hash,
    secret_matches,
    self_test_proof,
    self_test_signature,
    token_context,
)
from core.chatwoot.bots import settings_of
from core.chatwoot.client import ChatwootClient, ChatwootError
from core.chatwoot.greeting import BotEvent, answers_after, decide, read_event
from core.crypto import DecryptionError, FieldCipher
from core.models import ChatwootBot, ChatwootBotConversation, ChatwootBotEvent, Integration, utcnow

log = logging.getLogger("console.chatwoot_bot")
TASK_NAME = "chatwoot_bot_event"
KEEP_EVENTS = timedelta(days=30)


@dataclass(frozen=True)
class Received:
    """The receiver's answer: an HTTP status and a short word for Chatwoot (never a secret)."""

    status: int
    result: str


NOT_HERE = Received(404, "not found")


class BotReceiver:
    def __init__(self, factory: sessionmaker, cipher: FieldCipher, http_session: Callable[[], requests.Session]):
        self._factory = factory
        self._cipher = cipher
        self._http_session = http_session
        self._task: Callable[[int], object] | None = None

    def bind(self, huey: Huey) -> None:
        """Register process() as the engine task every consumer runs."""
        self._task = huey.task(name=TASK_NAME)(self.process)

    # ----- receiving ---------------------------------------------------------------------------

    def _bot(self, receiver_id: str, secret: str) -> ChatwootBot | None:
        if len(receiver_id) > 32 or len(secret) > 100:
            return None
        with self._factory() as session:
            row = session.scalar(select(ChatwootBot).where(ChatwootBot.receiver_id == receiver_id))
            if row is None:
                secret_hash(self._cipher, secret)  # the same work as a real check: no timing tells the ids
                return None
            if not secret_matches(self._cipher, secret, row.secret_hash):
                return None
            session.expunge(row)
            return row

    def receive(self, receiver_id: str, secret: str, body: bytes) -> Received:
        """One posted event. Unknown receiver or wrong secret: 404, and nothing else happens."""
        bot = self._bot(receiver_id, secret)
        if bot is None:
            return NOT_HERE
        if len(body) > MAX_BODY:
            return Received(413, "too large")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return Received(400, "not JSON")
        kind = payload.get("event") if isinstance(payload, dict) else None
        with self._factory.begin() as session:
            session.execute(
                update(ChatwootBot)
                .where(ChatwootBot.id == bot.id)
                .values(last_event_at=utcnow(), last_event_kind=str(kind or "unknown")[:40])
            )
        event = read_event(payload, bot.handoff_keyword)
        if event is None or bot.chatwoot_bot_id is None or bot.access_token is None:
            return Received(200, "ignored")
        if event.kind == "message_created" and not event.incoming:  # the bot's own, an agent's, a note
            return Received(200, "ignored")
        try:
            with self._factory.begin() as session:
                row = ChatwootBotEvent(
                    bot_id=bot.id,
                    event_key=event.key[:100],
                    kind=event.kind,
                    conversation_id=event.conversation_id,
                    incoming=event.incoming,
                    wants_human=event.wants_human,
                )
                session.add(row)
                session.flush()
                event_id = row.id
        except IntegrityError:
            return Received(200, "duplicate")
        if self._task is None:
            self.process(event_id)  # no engine wired (a CLI or test context): bounded by the session's deadline
            return Received(200, "done")
        try:
            self._task(event_id)
        except Exception as exc:  # the queue is down: say so, and let a retry of this event try again
            log.warning("greeting bot event %s could not be queued: %s", event_id, type(exc).__name__)
            with self._factory.begin() as session:
                session.execute(
                    update(ChatwootBotEvent)
                    .where(ChatwootBotEvent.id == event_id)
                    .values(event_key=f"unqueued:{event_id}")
                )
            return Received(503, "try again")
        return Received(200, "queued")

    def answer_self_test(self, receiver_id: str, body: bytes) -> Received | str:
        """The console's own signed test event: its proof (a str), or a refusal."""
        if len(body) > 4096 or len(receiver_id) > 32:
            return NOT_HERE
        try:
            payload = json.loads(body)
        except ValueError:
            return Received(400, "not JSON")
        if not isinstance(payload, dict):
            return Received(400, "not JSON")
        nonce, at, signature = payload.get("nonce"), payload.get("at"), payload.get("signature")
        if not (isinstance(nonce, str) and isinstance(at, int) and isinstance(signature, str)) or len(nonce) > 64:
            return NOT_HERE
        expected = self_test_signature(self._cipher, receiver_id, nonce, at)
        if not hmac.compare_digest(expected, signature) or abs(time.time() - at) > SELF_TEST_WINDOW:
            return NOT_HERE
        with self._factory() as session:
            if session.scalar(select(ChatwootBot.id).where(ChatwootBot.receiver_id == receiver_id)) is None:
                return NOT_HERE
        return self_test_proof(self._cipher, nonce)

    def prune(self, now: datetime, keep: timedelta = KEEP_EVENTS) -> int:
        """Forget events older than ``keep`` (a daily job): Chatwoot retries within minutes, not weeks."""
        with self._factory.begin() as session:
            result = session.execute(delete(ChatwootBotEvent).where(ChatwootBotEvent.received_at < now - keep))
            return result.rowcount if isinstance(result, CursorResult) else 0

    # ----- acting --------------------------------------------------------------------------------

    def process(self, event_id: int) -> None:
        """Act on one stored event, at most once (the engine task; safe to run again)."""
        now = utcnow()
        with self._factory.begin() as session:
            claimed = session.execute(
                update(ChatwootBotEvent)
                .where(ChatwootBotEvent.id == event_id, ChatwootBotEvent.started_at.is_(None))
                .values(started_at=now)
            )
            if not isinstance(claimed, CursorResult) or claimed.rowcount != 1:
                return
            event = session.get(ChatwootBotEvent, event_id)
            bot = session.get(ChatwootBot, event.bot_id) if event else None
            integration = session.get(Integration, bot.integration_id) if bot else None
            if event is None or bot is None or integration is None or event.conversation_id is None:
                return
            if not integration.is_active or bot.access_token is None:
                event.outcome = "skipped: the integration is inactive" if not integration.is_active else "skipped"
                return
            config = integration.configuration or {}
            base_url, account_id = str(config.get("baseUrl") or ""), str(config.get("accountId") or "")
            bot_id, integration_id, sealed = bot.id, integration.id, bot.access_token
            settings = settings_of(bot)
            seen = BotEvent(event.kind, event.event_key, event.conversation_id, event.incoming, event.wants_human)
        conversation = self._conversation(bot_id, seen.conversation_id or 0)
        with self._factory.begin() as session:
            if seen.incoming:
                session.execute(
                    update(ChatwootBotConversation)
                    .where(ChatwootBotConversation.id == conversation)
                    .values(incoming=ChatwootBotConversation.incoming + 1)
                )
            state = session.get(ChatwootBotConversation, conversation, populate_existing=True)
            if state is None:
                return
            before = state.incoming - (1 if seen.incoming else 0)
            steps = decide(
                seen,
                settings,
                now,
                greeted=state.greeted_at is not None,
                handed_off=state.handed_off_at is not None,
                incoming_seen=before,
                answer_after=state.answer_after,
            )
            claimed_steps = []
            for step in steps:  # each claimed by one conditional UPDATE: a step is never done twice
                column = (
                    ChatwootBotConversation.handed_off_at
                    if step.action == "handoff"
                    else ChatwootBotConversation.greeted_at
                )
                values: dict = {column.key: now}
                if step.action != "handoff":
                    values["answer_after"] = answers_after(seen.kind, state.incoming)
                result = session.execute(
                    update(ChatwootBotConversation)
                    .where(ChatwootBotConversation.id == conversation, column.is_(None))
                    .values(values)
                )
                if isinstance(result, CursorResult) and result.rowcount == 1:
                    claimed_steps.append(step)
        if not claimed_steps:
            self._outcome(event_id, "nothing to do")
            return
        try:
            token = self._cipher.decrypt(sealed, token_context(bot_id))
        except DecryptionError:
            self._outcome(event_id, "the bot's token could not be decrypted", bot_id)
            return
        session = self._http_session()
        try:
            client = ChatwootClient(
                base_url, token, session, account_id=int(account_id) if account_id.isdigit() else None
            )
            done = []
            for step in claimed_steps:
                done.append(self._do(client, step.action, step.text, integration_id, bot_id, seen.conversation_id or 0))
            self._outcome(event_id, ", ".join(done))
        finally:
            session.close()

    def _conversation(self, bot_id: int, conversation_id: int) -> int:
        with self._factory() as session:
            found = session.scalar(
                select(ChatwootBotConversation.id).where(
                    ChatwootBotConversation.bot_id == bot_id, ChatwootBotConversation.conversation_id == conversation_id
                )
            )
        if found is not None:
            return found
        try:
            with self._factory.begin() as session:
                row = ChatwootBotConversation(bot_id=bot_id, conversation_id=conversation_id)
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:  # another event of the conversation made it meanwhile
            return self._conversation(bot_id, conversation_id)

    def _do(
        self, client: ChatwootClient, action: str, text: str, integration_id: int, bot_id: int, conversation_id: int
    ) -> str:
        what = "chatwoot_bot.handoff" if action == "handoff" else "chatwoot_bot.reply"
        details: dict = {"conversation_id": conversation_id, "kind": action}
        try:
            if action == "handoff":
                bot_api.open_conversation(client, conversation_id)
            else:
                details["message_id"] = bot_api.send_message(client, conversation_id, text)
        except ChatwootError as exc:
            details["message"] = str(exc)
            audit.record_now(self._factory, None, what, "failure", integration_id=integration_id, details=details)
            with self._factory.begin() as session:
                session.execute(
                    update(ChatwootBot).where(ChatwootBot.id == bot_id).values(last_error=f"{action}: {exc}"[:500])
                )
            return f"{action} failed"
        audit.record_now(self._factory, None, what, "success", integration_id=integration_id, details=details)
        return action

    def _outcome(self, event_id: int, outcome: str, bot_id: int | None = None) -> None:
        with self._factory.begin() as session:
            session.execute(
                update(ChatwootBotEvent).where(ChatwootBotEvent.id == event_id).values(outcome=outcome[:200])
            )
            if bot_id is not None:
                session.execute(update(ChatwootBot).where(ChatwootBot.id == bot_id).values(last_error=outcome[:500]))


__all__ = ["NOT_HERE", "TASK_NAME", "BotReceiver", "Received"]
