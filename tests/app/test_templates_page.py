"""The Templates page: pick a template, change a step's values, preview every step; administrators manage them."""

from __future__ import annotations

from tests.app.conftest import button, open_page, sign_in, text_input, texts


def test_preview_lists_every_step_with_the_persons_values(app_env, owner, chatwoot_integration):
    chatwoot_integration(owner)
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/templates.py")
    assert not at.exception, at.exception
    assert at.selectbox[0].label == "Template"
    text_input(at, "Website address").input("https://www.shop.example")
    button(at, "Preview").click()
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "These steps will run" in shown
    for title in ("Chatwoot integration", "Website inbox", "Greeting bot", "Chat widget"):
        assert title in shown
    assert "https://www.shop.example" in shown
    assert "Manage templates" not in shown  # members do not manage templates


def test_invalid_values_are_named_by_step(app_env, owner, chatwoot_integration):
    chatwoot_integration(owner)
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/templates.py")
    text_input(at, "Widget colour").input("red")
    button(at, "Preview").click()
    at.run()
    assert "Step 2 (Website inbox)" in texts(at) and "#RRGGBB" in texts(at)


def test_administrators_see_the_management_section(app_env, admin):
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/templates.py")
    assert not at.exception, at.exception
    assert "Manage templates" in texts(at) and "read-only" in texts(at)


def test_the_crm_contacts_template_asks_for_a_crm_and_says_when_there_is_none(app_env, owner, chatwoot_integration):
    chatwoot_integration(owner)
    at = open_page(sign_in("olga", "olga-password-1"), "app_pages/templates.py")
    at.selectbox[0].set_value("builtin:crm-contacts-into-chatwoot")
    at.run()
    assert not at.exception, at.exception
    assert "You have no CRM integration whose contacts the console can sync" in texts(at)
    app_env.integrations.create(owner, "Olga's HubSpot", "HUBSPOT", {"accessToken": "pat-na1-0123456789abcdef0123"})
    at.run()
    assert "Olga's HubSpot" in [o for s in at.selectbox for o in s.options]
    button(at, "Preview").click()
    at.run()
    assert not at.exception, at.exception
    assert "Contact sync from a CRM" in texts(at)
