"""SubscriptionService: who is told about health changes, about which states, over which channel.

- Everyone manages only their own subscriptions (another person's is "not found").
- Scope ``own``: changes of the person's own integrations. Scope ``all``: every integration, for
  administrators only (refused for members, and ignored by the pipeline once the person is demoted).
- An e-mail address is stored in clear (it is shown on the page anyway); a Slack URL, a webhook URL and
  its signing secret are credentials: encrypted (AES-256-GCM, bound to the subscription's row and field,
  ``alert_subscription:<id>:<field>``) and never shown again (the page shows the host and a mask).
- A person with no subscription at all gets the default: e-mail to their account address when one of
  their integrations becomes failing, paused or needs_reconnect, and when it recovers. A subscription,
  even a switched-off one, replaces the default (switch one off to mute every alert).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.alerts.channels import CHANNEL_LABELS, CHANNELS, Target, url_hint
from core.audit import Actor
from core.crypto import FieldCipher
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.fields import MASK
from core.models import AlertDelivery, AlertSubscription, Incident, Integration, utcnow
from core.signing import MIN_SECRET_LENGTH

ALERT_STATES = ("degraded", "failing", "paused", "needs_reconnect")
DEFAULT_STATES = ("failing", "paused", "needs_reconnect")
SCOPES = ("own", "all")
MAX_URL = 2000
MAX_SUBSCRIPTIONS = 20  # per person
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def subscription_context(subscription_id: int, field: str) -> bytes:
    """The associated data of a subscription's encrypted target or secret."""
    return f"alert_subscription:{int(subscription_id)}:{field}".encode()


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    channel: str
    target_hint: str
    shown_target: str  # the e-mail address, or MASK for a URL
    states: tuple[str, ...]
    recovery: bool
    scope: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)


@dataclass(frozen=True)
class DeliveryView:
    id: int
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    kind: str
    channel: str
    target_hint: str
    integration_id: int | None
    integration_name: str | None
    incident_id: int | None
    status: str
    attempts: int
    last_error: str | None
    recipient_key: str


@dataclass(frozen=True)
class ChannelProblem:
    """A channel whose last delivery failed (or is being retried), with the redacted reason."""

    recipient_key: str
    channel: str
    target_hint: str
    error: str
    at: datetime
    retrying: bool

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)


@dataclass(frozen=True)
class IncidentView:
    id: int
    key: str
    provider: str | None
    host: str | None
    member_count: int
    first_seen: datetime
    opened_at: datetime


def _view(row: AlertSubscription) -> SubscriptionView:
    return SubscriptionView(
        row.id,
        row.channel,
        row.target_hint,
        row.target if row.channel == "email" else MASK,
        tuple(s for s in ALERT_STATES if s in (row.states or [])),
        row.recovery,
        row.scope,
        row.active,
        row.created_at,
        row.updated_at,
    )


def _kept(value: str | None) -> bool:
    """A form's mask or an empty field keeps the stored secret."""
    return value is None or not value.strip() or value.strip() == MASK


def url_problem(url: str, what: str) -> str | None:
    if len(url) > MAX_URL:
        return f"The {what} is longer than {MAX_URL} characters."
    if any(c.isspace() for c in url):
        return f"The {what} has a space or a line break in it. Paste it again."
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"Enter the {what} as a web address starting with https://."
    return None


class SubscriptionService:
    def __init__(self, factory: sessionmaker, cipher: FieldCipher):
        self._factory = factory
        self._cipher = cipher

    # ----- reading ------------------------------------------------------------------------------

    def list(self, actor: Actor) -> list[SubscriptionView]:
        with self._factory() as session:
            rows = session.scalars(
                select(AlertSubscription).where(AlertSubscription.user_id == actor.id).order_by(AlertSubscription.id)
            )
            return [_view(r) for r in rows]

    def get(self, actor: Actor, subscription_id: int) -> SubscriptionView:
        with self._factory() as session:
            return _view(self._own(session, actor, subscription_id))

    def uses_default(self, actor: Actor) -> bool:
        """True when the person has no subscription, so the default e-mail applies."""
        with self._factory() as session:
            return session.scalar(select(AlertSubscription.id).where(AlertSubscription.user_id == actor.id)) is None

    def target_of(self, row: AlertSubscription) -> Target:
        """Where a subscription's alerts go, its credentials decrypted (DecryptionError when they do not open)."""
        if row.channel == "email":
            return Target(row.target)
        address = self._cipher.decrypt(row.target, subscription_context(row.id, "target"))
        secret = self._cipher.decrypt(row.secret, subscription_context(row.id, "secret")) if row.secret else None
        return Target(address, secret)

    def recent_deliveries(self, actor: Actor, limit: int = 50) -> list[DeliveryView]:
        """The person's own alerts, newest first."""
        query = (
            select(AlertDelivery, Integration.name)
            .outerjoin(Integration, Integration.id == AlertDelivery.integration_id)
            .where(AlertDelivery.user_id == actor.id)
            .order_by(AlertDelivery.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        with self._factory() as session:
            return [
                DeliveryView(
                    d.id,
                    d.created_at,
                    d.due_at,
                    d.sent_at,
                    d.kind,
                    d.channel,
                    d.target_hint,
                    d.integration_id,
                    name,
                    d.incident_id,
                    d.status,
                    d.attempts,
                    d.last_error,
                    d.recipient_key,
                )
                for d, name in session.execute(query)
            ]

    def failing_channels(self, actor: Actor) -> list[ChannelProblem]:
        """Each of the person's channels whose last attempted delivery failed or is waiting for a retry."""
        query = (
            select(AlertDelivery)
            .where(AlertDelivery.user_id == actor.id, AlertDelivery.attempts > 0)
            .order_by(AlertDelivery.id.desc())
            .limit(500)
        )
        with self._factory() as session:
            live = {
                f"sub:{i}"
                for i in session.scalars(
                    select(AlertSubscription.id).where(
                        AlertSubscription.user_id == actor.id, AlertSubscription.active.is_(True)
                    )
                )
            }
            if not live and self.uses_default(actor):
                live = {f"owner:{actor.id}"}
            seen: set[str] = set()
            problems = []
            for d in session.scalars(query):
                if d.recipient_key in seen or d.recipient_key not in live:
                    continue
                seen.add(d.recipient_key)
                retrying = d.status == "pending" and bool(d.last_error)
                if d.status == "failed" or retrying:
                    problems.append(
                        ChannelProblem(
                            d.recipient_key, d.channel, d.target_hint, d.last_error or "", d.created_at, retrying
                        )
                    )
            return problems

    def open_incidents(self, actor: Actor) -> list[IncidentView]:
        if not actor.is_admin:
            raise PermissionDeniedError("Only administrators see incidents across everyone's integrations.")
        with self._factory() as session:
            rows = session.scalars(select(Incident).where(Incident.closed_at.is_(None)).order_by(Incident.id))
            return [
                IncidentView(r.id, r.key, r.provider, r.host, r.member_count, r.first_seen, r.opened_at) for r in rows
            ]

    # ----- writing ------------------------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        channel: str,
        target: str,
        states: Iterable[str],
        recovery: bool = True,
        scope: str = "own",
        active: bool = True,
        secret: str | None = None,
    ) -> SubscriptionView:
        target = (target or "").strip()
        states = tuple(states)
        errors = self._problems(actor, channel, target, states, scope, secret, creating=True)
        if errors:
            raise ValidationError(errors)
        with self._factory.begin() as session:
            count = len(
                session.scalars(select(AlertSubscription.id).where(AlertSubscription.user_id == actor.id)).all()
            )
            if count >= MAX_SUBSCRIPTIONS:
                full = f"You have {MAX_SUBSCRIPTIONS} subscriptions already. Delete one before adding another."
                raise ValidationError({"channel": full})
            row = AlertSubscription(
                user_id=actor.id,
                channel=channel,
                target="",  # sealed below, once the row has its id (the ciphertext is bound to it)
                target_hint=target if channel == "email" else url_hint(target),
                states=[s for s in ALERT_STATES if s in states],
                recovery=recovery,
                scope=scope,
                active=active,
            )
            session.add(row)
            session.flush()
            self._seal(row, target, secret)
            audit.record(session, actor, "alert.subscription_created", "success", details=self._details(row))
            session.flush()
            return _view(row)

    def update(
        self,
        actor: Actor,
        subscription_id: int,
        target: str | None,
        states: Iterable[str],
        recovery: bool,
        scope: str,
        active: bool,
        secret: str | None = None,
    ) -> SubscriptionView:
        """Change a subscription. For a URL, the mask (or nothing) keeps the stored one; so for a secret."""
        states = tuple(states)
        with self._factory.begin() as session:
            row = self._own(session, actor, subscription_id)
            keep_target = row.channel != "email" and _kept(target)
            new_target = None if keep_target else (target or "").strip()
            errors = self._problems(
                actor, row.channel, new_target, states, scope, None if _kept(secret) else secret, creating=False
            )
            if errors:
                raise ValidationError(errors)
            row.states = [s for s in ALERT_STATES if s in states]
            row.recovery, row.scope, row.active = recovery, scope, active
            row.updated_at = utcnow()
            if new_target is not None:
                row.target_hint = new_target if row.channel == "email" else url_hint(new_target)
            self._seal(row, new_target, None if _kept(secret) else secret)
            audit.record(session, actor, "alert.subscription_updated", "success", details=self._details(row))
            return _view(row)

    def delete(self, actor: Actor, subscription_id: int) -> None:
        with self._factory.begin() as session:
            row = self._own(session, actor, subscription_id)
            details = self._details(row)
            session.delete(row)
            audit.record(session, actor, "alert.subscription_deleted", "success", details=details)

    # ----- helpers ------------------------------------------------------------------------------

    def _own(self, session: Session, actor: Actor, subscription_id: int) -> AlertSubscription:
        row = session.get(AlertSubscription, subscription_id)
        if row is None or row.user_id != actor.id:
            raise NotFoundError(f"There is no alert subscription {subscription_id} of yours. Reload the page.")
        return row

    def _seal(self, row: AlertSubscription, target: str | None, secret: str | None) -> None:
        if target is not None:
            row.target = (
                target
                if row.channel == "email"
                else self._cipher.encrypt(target, subscription_context(row.id, "target"))
            )
        if secret is not None and row.channel == "webhook":
            row.secret = self._cipher.encrypt(secret.strip(), subscription_context(row.id, "secret"))

    @staticmethod
    def _details(row: AlertSubscription) -> dict:
        return {
            "subscription": row.id,
            "channel": row.channel,
            "target": row.target_hint,
            "states": list(row.states or []),
            "recovery": row.recovery,
            "scope": row.scope,
            "active": row.active,
        }

    @staticmethod
    def _problems(
        actor: Actor,
        channel: str,
        target: str | None,
        states: tuple[str, ...],
        scope: str,
        secret: str | None,
        creating: bool,
    ) -> dict[str, str]:
        errors: dict[str, str] = {}
        if channel not in CHANNELS:
            errors["channel"] = "Choose e-mail, Slack webhook or signed webhook."
            return errors
        if target is not None:
            if channel == "email":
                if not _EMAIL.match(target) or len(target) > 254:
                    errors["target"] = "Enter an e-mail address such as ops@example.com."
            elif problem := url_problem(target, "Slack webhook URL" if channel == "slack" else "webhook URL"):
                errors["target"] = problem
        if unknown := [s for s in states if s not in ALERT_STATES]:
            errors["states"] = f"Unknown state {', '.join(unknown)}. Choose from: {', '.join(ALERT_STATES)}."
        if scope not in SCOPES:
            errors["scope"] = "Choose your own integrations, or everyone's."
        elif scope == "all" and not actor.is_admin:
            errors["scope"] = "Only administrators can be alerted about everyone's integrations; choose your own."
        if channel == "webhook":
            if secret is not None and len(secret.strip()) < MIN_SECRET_LENGTH:
                errors["secret"] = f"The signing secret must be at least {MIN_SECRET_LENGTH} characters long."
            elif secret is None and creating:
                errors["secret"] = "Enter a signing secret (one is filled in for you), and give it to the receiver."
        return errors
