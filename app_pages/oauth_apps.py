"""OAuth apps (administrators only): the console's own OAuth app per provider, and the redirect URI to
register at each (PUBLIC_BASE_URL + /oauth/callback). The page is thin: core/connect/apps.py does the work."""

import streamlit as st

from core.connect.apps import redirect_uri
from core.errors import ConsoleError, ValidationError
from core.paths import CALLBACK_PATH
from ui import confirm, state
from ui.text import esc

ctx, actor = state.context(), state.actor()
if not actor.is_admin:
    st.error("Only administrators can register OAuth apps.")
    st.stop()

st.title("OAuth apps")
st.caption(
    "The console's own app at each CRM, so staff and customers can connect by consenting at the CRM "
    "instead of pasting tokens."
)
uri = redirect_uri(ctx.settings.public_base_url)
if uri is None:
    st.warning(
        "PUBLIC_BASE_URL is not set, so the console has no address for the CRMs to send people back to, and "
        f"no one can connect by consent yet. Set it to the console's address as customers reach it (for "
        f"example https://console.example.com); the redirect URI is then that address followed by {CALLBACK_PATH}.",
        icon=":material/warning:",
    )
else:
    st.markdown("Register this redirect URI, exactly as shown, at every provider below:")
    st.code(uri, language=None)

views = ctx.oauth_apps.views()
for provider in ctx.oauth_apps.providers():
    spec = provider.oauth
    assert spec is not None
    current = views.get(provider.key)
    with st.expander(f"{provider.name}: {'registered' if current else 'not registered'}", expanded=current is None):
        if spec.console_hint:
            st.caption(esc(spec.console_hint))
        if current:
            st.caption(f"Last changed by {esc(current.updated_by or '?')} at {current.updated_at:%Y-%m-%d %H:%M} UTC.")
        with st.form(f"oauth_app_{provider.key}"):
            client_id = st.text_input("Client ID", value=current.client_id if current else "")
            secret = st.text_input(
                "Client secret",
                type="password",
                help="Stored encrypted. Leave empty to keep the stored one." if current else "Stored encrypted.",
            )
            authorize_url = token_url = None
            if spec.configurable_urls:  # the Custom CRM: the administrator names the endpoints
                authorize_url = st.text_input(
                    "Authorize URL",
                    value=(current.authorize_url or "") if current else "",
                    placeholder="https://crm.example.com/oauth/authorize",
                    help="Where people consent (RFC 6749 authorization endpoint).",
                )
                token_url = st.text_input(
                    "Token URL",
                    value=(current.token_url or "") if current else "",
                    placeholder="https://crm.example.com/oauth/token",
                    help="Where the console exchanges the code and refreshes access tokens (token endpoint).",
                )
            defaults = spec.scope_separator.join(spec.default_scopes)
            scopes = st.text_input(
                "Scopes",
                value=" ".join(current.scopes) if current else defaults,
                help=f"Separated by spaces. The default: {defaults or '(none: scopes are set on the app)'}.",
            )
            if st.form_submit_button("Save", type="primary"):
                try:
                    ctx.oauth_apps.save(actor, provider.key, client_id, secret, scopes, authorize_url, token_url)
                except ValidationError as exc:
                    st.error(esc(" ".join(exc.errors.values())))
                except ConsoleError as exc:
                    st.error(esc(str(exc)))
                else:
                    state.flash(f"Saved the {provider.name} app.")
                    st.rerun()
        if current and confirm.destructive(
            f"Remove the {provider.name} app",
            f"remove_{provider.key}",
            f"Remove the {provider.name} app? People can no longer connect {provider.name} by signing in until it "
            "is registered again; connected integrations keep their tokens.",
        ):
            ctx.oauth_apps.delete(actor, provider.key)
            state.flash(f"Removed the {provider.name} app.")
            st.rerun()
