"""SQLAlchemy 2 typed models. Timestamps are naive UTC everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Who last changed the account and when, for the refusal of a stale edit ("root changed it at ...").
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    updated_by: Mapped[str | None] = mapped_column(String(64), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)

    integrations: Mapped[list[Integration]] = relationship(back_populates="owner")

    # Every ORM UPDATE of an account carries "AND version = :old": of two edits from one version, one wins.
    __mapper_args__: ClassVar = {"version_id_col": version}


class Integration(Base):
    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
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
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship(back_populates="integrations")

    __table_args__ = (
        Index(
            "ix_integrations_statistics",
            *("provider", "type", "status", "owner_id", "is_active", "last_checked_at", "created_at"),
        ),
        Index("ix_integrations_status_checked", "status", "last_checked_at"),
    )

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
