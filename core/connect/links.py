"""Connect links: staff send a customer a single-use link; the customer opens it signed out, reads who
asks for what access, consents at their CRM, and the integration is created (or, for a reconnect link,
its tokens replaced) for the link's owner, within the owner's tier.

The token is 256 random bits, given once (at creation and at each re-send, which replaces it); only its
keyed hash is stored. A link's state follows from its times: revoked, completed, expired, opened,
created. The public steps (open, begin) are rate-limited per client address and audited; what they
answer holds nothing of the console's staff data. Completing is core/connect/flows.py's callback, which
takes the link by one conditional UPDATE, so a link connects once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from core import audit
from core.audit import Actor
from core.catalog import Catalog
from core.connect.apps import OAuthApps
from core.connect.flows import ConnectFlows, checked_draft
from core.connect.spec import ConnectRefused
from core.crypto import FieldCipher
from core.errors import ConsoleError, NotFoundError, PermissionDeniedError, ValidationError
from core.integrations.service import IntegrationService
from core.models import ConnectLink, User, utcnow
from core.paths import LINK_PATH
from core.ratelimit import Bucket, RateLimiter

TOKEN_BYTES = 32
DEFAULT_DAYS = 7
MAX_DAYS = 30
MAX_NOTE = 500
MAX_TOKEN = 200
STATES = ("created", "opened", "completed", "expired", "revoked")


class LinkRefused(ConsoleError):
    """A public step refused: the message is for the customer and names nothing of the console's."""


@dataclass(frozen=True)
class LinkView:
    """What staff see of a link (never its token: that exists only in the address given at creation)."""

    id: int
    provider: str
    provider_name: str
    integration_name: str
    owner: str
    created_by: str | None
    state: str
    note: str
    created_at: datetime
    expires_at: datetime
    sent_at: datetime
    sent_count: int
    opened_at: datetime | None
    completed_at: datetime | None
    revoked_at: datetime | None
    reconnects: int | None  # the integration a reconnect link re-authorises
    integration_id: int | None  # the one it connected (or reconnects)
    last_error: str | None  # the customer's last failed try; may hold the provider's words: plain text


@dataclass(frozen=True)
class IssuedLink:
    view: LinkView
    url: str  # holds the token: shown once, to the person who created or re-sent it


@dataclass(frozen=True)
class PublicLink:
    """What the customer's page shows: the state, and for a live link who asks for what."""

    state: str  # one of STATES, or "unknown"
    company: str = ""
    provider_name: str = ""
    access: tuple[str, ...] = ()  # the scopes, in plain words where the provider gives them
    reconnect: bool = False
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Completion:
    """A link a customer completed, for its owner's notice on their next visit."""

    link_id: int
    integration_id: int
    integration_name: str
    provider_name: str
    completed_at: datetime


def state_of(link: ConnectLink, now: datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.completed_at is not None:
        return "completed"
    if link.expires_at <= now:
        return "expired"
    return "opened" if link.opened_at is not None else "created"


def _state_filter(state: str, now: datetime) -> ColumnElement[bool]:
    """SQL for one state, as state_of decides it."""
    live = ConnectLink.unsettled()
    return {
        "revoked": ConnectLink.revoked_at.is_not(None),
        "completed": and_(ConnectLink.revoked_at.is_(None), ConnectLink.completed_at.is_not(None)),
        "expired": and_(live, ConnectLink.expires_at <= now),
        "opened": and_(live, ConnectLink.expires_at > now, ConnectLink.opened_at.is_not(None)),
        "created": and_(live, ConnectLink.expires_at > now, ConnectLink.opened_at.is_(None)),
    }[state]


class ConnectLinks:
    def __init__(
        self,
        factory: sessionmaker,
        cipher: FieldCipher,
        catalog: Catalog,
        apps: OAuthApps,
        integrations: IntegrationService,
        flows: ConnectFlows,
        limiter: RateLimiter,
        company_name: str,
    ):
        self._factory = factory
        self._cipher = cipher
        self._catalog = catalog
        self._apps = apps
        self._integrations = integrations
        self._flows = flows
        self._limiter = limiter
        self.company_name = company_name

    def _hash(self, token: str) -> str:
        key = self._cipher.derived_key(b"connect-link:token")
        return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def _url(self, token: str) -> str:
        return f"{self._flows.public_base_url or ''}{LINK_PATH}{token}"

    # ----- staff ---------------------------------------------------------------------------

    def offered_providers(self) -> list[str]:
        """Providers a link can be made for: a consent flow, a registered app, PUBLIC_BASE_URL set."""
        return [p.key for p in self._catalog if self._flows.offered(p.key)]

    def create(
        self,
        actor: Actor,
        provider_key: str,
        name: str,
        owner_id: int | None = None,
        days: int = DEFAULT_DAYS,
        note: str = "",
        draft: Mapping[str, object] | None = None,
    ) -> IssuedLink:
        """A link that connects a new integration named name, owned by owner_id (administrators; a member's
        links are their own). The owner's tier must allow the provider, as create would check."""
        owner = self._owner(actor, owner_id)
        self._require_offered(provider_key)
        checked_name = self._integrations.check_new(owner, provider_key, name)
        checked = checked_draft(self._catalog.get(provider_key), draft)  # the Custom CRM's API address
        return self._issue(actor, owner, provider_key, checked_name, None, days, note, checked)

    def create_reconnect(
        self, actor: Actor, integration_id: int, days: int = DEFAULT_DAYS, note: str = ""
    ) -> IssuedLink:
        """A link that re-authorises integration_id: same id, history and settings, new tokens."""
        view = self._integrations.get(actor, integration_id)  # someone else's is not found
        self._require_offered(view.provider)
        with self._factory() as session:
            owner_id = session.scalar(select(User.id).where(User.username == view.owner))
        owner = self._owner(actor, owner_id) if owner_id is not None and owner_id != actor.id else actor
        return self._issue(actor, owner, view.provider, view.name, integration_id, days, note, None)

    def list(
        self,
        actor: Actor,
        states: tuple[str, ...] = (),
        provider: str | None = None,
        limit: int = 200,
    ) -> list[LinkView]:
        """Newest first; administrators see every link, members the ones they own or created."""
        now = utcnow()
        query = select(ConnectLink).order_by(ConnectLink.id.desc()).limit(max(1, min(limit, 1000)))
        if not actor.is_admin:
            query = query.where(or_(ConnectLink.owner_id == actor.id, ConnectLink.created_by == actor.id))
        if states:
            unknown = set(states) - set(STATES)
            if unknown:
                raise ValidationError({"state": f"Unknown link state: {sorted(unknown)[0]}."})
            query = query.where(or_(*(_state_filter(s, now) for s in states)))
        if provider:
            query = query.where(ConnectLink.provider == provider)
        with self._factory() as session:
            return [self._view(session, row, now) for row in session.scalars(query)]

    def get(self, actor: Actor, link_id: int) -> LinkView:
        with self._factory() as session:
            return self._view(session, self._visible(session, actor, link_id), utcnow())

    def revoke(self, actor: Actor, link_id: int) -> LinkView:
        """The link stops working at once; a consent under way with it is refused at the callback."""
        now = utcnow()
        with self._factory.begin() as session:
            row = self._visible(session, actor, link_id)
            revoked = session.execute(
                update(ConnectLink)
                .where(ConnectLink.id == row.id, ConnectLink.unsettled())
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult, revoked).rowcount != 1:
                raise ValidationError({"link": f"This link is {state_of(row, now)} already, so it cannot be revoked."})
            audit.record(session, actor, "connect_link.revoke", "success", row.integration_id, {"link": row.id})
            session.refresh(row)
            return self._view(session, row, now)

    def resend(self, actor: Actor, link_id: int, days: int = DEFAULT_DAYS) -> IssuedLink:
        """A new address for the same link (the old one stops working), valid for days from now."""
        days = _days(days)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        with self._factory.begin() as session:
            row = self._visible(session, actor, link_id)
            renewed = session.execute(
                update(ConnectLink)
                .where(ConnectLink.id == row.id, ConnectLink.unsettled())
                .values(
                    token_hash=self._hash(token),
                    expires_at=now + timedelta(days=days),
                    sent_at=now,
                    sent_count=ConnectLink.sent_count + 1,
                    opened_at=None,
                )
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult, renewed).rowcount != 1:
                raise ValidationError(
                    {"link": f"This link is {state_of(row, now)}, so it cannot be sent again. Create a new one."}
                )
            audit.record(
                session, actor, "connect_link.resend", "success", row.integration_id, {"link": row.id, "days": days}
            )
            session.refresh(row)
            return IssuedLink(self._view(session, row, now), self._url(token))

    def completions(self, actor: Actor) -> list[Completion]:
        """Links of actor's that customers completed since actor last looked (the notice on their visit)."""
        with self._factory() as session:
            rows = session.scalars(
                select(ConnectLink)
                .where(
                    ConnectLink.owner_id == actor.id,
                    ConnectLink.completed_at.is_not(None),
                    ConnectLink.result_integration_id.is_not(None),
                    ConnectLink.owner_seen_at.is_(None),
                )
                .order_by(ConnectLink.id)
                .limit(20)
            ).all()
            return [
                Completion(
                    r.id,
                    cast(int, r.result_integration_id),
                    r.integration_name,
                    self._provider_name(r.provider),
                    cast(datetime, r.completed_at),
                )
                for r in rows
            ]

    def mark_seen(self, actor: Actor, link_ids: list[int]) -> None:
        if not link_ids:
            return
        with self._factory.begin() as session:
            session.execute(
                update(ConnectLink)
                .where(ConnectLink.id.in_(link_ids), ConnectLink.owner_id == actor.id)
                .values(owner_seen_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    # ----- the customer (signed out) ---------------------------------------------------------

    def open(self, token: str, client: str) -> PublicLink:
        """The customer's page: the link's state, and for a live one who asks for what access."""
        self._limit(client)
        now = utcnow()
        with self._factory.begin() as session:
            row = self._by_token(session, token)
            if row is None:
                audit.record(session, None, "connect_link.open", "denied", None, {"reason": "unknown"})
                return PublicLink("unknown")
            state = state_of(row, now)
            if state not in ("created", "opened"):
                audit.record(
                    session, None, "connect_link.open", "denied", row.integration_id, {"link": row.id, "reason": state}
                )
                return PublicLink(state)
            if row.opened_at is None:
                row.opened_at = now
                audit.record(session, None, "connect_link.open", "success", row.integration_id, {"link": row.id})
            provider = self._catalog.get(row.provider)
            app = self._apps.view(row.provider)
            words = provider.oauth.scope_words if provider.oauth else {}
            access = tuple(words.get(scope, scope) for scope in (app.scopes if app else ()))
            return PublicLink(
                "opened",
                self.company_name,
                provider.name,
                access,
                reconnect=row.integration_id is not None,
                expires_at=row.expires_at,
            )

    def begin(self, token: str, client: str) -> str:
        """The customer pressed Connect: the provider's consent address for a live link."""
        self._limit(client)
        now = utcnow()
        with self._factory.begin() as session:
            row = self._by_token(session, token)
            if row is None or state_of(row, now) not in ("created", "opened"):
                raise LinkRefused(refusal_for(state_of(row, now) if row else "unknown"))
            row.opened_at = row.opened_at or now
            link = (
                row.id,
                row.owner_id,
                row.provider,
                row.integration_name,
                row.integration_id,
                row.draft_configuration,
            )
        try:
            return self._flows.start_for_link(*link)
        except ConnectRefused as exc:
            raise LinkRefused(str(exc)) from None

    # ----- helpers -------------------------------------------------------------------------

    def _issue(
        self,
        actor: Actor,
        owner: Actor,
        provider_key: str,
        name: str,
        integration_id: int | None,
        days: int,
        note: str,
        draft: Mapping[str, object] | None,
    ) -> IssuedLink:
        days = _days(days)
        note = (note or "").strip()
        if len(note) > MAX_NOTE:
            raise ValidationError({"note": f"A note has at most {MAX_NOTE} characters."})
        if not self._limiter.take(Bucket("connect_link_create", str(actor.id))):
            raise ValidationError({"link": "You created many links in a short time. Wait a few minutes."})
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        with self._factory.begin() as session:
            row = ConnectLink(
                token_hash=self._hash(token),
                provider=provider_key,
                integration_name=name,
                owner_id=owner.id,
                created_by=actor.id,
                integration_id=integration_id,
                draft_configuration=dict(draft) if draft else None,
                note=note,
                created_at=now,
                expires_at=now + timedelta(days=days),
                sent_at=now,
                sent_count=1,
            )
            session.add(row)
            session.flush()
            details = {"link": row.id, "provider": provider_key, "owner": owner.username, "days": days}
            details["reconnect"] = integration_id is not None
            audit.record(session, actor, "connect_link.create", "success", integration_id, details)
            return IssuedLink(self._view(session, row, now), self._url(token))

    def _owner(self, actor: Actor, owner_id: int | None) -> Actor:
        if owner_id is None or owner_id == actor.id:
            return actor
        if not actor.is_admin:
            raise PermissionDeniedError("Only administrators create links for someone else's account.")
        with self._factory() as session:
            user = session.get(User, owner_id)
            if user is None or not user.active:
                raise ValidationError({"owner": "Choose an active account to own the integration."})
            return Actor(user.id, user.username, user.role, user.tier)

    def _require_offered(self, provider_key: str) -> None:
        if provider_key not in self._catalog:
            raise ValidationError({"provider": "Choose a provider."})
        if not self._flows.offered(provider_key):
            name = self._catalog.get(provider_key).name
            raise ValidationError(
                {
                    "provider": f"{name} cannot be connected by link yet: it needs a consent flow, the console's "
                    f"{name} app registered by an administrator, and PUBLIC_BASE_URL set."
                }
            )

    def _limit(self, client: str) -> None:
        if not self._limiter.take(Bucket("connect_link_public", client or "unknown")):
            raise LinkRefused("Too many requests from this address. Wait a few minutes and open the link again.")

    def _by_token(self, session: Session, token: str) -> ConnectLink | None:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            return None
        return session.scalar(select(ConnectLink).where(ConnectLink.token_hash == self._hash(token)))

    def _visible(self, session: Session, actor: Actor, link_id: int) -> ConnectLink:
        row = session.get(ConnectLink, link_id)
        if row is None or (not actor.is_admin and actor.id not in (row.owner_id, row.created_by)):
            raise NotFoundError(f"No connect link {link_id} here.")
        return row

    def _provider_name(self, key: str) -> str:
        return self._catalog.get(key).name if key in self._catalog else key

    def _view(self, session: Session, row: ConnectLink, now: datetime) -> LinkView:
        creator = aliased(User)
        names = session.execute(
            select(User.username, creator.username)
            .select_from(User)
            .outerjoin(creator, creator.id == row.created_by)
            .where(User.id == row.owner_id)
        ).one_or_none()
        return LinkView(
            id=row.id,
            provider=row.provider,
            provider_name=self._provider_name(row.provider),
            integration_name=row.integration_name,
            owner=names[0] if names else "?",
            created_by=names[1] if names else None,
            state=state_of(row, now),
            note=row.note or "",
            created_at=row.created_at,
            expires_at=row.expires_at,
            sent_at=row.sent_at,
            sent_count=row.sent_count,
            opened_at=row.opened_at,
            completed_at=row.completed_at,
            revoked_at=row.revoked_at,
            reconnects=row.integration_id,
            integration_id=row.result_integration_id or row.integration_id,
            last_error=row.last_error,
        )


def _days(days: int) -> int:
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": f"A link lasts from 1 to {MAX_DAYS} days."})
    return days


def refusal_for(state: str) -> str:
    """The sentence the customer's page shows for a link that is not live (or not found)."""
    return {
        "completed": "This link was already used to connect, so it does nothing more. You can close this tab.",
        "expired": "This link has expired. Ask the person who sent it for a new one.",
        "revoked": "This link was withdrawn by the person who sent it. Ask them for a new one if you still need it.",
    }.get(state, "This link is not valid. Check you opened the whole address, or ask for a new link.")
