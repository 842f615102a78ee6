"""SQLAlchemy 2 typed models. Timestamps are naive UTC everywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from core.natural import natural_key


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="member")  # admin | member
    tier: Mapped[str] = mapped_column(String(16), default="FREE")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The password was set by an administrator (a new account, a reset): until the person chooses their own,
    # their sign-in opens nothing but "Choose a new password" (core/sessions.py).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Who last changed the account and when, for the refusal of a stale edit ("root changed it at ...").
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    updated_by: Mapped[str | None] = mapped_column(String(64), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)

    integrations: Mapped[list[Integration]] = relationship(back_populates="owner")

    # Every ORM UPDATE of an account carries "AND version = :old": of two edits from one version, one wins.
    __mapper_args__: ClassVar = {"version_id_col": version}


def _name_key_default(context) -> str:
    return natural_key(context.get_current_parameters().get("name") or "")


class Integration(Base):
    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The natural sort key of the name (core.natural), kept by the name's validator below and, for a Core
    # INSERT that names only the name, by its default: the list sorts and pages by it in SQL.
    name_key: Mapped[str] = mapped_column(String(255), default=_name_key_default)
    type: Mapped[str] = mapped_column(String(32))  # CRM, DATABASE, API, WEBHOOK
    provider: Mapped[str] = mapped_column(String(32))
    configuration: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # connected | error | unknown
    status_message: Mapped[str | None] = mapped_column(Text, default=None)
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # A check in progress holds a lease until this time, so that no two processes check one integration
    # at once; an expired lease (a crashed process) is free again.
    check_lease_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    check_lease_holder: Mapped[str | None] = mapped_column(String(64), default=None)
    # The customer host the leased check calls, so the per-host cap holds across every worker.
    check_lease_host: Mapped[str | None] = mapped_column(String(255), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Health (core.integrations.health): unknown | connected | degraded | failing | paused | needs_reconnect,
    # moved by each check's outcome; the streaks are what moves it.
    health: Mapped[str] = mapped_column(String(20), default="unknown")
    health_changed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    failures_in_row: Mapped[int] = mapped_column(Integer, default=0)
    successes_in_row: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime, default=None)  # first failure of the streak
    last_check_class: Mapped[str | None] = mapped_column(String(20), default=None)
    # Scheduling (core.engine.scheduler): when the next scheduled check is due, and until when the check
    # already handed to the engine for it is presumed alive (after that the scheduler plans it again).
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    planned_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    owner: Mapped[User] = relationship(back_populates="integrations")

    __table_args__ = (
        Index(
            "ix_integrations_statistics",
            *("provider", "type", "status", "owner_id", "is_active", "last_checked_at", "created_at"),
        ),
        Index("ix_integrations_status_checked", "status", "last_checked_at"),
        Index("ix_integrations_owner_status", "owner_id", "status", "last_checked_at"),  # a member's failing list
        Index("ix_integrations_due", "is_active", "next_check_at"),
        Index("ix_integrations_lease_host", "check_lease_host", "check_lease_until"),
        Index("ix_integrations_lease_until", "check_lease_until"),
        Index("ix_integrations_health", "health", "owner_id"),
        # Stale counts read the integrations of one hour of this, from the index alone (ledgers.fresh).
        Index(
            "ix_integrations_freshness",
            "is_active",
            text("coalesce(last_checked_at, created_at)"),
            "owner_id",
            "provider",
            "type",
            "status",
        ),
        Index("ix_integrations_name_key", "name_key", "id"),
        # A list filtered by one of these reads its page in name order (migration 0023).
        Index("ix_integrations_status_name", "status", "name_key", "id"),
        Index("ix_integrations_provider_name", "provider", "name_key", "id"),
        Index("ix_integrations_health_name", "health", "name_key", "id"),
    )

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = natural_key(name)
        return name

    # SQLAlchemy adds "AND version = :old" to every UPDATE, so a concurrent write is detected.
    __mapper_args__: ClassVar = {"version_id_col": version}


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    # Kept after the integration is deleted, so no foreign key.
    integration_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure | denied
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_trend", "action", "at", "outcome", "integration_id"),)


class WidgetPreset(Base):
    """A named chat widget configuration a user saved (the seed's "demos"); names are unique per owner."""

    __tablename__ = "widget_presets"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_widget_presets_owner_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The preset outlives its integration: deleting the integration only forgets which one it was.
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL"), default=None, index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # SDK names, see core.chatwoot.widget
    inbox_id: Mapped[int | None] = mapped_column(Integer, default=None)  # the Chatwoot inbox
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    # Replacing a preset carries "AND version = :old", so a save from another tab is detected.
    __mapper_args__: ClassVar = {"version_id_col": version}


class SignInSession(Base):
    """A browser's sign-in. The cookie holds a random token; only its keyed hash is stored here,
    so signing out (or an administrator deactivating the person) ends it on every process at once."""

    __tablename__ = "sign_in_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # Stable name of the session for the tab that signed in (the token, and so token_hash, is replaced
    # when the browser redeems its hand-over ticket); never sent to a browser.
    handle: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    # The single-use hand-over ticket's keyed hash, until the browser redeems it for the cookie.
    ticket_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    ticket_expires_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class OAuthToken(Base):
    """An access token a provider obtained, cached until it expires; the token is stored encrypted."""

    __tablename__ = "oauth_tokens"

    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class RateLimitHit(Base):
    """One counted attempt in a rate-limit bucket; shared by every app process."""

    __tablename__ = "rate_limit_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class AppMeta(Base):
    """Small facts about this installation, such as the encryption key check value."""

    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CheckRecord(Base):
    """One connection check of a saved integration: kept for the retention period, then rolled up by day."""

    __tablename__ = "check_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean)
    check_class: Mapped[str] = mapped_column(String(20))  # core.integrations.classify.CheckClass
    latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    http_status: Mapped[int | None] = mapped_column(Integer, default=None)
    code: Mapped[str | None] = mapped_column(String(64), default=None)  # driver or OAuth error code
    message: Mapped[str] = mapped_column(Text, default="")  # redacted
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # schedule | manual | check_all
    run_id: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (
        Index("ix_check_history_integration_at", "integration_id", "at"),
        Index("ix_check_history_at", "at"),
    )


class CheckRollup(Base):
    """A day of one integration's checks, kept after the raw rows are past retention (past days never change)."""

    __tablename__ = "check_rollups"

    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_total: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_max: Mapped[int] = mapped_column(Integer, default=0)


class StatIntegrationCount(Base):
    """A change to how many integrations share one (owner tier, provider, type, status, health, active):
    +1 / -1 rows added by the database's triggers on every write (migration 0018), folded now and then by
    core.integrations.ledgers; the count is the sum of a key's rows."""

    __tablename__ = "stat_integration_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    tier: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    health: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean)
    n: Mapped[int] = mapped_column(Integer)


class StatIntegrationFreshness(Base):
    """Active integrations by the hour (since the epoch, UTC) they were last checked, or created when never:
    what "stale" is counted from without reading every integration. Kept like StatIntegrationCount."""

    __tablename__ = "stat_integration_freshness"

    id: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, index=True)
    tier: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    n: Mapped[int] = mapped_column(Integer)


class StatCheckDay(Base):
    """Connection tests that ran on one day (UTC), by the owner's tier and the provider at the time of the
    test ('' for an integration already gone): the Statistics trend. Added by a trigger on audit_events."""

    __tablename__ = "stat_check_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    tier: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)


class HealthChange(Base):
    """A change of an integration's health, written in the same transaction as the change itself (an
    outbox), so the alert it calls for survives a crash between the change and the alert."""

    __tablename__ = "health_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    old: Mapped[str] = mapped_column(String(20))
    new: Mapped[str] = mapped_column(String(20))
    check_class: Mapped[str | None] = mapped_column(String(20), default=None)
    message: Mapped[str] = mapped_column(Text, default="")  # redacted
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None, index=True)


class CheckRun(Base):
    """A check-all on the engine: who asked, what it covers, and its progress, read by every process."""

    __tablename__ = "check_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(200))
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    connected: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # being checked elsewhere, or cancelled
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # The last time an item finished: a run without progress for a lease's time lost checks with a worker.
    progress_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class CheckRunItem(Base):
    """One integration of a check-all, so a check lost with a killed worker is handed out again."""

    __tablename__ = "check_run_items"

    run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id", ondelete="CASCADE"), primary_key=True)
    integration_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # hosts interleaved, so the first checks spread out
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending | running | done | skipped
    handed_out_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    __table_args__ = (Index("ix_check_run_items_state", "run_id", "state", "position"),)


class EngineLease(Base):
    """A named lease shared by every worker: the scheduler's (exactly one runs), with its heartbeat."""

    __tablename__ = "engine_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128), default=None)
    until: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class AlertSubscription(Base):
    """Who is told about health changes, how (channel and target) and about which states (core.alerts)."""

    __tablename__ = "alert_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | slack | webhook
    # The e-mail address in clear; a Slack or webhook URL encrypted (it is a credential), bound to this row.
    target: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text, default=None)  # the webhook's signing secret, encrypted
    target_hint: Mapped[str] = mapped_column(String(254))  # what a page may show: the address, or the URL's host
    states: Mapped[list[str]] = mapped_column(JSON, default=list)  # of degraded, failing, paused, needs_reconnect
    recovery: Mapped[bool] = mapped_column(Boolean, default=True)
    scope: Mapped[str] = mapped_column(String(8), default="own")  # own | all (administrators only)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Incident(Base):
    """An outage: many integrations of one provider or one host worsened within the grouping window."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), index=True)  # provider:<key> or host:<host>
    # The key while the incident is open, NULL once closed: at most one open incident per key, in every process.
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True, default=None)
    provider: Mapped[str | None] = mapped_column(String(32), default=None)
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    first_seen: Mapped[datetime] = mapped_column(DateTime)  # the first member's worsening
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    member_count: Mapped[int] = mapped_column(Integer, default=0)


class IncidentMember(Base):
    """An integration an incident covers, and the state it had before it worsened."""

    __tablename__ = "incident_members"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    integration_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # kept after the integration is deleted
    before: Mapped[str] = mapped_column(String(20))
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_incident_members_integration", "integration_id"),)


class AlertDelivery(Base):
    """One alert to one recipient over one channel; retried with backoff until sent or given up."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What made it, and for whom: change:<health change id>:<recipient>, incident:<id>:opened:<recipient>, ...
    # Unique, so running the same step twice (or in two processes) never makes a second delivery.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient_key: Mapped[str] = mapped_column(String(40))  # sub:<subscription id> or owner:<user id>
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_subscriptions.id", ondelete="SET NULL"), default=None, index=True
    )  # None: the owner's default e-mail
    channel: Mapped[str] = mapped_column(String(16))
    target_hint: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(
        String(20)
    )  # worsened | recovered | incident_opened | incident_closed | link_completed
    integration_id: Mapped[int | None] = mapped_column(Integer, default=None)  # kept after the integration is deleted
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), default=None)
    health_change_id: Mapped[int | None] = mapped_column(Integer, default=None)
    old: Mapped[str | None] = mapped_column(String(20), default=None)
    new: Mapped[str | None] = mapped_column(String(20), default=None)
    message: Mapped[str] = mapped_column(Text, default="")  # the check's redacted message
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | sent | failed | suppressed
    last_error: Mapped[str | None] = mapped_column(Text, default=None)  # redacted, a sentence
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # A process delivering it holds it until then, so two workers never send it at once.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    __table_args__ = (
        Index("ix_alert_deliveries_due", "status", "due_at"),
        Index("ix_alert_deliveries_recipient", "recipient_key", "integration_id", "id"),
        Index("ix_alert_deliveries_incident", "incident_id", "kind"),
        Index("ix_alert_deliveries_integration", "integration_id", "status"),
    )


class OAuthApp(Base):
    """The console's own OAuth app at one provider, registered by an administrator.

    The client secret is stored encrypted, bound to this row (core.connect.apps.secret_context)."""

    __tablename__ = "oauth_apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), unique=True)
    client_id: Mapped[str] = mapped_column(Text)
    client_secret: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    # Only for a provider whose endpoints are configurable (the Custom CRM).
    authorize_url: Mapped[str | None] = mapped_column(Text, default=None)
    token_url: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64), default=None)


class OAuthFlow(Base):
    """One authorization-code flow under way: its state is single-use and expires in minutes.

    Only a keyed hash of the state is stored; the PKCE verifier is encrypted, bound to that hash. A flow
    is bound to the staff sign-in session that started it (a keyed hash of the session's handle)."""

    __tablename__ = "oauth_flows"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    verifier: Mapped[str | None] = mapped_column(Text, default=None)
    provider: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))  # staff | link
    session_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    integration_name: Mapped[str] = mapped_column(String(200))
    # Reconnect: the integration whose tokens the flow replaces (None: a new integration).
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # What the callback did, for the console page the callback redirects to (named by an opaque id).
    outcome_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)  # connected | failed
    outcome_message: Mapped[str | None] = mapped_column(Text, default=None)
    result_integration_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # The non-secret fields entered when the flow started (the Custom CRM's API address), kept on connect.
    draft_configuration: Mapped[dict | None] = mapped_column(JSON, default=None)
    # A customer's flow: the connect link it came from (purpose "link"; no staff session is bound).
    link_id: Mapped[int | None] = mapped_column(ForeignKey("connect_links.id", ondelete="CASCADE"), default=None)


class ConnectLink(Base):
    """A single-use link a customer opens, signed out, to connect their own CRM (or reconnect one).

    Only a keyed hash of its token is stored. Its state follows from its times: revoked, completed,
    expired, opened or created (see core/connect/links.py)."""

    __tablename__ = "connect_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    integration_name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    # A reconnect link: the integration whose tokens it replaces.
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), default=None)
    draft_configuration: Mapped[dict | None] = mapped_column(JSON, default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_count: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    result_integration_id: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)  # the customer's last failed try
    owner_seen_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)  # the owner's notice

    @classmethod
    def unsettled(cls) -> ColumnElement[bool]:
        """Neither completed nor revoked: the link may still connect (until it expires)."""
        return and_(cls.completed_at.is_(None), cls.revoked_at.is_(None))


class ChatwootBot(Base):
    """The greeting bot of one Chatwoot integration: its agent bot in Chatwoot, its receiver, its settings.

    The receiver's address is PUBLIC_BASE_URL + /bots/chatwoot/<receiver_id>/<secret>; only a keyed hash
    of the secret is stored. The bot's Chatwoot access token is encrypted, bound to this row."""

    __tablename__ = "chatwoot_bots"

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), unique=True)
    receiver_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    chatwoot_bot_id: Mapped[int | None] = mapped_column(Integer, default=None)
    access_token: Mapped[str | None] = mapped_column(Text, default=None)  # encrypted
    welcome_message: Mapped[str] = mapped_column(Text, default="")
    out_of_hours_message: Mapped[str] = mapped_column(Text, default="")
    handoff_keyword: Mapped[str] = mapped_column(String(100), default="")
    office_hours_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    office_days: Mapped[str] = mapped_column(String(20), default="0,1,2,3,4")  # Monday = 0
    office_from: Mapped[str] = mapped_column(String(5), default="09:00")
    office_to: Mapped[str] = mapped_column(String(5), default="17:00")
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    last_event_kind: Mapped[str | None] = mapped_column(String(40), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    self_test_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    self_test_message: Mapped[str | None] = mapped_column(Text, default=None)
    self_test_ok: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ChatwootBotConversation(Base):
    """What the greeting bot did in one conversation (Chatwoot's conversation display id)."""

    __tablename__ = "chatwoot_bot_conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("chatwoot_bots.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(Integer)
    incoming: Mapped[int] = mapped_column(Integer, default=0)  # the visitor's messages seen
    # The visitor's messages the greeting came after: a later one answers it (core.chatwoot.greeting).
    answer_after: Mapped[int] = mapped_column(Integer, default=1)
    greeted_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    handed_off_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("bot_id", "conversation_id", name="uq_chatwoot_bot_conversation"),)


class ChatwootBotEvent(Base):
    """One event Chatwoot posted to a bot's receiver, kept once per key (a retried webhook is a duplicate).

    No visitor text is kept: only what the bot decides on (kind, ids, whether it asked for a person)."""

    __tablename__ = "chatwoot_bot_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("chatwoot_bots.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    incoming: Mapped[bool] = mapped_column(Boolean, default=False)  # a visitor's message
    wants_human: Mapped[bool] = mapped_column(Boolean, default=False)  # it held the hand-off keyword
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    outcome: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (UniqueConstraint("bot_id", "event_key", name="uq_chatwoot_bot_event"),)


class ContactSync(Base):
    """A contact sync between one CRM integration and one Chatwoot integration of the same owner (core/sync).

    The cursors say how far each side has been read; `progress` where an interrupted run resumes."""

    __tablename__ = "contact_syncs"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    crm_integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    chatwoot_integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(32))  # crm_to_chatwoot | chatwoot_to_crm | both
    # The CRM's records the sync reads and writes: contacts, or leads (core.catalog.Provider.sync_objects).
    crm_object: Mapped[str] = mapped_column(String(16), default="contacts", server_default="contacts")
    crm_cursor: Mapped[str | None] = mapped_column(String(64), default=None)
    chatwoot_cursor: Mapped[str | None] = mapped_column(String(64), default=None)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime, default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("crm_integration_id", "chatwoot_integration_id", name="uq_contact_sync_pair"),)


class ContactLink(Base):
    """One person paired across the two sides of a sync: both remote ids, and what each side last held."""

    __tablename__ = "contact_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("contact_syncs.id", ondelete="CASCADE"))
    crm_id: Mapped[str] = mapped_column(String(64))
    chatwoot_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    crm_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    chatwoot_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    crm_modified: Mapped[float | None] = mapped_column(Float, default=None)  # epoch seconds, the CRM's own time
    chatwoot_modified: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("sync_id", "crm_id", name="uq_contact_link_crm"),
        UniqueConstraint("sync_id", "chatwoot_id", name="uq_contact_link_chatwoot"),
    )


class SyncRun(Base):
    """One run of a contact sync and its report (counts per side, skipped with reasons, failures)."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("contact_syncs.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual | cli
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | partial | off | failed
    message: Mapped[str] = mapped_column(Text, default="")
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class Template(Base):
    """A stored template (administrators'): a named, versioned recipe of steps (core.templates)."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_by: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class TemplateRun(Base):
    """One application of a template by a person: its values (no secret) and where it got to."""

    __tablename__ = "template_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    template_key: Mapped[str] = mapped_column(String(120))
    template_name: Mapped[str] = mapped_column(String(100))
    template_version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | running | failed | done
    message: Mapped[str | None] = mapped_column(Text, default=None)
    # The secret step values (encrypted, bound to the run), kept only until the run is done.
    sealed: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class TemplateRunStep(Base):
    """One step of a template run: its values (no secret), its status and its result."""

    __tablename__ = "template_run_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("template_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200), default="")
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    __table_args__ = (UniqueConstraint("run_id", "position", name="uq_template_run_step"),)
