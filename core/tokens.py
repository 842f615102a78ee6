"""Access-token caches for connection tests: in the database (encrypted) for saved integrations,
in memory for a form that is not saved yet. A token is not used in its last minute."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from datetime import timedelta

from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.crypto import DecryptionError, FieldCipher, token_context
from core.models import OAuthToken, utcnow

EXPIRY_MARGIN_SECONDS = 60
MAX_LIFETIME_SECONDS = 24 * 3600


CACHE_KEY_INFO = b"integrations-console oauth token cache key v1"


def stored_key(cipher: FieldCipher, key: str) -> str:
    """The cache key as stored: HMAC-SHA256 under a key derived from the newest encryption key.

    The cache key is made from the token URL, client id and client secret (core/oauth.cache_key), so an
    unkeyed hash of it would let anyone with a copy of the database test guesses of a weak client
    secret offline. Keyed, it says nothing without the encryption key.

    When `keys rotate` puts a new key at the head of the ring, every stored key changes: lookups miss
    and a new token is fetched and cached (a cache may miss). Rows keyed under the old key, and rows
    keyed by the earlier unkeyed SHA-256, are never found again; they expire within MAX_LIFETIME_SECONDS
    and the next put for their integration deletes them.
    """
    return hmac.new(cipher.derived_key(CACHE_KEY_INFO), key.encode("utf-8"), hashlib.sha256).hexdigest()


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
            row = session.get(OAuthToken, (self._integration_id, stored_key(self._cipher, key)))
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
        hashed, now = stored_key(self._cipher, key), utcnow()
        with self._factory.begin() as session:
            session.execute(  # this key's old token, and any expired row of the integration (see stored_key)
                delete(OAuthToken).where(
                    OAuthToken.integration_id == self._integration_id,
                    or_(OAuthToken.cache_key == hashed, OAuthToken.expires_at <= now),
                )
            )
            session.add(
                OAuthToken(
                    integration_id=self._integration_id,
                    cache_key=hashed,
                    access_token=self._cipher.encrypt(token, token_context(self._integration_id, hashed)),
                    expires_at=now + timedelta(seconds=lifetime),
                )
            )
