"""Access-token caches and rotated secrets: encrypted at rest, per integration, never an edit."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select, update

from core.catalog import Catalog, Provider, TestContext
from core.crypto import field_context, is_encrypted
from core.fields import MASK, FieldSpec
from core.integrations.service import IntegrationService
from core.models import AuditEvent, Integration, OAuthToken, utcnow
from core.results import TestResult
from core.tokens import EXPIRY_MARGIN_SECONDS, MemoryTokens, StoredTokens, stored_key

FIELDS = (
    FieldSpec("baseUrl", "Base URL", "url", required=True),
    FieldSpec("refreshToken", "Refresh token", "password", required=True, sensitive=True),
)


class Session:
    def close(self):
        pass


def test_memory_tokens_expire_a_minute_early():
    tokens = MemoryTokens()
    tokens.put("k", "short", EXPIRY_MARGIN_SECONDS - 1)
    tokens.put("j", "long", 3600)
    assert tokens.get("k") is None and tokens.get("j") == "long" and tokens.get("other") is None


def test_stored_tokens_are_encrypted_and_per_integration(ctx, member):
    first = ctx.integrations.create(
        member, "A", "CHATWOOT", {"baseUrl": "https://a.test", "accountId": "1", "apiKey": "x" * 12}
    )
    second = ctx.integrations.create(
        member, "B", "CHATWOOT", {"baseUrl": "https://b.test", "accountId": "1", "apiKey": "y" * 12}
    )
    StoredTokens(ctx.factory, ctx.cipher, first.id).put("oauth", "access-token-canary", 3600)
    assert StoredTokens(ctx.factory, ctx.cipher, first.id).get("oauth") == "access-token-canary"
    assert StoredTokens(ctx.factory, ctx.cipher, second.id).get("oauth") is None
    with ctx.factory() as session:
        [row] = session.scalars(select(OAuthToken)).all()
    assert is_encrypted(row.access_token) and "canary" not in row.access_token

    with ctx.factory.begin() as session:
        session.execute(update(OAuthToken).values(expires_at=utcnow()))
    assert StoredTokens(ctx.factory, ctx.cipher, first.id).get("oauth") is None

    ctx.integrations.delete(member, first.id)
    with ctx.factory() as session:
        assert session.scalars(select(OAuthToken)).all() == []


def rotating_service(ctx, seen: list):
    def test(config: dict, context: TestContext) -> TestResult:
        seen.append(config["refreshToken"])
        context.rotate_secret("refreshToken", "rotated-refresh-token")
        return TestResult(True, "ok")

    catalog = Catalog([Provider("ROT", "Rotating CRM", "Rotates.", "CRM", FIELDS, test=test)])
    return IntegrationService(ctx.factory, ctx.cipher, catalog, Session)


def secret_of(integration_id: int) -> bytes:
    return field_context(integration_id, "refreshToken")


def stored_secret(ctx, integration_id: int) -> str:
    return ctx.cipher.decrypt(stored(ctx, integration_id).configuration["refreshToken"], secret_of(integration_id))


def stored(ctx, integration_id):
    with ctx.factory() as session:
        return session.get(Integration, integration_id)


def test_a_rotated_refresh_token_replaces_the_stored_one_without_an_edit(ctx, member):
    seen: list = []
    service = rotating_service(ctx, seen)
    view = service.create(member, "Rot", "ROT", {"baseUrl": "https://crm.test", "refreshToken": "first-refresh"})
    service.test(member, view.id)
    row = stored(ctx, view.id)
    assert is_encrypted(row.configuration["refreshToken"])
    assert ctx.cipher.decrypt(row.configuration["refreshToken"], secret_of(view.id)) == "rotated-refresh-token"
    assert row.version == view.version  # an open edit form does not conflict
    service.test(member, view.id)
    assert seen == ["first-refresh", "rotated-refresh-token"]
    with ctx.factory() as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "integration.secret_rotated" in actions


def test_a_form_test_with_the_mask_rotates_the_stored_token_but_a_new_one_is_not_saved(ctx, member):
    seen: list = []
    service = rotating_service(ctx, seen)
    view = service.create(member, "Rot", "ROT", {"baseUrl": "https://crm.test", "refreshToken": "first-refresh"})
    service.test_configuration(member, "ROT", {"baseUrl": "https://crm.test", "refreshToken": MASK}, view.id)
    assert stored_secret(ctx, view.id) == "rotated-refresh-token"

    service.test_configuration(member, "ROT", {"baseUrl": "https://crm.test", "refreshToken": "typed-in"}, view.id)
    assert seen[-1] == "typed-in"
    assert stored_secret(ctx, view.id) == "rotated-refresh-token"


# ----- stored cache keys are keyed hashes ---------------------------------------------------------


def stored_rows(ctx, integration_id: int) -> list[OAuthToken]:
    with ctx.factory() as session:
        return list(session.scalars(select(OAuthToken).where(OAuthToken.integration_id == integration_id)))


def test_the_stored_cache_key_is_a_keyed_hash_that_differs_per_encryption_key(ctx, member):
    from core import oauth
    from core.crypto import FieldCipher

    view = ctx.integrations.create(
        member, "A", "CHATWOOT", {"baseUrl": "https://a.test", "accountId": "1", "apiKey": "x" * 12}
    )
    url, client_id, secret = "https://login.crm.test/token", "client-1", "weak"
    key = oauth.cache_key("client_credentials", url, client_id, secret)
    StoredTokens(ctx.factory, ctx.cipher, view.id).put(key, "access-token-1", 3600)
    [row] = stored_rows(ctx, view.id)
    unkeyed = {
        hashlib.sha256(key.encode()).hexdigest(),  # what was stored before: SHA-256 of oauth.cache_key
        hashlib.sha256("\0".join((url, client_id, secret)).encode()).hexdigest(),
        key.split(":", 1)[1],
    }
    assert row.cache_key not in unkeyed and secret not in row.cache_key
    other = FieldCipher(["5a" * 32])
    assert stored_key(other, key) != row.cache_key == stored_key(ctx.cipher, key)
    assert StoredTokens(ctx.factory, other, view.id).get(key) is None  # another key ring: a miss

    # Within its lifetime the token is reused, through the same path connection tests take.
    tokens = StoredTokens(ctx.factory, ctx.cipher, view.id)
    assert tokens.get(key) == "access-token-1"
    oauth.remember(tokens, key, {"access_token": "access-token-2"}, 3600)
    assert oauth.cached(tokens, key) == {"access_token": "access-token-2"}


def test_rows_keyed_the_old_way_are_never_used_and_are_cleared(ctx, member):
    from core.crypto import token_context

    view = ctx.integrations.create(
        member, "A", "CHATWOOT", {"baseUrl": "https://a.test", "accountId": "1", "apiKey": "x" * 12}
    )
    old_key = hashlib.sha256(b"oauth").hexdigest()  # the unkeyed formula
    with ctx.factory.begin() as session:
        session.add(
            OAuthToken(
                integration_id=view.id,
                cache_key=old_key,
                access_token=ctx.cipher.encrypt("old-token", token_context(view.id, old_key)),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        expired = stored_key(ctx.cipher, "expired")
        session.add(
            OAuthToken(
                integration_id=view.id,
                cache_key=expired,
                access_token=ctx.cipher.encrypt("gone", token_context(view.id, expired)),
                expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    tokens = StoredTokens(ctx.factory, ctx.cipher, view.id)
    assert tokens.get("oauth") is None  # the old row just misses
    tokens.put("oauth", "new-token", 3600)
    assert tokens.get("oauth") == "new-token"
    keys = {row.cache_key for row in stored_rows(ctx, view.id)}
    assert keys == {stored_key(ctx.cipher, "oauth"), old_key}  # the expired row was cleared by the put
