"""Pasted input tidied by the providers before it is validated (Provider.normalise), through the service:
Chatwoot's address bar, a Pipedrive address, a path without its leading slash."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from providers import api, chatwoot, custom, pipedrive

TOKEN = "cw-token-0123456789"


@pytest.mark.parametrize(
    ("pasted", "typed", "base", "account"),
    [
        ("https://app.chatwoot.com/app/accounts/123/dashboard", "", "https://app.chatwoot.com", "123"),
        ("https://app.chatwoot.com/app/accounts/123/inbox/5", None, "https://app.chatwoot.com", "123"),
        ("https://app.chatwoot.com/app/accounts/123/inbox/5?tab=open", "123", "https://app.chatwoot.com", "123"),
        ("https://chat.acme.test:3000/app/accounts/7", "", "https://chat.acme.test:3000", "7"),
        ("https://acme.test/support/app/accounts/9/contacts", "", "https://acme.test/support", "9"),
        ("https://app.chatwoot.com/app/login", "4", "https://app.chatwoot.com", "4"),
        ("https://app.chatwoot.com/app/accounts/123/dashboard", "45", "https://app.chatwoot.com", "45"),  # kept
        ("https://app.chatwoot.com", "1", "https://app.chatwoot.com", "1"),
        ("https://desk.acme.test/apps/chatwoot", "1", "https://desk.acme.test/apps/chatwoot", "1"),  # not /app
    ],
)
def test_chatwoots_address_bar_fills_the_base_url_and_the_account(pasted, typed, base, account):
    config = chatwoot.normalise({"baseUrl": pasted, "accountId": typed, "apiKey": TOKEN})
    assert (config["baseUrl"], config["accountId"]) == (base, account)


def test_a_pasted_chatwoot_address_is_saved_tidied(ctx, member):
    config = {"baseUrl": " https://app.chatwoot.com/app/accounts/123/dashboard ", "accountId": "", "apiKey": TOKEN}
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", config)
    assert (view.configuration["baseUrl"], view.configuration["accountId"]) == ("https://app.chatwoot.com", "123")


def test_not_an_address_is_left_for_the_fields_to_refuse():
    assert chatwoot.normalise({"baseUrl": "app.chatwoot.com/app/accounts/1"})["baseUrl"] == (
        "app.chatwoot.com/app/accounts/1"
    )
    assert chatwoot.normalise({"baseUrl": None}) == {"baseUrl": None}


@pytest.mark.parametrize(
    ("pasted", "domain"),
    [
        ("https://acme.pipedrive.com/deal/1", "acme"),
        ("acme.pipedrive.com", "acme"),
        ("http://Acme-Sales.pipedrive.com/", "acme-sales"),
        ("https://acme.pipedrive.com?x=1", "acme"),
        ("acme", "acme"),
        ("acme.example.com", "acme.example.com"),  # not Pipedrive's: the field refuses it
    ],
)
def test_a_pipedrive_address_is_reduced_to_the_company_domain(pasted, domain):
    assert pipedrive.normalise({"companyDomain": pasted})["companyDomain"] == domain


def test_a_pasted_pipedrive_address_is_saved_as_the_domain(ctx, member):
    config = {"companyDomain": "https://acme.pipedrive.com/deal/1", "apiToken": "pd-token-0123456789abcdef"}
    view = ctx.integrations.create(member, "Deals", "PIPEDRIVE", config)
    assert view.configuration["companyDomain"] == "acme"
    with pytest.raises(ValidationError) as refused:
        ctx.integrations.create(member, "Other", "PIPEDRIVE", config | {"companyDomain": "acme.example.com"})
    assert set(refused.value.errors) == {"companyDomain"}


@pytest.mark.parametrize(
    ("typed", "kept"),
    [("api/health", "/api/health"), (" health ", "/health"), ("/ok", "/ok"), ("", ""), (None, None)],
)
def test_a_path_without_its_leading_slash_gets_one(typed, kept):
    assert custom.normalise({"healthPath": typed})["healthPath"] == kept
    assert api.normalise({"path": typed})["path"] == kept


def test_a_path_with_a_space_is_still_refused(ctx, member):
    config = {"name": "Acme", "apiEndpoint": "https://crm.example.com", "authType": "BEARER", "token": TOKEN}
    with pytest.raises(ValidationError) as refused:
        ctx.integrations.create(member, "Acme", "CUSTOM", config | {"healthPath": "api health"})
    assert set(refused.value.errors) == {"healthPath"}
