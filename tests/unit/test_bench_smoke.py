"""The benchmark data generator, with tiny numbers, so the benchmark code cannot rot unnoticed."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from bench import generate
from bench.generate import ADMIN, MEMBER, Spec
from core import fields
from core.crypto import DecryptionError, field_context, is_encrypted
from core.models import AuditEvent, CheckRecord, Integration, User
from core.tiers import UNLIMITED, Tier, limit
from providers import CATALOG
from tests.conftest import TEST_KEY

SPEC = Spec(users=20, integrations=200, member_integrations=20, audit_events=300, check_records=400)


@pytest.fixture
def generated(ctx, database_url):
    summary = generate.generate(database_url, TEST_KEY, SPEC, reset=False, chunk=50, log=lambda _: None)
    return ctx, summary


def count(ctx, query) -> int:
    with ctx.factory() as session:
        return session.scalar(query)


def test_counts_owners_and_tier_limits(generated):
    ctx, summary = generated
    assert (summary.users, summary.integrations, summary.audit_events, summary.check_records) == (20, 200, 300, 400)
    assert count(ctx, select(func.count(CheckRecord.id))) == 400
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


def test_integrations_made_in_parallel_blocks_are_the_same_dataset():
    rng = random.Random(5)
    spec = Spec(users=20, integrations=30, member_integrations=5)
    tiers = generate.user_tiers(spec, rng)
    owners = generate.owner_order(generate.allocate(tiers, spec, rng), rng)
    now = generate.utcnow()
    made = {}
    original, generate.BLOCK = generate.BLOCK, 7
    try:
        for processes in (1, 2):
            owned: list = []
            rows = list(generate.integration_rows(tiers, owners, TEST_KEY, 1, now, owned, processes))
            assert [r["id"] for r in rows] == list(range(1, 31)) == [o.id for o in owned]
            made[processes] = [(r["owner_id"], r["provider"], r["name"], r["status"]) for r in rows]
    finally:
        generate.BLOCK = original
    assert made[1] == made[2]  # however many processes make it
    assert [row[0] for row in made[1]] == [o + 1 for o in owners]


def test_sizes_and_their_datasets():
    assert generate.parse_sizes("1m, 10k,100k,10k") == ["10k", "100k", "1m"]
    with pytest.raises(ValueError, match="2m"):
        generate.parse_sizes("10k,2m")
    big = Spec.for_size("1m")
    assert (big.integrations, big.users, big.audit_events, big.check_records) == (10**6, 10_000, 3 * 10**6, 2 * 10**6)
    assert generate.postgres_schema("postgresql://u@127.0.0.1/bench?options=-csearch_path%3Dsize_1m") == "size_1m"
    assert generate.postgres_schema("postgresql://u@127.0.0.1/bench") == "public"


def test_figures_with_a_floor_and_the_workers_ideal():
    from bench.common import Figure
    from bench.workers import Round

    assert Figure("f", "–", "", 0.95, 0.9, at_least=True).status == "MET"
    assert Figure("f", "–", "", 0.85, 0.9, at_least=True).status == "MISSED"
    assert Figure("f", "–", "", 0.85, 0.9, at_least=True).shown_target == "≥ 0.9x"
    one = Round(1, 130.0, 10_000, 10_000, 10_000, 4, 2, 0.0, 0.0)
    assert one.ideal(10_000) == pytest.approx(125.0)  # 4 threads: 2,500 rounds of 50 ms
    assert Round(4, 33.0, 10_000, 10_000, 10_000, 16, 2, 0.0, 0.0).ideal(10_000) == pytest.approx(31.25)
    assert one.problems(10_000) == []
    twice = Round(4, 33.0, 10_001, 10_000, 10_001, 17, 3, 0.0, 0.0).problems(10_000)
    assert len(twice) == 3  # the global cap, the per-host cap, a check run twice


def test_worker_memory_growth_reads_medians_after_the_warm_up():
    from bench.worker_memory import growth_points

    samples = [(0, 80.0), (50, 90.0), (100, 95.0), (120, 96.0), (150, 94.0), (900, 97.0), (950, 99.0), (1000, 98.0)]
    assert growth_points(samples, 1000) == (95.0, 98.0, 99.0)


def test_a_dataset_of_an_older_schema_is_migrated_in_place_not_written_again(generated, database_url):
    from alembic import command
    from sqlalchemy import update

    from core import db
    from core.models import AppMeta

    wanted = SPEC.marker(generate.FieldCipher([TEST_KEY]).current_key_id)
    older = wanted.replace(f'"schema": "{db.head_revision()}"', '"schema": "0020"')
    assert older != wanted
    command.downgrade(db.alembic_config(database_url), "0020")
    try:
        engine = db.make_engine(database_url)
        with engine.begin() as conn:
            conn.execute(update(AppMeta.__table__).where(AppMeta.key == generate.MARKER).values(value=older))
            before = conn.scalar(select(func.count(Integration.id)))
        assert generate.is_current(database_url, SPEC, TEST_KEY)  # migrated, so reused
        with engine.connect() as conn:
            assert db.current_revision(engine) == db.head_revision()
            assert conn.scalar(select(AppMeta.value).where(AppMeta.key == generate.MARKER)) == wanted
            assert conn.scalar(select(func.count(Integration.id))) == before  # nothing written again
        engine.dispose()
    finally:
        db.upgrade(database_url)
