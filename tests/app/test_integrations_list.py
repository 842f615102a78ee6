"""The Integrations list as staff use it all day: natural order, status words, the selected rows' actions,
one message per action, the Add menu's tier limit, and filters in the address."""

from __future__ import annotations

from sqlalchemy import update

from core.models import Integration, utcnow
from tests.app.conftest import button, open_page, page_links, read, select_rows, sign_in, text_input, texts

CHATWOOT = {"baseUrl": "http://127.0.0.1:9", "accountId": "1", "apiKey": "cw-token-list-0123456789"}
LIST = "app_pages/integrations.py"


def add(app_env, actor, name: str, provider: str = "CHATWOOT"):
    if provider == "CHATWOOT":
        return app_env.integrations.create(actor, name, provider, CHATWOOT)
    config = {
        "name": "Acme CRM",
        "apiEndpoint": "http://127.0.0.1:9",
        "authType": "BEARER",
        "healthPath": "/health",
        "credentials": '{"token": "bt-list-token-0123456789"}',
    }
    return app_env.integrations.create(actor, name, provider, config)


def names(at) -> list[str]:
    return list(at.dataframe[0].value["Name"])


def messages(at) -> list[str]:
    return [read(e.value) for kind in ("success", "warning", "error") for e in getattr(at, kind)]


def test_names_sort_naturally_and_a_never_checked_one_says_never(app_env, owner):
    for name in ("Acme 100", "acme 20", "Acme 3"):
        add(app_env, owner, name)
    error = add(app_env, owner, "Broken desk")
    with app_env.factory.begin() as session:
        session.execute(
            update(Integration)
            .where(Integration.id == error.id)
            .values(
                status="error", status_message="The server refused the connection on port 9.", last_checked_at=utcnow()
            )
        )
    at = open_page(sign_in("olga", "olga-password-1"), LIST)
    assert names(at) == ["Acme 3", "acme 20", "Acme 100", "Broken desk"]
    rows = at.dataframe[0].value.set_index("Name")
    assert rows.loc["Acme 3", "Last checked"] == "Never" and rows.loc["Acme 3", "Status"] == "○ Never tested"
    assert rows.loc["Broken desk", "Status"] == "✕ Error"
    assert "None" not in rows["Last checked"].tolist()


def test_a_selected_row_shows_its_full_message_and_its_actions_and_opens_its_page(app_env, owner):
    view = add(app_env, owner, "Acme desk")
    long_message = "The server refused the connection. " * 8
    with app_env.factory.begin() as session:
        session.execute(update(Integration).where(Integration.id == view.id).values(status_message=long_message))
    at = open_page(sign_in("olga", "olga-password-1"), LIST)
    assert not [b for b in at.button if b.key == "row-edit"]  # nothing selected: no row actions
    select_rows(at, "Acme desk")
    assert long_message.strip() in [t.value.strip() for t in at.text]  # all of it, as plain text
    assert {b.label for b in at.button} >= {"Test", "Edit", "Deactivate", "Duplicate", "Delete"}
    assert ("Open", "integration") in page_links(at)
    assert not [b for b in at.selectbox if b.label == "Manage an integration"]


def test_bulk_deactivate_says_once_what_it_did_and_clears_the_selection(app_env, owner):
    for name in ("CRM 1", "CRM 2", "CRM 3"):
        add(app_env, owner, name)
    at = select_rows(open_page(sign_in("olga", "olga-password-1"), LIST), "CRM 1", "CRM 3")
    assert "**2 selected:** CRM 1, CRM 3" in [m.value.replace("\\", "") for m in at.markdown]
    button(at, "Deactivate").click()
    at.run()
    assert messages(at) == ["Deactivated 2 integrations."]
    active = at.dataframe[0].value.set_index("Name")["Active"].to_dict()
    assert active == {"CRM 1": False, "CRM 2": True, "CRM 3": False}
    assert not [b for b in at.button if b.key and b.key.startswith("bulk-")]  # the selection is cleared
    assert not at.toast


def test_bulk_delete_asks_once_naming_the_count(app_env, owner):
    for name in ("CRM 1", "CRM 2", "CRM 3"):
        add(app_env, owner, name)
    at = select_rows(open_page(sign_in("olga", "olga-password-1"), LIST), "CRM 1", "CRM 2")
    button(at, "Delete 2").click()
    at.run()
    assert "Delete these 2 integrations?" in texts(at)
    assert [v.name for v in app_env.integrations.list_integrations(owner)] == ["CRM 1", "CRM 2", "CRM 3"]
    button(at, "Delete 2 permanently").click()
    at.run()
    assert messages(at) == ["Deleted 2 integrations."]
    assert names(at) == ["CRM 3"]
    assert [v.name for v in app_env.integrations.list_integrations(owner)] == ["CRM 3"]


def test_duplicate_adds_a_copy_with_the_same_settings(app_env, owner):
    add(app_env, owner, "Acme desk")
    at = select_rows(open_page(sign_in("olga", "olga-password-1"), LIST), "Acme desk")
    button(at, "Duplicate").click()
    at.run()
    assert messages(at) == ["Added Acme desk (copy), a copy of Acme desk. Test it before relying on it."]
    assert names(at) == ["Acme desk", "Acme desk (copy)"]
    original, copy = app_env.integrations.list_integrations(owner)
    assert copy.configuration == original.configuration
    assert CHATWOOT["apiKey"] not in texts(at)


def test_an_administrator_gives_integrations_to_someone_within_their_tier_limit(app_env, admin, member, owner):
    for n in range(4):
        add(app_env, owner, f"Olga {n}")
    at = open_page(sign_in("root", "admin-password-1"), LIST)
    select_rows(at, "Olga 0", "Olga 1", "Olga 2", "Olga 3")
    button(at, "Give to…").click()
    at.run()
    at.selectbox(key="transfer:owner").set_value("alice")
    at.run()
    button(at, "Give 4").click()
    at.run()
    (shown,) = messages(at)
    assert shown.startswith("Gave alice 3 of 4 integrations. Not done for Olga 3: alice's Free tier allows 3")
    assert "The Starter tier allows more." in shown
    owners = at.dataframe[0].value.set_index("Name")["Owner"].to_dict()
    assert owners == {"Olga 0": "alice", "Olga 1": "alice", "Olga 2": "alice", "Olga 3": "olga"}


def test_a_member_cannot_give_integrations_away(app_env, owner):
    add(app_env, owner, "Acme desk")
    at = select_rows(open_page(sign_in("olga", "olga-password-1"), LIST), "Acme desk")
    assert not [b for b in at.button if b.key in ("row-transfer", "bulk-transfer")]


def test_at_the_tier_limit_add_is_closed_naming_the_tier_that_allows_more(app_env, member):
    at = open_page(sign_in("alice", "alice-password-1"), LIST)
    assert "Free tier: 0 of 3 integrations used." in texts(at) and not at.button(key="add-CRM").disabled
    for n in range(3):
        add(app_env, member, f"Desk {n}")
    at.run()
    assert "Free tier: 3 of 3 integrations used. The Starter tier allows more." in [w.value for w in at.warning]
    assert at.button(key="add-CRM").disabled
    assert "PRO_PLUS" not in texts(at) and "Needs the **Pro Plus** tier" in texts(at)


def test_a_rename_shows_everywhere_on_the_page(app_env, owner):
    add(app_env, owner, "Old name")
    at = select_rows(open_page(sign_in("olga", "olga-password-1"), LIST), "Old name")
    button(at, "Edit").click()
    at.run()
    text_input(at, "Integration name").input("New name")
    button(at, "Save integration").click()
    at.run()
    assert names(at) == ["New name"]
    shown = texts(at)
    assert "**New name** · Chatwoot" in shown and "Old name" not in shown  # the selected row's panel too


def test_filters_come_from_the_address_and_go_back_to_it(app_env, owner):
    add(app_env, owner, "Acme desk")
    add(app_env, owner, "Beta desk")
    add(app_env, owner, "Acme API", "CUSTOM")
    at = sign_in("olga", "olga-password-1")
    at.query_params["provider"] = "CHATWOOT"
    at.query_params["q"] = "Acme"
    open_page(at, LIST)
    assert names(at) == ["Acme desk"]
    assert at.selectbox(key="list_provider").value == "Chatwoot" and at.text_input(key="list_search").value == "Acme"
    at.selectbox(key="list_provider").select("All providers")
    at.run()
    assert names(at) == ["Acme API", "Acme desk"]
    assert "provider" not in at.query_params and at.query_params["q"] == "Acme"
    at.selectbox(key="list_status").select("Never tested")
    at.run()
    assert at.query_params["status"] == "never_tested" and names(at) == ["Acme API", "Acme desk"]


def test_a_status_link_from_another_page_filters_the_list(app_env, owner):
    ok = add(app_env, owner, "Fine desk")
    add(app_env, owner, "Broken desk")
    with app_env.factory.begin() as session:
        session.execute(update(Integration).where(Integration.id != ok.id).values(status="error"))
    at = sign_in("olga", "olga-password-1")
    at.query_params["status"] = "error"
    open_page(at, LIST)
    assert names(at) == ["Broken desk"] and at.selectbox(key="list_status").value == "Error"
