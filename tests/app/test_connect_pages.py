"""The staff pages of connecting by consent: OAuth apps (administrators), "Connect with <provider>" in the add
dialog, the callback's outcome on the Integrations page, and "Reconnect" on an integration that needs it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import streamlit as st
from sqlalchemy import select, update

from core.crypto import is_encrypted
from core.integrations.health import Health
from core.models import Integration, OAuthApp, OAuthFlow
from tests.app.conftest import button, open_page, read, sign_in, text_input, texts

PUBLIC = "https://console.example.com"
SECRET = "hs-app-secret-0123456789abcdef0123"


@pytest.fixture
def public(monkeypatch, app_env):
    """PUBLIC_BASE_URL set; the app's services (cached per process and database) are built anew with it."""
    from ui import state

    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    app_env.connect.public_base_url = PUBLIC
    state._context_for.clear()  # pyright: ignore[reportPrivateUsage]  # the settings changed
    yield app_env
    state._context_for.clear()  # pyright: ignore[reportPrivateUsage]  # the next test's settings differ


def link_buttons(at) -> list[tuple[str, str]]:
    return [(e.proto.label, e.proto.url) for e in at.get("link_button")]


def test_without_public_base_url_the_oauth_apps_page_warns(app_env, admin):
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/oauth_apps.py")
    assert "PUBLIC_BASE_URL is not set" in read(at.warning[0].value)
    assert not at.code


def test_an_administrator_registers_an_app_and_sees_the_redirect_uri(public, admin):
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/oauth_apps.py")
    assert at.code[0].value == PUBLIC + "/oauth/callback"
    text_input(at, "Client ID").input("sf-client-id")  # Salesforce: the first provider with a consent flow
    text_input(at, "Client secret").input(SECRET)
    button(at, "Save").click()
    at.run()
    assert not at.exception, at.exception
    with public.factory() as session:
        row = session.scalars(select(OAuthApp)).one()
    assert (row.provider, row.client_id, row.scopes) == ("SALESFORCE", "sf-client-id", "api refresh_token")
    assert is_encrypted(row.client_secret)
    assert SECRET not in texts(at)


def test_members_have_no_oauth_apps_page(app_env, member):
    at = sign_in("alice", "alice-password-1")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/oauth_apps.py")


def test_connect_with_hubspot_in_the_add_dialog_leads_to_hubspots_consent(public, admin, owner):
    public.oauth_apps.save(admin, "HUBSPOT", "hubspot-client-id", SECRET, "")
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/integrations.py")
    at.button(key="add-CRM").click()
    at.run()
    at.selectbox[0].select_index(2)  # HubSpot
    at.run()
    text_input(at, "Integration name").input("Sales")
    at.run()
    button(at, "Connect with HubSpot").click()
    at.run()
    assert not at.exception, at.exception
    ((label, url),) = link_buttons(at)
    assert label == "Continue to HubSpot" and url.startswith("https://app.hubspot.com/oauth/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == [PUBLIC + "/oauth/callback"] and SECRET not in url
    with public.factory() as session:
        flow = session.scalars(select(OAuthFlow)).one()
    assert (flow.provider, flow.integration_name, flow.actor_id) == ("HUBSPOT", "Sales", owner.id)


def test_without_a_registered_app_there_is_no_connect_button(public, owner):
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/integrations.py")
    at.button(key="add-CRM").click()
    at.run()
    at.selectbox[0].select_index(2)
    at.run()
    assert "Connect with HubSpot" not in [b.label for b in at.button]


def test_reconnect_is_offered_on_an_integration_that_needs_it(public, admin, owner):
    public.oauth_apps.save(admin, "HUBSPOT", "hubspot-client-id", SECRET, "")
    view = public.integrations.create(owner, "Sales", "HUBSPOT", {"accessToken": "pat-na1-0123456789abcdef0123"})
    at = sign_in("olga", "olga-password-1")
    at.switch_page("app_pages/integration.py")
    at.query_params["id"] = str(view.id)
    at.run()
    assert "Reconnect" not in [b.label for b in at.button]  # healthy: nothing to reconnect
    with public.factory.begin() as session:
        session.execute(update(Integration).values(health=Health.NEEDS_RECONNECT.value))
    st.cache_data.clear()  # the page's reads are cached for a moment
    at.run()
    button(at, "Reconnect").click()
    at.run()
    assert not at.exception, at.exception
    assert [label for label, _ in link_buttons(at)] == ["Continue to HubSpot"]
    with public.factory() as session:
        assert session.scalars(select(OAuthFlow)).one().integration_id == view.id


def test_the_outcome_of_a_callback_is_shown_as_plain_text_to_its_starter_only(public, admin, owner, member):
    public.oauth_apps.save(admin, "HUBSPOT", "hubspot-client-id", SECRET, "")
    handle = public.sessions.handle_for(public.sessions.start(owner.id, 1))
    url = public.connect.start(owner, handle, "HUBSPOT", "Sales")
    state = parse_qs(urlsplit(url).query)["state"][0]
    denied = {"state": state, "error": "access_denied", "error_description": "**bold** [link](https://evil.example)"}
    outcome_id = public.connect.complete(denied, handle, "127.0.0.1")
    at = sign_in("olga", "olga-password-1")
    at.switch_page("app_pages/integrations.py")
    at.query_params["oauth"] = outcome_id
    at.run()
    shown = at.error[0].value
    assert "HubSpot did not grant access (access_denied" in read(shown)
    assert "\\*\\*bold\\*\\*" in shown and "\\[link\\]" in shown  # escaped: not Markdown
    other = sign_in("alice", "alice-password-1")
    other.switch_page("app_pages/integrations.py")
    other.query_params["oauth"] = outcome_id
    other.run()
    assert "no longer available" in read(other.warning[0].value)


# ----- the Custom CRM: the administrator's endpoints, and the form's API address as the draft --------------

CUSTOM_AUTHORIZE = "https://crm.acme.test/oauth/authorize"
CUSTOM_TOKEN = "https://crm.acme.test/oauth/token"


def custom_dialog(public, admin):
    public.oauth_apps.save(admin, "CUSTOM", "crm-client-id", SECRET, "", CUSTOM_AUTHORIZE, CUSTOM_TOKEN)
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/integrations.py")
    at.button(key="add-CRM").click()
    at.run()
    at.selectbox[0].select_index(5)  # Custom CRM
    at.run()
    assert not at.exception, at.exception
    text_input(at, "Integration name").input("Acme REST")
    return at


def test_connect_with_custom_crm_takes_the_forms_api_address_to_the_administrators_consent_page(public, admin, owner):
    at = custom_dialog(public, admin)
    text_input(at, "CRM Name").input("Acme")
    text_input(at, "API Base URL").input("https://crm.acme.test/api/")
    button(at, "Connect with Custom CRM").click()  # the form's own button: it submits what was typed
    at.run()
    assert not at.exception, at.exception
    ((label, url),) = link_buttons(at)
    assert label == "Continue to Custom CRM" and url.startswith(CUSTOM_AUTHORIZE + "?")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and SECRET not in url
    with public.factory() as session:
        flow = session.scalars(select(OAuthFlow)).one()
    assert (flow.provider, flow.integration_name) == ("CUSTOM", "Acme REST")
    assert flow.draft_configuration == {"name": "Acme", "apiEndpoint": "https://crm.acme.test/api", "healthPath": "/"}


def test_connect_with_custom_crm_without_an_api_address_says_which_field_to_fill(public, admin, owner):
    at = custom_dialog(public, admin)
    text_input(at, "CRM Name").input("Acme")
    button(at, "Connect with Custom CRM").click()
    at.run()
    assert not at.exception, at.exception
    assert link_buttons(at) == []
    assert "API Base URL is required." in texts(at)
    with public.factory() as session:
        assert session.scalars(select(OAuthFlow)).all() == []


def test_the_custom_crm_app_is_registered_with_its_authorize_and_token_urls(public, admin):
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/oauth_apps.py")
    [expander] = [e for e in at.expander if e.label.startswith("Custom CRM")]
    expander.text_input[0].input("crm-client-id")
    [secret] = [t for t in expander.text_input if t.label == "Client secret"]
    secret.input(SECRET)
    [token_url] = [t for t in expander.text_input if t.label == "Token URL"]
    token_url.input("ftp://crm.acme.test/token")
    [save] = [b for b in expander.button if b.label == "Save"]
    save.click()
    at.run()
    assert "Enter the authorize URL in full" in texts(at) and "Enter the token URL in full" in texts(at)
    assert public.oauth_apps.view("CUSTOM") is None
    [expander] = [e for e in at.expander if e.label.startswith("Custom CRM")]
    [authorize] = [t for t in expander.text_input if t.label == "Authorize URL"]
    authorize.input(CUSTOM_AUTHORIZE)
    [token_url] = [t for t in expander.text_input if t.label == "Token URL"]
    token_url.input(CUSTOM_TOKEN)
    [secret] = [t for t in expander.text_input if t.label == "Client secret"]
    secret.input(SECRET)
    [save] = [b for b in expander.button if b.label == "Save"]
    save.click()
    at.run()
    assert not at.exception, at.exception
    view = public.oauth_apps.view("CUSTOM")
    assert view is not None and (view.authorize_url, view.token_url) == (CUSTOM_AUTHORIZE, CUSTOM_TOKEN)
    assert SECRET not in texts(at)
