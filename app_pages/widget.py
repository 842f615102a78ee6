"""Chat widget: the embeddable Chatwoot script for a website inbox, with named presets (STARTER and up).

The script is built by core.widget (safe by construction); presets live in core.presets. This page
picks the inbox and settings, and shows, copies, downloads and previews the result.
"""

from __future__ import annotations

import html

import streamlit as st

from core.chatwoot import Inbox
from core.errors import NotFoundError, ValidationError
from core.presets import PresetView, check_widget_tier, widget_allowed
from core.tiers import TierLimitError
from core.widget import DARK_MODES, POSITIONS, TYPES, WidgetSettings, to_script_json
from ui import chatwoot, state
from ui.text import esc

ctx, actor = state.context(), state.actor()
INTEGRATION, INBOX = "w-integration", "w-inbox"
PRESET, PRESET_NAME = "w-preset", "w-preset-name"
# WidgetSettings attribute -> the key of its widget.
KEYS = {
    "position": "w-position",
    "type": "w-type",
    "launcher_title": "w-launcher-title",
    "locale": "w-locale",
    "dark_mode": "w-dark-mode",
    "hide_message_bubble": "w-hide-bubble",
    "show_popout_button": "w-popout",
    "use_browser_language": "w-browser-language",
}
LABELS = {
    "left": "Left",
    "right": "Right",
    "standard": "Standard bubble",
    "expanded_bubble": "Expanded bubble (with the launcher title)",
    "light": "Light",
    "auto": "Auto (follows the visitor's system)",
}
PREVIEW_HEIGHT = 620


# ----- presets -------------------------------------------------------------------------------------------


def load_preset(preset: PresetView, integration_ids: list[int]) -> None:
    """Put a preset's settings (and its inbox, when it is still offered) into the widgets (a callback)."""
    problems = preset.settings.problems()
    for attribute, key in KEYS.items():
        if attribute not in problems:
            st.session_state[key] = getattr(preset.settings, attribute)
    if preset.integration_id in integration_ids:
        st.session_state[INTEGRATION] = preset.integration_id
        if preset.inbox_id is not None:
            st.session_state[INBOX] = preset.inbox_id
    st.session_state[PRESET_NAME] = preset.name
    if problems:
        state.flash(
            f"Loaded {preset.name}, except settings no longer valid: {', '.join(problems)}.", ":material/warning:"
        )
    else:
        state.flash(f"Loaded the preset {preset.name}.", ":material/bookmark:")


def delete_preset(preset: PresetView) -> None:
    try:
        ctx.presets.delete(actor, preset.id)
    except NotFoundError as exc:
        state.flash(str(exc), ":material/error:")
        return
    st.session_state.pop(PRESET, None)
    state.flash(f"Deleted the preset {preset.name}.", ":material/delete:")


def presets_section(box, settings: WidgetSettings | None, integration_id: int | None, inbox: Inbox | None) -> None:
    presets = ctx.presets.list(actor)
    integration_ids = [v.id for v in ctx.helpdesk.integrations(actor)]
    with box:
        st.subheader("Presets")
        left, right = st.columns(2, border=True)
        with left:
            if presets:
                by_id = {p.id: p for p in presets}
                if st.session_state.get(PRESET) not in by_id:
                    st.session_state.pop(PRESET, None)
                chosen = st.selectbox("Saved preset", list(by_id), format_func=lambda i: by_id[i].name, key=PRESET)
                preset = by_id[chosen]
                where = "" if preset.integration_id in integration_ids else " Its integration is gone or inactive."
                st.caption(f"Saved {preset.updated_at:%Y-%m-%d %H:%M} UTC.{where}")
                a, b = st.columns(2)
                a.button(
                    "Load preset",
                    key="w-load",
                    icon=":material/upload:",
                    on_click=load_preset,
                    args=(preset, integration_ids),
                    width="stretch",
                )
                b.button(
                    "Delete preset",
                    key="w-delete",
                    icon=":material/delete:",
                    on_click=delete_preset,
                    args=(preset,),
                    width="stretch",
                )
            else:
                st.caption("No presets yet. Name the settings below and save them to reopen them later.")
        with right:
            name = st.text_input("Preset name", key=PRESET_NAME, max_chars=100, placeholder="e.g. Acme homepage")
            replaces = next((p for p in presets if p.name == name.strip()), None)
            if replaces:
                st.caption(f"Saving replaces the preset {esc(replaces.name)}.")
            clicked = st.button(
                "Save preset", key="w-save", icon=":material/bookmark_add:", disabled=settings is None, width="stretch"
            )
            if clicked and settings is not None:
                try:
                    saved = ctx.presets.save(
                        actor, name, settings, integration_id, inbox.id if inbox is not None else None
                    )
                except ValidationError as exc:
                    st.error(esc(" ".join(exc.errors.values())))
                except TierLimitError as exc:
                    st.error(esc(exc))
                else:
                    st.session_state[PRESET] = saved.id
                    state.flash(f"Saved the preset {saved.name}.", ":material/bookmark_added:")
                    st.rerun()


# ----- settings ------------------------------------------------------------------------------------------


def settings_form() -> WidgetSettings | None:
    """The SDK settings as widgets; the settings, or None when one is invalid (its message shown)."""
    defaults = WidgetSettings()
    for attribute, key in KEYS.items():
        st.session_state.setdefault(key, getattr(defaults, attribute))
    left, right = st.columns(2)
    values = {
        "position": left.radio("Position", POSITIONS, key=KEYS["position"], format_func=LABELS.get, horizontal=True),
        "type": right.radio("Type", TYPES, key=KEYS["type"], format_func=LABELS.get),
        "launcher_title": st.text_input(
            "Launcher title",
            key=KEYS["launcher_title"],
            max_chars=100,
            placeholder="Chat with us",
            help="Shown on the expanded bubble. Empty: Chatwoot's default.",
        ),
        "locale": st.text_input(
            "Locale", key=KEYS["locale"], help="The widget's language, such as en, fr, de or pt_BR."
        ),
        "dark_mode": st.radio("Dark mode", DARK_MODES, key=KEYS["dark_mode"], format_func=LABELS.get, horizontal=True),
        "hide_message_bubble": st.toggle(
            "Hide the message bubble",
            key=KEYS["hide_message_bubble"],
            help="Open the chat from your own button with window.$chatwoot.toggle().",
        ),
        "show_popout_button": st.toggle(
            "Show the pop-out button", key=KEYS["show_popout_button"], help="Lets visitors open the chat in a window."
        ),
        "use_browser_language": st.toggle(
            "Use the browser's language",
            key=KEYS["use_browser_language"],
            help="Follow the visitor's browser language instead of the locale above.",
        ),
    }
    settings = WidgetSettings(**values)
    problems = settings.problems()
    for message in problems.values():
        st.error(esc(message))  # core.widget's sentences, which may quote what was entered
    return None if problems else settings


# ----- script and preview -------------------------------------------------------------------------------


def preview_page(script: str, base_url: str, position: str) -> str:
    """A page around the script that says what happens: loading, loaded, or why it could not load."""
    corner = "bottom left" if position == "left" else "bottom right"
    return f"""<!doctype html>
<html><head><meta charset="utf-8">
<style>body {{ font-family: sans-serif; color: #31333f; margin: 1rem; }} #cw-status {{ max-width: 34rem; }}</style>
</head><body>
<p id="cw-status">Loading Chatwoot's widget from {html.escape(base_url)}…</p>
<script>
  (function () {{
    var host = {to_script_json(base_url)};
    var status = document.getElementById("cw-status");
    var failed = false;
    window.addEventListener("error", function (event) {{
      var target = event.target;
      if (target && target.tagName === "SCRIPT" && /\\/packs\\/js\\/sdk\\.js$/.test(target.src)) {{
        failed = true;
        status.textContent = "The preview could not load Chatwoot's SDK from " + target.src +
          ": this browser got no answer, or not Chatwoot's. The script is still right; the widget appears " +
          "on pages whose visitors' browsers can reach " + host + ".";
      }}
    }}, true);
    window.addEventListener("chatwoot:ready", function () {{
      status.textContent = {to_script_json(f"Preview: the chat bubble is in the {corner} corner of this frame.")};
    }});
    setTimeout(function () {{
      if (!failed && !window.$chatwoot) {{
        status.textContent = "The widget did not start within 15 seconds: " + host +
          " may be unreachable from this browser.";
      }}
    }}, 15000);
  }})();
</script>
{script}</body></html>
"""


def script_section(view, inbox: Inbox, settings: WidgetSettings | None) -> None:
    if settings is None:
        st.info("Fix the settings above to see the script.")
        return
    built = chatwoot.widget_script(actor, view, inbox.id, settings)
    if not built.ok:
        st.error(esc(built.message))
        if built.unavailable:
            chatwoot.link_to_integrations()
        return
    result = built.value
    st.caption("Paste this just before `</body>` on every page that should show the chat. Copy it with the icon.")
    st.code(result.script, language="html", wrap_lines=True)
    st.download_button(
        "Download chat-widget.html",
        data=result.script,
        file_name="chat-widget.html",
        mime="text/html",
        icon=":material/download:",
        key="w-download",
    )
    st.subheader("Live preview")
    show = st.toggle(
        "Show a live preview",
        key="w-preview",
        help="Loads Chatwoot's SDK from the Chatwoot server into this page. Only for a Chatwoot server you trust.",
    )
    if not show:
        st.caption(f"The preview loads Chatwoot's widget from {esc(result.base_url)} in this page.")
        return
    # The console reached the Chatwoot server just now (it listed the inboxes); whether this browser can is
    # only known in the browser, and the preview page says so when it cannot.
    st.iframe(
        preview_page(result.script, result.base_url, settings.position),
        height=PREVIEW_HEIGHT,
        alt="Live preview of the chat widget",
    )


# ----- the page -------------------------------------------------------------------------------------------

st.title("Chat widget")
if not widget_allowed(actor):
    try:
        check_widget_tier(actor)
    except TierLimitError as exc:
        st.warning(esc(exc), icon=":material/lock:")
    st.caption(
        "The chat widget script puts a Chatwoot live chat on a customer's website. "
        "An administrator can change your tier on Staff accounts."
    )
    st.stop()

st.caption("The live-chat script for a website inbox of your Chatwoot account.")
current = chatwoot.pick_integration(actor, INTEGRATION, "any access token of the Chatwoot account")
if current is None:
    st.stop()
presets_box = st.container()
st.divider()
loaded = chatwoot.website_inboxes(actor, current)
chosen_inbox: Inbox | None = None
current_settings: WidgetSettings | None = None
if not loaded.ok:
    chatwoot.show_problem(loaded, on_refresh=lambda: chatwoot.forget(actor, current))
    st.caption("The live preview needs the Chatwoot server to answer.")
elif not loaded.value:
    st.info(
        "This Chatwoot account has no website inbox the integration's token can see. In Chatwoot, add one under "
        "Settings > Inboxes > Add inbox > Website (an agent's token sees only the inboxes it works in).",
        icon=":material/web:",
    )
else:
    inboxes = {inbox.id: inbox for inbox in loaded.value}
    if st.session_state.get(INBOX) not in inboxes:
        st.session_state.pop(INBOX, None)
    settings_column, script_column = st.columns([2, 3], gap="large")
    with settings_column:
        st.subheader("Settings")
        chosen_id = st.selectbox(
            "Website inbox",
            list(inboxes),
            format_func=lambda i: inboxes[i].name + (f" · {inboxes[i].website_url}" if inboxes[i].website_url else ""),
            key=INBOX,
        )
        chosen_inbox = inboxes[chosen_id]
        current_settings = settings_form()
        st.button(
            "Refresh inboxes",
            key="w-refresh",
            icon=":material/refresh:",
            on_click=chatwoot.forget,
            args=(actor, current),
            help=f"Read the inboxes from Chatwoot again (reads are reused for {chatwoot.TTL} seconds).",
        )
    with script_column:
        st.subheader("Script")
        script_section(current, chosen_inbox, current_settings)
presets_section(presets_box, current_settings, current.id, chosen_inbox)
