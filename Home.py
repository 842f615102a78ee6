"""Integrations Console: page config, settings and key check, sign-in gate, navigation by role."""

from __future__ import annotations

import streamlit as st

import start_gate
from core.errors import KeyMismatchError, NotFoundError
from core.settings import SettingsError
from core.tiers import Tier
from core.users import role_label
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
    "account",
)


def sign_in_page() -> None:
    st.title("🔌 Integrations Console")
    st.caption("Connect customers' CRMs and Chatwoot helpdesks. Sign in with your staff account.")
    sign_in.sign_in_form(ctx)


def choose_password_page() -> None:
    sign_in.choose_password_form(ctx, st.session_state.get("username") or "")


if not sign_in.restore(ctx):
    st.session_state.pop("actor", None)
    # Signed in with a one-time password: this session opens nothing else (core/sessions.py) until it is replaced.
    choosing = sign_in.choosing_password(ctx) is not None
    page, title = (choose_password_page, "Choose a new password") if choosing else (sign_in_page, "Sign in")
    # Every page's address leads to this form, so a deep link works once signed in.
    gate = [st.Page(page, title=title, icon=":material/login:", default=True)]
    gate += [st.Page(page, title=title, url_path=path) for path in PAGE_PATHS]
    state.show_flash()
    try:
        st.navigation(gate, position="hidden").run()
    finally:
        start_gate.page_shown()  # the task engine starts once a first page is drawn (app.py)
    sign_in.write_pending_cookie(ctx)
    if sign_in.signed_in_now():
        st.rerun()
    st.stop()

try:
    user = ctx.users.get_by_username(st.session_state["username"])
except NotFoundError:
    user = None
if user is None or not user.active or user.must_change_password or not sign_in.still_valid(ctx):
    sign_in.sign_out(ctx)
    st.rerun()

st.session_state["actor"] = user.actor()
# Name, e-mail and password of the person signed in, for every role (in the navigation's "You").
ACCOUNT_PAGE = st.Page("app_pages/account.py", title="Your account", icon=":material/manage_accounts:")

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
pages["You"] = [ACCOUNT_PAGE]
navigation = st.navigation(pages)

with st.sidebar:
    st.markdown(f"**{esc(user.name)}**  \n{esc(user.email)}")
    st.caption(f"{Tier.parse(user.tier).label} tier · {role_label(user.role)}")
    if st.button("Sign out", key="sign_out"):
        sign_in.sign_out(ctx)
        st.rerun()
    # In the sidebar, so the page's own elements keep their places while the cookie is written.
    sign_in.write_pending_cookie(ctx)

state.show_flash()
connect_links.show_completions(ctx, user.actor())
try:
    navigation.run()
finally:
    start_gate.page_shown()
