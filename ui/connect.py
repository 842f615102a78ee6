"""Connecting by consent on the staff pages: "Connect with <provider>" in the add dialog, "Reconnect" on an
integration that needs it, and what the callback did (the page it redirects to names an opaque outcome).

Starting creates the flow (a single-use state, bound to this tab's sign-in session); the next step is a
link to the provider's consent page. Every message shown may hold a provider's words: escaped, plain text.
"""

from __future__ import annotations

import streamlit as st

from app_context import AppContext
from core.audit import Actor
from core.catalog import Provider
from core.errors import ConsoleError, ValidationError
from core.fields import get_path
from ui import connect_links, state
from ui.text import esc

OUTCOME_PARAM = "oauth"


def _start(ctx: AppContext, actor: Actor, provider: Provider, key: str, **how) -> dict[str, str]:
    """Start the flow; the next step (a link, or what to fix) goes to session_state[key]. Returns the
    refusal's field messages ({} when it started or the refusal names no field)."""
    try:
        url = ctx.connect.start(actor, state.session_handle(ctx), provider.key, **how)
    except ValidationError as exc:
        st.session_state[key] = ("error", " ".join(exc.errors.values()))
        return dict(exc.errors)
    except ConsoleError as exc:
        st.session_state[key] = ("error", str(exc))
    else:
        st.session_state[key] = ("url", url)
    return {}


def _key(prefix: str, provider: Provider) -> str:
    return f"{prefix}:{provider.key}:connect"


def from_form(provider: Provider) -> bool:
    """Whether a new integration takes fields typed in the add form (spec.draft_fields, the Custom CRM's API
    address): its Connect button is then the form's own, so that it submits what was typed."""
    return provider.oauth is not None and bool(provider.oauth.draft_fields)


def _next_step(provider: Provider, key: str) -> None:
    pending = st.session_state.get(key)
    if not pending:
        return
    kind, value = pending
    if kind == "error":
        st.error(esc(value))
    else:
        st.link_button(f"Continue to {provider.name}", value, type="primary", icon=":material/open_in_new:")
        st.caption("Consent in the tab that opens; it comes back to the console. The link works once, for 10 minutes.")


def connect_offer(ctx: AppContext, actor: Actor, provider: Provider, name: str, prefix: str) -> bool:
    """In the add dialog: "Connect with <provider>" when an administrator registered its OAuth app. Returns
    whether the form must carry the Connect button (from_form: call connect_with_form when it is clicked)."""
    if not ctx.connect.offered(provider.key):
        return False
    key = _key(prefix, provider)
    in_form = from_form(provider)
    with st.container(border=True):
        if in_form:
            assert provider.oauth is not None
            needed = [provider.field(n).label for n in provider.oauth.draft_fields if provider.field(n).required]
            st.markdown(
                f"**Connect with {esc(provider.name)}**: fill in {esc(', '.join(needed))} below, then click "
                f"*Connect with {esc(provider.name)}* under the form and consent at the CRM; no token to copy."
            )
        else:
            st.markdown(
                f"**Connect with {esc(provider.name)}**: sign in at {esc(provider.name)} and consent; no token to copy."
            )
            if st.button(f"Connect with {provider.name}", key=f"{key}:start", icon=":material/link:"):
                _start(ctx, actor, provider, key, name=name)
        _next_step(provider, key)
    st.caption("Or enter the credentials yourself:")
    return in_form


def connect_with_form(
    ctx: AppContext, actor: Actor, provider: Provider, name: str, config: dict, prefix: str
) -> dict[str, str]:
    """The form's "Connect with <provider>": start with the form's draft fields (never a secret: only the
    spec's draft_fields are sent, and the flow checks them). Returns the field messages for the form."""
    assert provider.oauth is not None
    draft = {n: v for n in provider.oauth.draft_fields if (v := get_path(config, n)) is not None}
    return _start(ctx, actor, provider, _key(prefix, provider), name=name, draft=draft)


def reconnect_offer(ctx: AppContext, actor: Actor, provider: Provider, integration_id: int) -> None:
    """On an integration that needs reconnecting: consent again, keeping the integration."""
    if not ctx.connect.offered(provider.key):
        return
    key = f"reconnect:{integration_id}"
    with st.container(border=True):
        st.markdown(
            f"**Reconnect**: consent at {esc(provider.name)} again. The integration keeps its id, history and "
            "settings; only its tokens are replaced."
        )
        if st.button("Reconnect", key=f"{key}:start", icon=":material/link:", type="primary"):
            _start(ctx, actor, provider, key, integration_id=integration_id)
        _next_step(provider, key)
        st.markdown("Or let the customer do it: send them a link to consent themselves.")
        connect_links.reconnect_link_offer(ctx, actor, integration_id)


def show_outcome(ctx: AppContext, actor: Actor) -> None:
    """What the OAuth callback did, when this page was opened by it (?oauth=<outcome id>)."""
    outcome_id = st.query_params.get(OUTCOME_PARAM)
    if not outcome_id:
        return
    outcome = ctx.connect.outcome(actor, outcome_id)
    if outcome is None:
        st.warning("This sign-in's result is no longer available (it is shown for an hour, to the person who started).")
    elif outcome.connected:
        st.success(esc(outcome.message), icon=":material/check_circle:")
    else:
        st.error(esc(outcome.message), icon=":material/error:")
    if outcome is not None and outcome.integration_id:
        st.page_link(
            "app_pages/integration.py",
            label="Open the integration",
            query_params={"id": str(outcome.integration_id)},
            icon=":material/arrow_forward:",
        )
