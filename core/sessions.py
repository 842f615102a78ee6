"""Sign-in sessions kept in the database, so they hold across app processes and end when revoked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import SignInSession, User, utcnow

TOKEN_BYTES = 32


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
        with self._factory.begin() as session:
            session.add(
                SignInSession(token_hash=self._hash(token), user_id=user_id, expires_at=utcnow() + timedelta(days=days))
            )
        return token

    def username_for(self, token: str | None) -> str | None:
        """The active user a live session belongs to, or None (unknown, expired, revoked, deactivated)."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        query = (
            select(User.username)
            .join(SignInSession, SignInSession.user_id == User.id)
            .where(
                SignInSession.token_hash == self._hash(token),
                SignInSession.revoked_at.is_(None),
                SignInSession.expires_at > utcnow(),
                User.active.is_(True),
            )
        )
        with self._factory() as session:
            return session.scalar(query)

    def revoke(self, token: str | None) -> None:
        if not token:
            return
        with self._factory.begin() as session:
            session.execute(
                update(SignInSession)
                .where(SignInSession.token_hash == self._hash(token), SignInSession.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )


def revoke_all(session: Session, user_id: int) -> None:
    """End every session of one person, inside the caller's transaction (e.g. a password reset)."""
    session.execute(
        update(SignInSession)
        .where(SignInSession.user_id == user_id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
