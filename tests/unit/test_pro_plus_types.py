"""The Database, API and Webhook types through IntegrationService: the Pro Plus tier gate, secrets encrypted
at rest and absent from every view, result and audit event, and the provider `prepare` hook. No network."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.catalog import INTEGRATION_TYPES, Catalog, Provider
from core.crypto import field_context, is_encrypted
from core.fields import MASK, FieldSpec
from core.integrations.service import IntegrationService
from core.models import AuditEvent, Integration
from core.results import TestResult
from core.tiers import FEATURE_MIN_TIER, Tier, TierLimitError
from providers import CATALOG

DB_PASSWORD = "db-password-Zq8Wx2Ec4Rv6"
API_TOKEN = "api-token-Lp0Ok9Ij8Uh7Yg6"
HOOK_SECRET = "whsec_unit-Tf5Rd4Es3Wa2Qz1Xc9"

CONFIGS = {
    "POSTGRESQL": (
        "password",
        DB_PASSWORD,
        {"host": "db.example.com", "port": 5432, "database": "app", "user": "ro", "password": DB_PASSWORD},
    ),
    "MYSQL": (
        "password",
        DB_PASSWORD,
        {"host": "10.0.0.5", "port": "3306", "database": "app", "user": "ro", "password": DB_PASSWORD},
    ),
    "API": (
        "token",
        API_TOKEN,
        {"baseUrl": "https://api.example.com", "kind": "REST", "authType": "BEARER", "token": API_TOKEN},
    ),
    "WEBHOOK": (
        "secret",
        HOOK_SECRET,
        {"url": "https://hooks.example.com/in", "events": "integration.created", "secret": HOOK_SECRET},
    ),
}
KEYS = list(CONFIGS)


pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


def make_user(ctx, tier: str):
    name = tier.lower().replace("_", "")
    return ctx.users.create(None, name, name.title(), f"{name}@example.com", f"{name}-password-1", "member", tier)


def audit_text(ctx) -> str:
    with ctx.factory() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        return json.dumps([{"action": r.action, "details": r.details} for r in rows])


def test_the_new_types_are_open_in_the_catalog():
    for kind in INTEGRATION_TYPES:
        if kind.key in ("DATABASE", "API", "WEBHOOK"):
            assert kind.available and kind.note == "", kind.key
            assert CATALOG.in_category(kind.key), kind.key
            assert FEATURE_MIN_TIER[kind.key] is Tier.PRO_PLUS
    for key in KEYS:
        provider = CATALOG.get(key)
        assert provider.available and provider.min_tier is Tier.PRO_PLUS


@pytest.mark.parametrize("tier", ["FREE", "STARTER", "TEAM"])
@pytest.mark.parametrize("key", KEYS)
def test_below_pro_plus_creating_is_refused_and_names_the_tier(ctx, tier, key):
    actor = make_user(ctx, tier).actor()
    _, secret, config = CONFIGS[key]
    with pytest.raises(TierLimitError) as raised:
        ctx.integrations.create(actor, "Refused", key, config)
    message = str(raised.value)
    assert "needs the Pro Plus tier or higher" in message
    assert f"yours is {Tier[tier].label}" in message
    assert secret not in message
    assert ctx.integrations.list_integrations(actor) == []


def test_the_refusal_reads_naturally():
    kinds = {p.category for p in (CATALOG.get(k) for k in KEYS)}
    assert kinds == {"DATABASE", "API", "WEBHOOK"}
    from core.integrations.service import _kind_phrase

    assert [_kind_phrase(k) for k in ("DATABASE", "API", "WEBHOOK")] == [
        "A Database integration",
        "An API integration",
        "A Webhook integration",
    ]


@pytest.mark.parametrize("tier", ["PRO_PLUS", "BUSINESS", "ENTERPRISE"])
@pytest.mark.parametrize("key", KEYS)
def test_pro_plus_and_up_can_create_and_the_secret_is_encrypted(ctx, tier, key):
    actor = make_user(ctx, tier).actor()
    field, secret, config = CONFIGS[key]
    view = ctx.integrations.create(actor, "Allowed", key, config)

    assert view.type == CATALOG.get(key).category
    assert view.configuration[field] == MASK
    with ctx.engine.connect() as conn:
        raw = conn.execute(select(Integration.configuration).where(Integration.id == view.id)).scalar_one()
    text = raw if isinstance(raw, str) else json.dumps(raw)
    stored = (json.loads(raw) if isinstance(raw, str) else raw)[field]
    assert is_encrypted(stored)
    assert secret not in text
    assert secret in ctx.cipher.decrypt(stored, field_context(view.id, field))
    assert secret not in json.dumps([v.configuration for v in ctx.integrations.list_integrations(actor)])
    assert secret not in audit_text(ctx)


@pytest.mark.parametrize("key", KEYS)
def test_no_secret_in_a_failing_test_or_its_audit_event(ctx, key):
    """Nothing listens on 127.0.0.1:1, so every test fails, and says so without the secret."""
    actor = make_user(ctx, "PRO_PLUS").actor()
    _, secret, config = CONFIGS[key]
    config = dict(config)
    if key in ("POSTGRESQL", "MYSQL"):
        config["host"] = "127.0.0.1"
        config["port"] = 1  # nothing listens on port 1
    else:
        config["baseUrl" if key == "API" else "url"] = "http://127.0.0.1:1/x"
    view = ctx.integrations.create(actor, "Failing", key, config)

    for result in (ctx.integrations.test(actor, view.id), ctx.integrations.test_configuration(actor, key, config)):
        assert not result.success
        assert secret not in json.dumps(result.as_dict())
    assert secret not in json.dumps(ctx.integrations.get(actor, view.id).configuration)
    assert ctx.integrations.get(actor, view.id).status == "error"
    assert secret not in (ctx.integrations.get(actor, view.id).status_message or "")
    assert secret not in audit_text(ctx)


# ----- the prepare hook ------------------------------------------------------------------------------------


class Preparing:
    def __init__(self):
        self.seen: list[dict] = []

    def __call__(self, config: dict) -> dict:
        self.seen.append(dict(config))
        return {**config, "token": config.get("token") or "generated-secret-1234"}


class StubSession:
    def close(self):
        pass


def test_prepare_completes_the_checked_configuration_before_encryption(ctx):
    actor = make_user(ctx, "PRO_PLUS").actor()
    prepare = Preparing()
    tested: list[dict] = []
    fields = (
        FieldSpec("url", "URL", "url", required=True),
        FieldSpec("token", "Token", "password", sensitive=True),
    )
    provider = Provider(
        "PREP",
        "Prep",
        "Fills in a token.",
        "WEBHOOK",
        fields,
        test=lambda config, context: tested.append(config) or TestResult(True, "ok"),
        prepare=prepare,
    )
    service = IntegrationService(ctx.factory, ctx.cipher, Catalog([provider]), StubSession)

    view = service.create(actor, "Prep", "PREP", {"url": "https://x.example/", "token": ""})
    assert prepare.seen[-1] == {"url": "https://x.example"}  # normalised, before encryption
    with ctx.factory() as session:
        sealed = session.get(Integration, view.id).configuration["token"]
    assert ctx.cipher.decrypt(sealed, field_context(view.id, "token")) == "generated-secret-1234"

    # An edit that keeps the secret: prepare sees the stored ciphertext, not a blank, so nothing is replaced.
    service.update(actor, view.id, view.version, configuration={"url": "https://y.example", "token": MASK})
    assert prepare.seen[-1]["token"] == sealed
    with ctx.factory() as session:
        assert session.get(Integration, view.id).configuration["token"] == sealed

    # A test gets the prepared configuration, decrypted.
    assert service.test(actor, view.id).success
    assert tested[-1] == {"url": "https://y.example", "token": "generated-secret-1234"}
