"""providers.CATALOG: every provider describes itself completely; Chatwoot and Custom as the issue says."""

from __future__ import annotations

import json
import typing

import pytest

from core import fields
from core.catalog import Catalog, Provider, UnknownProviderError
from core.fields import FieldSpec
from core.tiers import Tier
from providers import CATALOG

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


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
def test_field_patterns_compile_and_accept_their_placeholder(provider: Provider):
    import re

    for spec in provider.fields:
        if spec.pattern:
            re.compile(spec.pattern)
            if spec.placeholder and spec.type in ("text", "url"):
                assert re.fullmatch(spec.pattern, spec.placeholder), (provider.key, spec.name)


@pytest.mark.parametrize(
    "provider", [p for p in PROVIDERS if p.available], ids=[p.key for p in PROVIDERS if p.available]
)
def test_available_providers_have_a_connection_test(provider: Provider):
    assert provider.status == "available"
    assert callable(provider.test)


@pytest.mark.parametrize("key", ["SALESFORCE", "HUBSPOT", "ZOHO", "PIPEDRIVE"])
def test_unfinished_crms_are_coming_soon_and_not_available(key):
    provider = CATALOG.get(key)
    assert provider.status == "coming_soon"
    assert not provider.available
    assert provider.fields  # listed with their field definitions


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
    assert auth.options == ("API_KEY", "BEARER", "BASIC", "OAUTH2")
    creds = CUSTOM.field("credentials")
    assert (creds.label, creds.type, creds.required, creds.sensitive) == ("Credentials", "json", True, True)


def test_custom_asks_for_what_each_auth_type_needs():
    header = CUSTOM.field("apiKeyHeader")
    assert header.is_shown({"authType": "API_KEY"})
    assert not header.is_shown({"authType": "BEARER"})
    token_url = CUSTOM.field("tokenUrl")
    assert token_url.type == "url"
    assert token_url.is_shown({"authType": "OAUTH2"})
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
    ],
)
def test_custom_check_requires_the_credentials_of_the_auth_type(auth_type, creds, ok):
    problems = CUSTOM.check({"authType": auth_type, "credentials": json.dumps(creds)})
    assert (problems == {}) is ok
    if not ok:
        assert set(problems) == {"credentials"}
        assert auth_type in problems["credentials"]
