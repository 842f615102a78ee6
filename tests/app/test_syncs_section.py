"""The contact syncs section of an integration's page (ui/syncs.py) through AppTest: a sync created from
the page is listed; with Chatwoot's "Sync contacts" off the section says why and offers no create."""

from __future__ import annotations

import pytest

from tests.app.conftest import button, sign_in, texts

pytestmark = pytest.mark.usefixtures("fast_bcrypt")

PAGE = "app_pages/integration.py"
HUBSPOT = {"accessToken": "pat-na1-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}
CHATWOOT = {"baseUrl": "http://127.0.0.1:9", "accountId": "7", "apiKey": "cw-sync-page-token-0123456789"}


def open_detail(at, integration_id):
    at.switch_page(PAGE)
    at.query_params["id"] = str(integration_id)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_sync_created_on_the_page_is_listed(app_env, owner):
    hub = app_env.integrations.create(owner, "Olga's HubSpot", "HUBSPOT", HUBSPOT).id
    desk = app_env.integrations.create(owner, "Olga's desk", "CHATWOOT", CHATWOOT).id
    at = open_detail(sign_in("olga", "olga-password-1"), desk)
    assert "Contact sync" in texts(at) and "No contact sync for this integration yet." in texts(at)
    assert at.selectbox(key="sync-create-partner").value == hub
    at.selectbox(key="sync-create-direction").set_value("both")
    button(at, "Create sync").click()
    at.run()
    assert not at.exception, at.exception
    [made] = app_env.syncs.list(owner, desk)
    assert (made.crm_integration_id, made.chatwoot_integration_id, made.direction) == (hub, desk, "both")
    listed = "\n".join(d.value.to_csv() for d in at.dataframe)
    assert "Olga's HubSpot" in listed and "Both ways" in listed and "not run yet" in listed
    assert [b.label for b in at.button if b.label in ("Sync now", "Dry run", "Delete sync…")] == [
        "Sync now",
        "Dry run",
        "Delete sync…",
    ]


def test_with_sync_contacts_off_the_section_says_why_and_offers_no_create(app_env, owner):
    app_env.integrations.create(owner, "Olga's HubSpot", "HUBSPOT", HUBSPOT)
    desk = app_env.integrations.create(
        owner, "Olga's desk", "CHATWOOT", {**CHATWOOT, "features": {"syncContacts": False}}
    ).id
    at = open_detail(sign_in("olga", "olga-password-1"), desk)
    shown = texts(at)
    assert "Contact sync is switched off for this Chatwoot integration" in shown
    assert "Create sync" not in [b.label for b in at.button]
    assert not at.get("form") or all("sync-create" not in str(f.proto) for f in at.get("form"))


def test_leads_are_offered_only_for_a_crm_that_has_them(app_env, owner):
    app_env.integrations.create(owner, "Olga's HubSpot", "HUBSPOT", HUBSPOT)
    desk = app_env.integrations.create(owner, "Olga's desk", "CHATWOOT", CHATWOOT).id
    at = open_detail(sign_in("olga", "olga-password-1"), desk)
    assert not [s for s in at.selectbox if s.key == "sync-create-object"]  # HubSpot: contacts only
    pipedrive = {"companyDomain": "acme", "apiToken": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"}
    crm = app_env.integrations.create(owner, "Olga's Pipedrive", "PIPEDRIVE", pipedrive).id
    at = open_detail(at, crm)
    choice = at.selectbox(key="sync-create-object")
    assert choice.options == ["Contacts", "Leads"] and "Pipedrive only" in choice.help
    choice.set_value("leads")
    at.selectbox(key="sync-create-direction").set_value("chatwoot_to_crm")
    button(at, "Create sync").click()
    at.run()
    assert not at.exception, at.exception
    [made] = app_env.syncs.list(owner, crm)
    assert (made.crm_integration_id, made.chatwoot_integration_id, made.crm_object) == (crm, desk, "leads")
    assert "Leads" in "\n".join(d.value.to_csv() for d in at.dataframe)
