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
