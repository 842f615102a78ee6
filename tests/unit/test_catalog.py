"""providers.CATALOG: every provider describes itself completely; Chatwoot and Custom as the issue says."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from core import fields
from core.catalog import Catalog, Provider, UnknownProviderError
from core.crypto import field_context, is_encrypted
from core.fields import FieldSpec
from core.models import Integration
from core.tiers import Tier
from providers import CATALOG
from providers.custom_auth import AUTH_TYPE_LABELS, CREDENTIAL_FIELDS

PROVIDERS = list(CATALOG)
IDS = [p.key for p in PROVIDERS]
FIELD_TYPES = set(typing.get_args(fields.FieldType))


def test_catalog_is_not_empty_and_keys_are_unique():
    keys = [p.key for p in CATALOG]
    assert len(keys) == len(set(keys))
    assert {"CHATWOOT", "CUSTOM", "SALESFORCE", "HUBSPOT", "ZOHO", "PIPEDRIVE"} <= set(keys)


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_provider_metadata_is_complete(provider: Provider):
    assert provider.key and provider.key == provider.key.upper()
    assert len(provider.key) <= 32  # integrations.provider is String(32)
    assert provider.name.strip()
    assert provider.description.strip()
    assert provider.category in {"CRM", "DATABASE", "API", "WEBHOOK", "HELPDESK"}
    assert provider.status in ("available", "coming_soon")
    assert isinstance(provider.min_tier, Tier)
    assert CATALOG.get(provider.key) is provider
    assert provider.key in CATALOG


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_every_field_is_labelled_typed_and_uniquely_named(provider: Provider):
    names = [spec.name for spec in provider.fields]
    assert names and len(names) == len(set(names))
    unlabelled = [spec.name for spec in provider.fields if not (spec.label or "").strip()]
    assert unlabelled == [], f"{provider.key}: fields without a label: {unlabelled}"
    for spec in provider.fields:
        assert isinstance(spec, FieldSpec)
        assert spec.label.strip(), spec.name
        assert spec.type in FIELD_TYPES, spec.name
        if spec.type == "select":
            assert spec.options, spec.name
            if spec.default is not None:
                assert spec.default in spec.options, spec.name
        if spec.shown_when is not None:
            assert spec.shown_when[0] in names, spec.name


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_every_provider_has_a_sensitive_field_that_is_never_plain_text(provider: Provider):
    sensitive = [spec for spec in provider.fields if spec.sensitive]
    assert sensitive, f"{provider.key} declares no sensitive field"
    for spec in sensitive:
        assert spec.type in ("password", "json"), f"{provider.key}.{spec.name} is {spec.type}"
    plain = [f"{s.name} ({s.type})" for s in provider.fields if s.sensitive and s.type not in ("password", "json")]
    assert plain == [], f"{provider.key}: sensitive fields a form would show in clear: {plain}"


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_field_patterns_compile_and_accept_their_placeholder(provider: Provider):
    import re

    for spec in provider.fields:
        if spec.pattern:
            re.compile(spec.pattern)
            if spec.placeholder and spec.type in ("text", "url"):
                assert re.fullmatch(spec.pattern, spec.placeholder), (provider.key, spec.name)


@pytest.mark.parametrize("key", ["SALESFORCE", "HUBSPOT", "ZOHO", "PIPEDRIVE"])
def test_every_crm_connects_for_real(key):
    provider = CATALOG.get(key)
    assert provider.status == "available"
    assert provider.available
    assert callable(provider.test)
    assert provider.category == "CRM"
    assert provider.docs_url and provider.docs_url.startswith("https://")


def test_no_provider_is_coming_soon():
    assert [p.key for p in CATALOG if p.status == "coming_soon"] == []


@pytest.mark.parametrize("key", ["CHATWOOT", "CUSTOM"])
def test_chatwoot_and_custom_are_available(key):
    assert CATALOG.get(key).available


def test_provider_with_status_available_but_no_test_is_not_available():
    provider = Provider("X", "X", "x", "CRM", (FieldSpec("k", "K", "password", sensitive=True),))
    assert not provider.available


def test_unknown_provider_is_a_clear_error():
    with pytest.raises(UnknownProviderError, match="NOPE"):
        CATALOG.get("NOPE")
    assert "NOPE" not in CATALOG


def test_catalog_keeps_display_order_and_groups_by_category():
    a = Provider("A", "A", "a", "CRM", ())
    b = Provider("B", "B", "b", "DATABASE", ())
    c = Provider("C", "C", "c", "CRM", ())
    catalog = Catalog([b, a, c])
    assert [p.key for p in catalog] == ["B", "A", "C"]
    assert catalog.in_category("CRM") == [a, c]


# ----- what adding a provider must bring ----------------------------------------------------------
# A provider is one file plus its line in the catalog; these fail when it comes without a connection
# test, a labelled field, an encrypted secret, or contract tests beside it.

CONTRACT_TESTS = Path(__file__).resolve().parents[1] / "contract"
# Providers whose contract tests are not called tests/contract/test_<key lower>.py.
CONTRACT_TEST_FILES = {
    "CHATWOOT": "test_chatwoot_connection.py",
    "CUSTOM": "test_custom_crm.py",
    "POSTGRESQL": "test_database.py",
    "MYSQL": "test_database.py",
}


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_every_provider_has_a_connection_test(provider: Provider):
    assert callable(provider.test), f"{provider.key} has no connection test"
    assert provider.available, f"{provider.key} is not available"
    assert provider.status == "available"


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_every_provider_has_contract_tests_beside_it(provider: Provider):
    path = CONTRACT_TESTS / CONTRACT_TEST_FILES.get(provider.key, f"test_{provider.key.lower()}.py")
    assert path.is_file(), f"{provider.key} has no contract tests: add {path.relative_to(CONTRACT_TESTS.parents[1])}"
    assert "def test_" in path.read_text(encoding="utf-8"), f"{path.name} holds no test"


def _sample_value(spec: FieldSpec, config: dict):
    """A value the field accepts: its default, a fitting placeholder, or a made-up one of its type."""
    if spec.sensitive:
        if spec.type == "json":
            return spec.placeholder or '{"token": "sample-secret-0123456789"}'
        return f"sample-{spec.name}-secret-".ljust(max(spec.min_length or 0, 32), "x")
    if spec.default is not None:
        return spec.default
    candidates = [spec.placeholder] if spec.placeholder else []
    candidates += {
        "url": ["https://example.com"],
        "number": [1],
        "checkbox": [True],
        "select": list(spec.options[:1]),
    }.get(spec.type, ["sample"])
    for value in candidates:
        if not fields.validate([spec], {**config, spec.name: value}):
            return value
    pytest.fail(f"{spec.name}: give the field a placeholder that fits its pattern (the tests fill forms with it)")


def sample_configuration(provider: Provider) -> dict:
    """The provider's required fields, and every secret, filled with values its fields accept."""
    config: dict = {}
    for spec in provider.fields:
        if spec.is_shown(config) and (spec.required or spec.sensitive or spec.default is not None):
            fields.set_path(config, spec.name, _sample_value(spec, config))
    return config


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_every_sensitive_field_is_stored_encrypted(ctx, admin, provider: Provider):
    config = sample_configuration(provider)
    secrets = {name: fields.get_path(config, name) for name in fields.sensitive_names(provider.fields)}
    secrets = {name: value for name, value in secrets.items() if value is not None}
    assert secrets, f"{provider.key}: the sample configuration holds no secret"

    view = ctx.integrations.create(admin, f"Sample {provider.name}", provider.key, config)

    with ctx.factory() as session:
        stored = session.get(Integration, view.id).configuration
    text = json.dumps(stored)
    for name in fields.sensitive_names(provider.fields):
        value = fields.get_path(stored, name)
        if name in secrets:
            assert value is not None, f"{provider.key}.{name} was not stored"
        if value is None:
            continue
        assert is_encrypted(value), f"{provider.key}.{name} is stored in clear"
        if name in secrets:
            assert ctx.cipher.decrypt(value, field_context(view.id, name)) == secrets[name]
            assert secrets[name] not in text
        assert fields.get_path(view.configuration, name) == fields.MASK


# ----- Chatwoot --------------------------------------------------------------------------------

CHATWOOT = CATALOG.get("CHATWOOT")


def test_chatwoot_fields():
    names = [spec.name for spec in CHATWOOT.fields]
    assert names[:3] == ["baseUrl", "accountId", "apiKey"]

    base = CHATWOOT.field("baseUrl")
    assert (base.label, base.type, base.required, base.sensitive) == ("Chatwoot Base URL", "url", True, False)
    account = CHATWOOT.field("accountId")
    assert (account.label, account.required, account.sensitive) == ("Account ID", True, False)
    token = CHATWOOT.field("apiKey")
    assert (token.label, token.type, token.required, token.sensitive) == ("API Access Token", "password", True, True)
    assert token.min_length == 10


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("features.autoCreateInboxes", "Auto-create inboxes"),
        ("features.autoCreateBots", "Auto-create bots"),
        ("features.syncContacts", "Sync contacts"),
    ],
)
def test_chatwoot_feature_toggles(name, label):
    spec = CHATWOOT.field(name)
    assert spec.type == "checkbox"
    assert spec.label.lower() == label.lower()
    assert not spec.sensitive
    assert spec.default is True  # the seed's example configuration has every toggle on


def test_chatwoot_secrets_are_the_tokens():
    assert fields.sensitive_names(CHATWOOT.fields) == ["apiKey", "platformToken"]
    platform = CHATWOOT.field("platformToken")
    assert not platform.required and platform.type == "password"  # optional: agents then get an e-mail link


def test_chatwoot_validation_rules():
    good = {"baseUrl": "https://chat.example.com", "accountId": "12", "apiKey": "x" * 10}
    assert fields.validate(CHATWOOT.fields, good) == {}
    bad = fields.validate(CHATWOOT.fields, {"baseUrl": "chat.example.com", "accountId": "abc", "apiKey": "x" * 9})
    assert set(bad) == {"baseUrl", "accountId", "apiKey"}


# ----- Custom ----------------------------------------------------------------------------------

CUSTOM = CATALOG.get("CUSTOM")


def test_custom_fields():
    assert CUSTOM.field("name").label == "CRM Name"
    assert CUSTOM.field("name").required
    endpoint = CUSTOM.field("apiEndpoint")
    assert (endpoint.label, endpoint.type, endpoint.required) == ("API Base URL", "url", True)
    auth = CUSTOM.field("authType")
    assert (auth.label, auth.type, auth.required) == ("Authentication Type", "select", True)
    assert auth.options == ("API_KEY", "BEARER", "BASIC", "OAUTH2", "OAUTH2_CODE")
    assert [auth.option_label(value) for value in auth.options] == [
        "API key",
        "Bearer token",
        "Basic",
        "OAuth 2 client credentials",
        "OAuth 2 authorization code",
    ]
    secrets = [spec.name for spec in CUSTOM.fields if spec.sensitive]
    assert secrets == ["apiKey", "token", "password", "clientSecret", "refreshToken", "credentials"]
    assert not CUSTOM.field("username").sensitive and not CUSTOM.field("clientId").sensitive
    legacy = CUSTOM.field("credentials")  # the old Credentials JSON: read when stored, never shown
    assert (legacy.type, legacy.sensitive) == ("json", True)
    assert not any(legacy.is_shown({"authType": auth_type}) for auth_type in auth.options)


@pytest.mark.parametrize(
    ("auth_type", "shown"),
    [
        ("API_KEY", {"apiKeyHeader", "apiKey"}),
        ("BEARER", {"token"}),
        ("BASIC", {"username", "password"}),
        ("OAUTH2", {"clientId", "clientSecret", "tokenUrl", "clientAuth", "scope"}),
        ("OAUTH2_CODE", {"clientId", "clientSecret", "tokenUrl", "clientAuth", "refreshToken"}),
    ],
)
def test_custom_shows_each_credential_only_for_its_auth_type(auth_type, shown):
    always = {"name", "apiEndpoint", "authType", "healthPath"}
    assert {spec.name for spec in CUSTOM.fields if spec.is_shown({"authType": auth_type})} == always | shown


def test_custom_asks_for_what_each_auth_type_needs():
    header = CUSTOM.field("apiKeyHeader")
    assert header.is_shown({"authType": "API_KEY"})
    assert not header.is_shown({"authType": "BEARER"})
    token_url = CUSTOM.field("tokenUrl")
    assert token_url.type == "url"
    assert token_url.is_shown({"authType": "OAUTH2"})
    assert token_url.is_shown({"authType": "OAUTH2_CODE"})
    assert not CUSTOM.field("scope").is_shown({"authType": "OAUTH2_CODE"})  # a refresh asks for no scope
    assert not token_url.is_shown({"authType": "BASIC"})
    assert CUSTOM.field("healthPath").is_shown({"authType": "BEARER"})


@pytest.mark.parametrize(
    ("auth_type", "creds", "ok"),
    [
        ("API_KEY", {"apiKey": "k"}, True),
        ("API_KEY", {"token": "t"}, False),
        ("BEARER", {"token": "t"}, True),
        ("BEARER", {}, False),
        ("BASIC", {"username": "u", "password": "p"}, True),
        ("BASIC", {"username": "u"}, False),
        ("OAUTH2", {"clientId": "c", "clientSecret": "s"}, True),
        ("OAUTH2", {"clientId": "c", "clientSecret": ""}, False),
        ("OAUTH2_CODE", {"clientId": "c", "clientSecret": "s", "refreshToken": "r"}, True),
        ("OAUTH2_CODE", {"clientId": "c", "clientSecret": "s"}, False),
    ],
)
@pytest.mark.parametrize("shape", ["fields", "old JSON"])
def test_custom_check_requires_the_credentials_of_the_auth_type(auth_type, creds, ok, shape):
    config = {"authType": auth_type} | (creds if shape == "fields" else {"credentials": json.dumps(creds)})
    problems = CUSTOM.check(config)
    assert (problems == {}) is ok
    if not ok:
        (missing,) = problems
        assert missing in CREDENTIAL_FIELDS and not creds.get(missing)
        label = dict(AUTH_TYPE_LABELS)[auth_type]
        assert problems[missing] == f"Enter the {CUSTOM.field(missing).label.lower()}: {label} needs it."
