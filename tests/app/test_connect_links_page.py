"""The Connect links page (ui/connect_links.py): a link created in the dialog and its address shown once,
the list with its filters, revoke and send again on the chosen link, the reconnect link on an integration
that needs it, and what members may see."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import select, update

from core.integrations.health import Health
from core.models import ConnectLink, Integration
from tests.app.conftest import button, open_page, read, sign_in, text_input, texts
from tests.app.test_connect_pages import PUBLIC, SECRET
from tests.app.test_connect_pages import public as public


def register(ctx, admin) -> None:
    ctx.oauth_apps.save(admin, "HUBSPOT", "hubspot-client-id", SECRET, "")


def test_without_an_app_the_page_says_what_is_missing(public, owner):
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/connect_links.py")
    assert "No provider can be connected by link yet" in read(at.info[0].value)
    assert "New connect link" not in [b.label for b in at.button]


def test_a_link_is_created_in_the_dialog_and_its_address_shown_once(public, admin, owner):
    register(public, admin)
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/connect_links.py")
    button(at, "New connect link").click()
    at.run()
    text_input(at, "Integration name").input("Acme HubSpot")
    at.text_area[0].input("call before Friday")
    button(at, "Create link").click()
    at.run()
    assert not at.exception, at.exception
    (address,) = [c.value for c in at.code]
    assert address.startswith(PUBLIC + "/connect/")
    with public.factory() as session:
        row = session.scalars(select(ConnectLink)).one()
    assert (row.integration_name, row.owner_id, row.note) == ("Acme HubSpot", owner.id, "call before Friday")
    assert address.rsplit("/", 1)[1] not in repr({c.name: getattr(row, c.name) for c in ConnectLink.__table__.columns})
    button(at, "Done, I copied it").click()
    at.run()
    assert not at.code  # shown once


def test_the_chosen_link_is_revoked_or_sent_again(public, admin, owner):
    register(public, admin)
    first = public.links.create(owner, "HUBSPOT", "First")
    public.links.create(owner, "HUBSPOT", "Second")
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/connect_links.py")
    at.selectbox(key="links:chosen").set_value(first.view.id)
    at.run()
    button(at, "Send again").click()
    at.run()
    assert not at.exception, at.exception
    (address,) = [c.value for c in at.code]
    assert address != first.url and public.links.open(first.url.rsplit("/", 1)[1], "x").state == "unknown"
    assert public.links.get(owner, first.view.id).sent_count == 2
    at.selectbox(key="links:chosen").set_value(first.view.id)
    at.run()
    button(at, "Revoke…").click()
    at.run()
    assert "Its address stops working at once." in texts(at)
    assert public.links.get(owner, first.view.id).state != "revoked"  # it asks first
    confirm = button(at, "Revoke")
    assert confirm.proto.type == "primary"
    confirm.click()
    at.run()
    assert public.links.get(owner, first.view.id).state == "revoked"
    at.pills(key="links:states").set_value(["revoked"])
    at.run()
    assert [o for o in at.selectbox(key="links:chosen").options if "Second" in o] == []


def test_an_integration_that_needs_reconnecting_offers_a_reconnect_link(public, admin, owner):
    register(public, admin)
    view = public.integrations.create(owner, "Sales", "HUBSPOT", {"accessToken": "pat-na1-0123456789abcdef0123"})
    with public.factory.begin() as session:
        session.execute(update(Integration).values(health=Health.NEEDS_RECONNECT.value))
    st.cache_data.clear()
    at = sign_in("olga", "olga-password-1")
    at.switch_page("app_pages/integration.py")
    at.query_params["id"] = str(view.id)
    at.run()
    button(at, "Send a reconnect link").click()
    at.run()
    assert not at.exception, at.exception
    (address,) = [c.value for c in at.code]
    assert address.startswith(PUBLIC + "/connect/")
    with public.factory() as session:
        assert session.scalars(select(ConnectLink)).one().integration_id == view.id


def test_members_see_only_their_own_links(public, admin, owner, member):
    register(public, admin)
    public.links.create(owner, "HUBSPOT", "Olga's")
    at = open_page(sign_in("alice", "alice-password-1"), "app_pages/connect_links.py")
    assert "No connect links yet." in read(at.info[0].value)
    assert "Olga's" not in texts(at)


def test_a_custom_crm_link_asks_staff_for_its_api_address(public, admin, owner):
    register(public, admin)
    public.oauth_apps.save(
        admin,
        "CUSTOM",
        "custom-client",
        SECRET,
        "",
        authorize_url="https://auth.example.com/authorize",
        token_url="https://auth.example.com/token",
    )
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/connect_links.py")
    button(at, "New connect link").click()
    at.run()
    provider = at.selectbox(key="links:create:provider")
    provider.set_value("CUSTOM")
    at.run()
    text_input(at, "Integration name").input("Acme CRM")
    text_input(at, "CRM Name").input("Acme")
    text_input(at, "API Base URL").input("ftp://not-http")
    button(at, "Create link").click()
    at.run()
    assert not at.code and at.error  # refused at the address, nothing created
    text_input(at, "API Base URL").input("https://api.acme.example")
    button(at, "Create link").click()
    at.run()
    assert not at.exception, at.exception
    assert at.code
    with public.factory() as session:
        row = session.scalars(select(ConnectLink)).one()
    assert row.draft_configuration and row.draft_configuration["apiEndpoint"] == "https://api.acme.example"
