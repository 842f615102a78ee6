"""Access-token caches and rotated secrets: encrypted at rest, per integration, never an edit."""

from __future__ import annotations

from sqlalchemy import select, update

from core.catalog import Catalog, Provider, TestContext, TestResult
from core.crypto import field_context, is_encrypted
from core.fields import MASK, FieldSpec
from core.integrations import IntegrationService
from core.models import AuditEvent, Integration, OAuthToken, utcnow
from core.tokens import EXPIRY_MARGIN_SECONDS, MemoryTokens, StoredTokens

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
