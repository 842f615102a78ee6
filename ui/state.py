"""The services for this process and the person signed in to this session."""

from __future__ import annotations

import hashlib

import streamlit as st

import app_context
from core.audit import Actor
from core.settings import load_settings
from ui.text import esc


@st.cache_resource(show_spinner=False)
def _context_for(database_url: str, key_fingerprint: str) -> app_context.AppContext:
    ctx, password = app_context.prepare(load_settings())
    if password:
        # Printed once, on the console of whoever started the app; never shown on a page.
        print(f"Created the first administrator: user name admin, password {password} (change it after signing in)")
    return ctx


def context() -> app_context.AppContext:
    """One engine and set of services per process and configuration (st.cache_resource)."""
    settings = load_settings()
    # The whole key ring: adding or dropping a key (rotation) must build a new cipher.
    fingerprint = hashlib.sha256("\n".join(settings.encryption_keys).encode()).hexdigest()
    return _context_for(settings.database_url, fingerprint)


def actor() -> Actor:
    """The signed-in person. Home.py puts it in the session after every successful sign-in check."""
    current = st.session_state.get("actor")
    if current is None:
        st.error("You are signed out. Sign in again.")
        st.stop()
    return current


def flash(message: str, icon: str = ":material/check_circle:") -> None:
    """A toast that survives the rerun that follows a write. ``message`` is plain text (names in it are
    remote or user-supplied), so it is escaped here and never rendered as Markdown."""
    st.session_state["flash"] = (esc(message), icon)


def show_flash() -> None:
    if pending := st.session_state.pop("flash", None):
        st.toast(pending[0], icon=pending[1])
