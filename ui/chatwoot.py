"""What the Helpdesk and Chat widget pages share: picking a Chatwoot integration, saying what is missing,
and brief caches of remote reads.

Remote reads are cached for TTL seconds per (actor, integration, integration version) with
st.cache_data. The cached functions take only plain values (the actor's fields, ids) and call the
services inside; they return a Remote: the value, or why there is none. A failure is cached too, so an
unreachable Chatwoot costs one timeout per TTL rather than one per rerun. After any write, and on Refresh,
the page calls forget(), which drops the cached reads of that integration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import streamlit as st

from core.audit import Actor
from core.chatwoot.client import Inbox
from core.chatwoot.helpdesk import PROVIDER_KEY, HelpdeskSnapshot, HelpdeskUnavailable
from core.chatwoot.widget import WidgetSettings
from core.chatwoot.widget_service import WidgetScript
from core.errors import ConsoleError, ValidationError
from core.integrations.service import IntegrationView
from core.tiers import TierLimitError
from ui import state
from ui.text import esc

TTL = 30  # seconds a remote read is reused
INTEGRATIONS_PAGE = "app_pages/integrations.py"
T = TypeVar("T")
ActorKey = tuple[int, str, str, str]


@dataclass(frozen=True)
class Remote(Generic[T]):
    """The value of a remote read, or why there is none (``reason`` as HelpdeskError.reason)."""

    value: T | None = None
    reason: str | None = None
    message: str | None = None
    unavailable: bool = False  # HelpdeskUnavailable: fixed on the Integrations page, not by retrying

    @property
    def ok(self) -> bool:
        return self.message is None


def actor_key(actor: Actor) -> ActorKey:
    """The actor as plain, hashable values (a tier change makes a new cache key)."""
    return (actor.id, actor.username, actor.role, actor.tier)


def _failure(exc: ConsoleError) -> Remote:
    if isinstance(exc, ValidationError):
        return Remote(reason="invalid", message=" ".join(exc.errors.values()))
    if isinstance(exc, TierLimitError):
        return Remote(reason="tier", message=str(exc), unavailable=True)
    return Remote(
        reason=getattr(exc, "reason", "failed"), message=str(exc), unavailable=isinstance(exc, HelpdeskUnavailable)
    )


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=500)
def _snapshot(actor: ActorKey, integration_id: int, version: int) -> Remote[HelpdeskSnapshot]:
    try:
        return Remote(state.context().helpdesk.snapshot(Actor(*actor), integration_id))
    except ConsoleError as exc:
        return _failure(exc)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=500)
def _website_inboxes(actor: ActorKey, integration_id: int, version: int) -> Remote[list[Inbox]]:
    try:
        return Remote(state.context().widget.website_inboxes(Actor(*actor), integration_id))
    except ConsoleError as exc:
        return _failure(exc)


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=2000)
def _script(
    actor: ActorKey, integration_id: int, version: int, inbox_id: int, settings: tuple[tuple[str, Any], ...]
) -> Remote[WidgetScript]:
    try:
        return Remote(
            state.context().widget.script(
                Actor(*actor), integration_id, inbox_id, WidgetSettings.from_sdk(dict(settings))
            )
        )
    except ConsoleError as exc:
        return _failure(exc)


def snapshot(actor: Actor, view: IntegrationView) -> Remote[HelpdeskSnapshot]:
    """Agents, inboxes, live membership and seats of the integration's account (cached briefly)."""
    with st.spinner(f"Reading the Chatwoot account of {esc(view.name)}…"):
        return _snapshot(actor_key(actor), view.id, view.version)


def website_inboxes(actor: Actor, view: IntegrationView) -> Remote[list[Inbox]]:
    """The account's website inboxes (cached briefly)."""
    with st.spinner(f"Reading the website inboxes of {esc(view.name)}…"):
        return _website_inboxes(actor_key(actor), view.id, view.version)


def widget_script(actor: Actor, view: IntegrationView, inbox_id: int, settings: WidgetSettings) -> Remote[WidgetScript]:
    """The widget script for one website inbox (cached briefly per settings)."""
    with st.spinner("Building the widget script…"):
        return _script(actor_key(actor), view.id, view.version, inbox_id, tuple(settings.as_sdk().items()))


def forget(actor: Actor, view: IntegrationView) -> None:
    """Drop the cached remote reads of this integration: after every write, and on Refresh."""
    key = actor_key(actor)
    _snapshot.clear(key, view.id, view.version)
    _website_inboxes.clear(key, view.id, view.version)
    _script.clear()  # keyed by settings too; scripts are cheap to rebuild


# ----- choosing an integration, and what is missing -------------------------------------------------


def link_to_integrations() -> None:
    st.page_link(INTEGRATIONS_PAGE, label="Go to Integrations", icon=":material/hub:")


def pick_integration(actor: Actor, key: str, needs: str) -> IntegrationView | None:
    """One of the actor's active Chatwoot integrations (a selectbox when there are several).

    With none, explains what is missing (``needs`` says what kind of token the page needs), links to the
    Integrations page and returns None.
    """
    ctx = state.context()
    views = ctx.helpdesk.integrations(actor)
    if not views:
        explain_no_integration(actor, needs)
        return None
    if len(views) == 1:
        st.caption(f"Through your Chatwoot integration **{esc(views[0].name)}**.")
        return views[0]
    by_id = {view.id: view for view in views}
    if st.session_state.get(key) not in by_id:
        st.session_state.pop(key, None)
    chosen = st.selectbox(
        "Chatwoot integration",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · #{i}",
        key=key,
        help="Your own active Chatwoot integrations.",
    )
    return by_id[chosen]


def explain_no_integration(actor: Actor, needs: str) -> None:
    ctx = state.context()
    inactive = ctx.integrations.list_for_provider(actor, PROVIDER_KEY, active_only=False)
    if inactive:
        for view in inactive:
            try:
                ctx.helpdesk.connection(actor, view.id, require_admin=False)
            except HelpdeskUnavailable as exc:  # "inactive": says to activate it on the Integrations page
                st.warning(esc(exc), icon=":material/power_off:")
    else:
        st.info(
            "You have no Chatwoot integration yet. This page works through one of your own Chatwoot "
            f"integrations with {needs}: on the Integrations page choose **Add CRM integration**, pick "
            "**Chatwoot**, and enter the Chatwoot address, the account ID and the access token.",
            icon=":material/link_off:",
        )
    link_to_integrations()


def show_problem(remote: Remote, on_refresh) -> None:
    """Why a remote read failed, a link to where it is fixed, and a Refresh button to try again."""
    st.error(esc(remote.message), icon=":material/error:")
    left, right = st.columns([1, 4])
    with left:
        st.button("Try again", icon=":material/refresh:", on_click=on_refresh, key="retry-remote")
    with right:
        if remote.unavailable:
            link_to_integrations()
