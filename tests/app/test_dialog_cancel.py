"""The add/edit dialogs cannot be dismissed with Escape or a click beside them (a form's typed values reach
the server only on submit, so a stray key would throw them away unseen); their Cancel closes at once when
nothing changed, and asks first when something did: the integration dialog (add and edit) and the new
connect link dialog. The alert subscription dialog's own test is in test_alerts_page.py."""

from __future__ import annotations

import pytest

from tests.app.conftest import button, dialogs, open_page, sign_in, text_input, texts
from tests.app.test_connect_links_page import register
from tests.app.test_connect_pages import public as public

pytestmark = pytest.mark.usefixtures("fast_bcrypt")

QUESTION = "Discard the changes you made to"
CHATWOOT = {"baseUrl": "http://127.0.0.1:9", "accountId": "7", "apiKey": "cw-cancel-token-0123456789"}


def press(at, label: str) -> None:
    button(at, label).click()
    at.run()


def closes_untouched(at, opener: str, title: str, form_button: str) -> None:
    """``opener`` opens a dialog titled ``title`` that Escape cannot close; Cancel, nothing typed, closes it."""
    press(at, opener)
    [dialog] = dialogs(at)
    assert dialog.title == title and dialog.dismissible is False
    press(at, "Cancel")
    assert form_button not in labels(at) and QUESTION not in texts(at)


def cancel_asks(at, opener: str, typed: dict[str, str], what: str) -> None:
    """``opener`` opens the dialog; after typing, its Cancel asks before discarding ``what``."""
    press(at, opener)
    for label, value in typed.items():
        text_input(at, label).input(value)
    press(at, "Cancel")
    assert f"{QUESTION} {what}?" in texts(at)


def labels(at) -> list[str]:
    return [b.label for b in at.button]


def open_add(at):
    at = open_page(at, "app_pages/integrations.py")
    at.button(key="add-CRM").click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_untouched_add_dialog_closes_on_cancel(app_env, owner):
    at = open_add(sign_in("olga", "olga-password-1"))
    [dialog] = dialogs(at)
    assert dialog.title == "Add an integration" and dialog.dismissible is False
    press(at, "Cancel")
    assert "Save integration" not in labels(at) and QUESTION not in texts(at)


def test_a_typed_add_dialog_asks_before_discarding(app_env, owner):
    at = open_add(sign_in("olga", "olga-password-1"))
    text_input(at, "Integration name").input("Acme desk")
    text_input(at, "Account ID").input("42")
    press(at, "Cancel")
    assert f"{QUESTION} this integration?" in texts(at)

    press(at, "Keep editing")
    assert QUESTION not in texts(at)
    assert text_input(at, "Integration name").value == "Acme desk" and text_input(at, "Account ID").value == "42"

    press(at, "Cancel")
    press(at, "Discard changes")
    assert not at.exception, at.exception
    assert "Save integration" not in labels(at)
    assert app_env.integrations.list_integrations(owner) == []


def test_the_edit_dialog_asks_only_when_a_field_changed(app_env, member):
    view = app_env.integrations.create(member, "Acme desk", "CHATWOOT", CHATWOOT)
    at = sign_in("alice", "alice-password-1")
    at.switch_page("app_pages/integration.py")
    at.query_params["id"] = str(view.id)
    at.run()
    closes_untouched(at, "Edit", "Edit integration", "Save integration")

    cancel_asks(at, "Edit", {"Account ID": "8"}, "Acme desk")
    press(at, "Discard changes")
    assert "Save integration" not in labels(at)
    assert app_env.integrations.for_edit(member, view.id).configuration["accountId"] == "7"


def test_the_connect_link_dialog_asks_before_discarding_a_typed_link(public, admin, owner):
    register(public, admin)
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/connect_links.py")
    closes_untouched(at, "New connect link", "New connect link", "Create link")

    cancel_asks(at, "New connect link", {"Integration name": "Acme HubSpot"}, "this link")
    press(at, "Keep editing")
    assert text_input(at, "Integration name").value == "Acme HubSpot"
    press(at, "Create link")
    assert not at.exception, at.exception
    assert [link.integration_name for link in public.links.list(admin)] == ["Acme HubSpot"]
