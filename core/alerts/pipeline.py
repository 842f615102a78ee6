"""AlertPipeline: health changes become alerts, grouped into incidents, delivered with retries.

The engine calls these plain, synchronous functions from its tasks; each is idempotent and safe to run
twice, or at once in two processes:

- ``process_changes()`` claims unprocessed HealthChange rows one by one (a conditional UPDATE of
  processed_at, in the same transaction as the deliveries it creates), decides who is told, and creates
  AlertDelivery rows due ALERT_GROUP_WINDOW_SECONDS later (so an outage can still absorb them). It
  returns the ids of the pending deliveries it created, each with its own due time: call ``deliver(id)``
  for each; one not due yet is not sent and says when it is (``retry_at``). A change that fails to
  process (a lost race on an incident) is left unprocessed and taken again by the next call.
- ``due(now, limit)``: pending deliveries whose time has come, for a sweeper.
- ``deliver(id)``: sends one delivery (at least once: a crash between sending and recording sends it
  again after its claim expires), retries with exponential backoff, audits ``alert.sent`` and
  ``alert.failed``, and suppresses what an incident (or a deletion) has made pointless.
- ``close_recovered_incidents()``: closes incidents whose members are all connected again (or paused,
  switched off or deleted), with one "incident closed" alert per recipient of its "opened" alert; the
  members still not connected then get their own alert.

Who is told: the integration's owner (their subscriptions, or with none the default e-mail to their
account address for failing, paused and needs_reconnect, and recovery), and administrators with a
subscription of scope ``all``. A worsening (core.integrations.health.worsened) is told to each recipient
whose subscription lists the new state; a recovery only to those who were told of the worsening and
asked for recoveries. A worsening still waiting for its window is replaced by a later one, and dropped
when the integration recovers before it went out.

An outage: when ALERT_INCIDENT_THRESHOLD integrations of one provider (or one customer host) worsened
within ALERT_GROUP_WINDOW_SECONDS and are still not connected, one Incident opens for that key; each
recipient gets one "incident opened" alert (naming only their own integrations), and the members' own
alerts are suppressed while it is open.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import requests
from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.alerts.channels import DeliveryError, EmailChannel, SignedWebhookChannel, SlackChannel, Target, url_hint
from core.alerts.messages import (
    AlertMessage,
    IncidentFacts,
    change_message,
    incident_message,
    link_completed_message,
    sample_alert,
)
from core.alerts.subscriptions import DEFAULT_STATES, SubscriptionService
from core.audit import Actor
from core.catalog import Catalog
from core.crypto import DecryptionError, FieldCipher
from core.errors import NotFoundError
from core.integrations.checks import target_host
from core.integrations.health import SEVERITY, Health, recovered, worsened
from core.models import (
    AlertDelivery,
    AlertSubscription,
    ConnectLink,
    HealthChange,
    Incident,
    IncidentMember,
    Integration,
    User,
    utcnow,
)
from core.redaction import redact
from core.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_FIRST = timedelta(seconds=30)  # then 1, 2, 4, 8 minutes ... at most BACKOFF_CAP
BACKOFF_CAP = timedelta(hours=1)
CLAIM_MARGIN = timedelta(seconds=60)
MAX_BATCH = 5000


@dataclass(frozen=True)
class DeliveryOutcome:
    """sent | retry (at retry_at: backoff, not due yet, or being sent elsewhere) | failed (for good) |
    suppressed (an incident covers it, or it has become pointless) | done (finished before: nothing done)."""

    status: str
    message: str
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Recipient:
    key: str  # sub:<subscription id> or owner:<user id>
    user_id: int
    subscription_id: int | None
    channel: str
    target_hint: str
    scope_all: bool = False


def _changed(session: Session, statement: Any) -> int:
    """How many rows a conditional UPDATE changed (Session.execute types its result without rowcount)."""
    return cast(CursorResult, session.execute(statement.execution_options(synchronize_session=False))).rowcount


def backoff(attempts: int) -> timedelta:
    """The wait after the attempts-th failed attempt: 30 s, 1, 2, 4, 8 min ... at most an hour."""
    return min(BACKOFF_FIRST * (2 ** max(0, attempts - 1)), BACKOFF_CAP)


def _health(value: str | None) -> Health | None:
    try:
        return Health(value or "")
    except ValueError:
        return None


def _unhealthy(value: str | None) -> bool:
    state = _health(value)
    return state is not None and SEVERITY[state] > 0


def _default_host(catalog: Catalog | None, integration: Integration) -> str | None:
    """The customer host an integration calls (the one the per-host check cap counts), for host outages."""
    if catalog is None or integration.provider not in catalog:
        return None
    host = target_host(catalog.get(integration.provider), integration.configuration or {})
    return host.lower() if host else None


class AlertPipeline:
    def __init__(
        self,
        factory: sessionmaker,
        cipher: FieldCipher,
        settings: Settings,
        http_session_factory: Callable[[], requests.Session],
        clock: Callable[[], datetime] = utcnow,
        *,
        catalog: Catalog | None = None,
        channels: dict | None = None,
        host_of: Callable[[Integration], str | None] | None = None,
    ):
        self._factory = factory
        self._settings = settings
        self._clock = clock
        self._catalog = catalog
        self.subscriptions = SubscriptionService(factory, cipher)
        self.channels = channels or {
            "email": EmailChannel(settings.smtp),
            "slack": SlackChannel(http_session_factory),
            "webhook": SignedWebhookChannel(http_session_factory),
        }
        self._host_of = host_of or (lambda integration: _default_host(catalog, integration))
        self.window = timedelta(seconds=settings.alert_group_window_seconds)
        request_deadline = settings.http_connect_timeout + 2 * settings.http_read_timeout
        self._claim = timedelta(seconds=max(settings.smtp.timeout, request_deadline)) + CLAIM_MARGIN

    # ----- 1. health changes -> deliveries --------------------------------------------------------

    def process_changes(self, limit: int = 500) -> list[int]:
        """Claim and handle up to ``limit`` unprocessed health changes, oldest first; the ids of the pending
        deliveries created (call deliver() for each: it sends once due)."""
        with self._factory() as session:
            ids = session.scalars(
                select(HealthChange.id)
                .where(HealthChange.processed_at.is_(None))
                .order_by(HealthChange.id)
                .limit(max(1, min(limit, MAX_BATCH)))
            ).all()
        created: list[int] = []
        for change_id in ids:
            try:
                with self._factory.begin() as session:
                    now = self._clock()
                    claim = (
                        update(HealthChange)
                        .where(HealthChange.id == change_id, HealthChange.processed_at.is_(None))
                        .values(processed_at=now)
                    )
                    if _changed(session, claim) != 1:
                        continue  # another process took it
                    change = session.get(HealthChange, change_id)
                    integration = session.get(Integration, change.integration_id) if change else None
                    if change is None or integration is None:
                        continue
                    rows = self._handle_change(session, change, integration, now)
                    session.flush()
                    created += [r.id for r in rows if r.status == "pending"]
            except IntegrityError:
                # Another process created the same incident or delivery at the same moment: this change
                # stays unprocessed (its transaction rolled back) and the next call takes it again.
                log.info("health change %s lost a race and is processed again later", change_id)
        return created

    def _handle_change(
        self, session: Session, change: HealthChange, integration: Integration, now: datetime
    ) -> list[AlertDelivery]:
        old, new = _health(change.old), _health(change.new)
        if old is None or new is None:
            return []
        if change.check_class is None:  # a person paused or resumed it: they know; nobody is alerted
            return []
        if worsened(old, new):
            return self._on_worsened(session, change, integration, old, new, now)
        if recovered(old, new):
            return self._on_recovered(session, change, integration, now)
        return []

    def _on_worsened(
        self, session: Session, change: HealthChange, integration: Integration, old: Health, new: Health, now: datetime
    ) -> list[AlertDelivery]:
        incident, created = self._incident_for(session, integration, change, now)
        for recipient in self._recipients(session, integration, new, "worsened"):
            # A worsening or recovery still waiting for its window is replaced by this one.
            _suppress_unsent(
                session,
                recipient.key,
                integration.id,
                ("worsened", "recovered"),
                "Replaced by a later change of the same integration.",
            )
            row = self._add(
                session,
                recipient,
                dedupe_key=f"change:{change.id}:{recipient.key}",
                kind="worsened",
                integration_id=integration.id,
                health_change_id=change.id,
                old=old.value,
                new=new.value,
                message=change.message or "",
                due_at=now + self.window,
                now=now,
                incident=incident,
            )
            if row is not None:
                created.append(row)
            if incident is not None:
                opened = self._incident_alert(session, incident, recipient, "incident_opened", now)
                if opened is not None:
                    created.append(opened)
        return created

    def _on_recovered(
        self, session: Session, change: HealthChange, integration: Integration, now: datetime
    ) -> list[AlertDelivery]:
        created: list[AlertDelivery] = []
        for recipient in self._recipients(session, integration, Health.CONNECTED, "recovered"):
            _suppress_unsent(
                session,
                recipient.key,
                integration.id,
                ("worsened",),
                "It recovered before the alert went out, so none was sent.",
            )
            told = session.scalar(
                select(AlertDelivery)
                .where(
                    AlertDelivery.recipient_key == recipient.key,
                    AlertDelivery.integration_id == integration.id,
                    AlertDelivery.kind.in_(("worsened", "recovered")),
                    or_(
                        AlertDelivery.status.in_(("sent", "failed", "pending")),
                        AlertDelivery.incident_id.is_not(None),
                    ),
                )
                .order_by(AlertDelivery.id.desc())
                .limit(1)
            )
            if told is None or told.kind == "recovered":
                continue  # never told of a worsening (or told of the recovery already)
            incident = session.get(Incident, told.incident_id) if told.incident_id else None
            if told.incident_id is not None and (incident is None or incident.closed_at is not None):
                continue  # the incident's own "closed" alert (or the member alert after it) covers it
            row = self._add(
                session,
                recipient,
                dedupe_key=f"change:{change.id}:{recipient.key}",
                kind="recovered",
                integration_id=integration.id,
                health_change_id=change.id,
                old=change.old,
                new=change.new,
                message=change.message or "",
                due_at=now + self.window,
                now=now,
                incident=incident,
            )
            if row is not None:
                created.append(row)
        return created

    def link_completed(self, link_id: int) -> list[int]:
        """A customer connected through a link: its owner is told on each of their active subscriptions
        (whatever states they list), or by the default e-mail without any. Once per completion."""
        created: list[int] = []
        with self._factory.begin() as session:
            link = session.get(ConnectLink, link_id)
            owner = session.get(User, link.owner_id) if link else None
            if link is None or owner is None or not owner.active or link.completed_at is None:
                return created
            subs = session.scalars(
                select(AlertSubscription).where(
                    AlertSubscription.user_id == owner.id, AlertSubscription.active.is_(True)
                )
            ).all()
            recipients = [self._recipient(s) for s in subs] or [
                Recipient(f"owner:{owner.id}", owner.id, None, "email", owner.email)
            ]
            now = self._clock()
            stamp = f"{link.completed_at:%Y%m%d%H%M%S%f}"
            for recipient in recipients:
                row = self._add(
                    session,
                    recipient,
                    dedupe_key=f"link:{link.id}:{stamp}:{recipient.key}",
                    kind="link_completed",
                    integration_id=link.result_integration_id,
                    message="",
                    due_at=now,
                    now=now,
                )
                if row is not None:
                    created.append(row.id)
        return created

    # ----- recipients -----------------------------------------------------------------------------

    def _recipients(self, session: Session, integration: Integration, state: Health, kind: str) -> list[Recipient]:
        """Who is told of ``kind`` (worsened, recovered) reaching ``state`` for this integration."""

        def wanted(sub: AlertSubscription) -> bool:
            return sub.recovery if kind == "recovered" else state.value in (sub.states or [])

        found: list[Recipient] = []
        owner = session.get(User, integration.owner_id)
        if owner is not None and owner.active:
            subs = session.scalars(select(AlertSubscription).where(AlertSubscription.user_id == owner.id)).all()
            if not subs:
                if kind == "recovered" or state.value in DEFAULT_STATES:
                    found.append(Recipient(f"owner:{owner.id}", owner.id, None, "email", owner.email))
            else:
                found += [self._recipient(s) for s in subs if s.active and wanted(s)]
        admins = session.scalars(
            select(AlertSubscription)
            .join(User, User.id == AlertSubscription.user_id)
            .where(
                AlertSubscription.scope == "all",
                AlertSubscription.active.is_(True),
                User.active.is_(True),
                User.role == "admin",
                User.id != integration.owner_id,
            )
            .order_by(AlertSubscription.id)
        ).all()
        found += [self._recipient(s) for s in admins if wanted(s)]
        return found

    @staticmethod
    def _recipient(sub: AlertSubscription) -> Recipient:
        return Recipient(f"sub:{sub.id}", sub.user_id, sub.id, sub.channel, sub.target_hint, sub.scope == "all")

    @staticmethod
    def _recipient_of(row: AlertDelivery) -> Recipient:
        return Recipient(row.recipient_key, row.user_id, row.subscription_id, row.channel, row.target_hint)

    def _add(
        self,
        session: Session,
        recipient: Recipient,
        *,
        dedupe_key: str,
        kind: str,
        now: datetime,
        due_at: datetime,
        incident: Incident | None = None,
        **values: object,
    ) -> AlertDelivery | None:
        """A new delivery, unless one with this dedupe key exists (then None). Covered by an open incident,
        it is created suppressed."""
        if session.scalar(select(AlertDelivery.id).where(AlertDelivery.dedupe_key == dedupe_key)) is not None:
            return None
        covered = incident is not None and incident.closed_at is None and kind in ("worsened", "recovered")
        row = AlertDelivery(
            dedupe_key=dedupe_key,
            recipient_key=recipient.key,
            user_id=recipient.user_id,
            subscription_id=recipient.subscription_id,
            channel=recipient.channel,
            target_hint=recipient.target_hint,
            kind=kind,
            created_at=now,
            due_at=due_at,
            attempts=0,
            status="suppressed" if covered else "pending",
            last_error=self._covered_sentence(incident) if covered and incident else None,
            incident_id=incident.id if incident is not None else None,
            **values,
        )
        session.add(row)
        session.flush()
        return row

    @staticmethod
    def _covered_sentence(incident: Incident) -> str:
        return f"Covered by incident {incident.id} ({incident.key}): one alert for the outage instead."

    # ----- incidents ------------------------------------------------------------------------------

    def _keys(self, integration: Integration) -> list[str]:
        host = self._host_of(integration)
        return [f"provider:{integration.provider}"] + ([f"host:{host}"] if host else [])

    def _incident_for(
        self, session: Session, integration: Integration, change: HealthChange, now: datetime
    ) -> tuple[Incident | None, list[AlertDelivery]]:
        """The open incident that covers this worsening (joined or opened now, with the alerts that made)."""
        member_of = session.scalar(
            select(Incident)
            .join(IncidentMember, IncidentMember.incident_id == Incident.id)
            .where(IncidentMember.integration_id == integration.id, Incident.closed_at.is_(None))
        )
        if member_of is not None:
            return member_of, []
        keys = self._keys(integration)
        for key in keys:
            incident = session.scalar(select(Incident).where(Incident.open_key == key))
            if incident is not None:
                self._join(session, incident, {integration.id: (change.at, change.old)}, now)
                return incident, []
        for key in keys:
            members = self._worsened_within(session, key, change.at)
            if len(members) >= self._settings.alert_incident_threshold:
                return self._open(session, key, integration, members, now)
        return None, []

    def _worsened_within(self, session: Session, key: str, at: datetime) -> dict[int, tuple[datetime, str]]:
        """Integrations of ``key`` that worsened within the window before ``at`` and are not connected now:
        id -> (when it first worsened, the state before)."""
        query = (
            select(HealthChange, Integration)
            .join(Integration, Integration.id == HealthChange.integration_id)
            .where(HealthChange.at >= at - self.window, HealthChange.at <= at)
            .order_by(HealthChange.at, HealthChange.id)
            .limit(MAX_BATCH)
        )
        kind, _, value = key.partition(":")
        if kind == "provider":
            query = query.where(Integration.provider == value)
        members: dict[int, tuple[datetime, str]] = {}
        for change, integration in session.execute(query):
            old, new = _health(change.old), _health(change.new)
            if old is None or new is None or not worsened(old, new) or not _unhealthy(integration.health):
                continue
            if kind == "host" and self._host_of(integration) != value:
                continue
            members.setdefault(integration.id, (change.at, change.old))
        return members

    def _open(
        self,
        session: Session,
        key: str,
        integration: Integration,
        members: dict[int, tuple[datetime, str]],
        now: datetime,
    ) -> tuple[Incident, list[AlertDelivery]]:
        kind, _, value = key.partition(":")
        incident = Incident(
            key=key,
            open_key=key,  # unique: a second process opening the same incident fails and retries the change
            provider=integration.provider if kind == "provider" else None,
            host=value if kind == "host" else None,
            first_seen=min(at for at, _ in members.values()),
            opened_at=now,
            member_count=0,
        )
        session.add(incident)
        session.flush()
        created = self._join(session, incident, members, now)
        return incident, created

    def _join(
        self, session: Session, incident: Incident, members: dict[int, tuple[datetime, str]], now: datetime
    ) -> list[AlertDelivery]:
        """Add members; their waiting alerts are suppressed, and each of those recipients gets the incident's
        "opened" alert instead."""
        created: list[AlertDelivery] = []
        for integration_id, (at, before) in members.items():
            if session.get(IncidentMember, (incident.id, integration_id)) is not None:
                continue
            session.add(
                IncidentMember(incident_id=incident.id, integration_id=integration_id, before=before, joined_at=now)
            )
            incident.member_count += 1
            incident.first_seen = min(incident.first_seen, at)
            waiting = session.scalars(
                select(AlertDelivery).where(
                    AlertDelivery.integration_id == integration_id,
                    AlertDelivery.kind.in_(("worsened", "recovered")),
                    AlertDelivery.status == "pending",
                )
            ).all()
            for row in waiting:
                row.status, row.incident_id = "suppressed", incident.id
                row.last_error = self._covered_sentence(incident)
                opened = self._incident_alert(session, incident, self._recipient_of(row), "incident_opened", now)
                if opened is not None:
                    created.append(opened)
        session.flush()
        return created

    def _incident_alert(
        self, session: Session, incident: Incident, recipient: Recipient, kind: str, now: datetime
    ) -> AlertDelivery | None:
        return self._add(
            session,
            recipient,
            dedupe_key=f"incident:{incident.id}:{kind}:{recipient.key}",
            kind=kind,
            now=now,
            due_at=now,
            incident=incident,
        )

    def close_recovered_incidents(self) -> list[int]:
        """Close each open incident whose members are all connected again (or paused, switched off or
        deleted): one "incident closed" alert per recipient of its "opened" alert (who asked for recoveries),
        and an alert of their own for members still not connected. Returns the pending deliveries created."""
        with self._factory() as session:
            open_ids = session.scalars(select(Incident.id).where(Incident.closed_at.is_(None)).limit(MAX_BATCH)).all()
        created: list[int] = []
        for incident_id in open_ids:
            with self._factory.begin() as session:
                rows = self._close_if_recovered(session, incident_id, self._clock())
                session.flush()
                created += [r.id for r in rows if r.status == "pending"]
        return created

    def _close_if_recovered(self, session: Session, incident_id: int, now: datetime) -> list[AlertDelivery]:
        members = session.execute(
            select(IncidentMember, Integration)
            .outerjoin(Integration, Integration.id == IncidentMember.integration_id)
            .where(IncidentMember.incident_id == incident_id)
        ).all()

        def settled(integration: Integration | None) -> bool:
            return (
                integration is None
                or not integration.is_active
                or integration.health in (Health.CONNECTED.value, Health.PAUSED.value)
            )

        if not all(settled(integration) for _, integration in members):
            return []
        closing = (
            update(Incident)
            .where(Incident.id == incident_id, Incident.closed_at.is_(None))
            .values(closed_at=now, open_key=None)
        )
        if _changed(session, closing) != 1:
            return []  # closed by another process
        incident = session.get(Incident, incident_id)
        if incident is None:
            return []
        session.refresh(incident)
        created: list[AlertDelivery] = []
        opened = session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.incident_id == incident_id, AlertDelivery.kind == "incident_opened")
            .order_by(AlertDelivery.id)
        ).all()
        for row in opened:
            if row.subscription_id is not None:
                sub = session.get(AlertSubscription, row.subscription_id)
                if sub is None or not sub.active or not sub.recovery:
                    continue
            elif row.recipient_key.startswith("sub:"):
                continue  # its subscription was deleted
            closed = self._incident_alert(session, incident, self._recipient_of(row), "incident_closed", now)
            if closed is not None:
                created.append(closed)
        for member, integration in members:
            state = _health(integration.health) if integration is not None else None
            if integration is None or state is None or SEVERITY[state] == 0:
                continue
            if not integration.is_active and state is not Health.PAUSED:
                continue  # switched off by a person: nothing to tell
            last = session.scalar(
                select(HealthChange)
                .where(HealthChange.integration_id == integration.id)
                .order_by(HealthChange.id.desc())
                .limit(1)
            )
            for recipient in self._recipients(session, integration, state, "worsened"):
                row = self._add(
                    session,
                    recipient,
                    dedupe_key=f"incident:{incident_id}:member:{integration.id}:{recipient.key}",
                    kind="worsened",
                    integration_id=integration.id,
                    health_change_id=last.id if last else None,
                    old=member.before,
                    new=state.value,
                    message=last.message if last else "",
                    due_at=now,
                    now=now,
                )
                if row is not None:
                    created.append(row)
        return created

    # ----- 2. sending -----------------------------------------------------------------------------

    def due(self, now: datetime | None = None, limit: int = 100) -> list[int]:
        """Pending deliveries whose time has come and that nobody is sending, oldest first."""
        now = now or self._clock()
        with self._factory() as session:
            return list(
                session.scalars(
                    select(AlertDelivery.id)
                    .where(
                        AlertDelivery.status == "pending",
                        AlertDelivery.due_at <= now,
                        or_(AlertDelivery.claimed_until.is_(None), AlertDelivery.claimed_until < now),
                    )
                    .order_by(AlertDelivery.due_at, AlertDelivery.id)
                    .limit(max(1, min(limit, MAX_BATCH)))
                )
            )

    def deliver(self, delivery_id: int) -> DeliveryOutcome:
        now = self._clock()
        with self._factory.begin() as session:
            row = session.get(AlertDelivery, delivery_id)
            if row is None:
                return DeliveryOutcome("done", f"There is no alert delivery {delivery_id}; nothing was sent.")
            if row.status != "pending":
                return DeliveryOutcome(
                    "done", f"Alert delivery {delivery_id} is {row.status} already; nothing was sent."
                )
            if row.due_at > now:
                return DeliveryOutcome("retry", "Not due yet; nothing was sent.", row.due_at)
            if reason := self._pointless(session, row):
                row.status, row.last_error = "suppressed", reason
                return DeliveryOutcome("suppressed", reason)
            claim = (
                update(AlertDelivery)
                .where(
                    AlertDelivery.id == delivery_id,
                    AlertDelivery.status == "pending",
                    or_(AlertDelivery.claimed_until.is_(None), AlertDelivery.claimed_until < now),
                )
                .values(claimed_until=now + self._claim)
            )
            if _changed(session, claim) != 1:
                return DeliveryOutcome("retry", "Being sent by another process.", now + self._claim)
            try:
                target, message = self._target(session, row), self._message(session, row)
                problem = None
            except DeliveryError as exc:
                target, message, problem = None, None, exc
            channel, attempt = row.channel, row.attempts + 1
        if problem is None and target is not None and message is not None:
            try:
                self.channels[channel].send(target, message)
            except DeliveryError as exc:
                problem = exc
        secrets = [*(target.secrets if target else []), self._settings.smtp.password]
        return self._record(delivery_id, attempt, problem, secrets)

    def _record(
        self, delivery_id: int, attempt: int, problem: DeliveryError | None, secrets: list[str | None]
    ) -> DeliveryOutcome:
        now = self._clock()
        with self._factory.begin() as session:
            row = session.get(AlertDelivery, delivery_id)
            if row is None:  # its recipient was deleted meanwhile
                return DeliveryOutcome("done", "The recipient was deleted meanwhile.")
            row.attempts, row.claimed_until = attempt, None
            details = {
                "delivery": row.id,
                "kind": row.kind,
                "channel": row.channel,
                "target": row.target_hint,
                "recipient": row.recipient_key,
                "attempt": attempt,
            }
            if row.incident_id:
                details["incident"] = row.incident_id
            if problem is None:
                row.status, row.sent_at, row.last_error = "sent", now, None
                audit.record(session, None, "alert.sent", "success", row.integration_id, details)
                return DeliveryOutcome("sent", f"Sent the alert to {row.target_hint}.")
            error = redact(problem.message, secrets)
            row.last_error = error
            if problem.retryable and attempt < self._settings.alert_max_attempts:
                row.due_at = now + backoff(attempt)
                details |= {"error": error, "retry_at": row.due_at.isoformat(timespec="seconds")}
                audit.record(session, None, "alert.failed", "failure", row.integration_id, details)
                return DeliveryOutcome("retry", error, row.due_at)
            row.status = "failed"
            details |= {"error": error, "final": True}
            audit.record(session, None, "alert.failed", "failure", row.integration_id, details)
            return DeliveryOutcome("failed", error)

    def _pointless(self, session: Session, row: AlertDelivery) -> str | None:
        """Why a due delivery should not go out any more, or None."""
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            return "The recipient's account is deactivated, so the alert was not sent."
        sub = session.get(AlertSubscription, row.subscription_id) if row.subscription_id else None
        if row.recipient_key.startswith("sub:"):
            if sub is None:
                return "The subscription was deleted, so the alert was not sent."
            if not sub.active:
                return "The subscription is switched off, so the alert was not sent."
        if row.kind in ("worsened", "recovered"):
            integration = session.get(Integration, row.integration_id) if row.integration_id else None
            if integration is None:
                return "The integration was deleted, so the alert was not sent."
            if sub is not None and integration.owner_id != user.id and (sub.scope != "all" or user.role != "admin"):
                return "The recipient is no longer an administrator, so the alert was not sent."
            if row.kind == "worsened":
                covering = session.scalar(
                    select(Incident)
                    .join(IncidentMember, IncidentMember.incident_id == Incident.id)
                    .where(IncidentMember.integration_id == integration.id, Incident.closed_at.is_(None))
                )
                if covering is not None:
                    row.incident_id = covering.id
                    return self._covered_sentence(covering)
        return None

    def _target(self, session: Session, row: AlertDelivery) -> Target:
        if row.subscription_id is None:
            user = session.get(User, row.user_id)
            if user is None:
                raise DeliveryError("The recipient's account no longer exists.", retryable=False)
            return Target(user.email)
        sub = session.get(AlertSubscription, row.subscription_id)
        if sub is None:
            raise DeliveryError("The subscription was deleted.", retryable=False)
        try:
            return self.subscriptions.target_of(sub)
        except DecryptionError:
            raise DeliveryError(
                "The subscription's stored address could not be decrypted (the encryption key changed, or the "
                "value was altered). Edit the subscription and enter the address again.",
                retryable=False,
            ) from None

    def _provider_name(self, key: str | None) -> str:
        if key and self._catalog is not None and key in self._catalog:
            return self._catalog.get(key).name
        return key or "unknown provider"

    def _message(self, session: Session, row: AlertDelivery) -> AlertMessage:
        message_id = "dlv_" + f"{row.id:024x}"[-24:]  # the same for every retry of this delivery
        base_url = self._settings.public_base_url
        if row.kind in ("worsened", "recovered"):
            integration = session.get(Integration, row.integration_id) if row.integration_id else None
            if integration is None:
                raise DeliveryError("The integration was deleted.", retryable=False)
            return change_message(
                kind=row.kind,
                integration_id=integration.id,
                name=integration.name,
                provider=self._provider_name(integration.provider),
                old=row.old,
                new=row.new,
                check_message=row.message,
                when=row.created_at,
                base_url=base_url,
                message_id=message_id,
            )
        if row.kind == "link_completed":
            integration = session.get(Integration, row.integration_id) if row.integration_id else None
            if integration is None:
                raise DeliveryError("The integration was deleted.", retryable=False)
            return link_completed_message(
                integration_id=integration.id,
                name=integration.name,
                provider=self._provider_name(integration.provider),
                reconnected=self._reconnect_link(session, row),
                when=row.created_at,
                base_url=base_url,
                message_id=message_id,
            )
        incident = session.get(Incident, row.incident_id) if row.incident_id else None
        if incident is None:
            raise DeliveryError("The incident this alert was about no longer exists.", retryable=False)
        return incident_message(
            kind=row.kind,
            facts=IncidentFacts(
                incident.id,
                incident.key,
                incident.provider,
                incident.host,
                incident.member_count,
                incident.first_seen,
                incident.opened_at,
                incident.closed_at,
            ),
            provider_name=self._provider_name(incident.provider) if incident.provider else None,
            yours=self._visible_members(session, incident.id, row),
            window_seconds=self._settings.alert_group_window_seconds,
            base_url=base_url,
            message_id=message_id,
        )

    @staticmethod
    def _reconnect_link(session: Session, row: AlertDelivery) -> bool:
        """Whether the link a link_completed alert is about re-authorised an existing integration."""
        link = session.get(ConnectLink, int(row.dedupe_key.split(":")[1]))
        return link is not None and link.integration_id is not None

    def _visible_members(self, session: Session, incident_id: int, row: AlertDelivery) -> list[tuple[int, str]]:
        """The incident's integrations the recipient may see: their own, or all for a scope-all administrator."""
        query = (
            select(Integration.id, Integration.name)
            .join(IncidentMember, IncidentMember.integration_id == Integration.id)
            .where(IncidentMember.incident_id == incident_id)
            .order_by(Integration.id)
        )
        sub = session.get(AlertSubscription, row.subscription_id) if row.subscription_id else None
        user = session.get(User, row.user_id)
        everyone = sub is not None and sub.scope == "all" and user is not None and user.role == "admin"
        if not everyone:
            query = query.where(Integration.owner_id == row.user_id)
        return [(i, n) for i, n in session.execute(query)]

    # ----- 3. test alerts -------------------------------------------------------------------------

    def send_test(self, actor: Actor, subscription_id: int) -> str:
        """Send a test alert over one of the person's subscriptions, now; recorded as a delivery (so the
        page's failed-channel warning clears once it works) and audited. DeliveryError when it fails."""
        now = self._clock()
        with self._factory.begin() as session:
            sub = session.get(AlertSubscription, subscription_id)
            if sub is None or sub.user_id != actor.id:
                raise NotFoundError(f"There is no alert subscription {subscription_id} of yours. Reload the page.")
            try:
                target = self.subscriptions.target_of(sub)
            except DecryptionError:
                raise DeliveryError(
                    "The subscription's stored address could not be decrypted. Edit it and enter the address again.",
                    retryable=False,
                ) from None
            recipient = self._recipient(sub)
            hint = sub.target_hint
            row = self._add(
                session,
                recipient,
                dedupe_key=f"test:{sub.id}:{uuid.uuid4().hex}",
                kind="test",
                now=now,
                due_at=now,
            )
            assert row is not None
            row.claimed_until = now + self._claim
            delivery_id = row.id
        message = sample_alert(now, self._settings.public_base_url, actor.username)
        problem = None
        try:
            self.channels[recipient.channel].send(target, message)
        except DeliveryError as exc:
            problem = exc
        secrets = [*target.secrets, self._settings.smtp.password]
        with self._factory.begin() as session:
            row = session.get(AlertDelivery, delivery_id)
            if row is not None:
                row.attempts, row.claimed_until = 1, None
                row.status = "failed" if problem else "sent"
                row.sent_at = None if problem else self._clock()
                row.last_error = redact(problem.message, secrets) if problem else None
            details = {"channel": recipient.channel, "target": hint, "subscription": subscription_id}
            if problem:
                details["error"] = redact(problem.message, secrets)
            audit.record(session, actor, "alert.test", "failure" if problem else "success", details=details)
        if problem:
            raise DeliveryError(redact(problem.message, secrets), problem.retryable)
        return f"Sent a test alert to {hint}. Check that it arrived."

    def send_test_to(self, actor: Actor | None, channel: str, address: str, secret: str | None = None) -> str:
        """A test alert to any address (the CLI's `alerts test`), audited; DeliveryError when it fails."""
        if channel not in self.channels:
            raise DeliveryError(f"Unknown channel {channel!r}: use email, slack or webhook.", retryable=False)
        target = Target(address.strip(), secret)
        shown = address.strip() if channel == "email" else url_hint(address)
        message = sample_alert(self._clock(), self._settings.public_base_url, actor.username if actor else "system")
        problem = None
        try:
            self.channels[channel].send(target, message)
        except DeliveryError as exc:
            problem = exc
        secrets = [*target.secrets, self._settings.smtp.password]
        details = {"channel": channel, "target": shown}
        if problem:
            details["error"] = redact(problem.message, secrets)
        audit.record_now(self._factory, actor, "alert.test", "failure" if problem else "success", details=details)
        if problem:
            raise DeliveryError(redact(problem.message, secrets), problem.retryable)
        return f"Sent a test alert to {shown}."


def _suppress_unsent(
    session: Session, recipient_key: str, integration_id: int, kinds: tuple[str, ...], why: str
) -> None:
    """A recipient's alerts of these kinds about the integration that were never tried go out no more."""
    session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.recipient_key == recipient_key,
            AlertDelivery.integration_id == integration_id,
            AlertDelivery.kind.in_(kinds),
            AlertDelivery.status == "pending",
            AlertDelivery.attempts == 0,
        )
        .values(status="suppressed", last_error=why)
    )
