"""Integrations Console: page config, settings and key check, sign-in gate, navigation by role."""

from __future__ import annotations

import streamlit as st

from core.errors import KeyMismatchError, NotFoundError, ValidationError
from core.settings import SettingsError
from core.tiers import Tier
from ui import auth as sign_in
from ui import connect_links, state
from ui.text import esc

st.set_page_config(page_title="Integrations Console", page_icon="🔌", layout="wide")


def stop_with_setup_problem(title: str, message: str) -> None:
    st.title("Integrations Console")
    st.error(f"**{title}**\n\n{message}")
    st.markdown(
        "Settings are read from the environment or `.streamlit/secrets.toml`; "
        "the README lists every one. Generate a key with `python manage.py keys generate`."
    )
    st.stop()


try:
    ctx = state.context()  # reads and validates the settings
except SettingsError as exc:
    stop_with_setup_problem("The app is not configured yet", str(exc))
except KeyMismatchError as exc:
    stop_with_setup_problem("The encryption key does not match this database", str(exc))

PAGE_PATHS = (
    "overview",
    "integrations",
    "integration",
    "helpdesk",
    "widget",
    "activity",
    "alerts",
    "admin",
    "statistics",
    "oauth_apps",
    "connect_links",
    "templates",
)


def sign_in_page() -> None:
    st.title("🔌 Integrations Console")
    st.caption("Connect customers' CRMs and Chatwoot helpdesks. Sign in with your staff account.")
    sign_in.sign_in_form(ctx)


if not sign_in.restore(ctx):
    st.session_state.pop("actor", None)
    # Every page's address leads to the sign-in form, so a deep link works once signed in.
    gate = [st.Page(sign_in_page, title="Sign in", icon=":material/login:", default=True)]
    gate += [st.Page(sign_in_page, title="Sign in", url_path=path) for path in PAGE_PATHS]
    st.navigation(gate, position="hidden").run()
    sign_in.write_pending_cookie(ctx)
    if st.session_state.get("authentication_status"):
        st.rerun()
    st.stop()

try:
    user = ctx.users.get_by_username(st.session_state["username"])
except NotFoundError:
    user = None
if user is None or not user.active or not sign_in.still_valid(ctx):
    sign_in.sign_out(ctx)
    st.rerun()

st.session_state["actor"] = user.actor()

with st.sidebar:
    st.markdown(f"**{esc(user.name)}**  \n{esc(user.email)}")
    st.caption(f"{Tier.parse(user.tier).label} tier · {user.role}")
    with st.popover("Change password", icon=":material/key:"), st.form("change_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password", help="At least 10 characters.")
        again = st.text_input("New password again", type="password")
        if st.form_submit_button("Change password"):
            if new != again:
                st.error("The two new passwords differ.")
            else:
                try:
                    ctx.users.change_own_password(user.actor(), current, new)
                except ValidationError as exc:
                    st.error(esc(" ".join(exc.errors.values())))
                else:
                    sign_in.sign_out(ctx)
                    st.rerun()
    if st.button("Sign out", key="sign_out"):
        sign_in.sign_out(ctx)
        st.rerun()
    # In the sidebar, so the page's own elements keep their places while the cookie is written.
    sign_in.write_pending_cookie(ctx)

pages = {
    "Workspace": [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("app_pages/integrations.py", title="Integrations", icon=":material/hub:"),
        # One integration's page: reached from the list (?id=N), never from the sidebar.
        st.Page("app_pages/integration.py", title="Integration", url_path="integration", visibility="hidden"),
        st.Page("app_pages/helpdesk.py", title="Helpdesk", icon=":material/support_agent:"),
        st.Page("app_pages/widget.py", title="Chat widget", icon=":material/chat:"),
        st.Page("app_pages/activity.py", title="Activity", icon=":material/history:"),
        st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page("app_pages/connect_links.py", title="Connect links", icon=":material/add_link:"),
        st.Page("app_pages/templates.py", title="Templates", icon=":material/auto_awesome:"),
    ]
}
if user.role == "admin":
    pages["Administration"] = [
        st.Page("app_pages/admin.py", title="Staff accounts", icon=":material/group:"),
        st.Page("app_pages/statistics.py", title="Statistics", icon=":material/monitoring:"),
        st.Page("app_pages/oauth_apps.py", title="OAuth apps", icon=":material/key:"),
    ]

state.show_flash()
connect_links.show_completions(ctx, user.actor())
st.navigation(pages).run()
