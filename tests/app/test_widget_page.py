"""The Chat widget page through AppTest, against the fake Chatwoot on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import re

from tests.app.conftest import AGENT_TOKEN, button, open_page, page_links, read, sign_in, text_input, texts

PAGE = "app_pages/widget.py"
HOSTILE = "</script><script>alert(1)</script> \"quotes\" 'single' \u2028 & é"


def widget(username: str, password: str):
    return open_page(sign_in(username, password), PAGE)


def script(at) -> str:
    [code] = at.code
    assert code.language == "html"
    return code.value


def settings_json(text: str) -> dict:
    match = re.search(r"window\.chatwootSettings = (\{.*?\});\n", text)
    assert match, text
    return json.loads(match.group(1))


def test_free_tier_sees_the_page_locked_with_the_tier_that_opens_it(app_env, member, chatwoot_integration):
    chatwoot_integration(member)
    at = widget("alice", "alice-password-1")
    assert [t.value for t in at.title] == ["Chat widget"]
    warning = " ".join(read(w.value) for w in at.warning)
    assert "The chat widget needs the Starter tier or higher; yours is Free." in warning
    assert not at.code and not at.selectbox
    assert not at.main.button


def test_without_an_integration_the_page_links_to_integrations(app_env, other_member):
    at = widget("bob", "bob-password-12")
    assert "no Chatwoot integration yet" in texts(at)
    assert ("Go to Integrations", "integrations") in page_links(at)


def test_script_for_a_website_inbox_with_a_hostile_launcher_title(
    app_env, other_member, chatwoot_integration, fake_chatwoot
):
    chatwoot_integration(other_member)
    seed = fake_chatwoot.seed
    at = widget("bob", "bob-password-12")
    inbox = at.selectbox(key="w-inbox")
    assert inbox.options == ["Shop · https://shop.acme.test", "Website · https://acme.test"]  # no e-mail inbox
    inbox.set_value(seed.website.id)
    at.radio(key="w-position").set_value("left")
    at.radio(key="w-type").set_value("expanded_bubble")
    text_input(at, "Launcher title").input(HOSTILE)
    locale = at.selectbox(key="w-locale")
    assert "Português Brasileiro (Brazilian Portuguese) · pt_BR" in locale.options  # Chatwoot's list, in words
    locale.set_value("pt_BR")
    at.radio(key="w-dark-mode").set_value("auto")
    at.toggle(key="w-popout").set_value(True)
    at.run()
    assert not at.exception

    text = script(at)
    assert f'websiteToken: "{seed.website.website_token}"' in text
    assert f'var BASE_URL="{fake_chatwoot.url}";' in text
    assert text.count("</script>") == 1 and text.rstrip().endswith("</script>")
    assert "<script>alert" not in text and "\u2028" not in text
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in text
    assert settings_json(text) == {
        "position": "left",
        "type": "expanded_bubble",
        "launcherTitle": HOSTILE,
        "locale": "pt_BR",
        "darkMode": "auto",
        "hideMessageBubble": False,
        "showPopoutButton": True,
        "useBrowserLanguage": False,
    }
    [download] = at.get("download_button")
    assert download.proto.label == "Download chat-widget.html"
    [copy] = at.get("bidi_component")  # the visible Copy button, with the script as its data
    copied = json.loads(copy.proto.json)
    assert copied["label"] == "Copy the script" and copied["text"].strip() == text.strip()

    # Another inbox: its own token.
    at.selectbox(key="w-inbox").set_value(seed.shop.id)
    at.run()
    assert f'websiteToken: "{seed.shop.website_token}"' in script(at)


def test_invalid_settings_are_explained_and_no_script_is_shown(app_env, other_member, chatwoot_integration):
    chatwoot_integration(other_member)
    at = sign_in("bob", "bob-password-12")
    at.session_state["w-locale"] = "english please"  # not a choice of the page's: only stored data holds one
    at.switch_page("app_pages/widget.py")
    at.run()
    [error] = at.error  # one message, naming its field
    assert read(error.value) == "Locale: Enter a language code such as en, fr or pt_BR."
    assert not at.code
    assert button(at, "Save preset").disabled


def test_a_preset_with_a_locale_outside_chatwoots_list_still_loads(
    app_env, other_member, chatwoot_integration, fake_chatwoot
):
    from core.chatwoot.widget import WidgetSettings

    view = chatwoot_integration(other_member)
    app_env.presets.save(
        other_member, "Old", WidgetSettings(locale="gd"), view.id, fake_chatwoot.seed.website.id, expected_version=0
    )
    at = widget("bob", "bob-password-12")
    button(at, "Load preset").click()
    at.run()
    assert not at.exception
    locale = at.selectbox(key="w-locale")
    assert locale.value == "gd" and "gd (not in Chatwoot's list)" in locale.options
    assert '"locale":"gd"' in script(at).replace(" ", "")


def test_an_agents_token_is_enough_and_sees_its_own_inboxes(app_env, other_member, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(other_member, AGENT_TOKEN)
    at = widget("bob", "bob-password-12")
    assert at.selectbox(key="w-inbox").options == ["Website · https://acme.test"]  # Andy works only there
    assert fake_chatwoot.seed.website.website_token in script(at)
    assert AGENT_TOKEN not in texts(at) + script(at)


def test_live_preview_only_on_request(app_env, other_member, chatwoot_integration, fake_chatwoot):
    chatwoot_integration(other_member)
    at = widget("bob", "bob-password-12")
    assert not at.get("iframe")
    at.toggle(key="w-preview").set_value(True)
    at.run()
    [frame] = at.get("iframe")
    page = preview_document(frame)
    assert script(at) in page
    assert "could not load" in page and "chatwoot:ready" in page


def preview_document(frame) -> str:
    """The preview frame's page, decoded from its data: URL."""
    prefix = "data:text/html;charset=utf-8;base64,"
    assert frame.proto.src.startswith(prefix), frame.proto.src[:80]
    return base64.b64decode(frame.proto.src[len(prefix) :]).decode("utf-8")


def test_the_live_preview_runs_in_an_opaque_origin(app_env, other_member, chatwoot_integration, fake_chatwoot):
    """Issue 10, item 1: the remote sdk.js must not run in the console's origin. st.iframe embeds an HTML
    string as srcdoc, which shares the console's origin (its sandbox allows same-origin); a data: URL frame
    gets an opaque origin whatever the sandbox says."""
    chatwoot_integration(other_member)
    at = widget("bob", "bob-password-12")
    at.toggle(key="w-preview").set_value(True)
    at.run()
    [frame] = at.get("iframe")
    assert not frame.proto.srcdoc  # never the console's origin
    page = preview_document(frame)
    assert fake_chatwoot.url in page and "/packs/js/sdk.js" in page
    assert "isolated from the console" in page  # the status says what the preview cannot keep


def test_presets_save_load_and_delete(app_env, other_member, chatwoot_integration, fake_chatwoot):
    view = chatwoot_integration(other_member)
    seed = fake_chatwoot.seed
    at = widget("bob", "bob-password-12")
    assert "No presets yet" in texts(at)
    at.selectbox(key="w-inbox").set_value(seed.website.id)
    at.radio(key="w-position").set_value("left")
    text_input(at, "Launcher title").input("Talk to Acme")
    at.toggle(key="w-hide-bubble").set_value(True)
    text_input(at, "Preset name").input("Homepage")
    at.run()
    button(at, "Save preset").click()
    at.run()
    assert not at.exception
    [saved] = app_env.presets.list(other_member)
    assert saved.name == "Homepage" and (saved.integration_id, saved.inbox_id) == (view.id, seed.website.id)
    assert saved.settings.position == "left" and saved.settings.launcher_title == "Talk to Acme"
    assert saved.settings.hide_message_bubble is True
    assert any("Saved the preset Homepage" in read(t.value) for t in at.toast)

    # Saving again under the same name replaces it (upsert).
    at.radio(key="w-type").set_value("expanded_bubble")
    at.run()
    assert "Saving replaces the preset Homepage." in texts(at)
    button(at, "Save preset").click()
    at.run()
    [saved] = app_env.presets.list(other_member)
    assert saved.settings.type == "expanded_bubble"

    # Change everything, then load the preset back.
    at.selectbox(key="w-inbox").set_value(seed.shop.id)
    at.radio(key="w-position").set_value("right")
    at.radio(key="w-type").set_value("standard")
    text_input(at, "Launcher title").input("Something else")
    at.toggle(key="w-hide-bubble").set_value(False)
    at.run()
    assert seed.shop.website_token in script(at)
    button(at, "Load preset").click()
    at.run()
    assert not at.exception
    assert at.selectbox(key="w-inbox").value == seed.website.id
    assert at.radio(key="w-position").value == "left"
    assert at.radio(key="w-type").value == "expanded_bubble"
    assert text_input(at, "Launcher title").value == "Talk to Acme"
    assert at.toggle(key="w-hide-bubble").value is True
    text = script(at)
    assert seed.website.website_token in text
    assert settings_json(text)["launcherTitle"] == "Talk to Acme"

    # Deleting asks first: Cancel keeps it, the confirmation deletes it.
    button(at, "Delete preset…").click()
    at.run()
    assert "Delete the preset Homepage?" in texts(at)
    assert len(app_env.presets.list(other_member)) == 1
    button(at, "Cancel").click()
    at.run()
    assert "Delete the preset Homepage?" not in texts(at)
    assert len(app_env.presets.list(other_member)) == 1
    button(at, "Delete preset…").click()
    at.run()
    confirm = button(at, "Delete preset")
    assert confirm.proto.type == "primary"  # the console's destructive look: primary, with a delete icon
    confirm.click()
    at.run()
    assert not at.exception
    assert app_env.presets.list(other_member) == []
    assert "No presets yet" in texts(at)
    assert any("Deleted the preset Homepage" in read(t.value) for t in at.toast)
