"""The Custom CRM's credentials as a person sees them (AppTest): the auth types read as words, each secret is
its own masked field with at most its last four characters as a hint, an old Credentials JSON opens as the new
fields, and pasted addresses are tidied before they are saved."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.crypto import field_context
from core.fields import MASK
from core.models import Integration
from tests.app.conftest import button, sign_in, text_input, texts
from tests.app.test_concurrent_edits import open_edit

CLIENT_ID = "crm-client-id-4f7a9c"
CLIENT_SECRET = "cs-Zx9Cv7Bn5Mm3Kk1JqW"
REFRESH_TOKEN = "rt-Qw8Er6Ty4Ui2Op0AsD"
PASSWORD = "pw-S3cr3tB4s1cP4ss77"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, PASSWORD)
CRM_CHOICES = ["Chatwoot", "Salesforce", "HubSpot", "Zoho CRM", "Pipedrive", "Custom CRM"]


def open_add(at, provider_name: str):
    at.switch_page("app_pages/integrations.py")
    at.run()
    at.button(key="add-CRM").click()
    at.run()
    at.selectbox[0].select_index(CRM_CHOICES.index(provider_name))
    at.run()
    assert not at.exception, at.exception
    return at


def everything(at) -> str:
    """Every text the page carries: what it shows, and each widget's label, value, help and placeholder."""
    parts = [texts(at)]
    for kind in ("text_input", "text_area", "selectbox", "number_input", "checkbox"):
        for element in getattr(at, kind):
            parts += [str(element.label), str(element.value), str(element.help or "")]
            parts.append(str(getattr(element.proto, "placeholder", "")))
    return "\n".join(parts)


def assert_at_most_the_last_four(page: str, secret: str) -> None:
    """No five characters in a row of the secret are on the page (its last four may be, as the hint)."""
    for start in range(len(secret) - 4):
        assert secret[start : start + 5] not in page, f"{secret[start : start + 5]!r} of a secret is on the page"


def test_the_auth_types_read_as_words_and_store_their_codes(app_env, owner):
    at = open_add(sign_in("olga", "olga-password-1"), "Custom CRM")
    [auth] = [s for s in at.selectbox if s.label.startswith("Authentication Type")]
    assert list(auth.options) == [
        "API key",
        "Bearer token",
        "Basic",
        "OAuth 2 client credentials",
        "OAuth 2 authorization code",
    ]
    auth.set_value("BASIC")
    at.run()
    text_input(at, "Integration name").input("Acme basic")
    text_input(at, "CRM Name").input("Acme")
    text_input(at, "API Base URL").input("https://crm.acme.test/api")
    text_input(at, "User Name").input("robot")
    text_input(at, "Password").input(PASSWORD)
    text_input(at, "Health Check Path").input("api/health")
    button(at, "Save integration").click()
    at.run()
    assert not at.exception, at.exception

    (view,) = app_env.integrations.list_integrations(owner)
    assert view.configuration["authType"] == "BASIC"
    assert view.configuration["healthPath"] == "/api/health"  # the missing / added, not refused
    assert (view.configuration["username"], view.configuration["password"]) == ("robot", MASK)
    assert PASSWORD not in everything(at)


def test_the_edit_dialog_shows_each_secret_masked_with_at_most_its_last_four(app_env, owner):
    config = {
        "name": "Acme",
        "apiEndpoint": "https://crm.acme.test/api",
        "authType": "OAUTH2_CODE",
        "tokenUrl": "https://crm.acme.test/oauth/token",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }
    view = app_env.integrations.create(owner, "Acme by code", "CUSTOM", config)
    at = open_edit(sign_in("olga", "olga-password-1"), view)

    page = everything(at)
    assert text_input(at, "Client Secret").value == MASK and text_input(at, "Refresh Token").value == MASK
    assert text_input(at, "Client ID").value == CLIENT_ID  # an identifier, shown
    for secret in SECRETS:
        assert_at_most_the_last_four(page, secret)
    assert f"It ends in {CLIENT_SECRET[-4:]}." in page and f"It ends in {REFRESH_TOKEN[-4:]}." in page

    text_input(at, "Client ID").input("crm-client-id-renamed")  # the secrets left masked: kept
    button(at, "Save integration").click()
    at.run()
    assert not at.exception, at.exception
    with app_env.factory() as session:
        stored = session.scalar(select(Integration.configuration).where(Integration.id == view.id))
    assert stored["clientId"] == "crm-client-id-renamed"
    for name, secret in (("clientSecret", CLIENT_SECRET), ("refreshToken", REFRESH_TOKEN)):
        assert app_env.cipher.decrypt(stored[name], field_context(view.id, name)) == secret


def test_an_old_credentials_json_opens_as_the_new_fields_and_saves_them(app_env, owner, store_old_shape):
    credentials = {"username": "robot", "password": PASSWORD}
    old = {
        "name": "Acme",
        "apiEndpoint": "https://crm.acme.test/api",
        "authType": "BASIC",
        "healthPath": "/",
        "credentials": json.dumps(credentials),
    }
    integration = store_old_shape(owner, "CUSTOM", old)
    view = app_env.integrations.get(owner, integration)
    at = open_edit(sign_in("olga", "olga-password-1"), view)

    assert text_input(at, "User Name").value == "robot"
    assert text_input(at, "Password").value == MASK
    assert_at_most_the_last_four(everything(at), PASSWORD)
    button(at, "Save integration").click()
    at.run()
    assert not at.exception, at.exception

    with app_env.factory() as session:
        stored = session.scalar(select(Integration.configuration).where(Integration.id == integration))
    assert "credentials" not in stored and stored["username"] == "robot"
    assert stored["password"].startswith("enc:") and PASSWORD not in json.dumps(stored)


def test_a_pasted_chatwoot_address_fills_the_base_url_and_the_account(app_env, owner):
    at = open_add(sign_in("olga", "olga-password-1"), "Chatwoot")
    text_input(at, "Integration name").input("Acme desk")
    text_input(at, "Chatwoot Base URL").input("https://app.chatwoot.com/app/accounts/123/inbox/5")
    text_input(at, "API Access Token").input("cw-token-0123456789")
    button(at, "Save integration").click()
    at.run()
    assert not at.exception, at.exception

    (view,) = app_env.integrations.list_integrations(owner)
    assert (view.configuration["baseUrl"], view.configuration["accountId"]) == ("https://app.chatwoot.com", "123")
    at = open_edit(at, view)
    assert text_input(at, "Chatwoot Base URL").value == "https://app.chatwoot.com"
    assert text_input(at, "Account ID").value == "123"
