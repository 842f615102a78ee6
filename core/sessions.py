"""Sign-in sessions kept in the database, so they hold across app processes and end when revoked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import SignInSession, User, utcnow

TOKEN_BYTES = 32
# A hand-over ticket lives only as long as the sign-in page needs to post it to the server.
TICKET_SECONDS = 120


class SessionService:
    def __init__(self, factory: sessionmaker, cookie_key: str):
        self._factory = factory
        self._key = cookie_key.encode("utf-8")

    def _hash(self, token: str) -> str:
        # Keyed with COOKIE_KEY: a copy of the table alone cannot be turned into working cookies,
        # and changing the key ends every session.
        return hmac.new(self._key, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def start(self, user_id: int, days: float) -> str:
        """A new session for a person who just proved their password; returns the cookie's token."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        token_hash = self._hash(token)
        with self._factory.begin() as session:
            session.add(
                SignInSession(
                    token_hash=token_hash,
                    handle=token_hash,
                    user_id=user_id,
                    expires_at=utcnow() + timedelta(days=days),
                )
            )
        return token

    def start_with_ticket(self, user_id: int, days: float) -> tuple[str, str]:
        """A new session whose cookie only the server will hand out: returns (handle, ticket).

        The handle names the session for the tab that signed in (server memory only). The ticket is what
        the browser posts to the server once, within TICKET_SECONDS, to receive the session's cookie
        (redeem). No cookie token exists until then, and only keyed hashes are stored.
        """
        with self._factory.begin() as session:
            return self._add_with_ticket(session, user_id, days)

    def _add_with_ticket(self, session: Session, user_id: int, days: float) -> tuple[str, str]:
        placeholder, ticket = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)
        handle = self._hash(placeholder)  # nobody knows the placeholder: no cookie opens this session yet
        now = utcnow()
        session.add(
            SignInSession(
                token_hash=handle,
                handle=handle,
                user_id=user_id,
                expires_at=now + timedelta(days=days),
                ticket_hash=self._hash(ticket),
                ticket_expires_at=now + timedelta(seconds=TICKET_SECONDS),
            )
        )
        return handle, ticket

    def rotate(self, handle: str | None, days: float) -> tuple[str, str] | None:
        """After a password change: end every session of the person this live session belongs to (this one
        included) and start a new one for this tab, in one transaction. Returns the new (handle, ticket),
        or None when the session is not live any more (nothing is changed then)."""
        if not isinstance(handle, str) or not handle:
            return None
        with self._factory.begin() as session:
            user_id = live_user_id(session, handle)
            if user_id is None:
                return None
            revoke_all(session, user_id)
            return self._add_with_ticket(session, user_id, days)

    def redeem(self, ticket: str | None) -> tuple[str, float] | None:
        """Exchange a live, unused ticket for the session's new cookie token, once.

        Returns (token, seconds the session has left), or None (unknown, used, expired, revoked, inactive).
        """
        if not isinstance(ticket, str) or not ticket or len(ticket) > 200:
            return None
        now = utcnow()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        live = (
            SignInSession.ticket_hash == self._hash(ticket),
            SignInSession.ticket_expires_at > now,
            SignInSession.revoked_at.is_(None),
            SignInSession.expires_at > now,
        )
        with self._factory.begin() as session:
            found = session.execute(
                select(SignInSession.handle, SignInSession.expires_at)
                .join(User, User.id == SignInSession.user_id)
                .where(*live, User.active.is_(True))
            ).one_or_none()
            if found is None:
                return None
            # One UPDATE, conditional on the ticket still being there: two posts of one ticket cannot both win.
            changed = session.execute(
                update(SignInSession)
                .where(SignInSession.handle == found.handle, *live)
                .values(token_hash=self._hash(token), ticket_hash=None, ticket_expires_at=None)
            ).rowcount
        if changed != 1:
            return None
        return token, max(0.0, (found.expires_at - now).total_seconds())

    def ticket_pending(self, handle: str | None) -> bool:
        """True while the session's hand-over ticket is unredeemed and still redeemable."""
        if not handle:
            return False
        query = select(SignInSession.handle).where(
            SignInSession.handle == handle,
            SignInSession.ticket_hash.is_not(None),
            SignInSession.ticket_expires_at > utcnow(),
            SignInSession.revoked_at.is_(None),
        )
        with self._factory() as session:
            return session.scalar(query) is not None

    def _live(self, column, *conditions, restricted: bool = False):
        """One column of the live session (not revoked, not expired, its person active) that matches.

        A session of a person who must still replace a one-time password is not live for anything but
        choosing that password (restricted=True): it opens no page, action, download or dialog."""
        password_condition = User.must_change_password.is_(True) if restricted else User.must_change_password.is_(False)
        query = (
            select(column)
            .select_from(SignInSession)
            .join(User, User.id == SignInSession.user_id)
            .where(*conditions, *_live_conditions(), password_condition)
        )
        with self._factory() as session:
            return session.scalar(query)

    def handle_for(self, token: str | None, *, restricted: bool = False) -> str | None:
        """The handle of the live session a cookie token opens (see username_for), or None. With
        restricted=True, only a session whose person must first replace a one-time password."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        return self._live(SignInSession.handle, SignInSession.token_hash == self._hash(token), restricted=restricted)

    def username_for_handle(self, handle: str | None) -> str | None:
        """The active user a live session (named by its handle) belongs to, or None. None too while the
        person must replace a one-time password (see password_change_for_handle)."""
        if not isinstance(handle, str) or not handle:
            return None
        return self._live(User.username, SignInSession.handle == handle)

    def password_change_for_handle(self, handle: str | None) -> str | None:
        """The user of a live session that may do one thing only, choose a new password (their password
        is a one-time one an administrator set), or None."""
        if not isinstance(handle, str) or not handle:
            return None
        return self._live(User.username, SignInSession.handle == handle, restricted=True)

    def revoke_handle(self, handle: str | None) -> None:
        if not handle:
            return
        with self._factory.begin() as session:
            session.execute(
                update(SignInSession)
                .where(SignInSession.handle == handle, SignInSession.revoked_at.is_(None))
                .values(revoked_at=utcnow(), ticket_hash=None, ticket_expires_at=None)
            )

    def username_for(self, token: str | None) -> str | None:
        """The active user a live session belongs to, or None (unknown, expired, revoked, deactivated)."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        return self._live(User.username, SignInSession.token_hash == self._hash(token))

    def revoke(self, token: str | None) -> None:
        if not token:
            return
        with self._factory.begin() as session:
            session.execute(
                update(SignInSession)
                .where(SignInSession.token_hash == self._hash(token), SignInSession.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )


def _live_conditions():
    return (SignInSession.revoked_at.is_(None), SignInSession.expires_at > utcnow(), User.active.is_(True))


def live_user_id(session: Session, handle: str) -> int | None:
    """The id of the active person a live session belongs to (restricted or not), in the caller's transaction."""
    return session.scalar(
        select(SignInSession.user_id)
        .join(User, User.id == SignInSession.user_id)
        .where(SignInSession.handle == handle, *_live_conditions())
    )


def revoke_all(session: Session, user_id: int, *, keep_handle: str | None = None) -> None:
    """End every session of one person, inside the caller's transaction (e.g. a password reset); with
    keep_handle, all but that one (the tab that changed its own password, rotated next)."""
    conditions = [SignInSession.user_id == user_id, SignInSession.revoked_at.is_(None)]
    if keep_handle:
        conditions.append(or_(SignInSession.handle.is_(None), SignInSession.handle != keep_handle))
    session.execute(
        update(SignInSession).where(*conditions).values(revoked_at=utcnow(), ticket_hash=None, ticket_expires_at=None)
    )
