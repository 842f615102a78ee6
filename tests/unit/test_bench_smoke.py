"""The benchmark data generator, with tiny numbers, so the benchmark code cannot rot unnoticed."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from bench import generate
from bench.generate import ADMIN, MEMBER, Spec
from core import fields
from core.crypto import DecryptionError, field_context, is_encrypted
from core.models import AuditEvent, Integration, User
from core.tiers import UNLIMITED, Tier, limit
from providers import CATALOG
from tests.conftest import TEST_KEY

SPEC = Spec(users=20, integrations=200, member_integrations=20, audit_events=300)


@pytest.fixture
def generated(ctx, database_url):
    summary = generate.generate(database_url, TEST_KEY, SPEC, reset=False, chunk=50, log=lambda _: None)
    return ctx, summary


def count(ctx, query) -> int:
    with ctx.factory() as session:
        return session.scalar(query)


def test_counts_owners_and_tier_limits(generated):
    ctx, summary = generated
    assert (summary.users, summary.integrations, summary.audit_events) == (20, 200, 300)
    assert count(ctx, select(func.count(User.id))) == 20
    assert count(ctx, select(func.count(Integration.id))) == 200
    assert count(ctx, select(func.count(AuditEvent.id))) == 300
    assert count(ctx, select(func.count(User.id)).where(User.role == "admin")) == 1
    member = ctx.users.get_by_username(MEMBER)
    assert len(ctx.integrations.list_integrations(member.actor())) == 20
    assert len(ctx.integrations.list_integrations(ctx.users.get_by_username(ADMIN).actor())) == 200
    with ctx.factory() as session:
        owned = session.execute(
            select(User.tier, func.count(Integration.id)).join(Integration).group_by(User.id, User.tier)
        ).all()
    for tier, n in owned:
        allowed = limit("integrations", Tier[tier])
        assert allowed == UNLIMITED or n <= allowed


def test_secrets_open_only_with_their_field_context(generated):
    ctx, summary = generated
    assert summary.secrets > 0
    with ctx.factory() as session:
        row, owner = session.execute(
            select(Integration, User.username)
            .join(User)
            .where(Integration.provider == "CHATWOOT", Integration.is_active.is_(True))
        ).first()
    sealed = row.configuration["apiKey"]
    assert is_encrypted(sealed)
    plain = ctx.cipher.decrypt(sealed, field_context(row.id, "apiKey"))
    assert len(plain) == 40
    with pytest.raises(DecryptionError):
        ctx.cipher.decrypt(sealed, field_context(row.id + 1, "apiKey"))
    actor = ctx.users.get_by_username(owner).actor()  # and the app's own path opens it
    assert ctx.integrations.credentials_for(actor, row.id, "CHATWOOT")["apiKey"] == plain


def test_dataset_marker_says_when_to_regenerate(generated, database_url):
    assert generate.is_current(database_url, SPEC, TEST_KEY)
    assert not generate.is_current(database_url, Spec(users=21, integrations=200), TEST_KEY)
    assert not generate.is_current(database_url, SPEC, "1f" * 32)


@pytest.mark.parametrize("provider", list(CATALOG), ids=lambda p: p.key)
def test_generated_configurations_pass_the_providers_own_checks(provider):
    rng = random.Random(3)
    for _ in range(20):
        config = generate.plain_config(provider, rng, generate.company(rng))
        assert fields.validate(provider.fields, config) == {}
        assert (provider.check(config) if provider.check else {}) == {}
