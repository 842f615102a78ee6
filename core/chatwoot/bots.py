"""BotService: the greeting bot of a Chatwoot integration, on the staff side: its settings, its agent bot
in Chatwoot (created once, with the "Auto-create bots" toggle on), attaching it to inboxes, the
receiver's status and the self-test. core.chatwoot.bot_events is the receiver's side.

The agent bot's outgoing URL is the console's receiver, PUBLIC_BASE_URL + /bots/chatwoot/<receiver id>/
<secret>; the secret exists only in that URL (in Chatwoot) and as a keyed hash here. The bot's access
token, which Chatwoot returns when it creates the bot, is stored encrypted, bound to its row, and never
shown, logged or audited.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.audit import Actor
from core.chatwoot import bot_api, bot_delivery, leases
from core.chatwoot.bot_keys import (
    new_receiver_id,
    new_secret,
    reachability_problem,
    receiver_prefix,
    receiver_url,
    secret_hash,
    self_test_proof,
    self_test_signature,
    token_context,
)
from core.chatwoot.client import ChatwootClient, ChatwootError
from core.chatwoot.greeting import BotSettings, days_text, parse_days
from core.chatwoot.helpdesk import (
    PROVIDER_KEY,
    HelpdeskConnection,
    HelpdeskError,
    HelpdeskService,
    HelpdeskUnavailable,
    feature_on,
)
from core.crypto import FieldCipher
from core.http import describe_exception, read_json
from core.integrations.service import IntegrationService
from core.models import ChatwootBot, utcnow
from core.paths import SELF_TEST
from core.ratelimit import Bucket

T = TypeVar("T")
BOT_BUSY = "Another request is creating the greeting bot in this Chatwoot account right now. Try again in a moment."
BOTS_OFF = (
    "The integration's Auto-create bots toggle is off, so the console creates no agent bot in this Chatwoot "
    "account. Switch it on (Edit on the Integrations page) to use the greeting bot."
)


@dataclass(frozen=True)
class BotStatus:
    """What a page shows of a greeting bot (no secret in it)."""

    integration_id: int
    auto_create_bots: bool
    auto_create_inboxes: bool
    configured: bool  # settings saved in the console
    chatwoot_bot_id: int | None  # the agent bot in Chatwoot, once created
    receiver_address: str | None  # without its secret
    settings: BotSettings
    reachability: str | None  # why Chatwoot could not reach the receiver, or None
    last_event_at: datetime | None = None
    last_event_kind: str | None = None
    last_error: str | None = None
    self_test_at: datetime | None = None
    self_test_ok: bool | None = None
    self_test_message: str | None = None

    @property
    def state_text(self) -> str:
        if not self.auto_create_bots:
            return BOTS_OFF
        if self.chatwoot_bot_id is None:
            return (
                "The greeting bot is not in Chatwoot yet: create it below, or create a website inbox on the Chat "
                "widget page."
            )
        return (
            f"The greeting bot is Chatwoot agent bot #{self.chatwoot_bot_id}; it answers the inboxes it is attached to."
        )


def settings_of(row: ChatwootBot | None) -> BotSettings:
    if row is None:
        return BotSettings()
    return BotSettings(
        welcome_message=row.welcome_message,
        out_of_hours_message=row.out_of_hours_message,
        handoff_keyword=row.handoff_keyword,
        office_hours_enabled=row.office_hours_enabled,
        timezone=row.timezone,
        office_days=parse_days(row.office_days),
        office_from=row.office_from,
        office_to=row.office_to,
    )


def _apply(row: ChatwootBot, settings: BotSettings) -> None:
    row.welcome_message = settings.welcome_message.strip()
    row.out_of_hours_message = settings.out_of_hours_message.strip()
    row.handoff_keyword = settings.handoff_keyword.strip()
    row.office_hours_enabled = settings.office_hours_enabled
    row.timezone = settings.timezone
    row.office_days = days_text(settings.office_days)
    row.office_from = settings.office_from
    row.office_to = settings.office_to


def _call(function: Callable[[], T]) -> T:
    try:
        return function()
    except ChatwootError as exc:
        raise HelpdeskError(str(exc), exc.reason) from None


class BotService:
    def __init__(
        self,
        factory: sessionmaker,
        cipher: FieldCipher,
        integrations: IntegrationService,
        helpdesk: HelpdeskService,
        http_session: Callable[[], requests.Session],
        public_base_url: str | None,
    ):
        self._factory = factory
        self._cipher = cipher
        self._integrations = integrations
        self._helpdesk = helpdesk
        self._http_session = http_session
        self.public_base_url = public_base_url

    # ----- reading ---------------------------------------------------------------------------

    def toggles(self, actor: Actor, integration_id: int) -> tuple[bool, bool]:
        """(auto-create inboxes, auto-create bots) of the actor's own Chatwoot integration; no remote call."""
        view = self._integrations.get(actor, integration_id)
        if view.provider != PROVIDER_KEY or view.owner != actor.username:
            raise HelpdeskUnavailable(
                f"Integration {integration_id} is not one of your Chatwoot integrations.", "no_integration"
            )
        config = view.configuration or {}
        return feature_on(config, "autoCreateInboxes"), feature_on(config, "autoCreateBots")

    def status(self, actor: Actor, integration_id: int) -> BotStatus:
        inboxes_on, bots_on = self.toggles(actor, integration_id)
        view = self._integrations.get(actor, integration_id)
        with self._factory() as session:
            row = session.scalar(select(ChatwootBot).where(ChatwootBot.integration_id == integration_id))
            address = (
                receiver_prefix(self.public_base_url, row.receiver_id) + "…" if row and self.public_base_url else None
            )
            return BotStatus(
                integration_id=integration_id,
                auto_create_bots=bots_on,
                auto_create_inboxes=inboxes_on,
                configured=row is not None,
                chatwoot_bot_id=row.chatwoot_bot_id if row else None,
                receiver_address=address,
                settings=settings_of(row),
                reachability=reachability_problem(self.public_base_url, str(view.configuration.get("baseUrl") or "")),
                last_event_at=row.last_event_at if row else None,
                last_event_kind=row.last_event_kind if row else None,
                last_error=row.last_error if row else None,
                self_test_at=row.self_test_at if row else None,
                self_test_ok=row.self_test_ok if row else None,
                self_test_message=row.self_test_message if row else None,
            )

    # ----- settings --------------------------------------------------------------------------

    def save_settings(self, actor: Actor, integration_id: int, settings: BotSettings) -> BotStatus:
        """Store the greeting bot's settings (no remote call). Raises ValidationError. Audited."""
        self.toggles(actor, integration_id)
        settings.validate()
        with self._factory.begin() as session:
            row = self._row(session, integration_id)
            _apply(row, settings)
            audit.record(
                session,
                actor,
                "chatwoot_bot.settings",
                "success",
                integration_id=integration_id,
                details={"office_hours": settings.office_hours_enabled, "keyword": bool(settings.handoff_keyword)},
            )
        return self.status(actor, integration_id)

    def _row(self, session: Session, integration_id: int) -> ChatwootBot:
        row = session.scalar(select(ChatwootBot).where(ChatwootBot.integration_id == integration_id))
        if row is None:
            # A throwaway hash: no address can match it until the bot is created with its real secret.
            row = ChatwootBot(
                integration_id=integration_id,
                receiver_id=new_receiver_id(),
                secret_hash=secret_hash(self._cipher, secrets.token_urlsafe(32)),
            )
            _apply(row, BotSettings())
            session.add(row)
            session.flush()
        return row

    # ----- the agent bot in Chatwoot ---------------------------------------------------------

    def ensure_bot(self, actor: Actor, integration_id: int) -> BotStatus:
        """Create the greeting bot in Chatwoot unless it is there already. Raises HelpdeskUnavailable or
        HelpdeskError (toggle off, PUBLIC_BASE_URL unset, Chatwoot's refusal)."""
        self._helpdesk.count_attempt(Bucket("chatwoot_create", str(actor.id)), "bots and inboxes created")
        with self._helpdesk.open(actor, integration_id) as (connection, client):
            self.ensure_in(actor, connection, client)
        return self.status(actor, integration_id)

    def ensure_in(self, actor: Actor, connection: HelpdeskConnection, client: ChatwootClient) -> int:
        """The Chatwoot id of the integration's agent bot, created (or re-pointed at the receiver) now if
        need be, through an open administrator's client. Idempotent: the account's bots are read first."""
        integration_id = connection.integration_id
        if not connection.auto_create_bots:
            raise HelpdeskError(BOTS_OFF, "feature_off")
        public = self.public_base_url
        if not public:
            raise HelpdeskError(reachability_problem(None, connection.base_url) or "", "no_public_url")
        with leases.held(self._factory, f"agent_bot:{int(integration_id)}", BOT_BUSY):
            return self._find_or_create(actor, connection, client, public)

    def _find_or_create(self, actor: Actor, connection: HelpdeskConnection, client: ChatwootClient, public: str) -> int:
        """ensure_in's work, under the integration's bot lease: two requests at once make one bot."""
        integration_id = connection.integration_id
        with self._factory.begin() as session:
            row = self._row(session, integration_id)
            row_id, receiver_id = row.id, row.receiver_id
            known_id, has_token = row.chatwoot_bot_id, row.access_token is not None
        bots = _call(lambda: bot_api.list_agent_bots(client))
        if known_id is not None and has_token and any(b.id == known_id for b in bots):
            return known_id
        secret = new_secret()
        url = receiver_url(public, receiver_id, secret)
        existing = next((b for b in bots if b.outgoing_url.startswith(receiver_prefix(public, receiver_id))), None)
        try:
            if existing is not None:
                bot, token = bot_api.update_agent_bot_url(client, existing.id, url)
            else:
                name = f"Greeting bot ({connection.integration_name})"[:100]
                description = "Welcomes visitors and hands conversations to agents (Integrations Console)."
                bot, token = bot_api.create_agent_bot(client, name, description, url)
        except ChatwootError as exc:
            self._record(actor, integration_id, "chatwoot_bot.create", "failure", message=str(exc))
            raise HelpdeskError(f"The greeting bot could not be created in Chatwoot: {exc}", exc.reason) from None
        if not token:
            message = (
                f"Chatwoot created the agent bot #{bot.id} but sent no access token for it, so the bot cannot reply. "
                "Delete that bot in Chatwoot (Settings > Bots) and try again."
            )
            self._record(actor, integration_id, "chatwoot_bot.create", "failure", message=message)
            raise HelpdeskError(message, "bad_response")
        with self._factory.begin() as session:
            row = session.get(ChatwootBot, row_id)
            if row is None:
                raise HelpdeskError("The integration was deleted meanwhile; nothing more was done.", "no_integration")
            row.secret_hash = secret_hash(self._cipher, secret)
            row.chatwoot_bot_id = bot.id
            row.access_token = self._cipher.encrypt(token, token_context(row.id))
            row.last_error = None
        self._record(
            actor,
            integration_id,
            "chatwoot_bot.create",
            "success",
            chatwoot_bot_id=bot.id,
            adopted=existing is not None,
        )
        return bot.id

    def attach(self, actor: Actor, connection: HelpdeskConnection, client: ChatwootClient, inbox_id: int) -> int:
        """Create the bot if need be and make it answer ``inbox_id``. Raises HelpdeskError. Audited."""
        bot_id = self.ensure_in(actor, connection, client)
        try:
            bot_api.set_agent_bot(client, inbox_id, bot_id)
        except ChatwootError as exc:
            self._record(
                actor, connection.integration_id, "chatwoot_bot.attach", "failure", inbox_id=inbox_id, message=str(exc)
            )
            raise HelpdeskError(
                f"The greeting bot could not be attached to inbox {inbox_id}: {exc}", exc.reason
            ) from None
        self._record(
            actor,
            connection.integration_id,
            "chatwoot_bot.attach",
            "success",
            inbox_id=inbox_id,
            chatwoot_bot_id=bot_id,
        )
        return bot_id

    def note_error(self, integration_id: int, message: str) -> None:
        with self._factory.begin() as session:
            self._row(session, integration_id).last_error = message[:500]

    def _record(self, actor: Actor | None, integration_id: int, action: str, outcome: str, **details) -> None:
        audit.record_now(self._factory, actor, action, outcome, integration_id=integration_id, details=details)

    # ----- the self-test ---------------------------------------------------------------------

    def self_test(self, actor: Actor, integration_id: int) -> BotStatus:
        """Post a signed test event to the receiver's public address through the outbound session (its
        deadline and address guard), and record whether this console answered it. Audited."""
        self.toggles(actor, integration_id)
        self._helpdesk.count_attempt(Bucket("chatwoot_create", str(actor.id)), "bots and inboxes created")
        public = self.public_base_url
        with self._factory.begin() as session:
            row = self._row(session, integration_id)
            receiver_id = row.receiver_id
        ok, message = False, ""
        if not public:
            message = reachability_problem(None, "") or ""
        else:
            nonce, at = secrets.token_urlsafe(16), int(time.time())
            body = {
                "event": "console_self_test",
                "nonce": nonce,
                "at": at,
                "signature": self_test_signature(self._cipher, receiver_id, nonce, at),
            }
            address = receiver_prefix(public, receiver_id) + SELF_TEST
            session = self._http_session()
            try:
                response = session.post(address, json=body, headers={"Accept": "application/json"})
                answer = read_json(response)
                proof = answer.get("proof") if isinstance(answer, dict) else None
                if response.status_code == 200 and isinstance(proof, str):
                    ok = hmac.compare_digest(proof, self_test_proof(self._cipher, nonce))
                message = (
                    f"The receiver at {public} answered the signed test event: Chatwoot can reach it there if it "
                    "can reach that address."
                    if ok
                    else f"{public} answered the test event with status {response.status_code}, but not as this "
                    "console's receiver. Check PUBLIC_BASE_URL points at this console (and a proxy passes /bots/)."
                )
            except requests.RequestException as exc:
                message = f"The self-test could not reach the receiver: {describe_exception(exc, 'The console')}"
            finally:
                session.close()
        with self._factory.begin() as db:
            row = self._row(db, integration_id)
            row.self_test_at, row.self_test_ok, row.self_test_message = utcnow(), ok, message[:500]
        self._record(actor, integration_id, "chatwoot_bot.self_test", "success" if ok else "failure", message=message)
        return self.status(actor, integration_id)

    # ----- the delivery check ----------------------------------------------------------------

    def delivery_check(
        self, actor: Actor, integration_id: int, now: datetime | None = None
    ) -> bot_delivery.DeliveryCheck:
        """Whether Chatwoot delivered the bot's recent conversations to the receiver (core.chatwoot.
        bot_delivery), as a sentence; Chatwoot's refusal or absence is a sentence too. Reads only.
        ``now`` (naive UTC) is the check's clock, the present unless given."""
        self.toggles(actor, integration_id)
        now = now or utcnow()
        with self._factory() as session:
            row = session.scalar(select(ChatwootBot).where(ChatwootBot.integration_id == integration_id))
            receiver_id = row.receiver_id if row and row.chatwoot_bot_id is not None else None
        if receiver_id is None:
            return bot_delivery.DeliveryCheck(
                None, "The greeting bot is not in Chatwoot yet, so there is no delivery to check.", checked_at=now
            )
        public = self.public_base_url
        address = receiver_prefix(public, receiver_id) + "…" if public else "(no PUBLIC_BASE_URL)"
        try:
            with self._helpdesk.open(actor, integration_id, require_admin=False) as (_connection, client):
                try:
                    names = {inbox.id: inbox.name for inbox in client.list_inboxes()}
                except ChatwootError as exc:
                    return bot_delivery.DeliveryCheck(
                        None, f"The delivery check could not read the inboxes from Chatwoot: {exc}", checked_at=now
                    )
                return bot_delivery.check(self._factory, client, integration_id, address, names, now)
        except HelpdeskError as exc:
            return bot_delivery.DeliveryCheck(None, f"The delivery check could not ask Chatwoot: {exc}", checked_at=now)


__all__ = ["BOTS_OFF", "BotService", "BotStatus", "settings_of"]
