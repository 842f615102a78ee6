"""Every page through Streamlit's AppTest, signed out and signed in."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.crypto import is_encrypted
from core.fields import MASK
from core.models import Integration
from tests.app.conftest import button, new_app, open_page, read, select_rows, sign_in, text_input, texts

TOKEN = "cw-token-canary-0123456789"
CHATWOOT = {"baseUrl": "http://127.0.0.1:9", "accountId": "1", "apiKey": TOKEN}


def stored_row(ctx, integration_id):
    with ctx.factory() as session:
        return session.scalar(select(Integration).where(Integration.id == integration_id))


def test_signed_out_sees_only_sign_in(app_env, member):
    at = new_app()
    at.run()
    assert [t.value for t in at.title] == ["🔌 Integrations Console"]
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert not at.metric
    # Signed out, the only registered page is the sign-in page: no other page can be reached.
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/integrations.py")


def test_wrong_password_is_refused_plainly(app_env, member):
    at = sign_in("alice", "not-the-password")
    assert "do not match an active account" in texts(at)
    assert not at.metric


def test_member_signs_in_to_overview_without_admin_pages(app_env, member):
    at = sign_in("alice", "alice-password-1")
    assert [t.value for t in at.title] == ["Overview"]
    assert [m.label for m in at.metric] == ["Total", "Active", "Inactive", "With errors", "Stale"]
    assert "No integrations yet" in texts(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/admin.py")


def test_overview_counts_by_provider_and_status(app_env, member):
    for n in range(2):
        app_env.integrations.create(member, f"CW {n}", "CHATWOOT", CHATWOOT)
    at = sign_in("alice", "alice-password-1")
    assert [m.value for m in at.metric] == ["2", "2", "0", "0", "0"]
    table = at.dataframe[0].value
    assert table.set_index("Provider").loc["Chatwoot", "Not tested"] == 2


def open_add_dialog(at):
    at.switch_page("app_pages/integrations.py")
    at.run()
    at.button(key="add-CRM").click()
    at.run()
    return at


def fill_chatwoot(at, name="Acme helpdesk", config=CHATWOOT):
    text_input(at, "Integration name").input(name)
    text_input(at, "Chatwoot Base URL").input(config["baseUrl"])
    text_input(at, "Account ID").input(config["accountId"])
    text_input(at, "API Access Token").input(config["apiKey"])


def test_add_chatwoot_integration_stores_token_encrypted(app_env, member):
    at = open_add_dialog(sign_in("alice", "alice-password-1"))
    fill_chatwoot(at)
    button(at, "Save integration").click()
    at.run()
    assert not at.exception
    [view] = app_env.integrations.list_integrations(member)
    assert view.name == "Acme helpdesk" and view.provider == "CHATWOOT"
    raw = stored_row(app_env, view.id).configuration
    assert is_encrypted(raw["apiKey"]) and TOKEN not in json.dumps(raw)
    assert raw["features"] == {"autoCreateInboxes": True, "autoCreateBots": True, "syncContacts": True}
    assert at.dataframe[0].value.iloc[0]["Name"] == "Acme helpdesk"
    assert TOKEN not in texts(at)


def test_choosing_a_type_closes_the_add_menu_and_opens_its_dialog(app_env, member):
    at = sign_in("alice", "alice-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    at.button(key="add-CRM").click()
    at.run()

    # A new menu (its key changed), so the browser draws it closed: left open, it sat over the dialog.
    assert at.session_state["add_menu_nonce"] == 1
    assert text_input(at, "Integration name")  # the dialog's first field


def test_invalid_fields_get_inline_messages(app_env, member):
    at = open_add_dialog(sign_in("alice", "alice-password-1"))
    fill_chatwoot(at, config={"baseUrl": "ftp://x", "accountId": "abc", "apiKey": "short"})
    button(at, "Save integration").click()
    at.run()
    shown = texts(at)
    assert "Enter a full web address" in shown
    assert "number after /accounts/" in shown
    assert "at least 10 characters" in shown
    assert app_env.integrations.list_integrations(member) == []


def test_test_connection_in_dialog_reports_failure_plainly(app_env, member):
    at = open_add_dialog(sign_in("alice", "alice-password-1"))
    fill_chatwoot(at)
    button(at, "Test connection").click()
    at.run()
    assert "refused the connection" in " ".join(read(e.value) for e in at.error)
    assert TOKEN not in texts(at)


def test_hubspot_form_renders_from_its_fields_and_saves(app_env, member):
    at = open_add_dialog(sign_in("alice", "alice-password-1"))
    at.selectbox[0].select_index(2)  # HubSpot: no longer coming soon
    at.run()
    assert "coming soon" not in texts(at)
    text_input(at, "Integration name").input("Sales HubSpot")
    text_input(at, "Private App Access Token").input("pat-na1-app-test-token-0123456789")
    button(at, "Save integration").click()
    at.run()
    (view,) = app_env.integrations.list_integrations(member)
    assert (view.provider, view.configuration["accessToken"]) == ("HUBSPOT", MASK)
    assert is_encrypted(stored_row(app_env, view.id).configuration["accessToken"])


def select_integration(at, view):
    at.switch_page("app_pages/integrations.py")
    at.run()
    return select_rows(at, view.name)


def test_edit_shows_mask_and_keeps_stored_secret(app_env, member):
    view = app_env.integrations.create(member, "Old name", "CHATWOOT", CHATWOOT)
    before = stored_row(app_env, view.id).configuration["apiKey"]
    at = select_integration(sign_in("alice", "alice-password-1"), view)
    button(at, "Edit").click()
    at.run()
    assert text_input(at, "API Access Token").value == MASK
    text_input(at, "Integration name").input("New name")
    button(at, "Save integration").click()
    at.run()
    assert not at.exception
    row = stored_row(app_env, view.id)
    assert row.name == "New name" and row.configuration["apiKey"] == before


def test_toggle_and_delete(app_env, member):
    view = app_env.integrations.create(member, "Toggle me", "CHATWOOT", CHATWOOT)
    at = select_integration(sign_in("alice", "alice-password-1"), view)
    button(at, "Deactivate").click()
    at.run()
    assert stored_row(app_env, view.id).is_active is False
    button(at, "Activate").click()
    at.run()
    assert stored_row(app_env, view.id).is_active is True
    button(at, "Delete").click()
    at.run()
    assert "cannot be undone" in texts(at)
    assert stored_row(app_env, view.id) is not None  # nothing is deleted before the confirmation
    button(at, "Delete permanently").click()
    at.run()
    assert stored_row(app_env, view.id) is None


def test_member_cannot_reach_another_members_integration(app_env, member, other_member):
    theirs = app_env.integrations.create(other_member, "Bob's CRM", "CHATWOOT", CHATWOOT)
    at = sign_in("alice", "alice-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    assert "Bob's CRM" not in texts(at) and not at.dataframe
    at.session_state["integration_dialog"] = {"kind": "edit", "id": theirs.id, "prefix": "forged"}
    at.run()
    assert f"Integration {theirs.id} was not found" in " ".join(read(e.value) for e in at.error)
    assert not [t for t in at.text_input if t.label.startswith("API Access Token")]


def test_tier_gates_name_the_tier(app_env, member):
    at = sign_in("alice", "alice-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    shown = texts(at)
    assert "Needs the **Starter** tier" in shown  # chat widget, FREE member
    assert "Needs the **Pro Plus** tier" in shown  # database / API / webhook
    assert "0 of 3 integrations used" in shown


def test_helpdesk_and_widget_cards_link_to_their_pages(app_env, member, other_member):
    at = sign_in("alice", "alice-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    links = [(e.proto.label, e.proto.page) for e in at.get("page_link")]
    assert ("Open Helpdesk", "helpdesk") in links
    assert ("Open Chat widget", "widget") not in links  # Free: the card shows the lock instead
    at = sign_in("bob", "bob-password-12")
    at.switch_page("app_pages/integrations.py")
    at.run()
    links = [(e.proto.label, e.proto.page) for e in at.get("page_link")]
    assert ("Open Helpdesk", "helpdesk") in links and ("Open Chat widget", "widget") in links
    assert "Needs the **Starter** tier" not in texts(at)


def test_admin_adds_staff_member(app_env, admin):
    at = sign_in("root", "admin-password-1")
    at.switch_page("app_pages/admin.py")
    at.run()
    assert [t.value for t in at.title] == ["Staff accounts"]
    text_input(at, "User name").input("carol")
    text_input(at, "Full name").input("Carol New")
    text_input(at, "E-mail").input("carol@example.com")
    button(at, "Add account").click()
    at.run()
    assert "Added carol" in " ".join(read(s.value) for s in at.success)
    assert app_env.users.get_by_username("carol").role == "member"


@pytest.fixture
def chatwoot():
    from tests.fakes.chatwoot import FakeChatwoot, add_acme_with_ada

    with FakeChatwoot() as fake:
        add_acme_with_ada(fake, TOKEN)
        yield fake
        assert not fake.contract_violations, fake.contract_violations


def test_test_connection_in_dialog_reports_success_and_records_status_on_save(app_env, member, chatwoot):
    at = open_add_dialog(sign_in("alice", "alice-password-1"))
    fill_chatwoot(at, config={**CHATWOOT, "baseUrl": chatwoot.url})
    button(at, "Test connection").click()
    at.run()
    assert "Connected to Acme Support as Ada Admin, an administrator." in [read(s.value) for s in at.success]
    button(at, "Save integration").click()
    at.run()
    [view] = app_env.integrations.list_integrations(member)
    assert view.status == "connected" and view.last_checked_at is not None
    # The saved integration's own check, shown above the list as the save's one outcome.
    assert "Connected to Acme Support as Ada Admin, an administrator." in [read(s.value) for s in at.success]
    assert TOKEN not in texts(at)


def test_a_database_failure_while_saving_is_explained_and_changes_nothing(app_env, member, monkeypatch):
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    view = app_env.integrations.create(member, "Keep me", "CHATWOOT", CHATWOOT)
    at = select_integration(sign_in("alice", "alice-password-1"), view)
    button(at, "Edit").click()
    at.run()
    text_input(at, "Integration name").input("Renamed")

    def refuse(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE integrations"):
            raise OperationalError(statement, parameters, Exception("simulated: disk full"))

    # The app's own engine (cached by ui.state) is a different object from ctx.engine: hook the class.
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", refuse)
    try:
        button(at, "Save integration").click()
        at.run()
    finally:
        event.remove(Engine, "before_cursor_execute", refuse)
    assert "nothing was saved" in " ".join(read(e.value) for e in at.error)
    assert stored_row(app_env, view.id).name == "Keep me"
    assert not at.exception


def test_pro_plus_member_adds_a_tested_webhook_from_its_card(app_env, admin, httpserver):
    carol = app_env.users.create(
        admin, "carol", "Carol Pro", "carol@example.com", "carol-password-1", "member", "PRO_PLUS"
    )
    httpserver.expect_request("/hooks/console", method="POST").respond_with_data("ok")
    at = sign_in("carol", "carol-password-1")
    at.switch_page("app_pages/integrations.py")
    at.run()
    assert not [b for b in at.button if b.label == "Add CRM integration" and b.key != "add-CRM"]
    at.button(key="add-WEBHOOK").click()
    at.run()
    assert [c.value for c in at.code if "hmac" in c.value.lower()], "the receiver's verification code is shown"
    text_input(at, "Integration name").input("Orders webhook")
    text_input(at, "Target URL").input(httpserver.url_for("/hooks/console"))
    button(at, "Test connection").click()
    at.run()
    assert [read(s.value) for s in at.success], [read(e.value) for e in at.error]
    assert len(httpserver.log) == 1 and "X-Console-Signature" in httpserver.log[0][0].headers
    button(at, "Save integration").click()
    at.run()
    [view] = app_env.integrations.list_integrations(carol.actor())
    assert (view.provider, view.type, view.status) == ("WEBHOOK", "WEBHOOK", "connected")


def test_ten_failed_sign_ins_lock_the_user_name_even_for_the_right_password(app_env, member):
    at = new_app()
    at.run()
    for attempt in range(10):
        at.text_input[0].input("alice")
        at.text_input[1].input(f"wrong-password-{attempt}")
        button(at, "Sign in").click()
        at.run()
    assert "Too many failed sign-ins for this user name" in texts(at)
    at.text_input[0].input("alice")
    at.text_input[1].input("alice-password-1")
    button(at, "Sign in").click()
    at.run()
    assert not at.metric, "a locked user name cannot sign in, even with the right password"
    assert "Too many failed sign-ins" in texts(at)


def test_a_person_changes_their_own_password_and_stays_signed_in(app_env, member):
    at = open_page(sign_in("alice", "alice-password-1"), "app_pages/account.py")
    other_browser = app_env.sessions.start(member.id, 1)  # alice signed in elsewhere too
    text_input(at, "Current password").input("not-my-password")
    text_input(at, "New password").input("alice-new-password-2")
    text_input(at, "New password again").input("alice-new-password-2")
    button(at, "Change password").click()
    at.run()
    assert "current password is not right" in " ".join(read(e.value) for e in at.error)
    assert text_input(at, "New password").value == "alice-new-password-2"  # kept: only one field was wrong
    text_input(at, "Current password").input("alice-password-1")
    button(at, "Change password").click()
    at.run()
    assert not at.exception, at.exception
    assert "Your password was changed. You stay signed in here" in " ".join(read(s.value) for s in at.success)
    assert [t.value for t in at.title] == ["Your account"]  # still signed in, on the same page
    assert text_input(at, "Current password").value == ""  # the passwords are not kept in the form
    assert app_env.users.verify_password("alice", "alice-new-password-2")
    assert app_env.sessions.username_for(other_browser) is None  # every other sign-in ended
    open_page(at, "app_pages/overview.py")
    assert at.metric, "the rotated session keeps the tab signed in"
    assert sign_in("alice", "alice-new-password-2").metric


def test_custom_crm_form_with_its_own_name_field_saves(app_env, member):
    """The Custom CRM has a field called "name" beside the integration's name: both must render and save."""
    at = open_add_dialog(sign_in("alice", "alice-password-1"))
    at.selectbox[0].select_index(5)  # Custom CRM
    at.run()
    assert not at.exception, at.exception
    text_input(at, "Integration name").input("Acme REST CRM")
    text_input(at, "CRM Name").input("Acme")
    text_input(at, "API Base URL").input("https://crm.acme.test/api")
    text_input(at, "Bearer Token").input("bt-custom-form-0123456789")  # Bearer token: the default type
    button(at, "Save integration").click()
    at.run()
    assert not at.exception, at.exception
    (view,) = app_env.integrations.list_integrations(member)
    assert (view.name, view.provider, view.configuration["name"]) == ("Acme REST CRM", "CUSTOM", "Acme")
    assert view.configuration["token"] == MASK


def test_the_last_admin_cannot_demote_or_deactivate_themselves_on_the_staff_page(app_env, admin, member):
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/admin.py")

    def change_form(label: str):
        return [s for s in at.selectbox if s.label == label][-1]  # the add form comes first

    change_form("User").select("root")
    at.run()
    change_form("Role").select("member")
    change_form("Tier").select("FREE")
    button(at, "Save changes").click()
    at.run()
    assert "root is the last active administrator" in " ".join(e.value for e in at.error)
    [active] = [c for c in at.checkbox if c.label == "Active (may sign in)"]
    active.uncheck()
    change_form("Role").select("admin")
    button(at, "Save changes").click()
    at.run()
    assert "root is the last active administrator" in " ".join(e.value for e in at.error)
    root = app_env.users.get_by_username("root")
    assert (root.role, root.active, root.tier) == ("admin", True, "ENTERPRISE")  # nothing was changed
