"""Access-token caches for connection tests: in the database (encrypted) for saved integrations,
in memory for a form that is not saved yet. A token is not used in its last minute."""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.crypto import DecryptionError, FieldCipher, token_context
from core.models import OAuthToken, utcnow

EXPIRY_MARGIN_SECONDS = 60
MAX_LIFETIME_SECONDS = 24 * 3600


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _lifetime(expires_in: float) -> float:
    return max(0.0, min(float(expires_in), MAX_LIFETIME_SECONDS) - EXPIRY_MARGIN_SECONDS)


class MemoryTokens:
    """For one test of an unsaved form: nothing outlives the call."""

    def __init__(self):
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str | None:
        token, until = self._tokens.get(key, (None, 0.0))
        return token if time.monotonic() < until else None

    def put(self, key: str, token: str, expires_in: float) -> None:
        self._tokens[key] = (token, time.monotonic() + _lifetime(expires_in))


class StoredTokens:
    """Per saved integration, shared by every app process, encrypted like any other secret.

    Each token is bound to its integration and cache key (associated data), so a row copied elsewhere
    does not open."""

    def __init__(self, factory: sessionmaker, cipher: FieldCipher, integration_id: int):
        self._factory, self._cipher, self._integration_id = factory, cipher, integration_id

    def get(self, key: str) -> str | None:
        with self._factory() as session:
            row = session.get(OAuthToken, (self._integration_id, _hashed(key)))
            if row is None or row.expires_at <= utcnow():
                return None
            try:
                return self._cipher.decrypt(row.access_token, token_context(self._integration_id, row.cache_key))
            except DecryptionError:
                return None  # a token written under a retired key (or moved): fetch a new one

    def put(self, key: str, token: str, expires_in: float) -> None:
        lifetime = _lifetime(expires_in)
        if lifetime <= 0:
            return
        # Another process may cache a token for the same key at the same moment: either will do.
        with contextlib.suppress(IntegrityError):
            self._replace(key, token, lifetime)

    def _replace(self, key: str, token: str, lifetime: float) -> None:
        with self._factory.begin() as session:
            session.execute(
                delete(OAuthToken).where(
                    OAuthToken.integration_id == self._integration_id, OAuthToken.cache_key == _hashed(key)
                )
            )
            session.add(
                OAuthToken(
                    integration_id=self._integration_id,
                    cache_key=_hashed(key),
                    access_token=self._cipher.encrypt(token, token_context(self._integration_id, _hashed(key))),
                    expires_at=utcnow() + timedelta(seconds=lifetime),
                )
            )
