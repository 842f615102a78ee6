"""Chat widget: the embeddable Chatwoot script for a website inbox, with named presets (STARTER and up).

The script is built by core.chatwoot.widget (safe by construction); presets live in core.chatwoot.presets. This page
picks the inbox and settings, and shows, copies, downloads and previews the result.
"""

from __future__ import annotations

import base64
import html

import streamlit as st

from core.audit import Actor
from core.chatwoot import locales
from core.chatwoot.client import Inbox
from core.chatwoot.presets import PresetView, check_widget_tier, widget_allowed
from core.chatwoot.widget import DARK_MODES, POSITIONS, TYPES, WidgetSettings, to_script_json
from core.errors import ConflictError, ConsoleError, NotFoundError, ValidationError
from core.tiers import TierLimitError
from ui import chatwoot, chatwoot_bot, state
from ui.copy_button import copy_button
from ui.text import esc

ctx, actor = state.context(), state.actor()
INTEGRATION, INBOX = "w-integration", "w-inbox"
PRESET, PRESET_NAME = "w-preset", "w-preset-name"
DELETING = "w-preset-deleting"  # the id of the preset whose deletion waits for a confirmation
# (name, version) of the preset a save would replace, captured when it was loaded or first named (0: none
# of that name then), so a save over a version saved since in another tab is refused, not merged.
SEEN, REFUSED = "w-preset-seen", "w-preset-refused"
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
# The label of each field a service error can name, so a message says which field it is about.
FIELD_LABELS = {
    "position": "Position",
    "type": "Type",
    "launcher_title": "Launcher title",
    "locale": "Locale",
    "dark_mode": "Dark mode",
    "name": "Preset name",
    "preset": "Preset name",
}
PREVIEW_HEIGHT = 620


def field_errors(errors: dict[str, str]) -> str:
    """ "Preset name: Enter a name." per field, each on its own line, as plain text."""
    return "  \n".join(esc(f"{FIELD_LABELS.get(k, k.replace('_', ' ').capitalize())}: {v}") for k, v in errors.items())


# ----- presets -------------------------------------------------------------------------------------------


def load_preset(_fresh: Actor, preset: PresetView, integration_ids: list[int]) -> None:
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
    st.session_state[SEEN] = (preset.name, preset.version)
    st.session_state.pop(REFUSED, None)
    if problems:
        state.flash(
            f"Loaded {preset.name}, except settings no longer valid: {', '.join(problems)}.", ":material/warning:"
        )
    else:
        state.flash(f"Loaded the preset {preset.name}.", ":material/bookmark:")


def delete_preset(fresh: Actor, preset: PresetView) -> None:
    st.session_state.pop(DELETING, None)
    try:
        ctx.presets.delete(fresh, preset.id)
    except NotFoundError as exc:
        state.flash(str(exc), ":material/error:")
        return
    st.session_state.pop(PRESET, None)
    state.flash(f"Deleted the preset {preset.name}.", ":material/delete:")


def ask_delete(_fresh: Actor, preset: PresetView) -> None:
    st.session_state[DELETING] = preset.id


def confirm_delete(preset: PresetView) -> None:
    """The destructive convention of the console: a delete asks first, in place; the confirming button is the
    primary one with the delete icon, next to Cancel."""
    with st.container(border=True):
        st.warning(
            f"Delete the preset {esc(preset.name)}? Scripts already pasted on websites keep working; only the saved "
            "settings go.",
            icon=":material/delete:",
        )
        yes, no = st.columns(2)
        yes.button(
            "Delete preset",
            key="w-delete-confirm",
            type="primary",
            icon=":material/delete_forever:",
            on_click=state.guarded(delete_preset, actor),
            args=(preset,),
            width="stretch",
        )
        no.button(
            "Cancel", key="w-delete-cancel", on_click=lambda: st.session_state.pop(DELETING, None), width="stretch"
        )


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
                    on_click=state.guarded(load_preset, actor),
                    args=(preset, integration_ids),
                    width="stretch",
                )
                b.button(
                    "Delete preset…",
                    key="w-delete",
                    icon=":material/delete:",
                    on_click=state.guarded(ask_delete, actor),
                    args=(preset,),
                    width="stretch",
                    help="Asks before anything is deleted.",
                )
                if st.session_state.get(DELETING) == preset.id:
                    confirm_delete(preset)
            else:
                st.caption("No presets yet. Name the settings below and save them to reopen them later.")
        with right:
            name = st.text_input("Preset name", key=PRESET_NAME, max_chars=100, placeholder="e.g. Acme homepage")
            replaces = next((p for p in presets if p.name == name.strip()), None)
            if st.session_state.get(SEEN, ("",))[0] != name.strip():
                st.session_state[SEEN] = (name.strip(), replaces.version if replaces else 0)
            if replaces:
                st.caption(f"Saving replaces the preset {esc(replaces.name)}.")
            clicked = st.button(
                "Save preset", key="w-save", icon=":material/bookmark_add:", disabled=settings is None, width="stretch"
            )
            if clicked and settings is not None:
                try:
                    saved = ctx.presets.save(
                        actor,
                        name,
                        settings,
                        integration_id,
                        inbox.id if inbox is not None else None,
                        expected_version=st.session_state[SEEN][1],
                    )
                except ConflictError as exc:
                    st.session_state[REFUSED] = (name.strip(), str(exc))
                except ValidationError as exc:
                    st.error(field_errors(exc.errors))
                except ConsoleError as exc:
                    st.error(esc(exc))
                else:
                    st.session_state[PRESET] = saved.id
                    st.session_state[SEEN] = (saved.name, saved.version)
                    st.session_state.pop(REFUSED, None)
                    state.flash(f"Saved the preset {saved.name}.", ":material/bookmark_added:")
                    st.rerun()
            refused = st.session_state.get(REFUSED)
            if refused and refused[0] == name.strip():
                st.error(esc(refused[1]), icon=":material/sync_problem:")
                if replaces:
                    st.button(
                        "Reload their version",
                        key="w-reload",
                        icon=":material/refresh:",
                        on_click=load_preset,  # knowingly discards the settings in the form
                        args=(replaces, integration_ids),
                    )


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
        "locale": st.selectbox(
            "Locale",
            locales.choices(st.session_state.get(KEYS["locale"])),
            key=KEYS["locale"],
            format_func=locales.locale_label,
            help="The widget's language, among those Chatwoot's widget is translated into.",
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
    if problems:  # core.chatwoot.widget's sentences, which may quote what was entered: one message, by field
        st.error(field_errors(problems))
    return None if problems else settings


# ----- script and preview -------------------------------------------------------------------------------


def preview_page(script: str, base_url: str, position: str) -> str:
    """A page around the script that says what happens: loading, loaded, or why it could not load.

    It runs in an opaque origin (preview_src): the browser refuses it cookies and storage, so it gives the
    SDK in-memory stand-ins, and says that a conversation started in the preview is not kept.
    """
    corner = "bottom left" if position == "left" else "bottom right"
    ready_text = (
        f"Preview: the chat bubble is in the {corner} corner of this frame. The preview is isolated from the "
        "console, with no cookies or storage of its own, so a conversation started here is forgotten when "
        "the preview reloads."
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8">
<style>body {{ font-family: sans-serif; color: #31333f; margin: 1rem; }} #cw-status {{ max-width: 34rem; }}</style>
</head><body>
<p id="cw-status">Loading Chatwoot's widget from {html.escape(base_url)}…</p>
<script>
  (function () {{
    // An opaque origin has no cookies or storage; the SDK keeps its conversation in them. In-memory
    // stand-ins let it start; nothing outlives this frame.
    var jar = {{}};
    try {{ void document.cookie; }} catch (refused) {{
      Object.defineProperty(document, "cookie", {{
        configurable: true,
        get: function () {{
          return Object.keys(jar).map(function (k) {{ return k + "=" + jar[k]; }}).join("; ");
        }},
        set: function (value) {{
          var pair = String(value).split(";")[0], at = pair.indexOf("=");
          if (at < 1) {{ return; }}
          var name = pair.slice(0, at).trim();
          if (/max-age=(0|-)|expires=thu, 01 jan 1970/i.test(String(value))) {{ delete jar[name]; }}
          else {{ jar[name] = pair.slice(at + 1); }}
        }}
      }});
    }}
    function memoryStorage() {{
      var data = {{}};
      return {{
        getItem: function (k) {{ return Object.prototype.hasOwnProperty.call(data, k) ? data[k] : null; }},
        setItem: function (k, v) {{ data[k] = String(v); }},
        removeItem: function (k) {{ delete data[k]; }},
        clear: function () {{ data = {{}}; }},
        key: function (i) {{ var keys = Object.keys(data); return i < keys.length ? keys[i] : null; }},
        get length() {{ return Object.keys(data).length; }}
      }};
    }}
    ["localStorage", "sessionStorage"].forEach(function (name) {{
      try {{ window[name].getItem("cw-probe"); }} catch (refused) {{
        try {{ Object.defineProperty(window, name, {{configurable: true, value: memoryStorage()}}); }} catch (e) {{}}
      }}
    }});

    var host = {to_script_json(base_url)};
    var status = document.getElementById("cw-status");
    var failed = false, ready = false;
    window.addEventListener("error", function (event) {{
      var target = event.target;
      if (target && target.tagName === "SCRIPT" && /\\/packs\\/js\\/sdk\\.js$/.test(target.src)) {{
        failed = true;
        status.textContent = "The preview could not load Chatwoot's SDK from " + target.src +
          ": this browser got no answer, or not Chatwoot's. The script is still right; the widget appears " +
          "on pages whose visitors' browsers can reach " + host + ".";
      }} else if (!ready && !failed && target === window) {{
        failed = true;
        status.textContent = "Chatwoot's SDK stopped with an error in this isolated preview, which has no " +
          "cookies or storage of its own. The script is still right; on a customer's website the widget " +
          "runs with that website's.";
      }}
    }}, true);
    window.addEventListener("chatwoot:ready", function () {{
      ready = true;
      status.textContent = {to_script_json(ready_text)};
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


def preview_src(page: str) -> str:
    """The preview as a data: URL. A browser gives a data: URL frame an opaque origin, whatever the frame's
    sandbox allows, so the SDK a customer's server sends can read nothing of the console: not its page, not
    its cookies, not its storage. (st.iframe embeds an HTML string as a same-origin srcdoc: never that.)"""
    return "data:text/html;charset=utf-8;base64," + base64.b64encode(page.encode("utf-8")).decode("ascii")


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
    if result is None:  # not ok: handled above (a read that succeeded always has its value)
        return
    st.caption("Paste this just before `</body>` on every page that should show the chat.")
    st.code(result.script, language="html", wrap_lines=True)
    copy_col, download_col = st.columns(2, vertical_alignment="center")
    with copy_col:
        copy_button(result.script, "Copy the script", key="w-copy")
    download_col.download_button(
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
        help="Loads Chatwoot's SDK from the Chatwoot server into a frame isolated from the console.",
    )
    if not show:
        st.caption(
            f"The preview loads Chatwoot's widget from {esc(result.base_url)} in a frame isolated from the "
            "console: it can read nothing of the console, and keeps no cookies or storage."
        )
        return
    # The console reached the Chatwoot server just now (it listed the inboxes); whether this browser can is
    # only known in the browser, and the preview page says so when it cannot.
    st.iframe(
        preview_src(preview_page(result.script, result.base_url, settings.position)),
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
    chatwoot.show_problem(
        loaded, on_refresh=state.guarded(lambda fresh, view=current: chatwoot.forget(fresh, view), actor)
    )
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
            on_click=state.guarded(chatwoot.forget, actor),
            args=(current,),
            help=f"Read the inboxes from Chatwoot again (reads are reused for {chatwoot.TTL} seconds).",
        )
    with script_column:
        st.subheader("Script")
        script_section(current, chosen_inbox, current_settings)
if loaded.ok:
    chatwoot_bot.inbox_offer(ctx, actor, current, chatwoot.forget, expanded=not loaded.value)
presets_section(presets_box, current_settings, current.id, chosen_inbox)
