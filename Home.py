"""Integrations Console: page config, settings and key check, sign-in gate, navigation by role."""

from __future__ import annotations

import streamlit as st
import streamlit_authenticator as stauth

from core.keys import KeyMismatchError
from core.settings import SettingsError, load_settings
from core.tiers import Tier
from ui import state

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
    settings = load_settings()
    ctx = state.context()
except SettingsError as exc:
    stop_with_setup_problem("The app is not configured yet", str(exc))
except KeyMismatchError as exc:
    stop_with_setup_problem("The encryption key does not match this database", str(exc))

authenticator = stauth.Authenticate(
    ctx.users.credentials(),
    settings.cookie_name,
    settings.cookie_key,
    settings.cookie_expiry_days,
    login_sleep_time=0,
)


PAGE_PATHS = ("overview", "integrations", "admin")


def sign_in_page() -> None:
    st.title("🔌 Integrations Console")
    st.caption("Connect customers' CRMs and Chatwoot helpdesks. Sign in with your staff account.")
    authenticator.login(
        location="main",
        fields={"Form name": "Sign in", "Username": "User name", "Password": "Password", "Login": "Sign in"},
    )
    if st.session_state.get("authentication_status") is False:
        st.error("That user name and password do not match an active account. Check them and try again.")


def sign_out() -> None:
    st.session_state.pop("actor", None)


if not st.session_state.get("authentication_status"):
    st.session_state.pop("actor", None)
    # Every page's address leads to the sign-in form, so a deep link works once signed in.
    gate = [st.Page(sign_in_page, title="Sign in", icon=":material/login:", default=True)]
    gate += [st.Page(sign_in_page, title="Sign in", url_path=path) for path in PAGE_PATHS]
    st.navigation(gate, position="hidden").run()
    if st.session_state.get("authentication_status"):
        # The sign-in cookie is set on the next run: a component rendered just before st.rerun()
        # never reaches the browser, and the sign-in would not survive a reload.
        st.session_state["persist_sign_in"] = True
        st.rerun()
    st.stop()

try:
    user = ctx.users.get_by_username(st.session_state["username"])
except Exception:
    user = None
if user is None or not user.active:
    authenticator.logout(location="unrendered")
    sign_out()
    st.rerun()

st.session_state["actor"] = user.actor()

with st.sidebar:
    st.markdown(f"**{user.name}**  \n{user.email}")
    st.caption(f"{Tier.parse(user.tier).label} tier · {user.role}")
    authenticator.logout(button_name="Sign out", location="sidebar", callback=lambda _: sign_out())
    if st.session_state.pop("persist_sign_in", False):
        # In the sidebar, so the page's own elements keep their places while the cookie is written.
        authenticator.cookie_controller.set_cookie()
if not st.session_state.get("authentication_status"):
    # Signed out just now. End this run normally so the cookie deletion reaches the browser.
    st.title("Signed out")
    st.info("You are signed out. Close this tab, or sign in again.")
    st.button("Sign in again", type="primary")
    st.stop()

pages = {
    "Workspace": [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("app_pages/integrations.py", title="Integrations", icon=":material/hub:"),
    ]
}
if user.role == "admin":
    pages["Administration"] = [st.Page("app_pages/admin.py", title="Staff accounts", icon=":material/group:")]

state.show_flash()
st.navigation(pages).run()
