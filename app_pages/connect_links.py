"""Connect links: send a customer a link to connect their own CRM, and follow what became of each.
The page is thin: ui/connect_links.py draws it, core/connect/links.py does the work."""

import streamlit as st

from ui import connect_links, state

ctx, actor = state.context(), state.actor()

st.title("Connect links")
st.caption(
    "Send a customer a link: they open it without signing in, consent at their CRM, and the integration is "
    "connected for its owner. Nobody handles a token. A link works once, and until it expires."
)
if not ctx.links.offered_providers():
    st.info(
        "No provider can be connected by link yet: an administrator registers the console's OAuth app for a "
        "provider (the OAuth apps page), and PUBLIC_BASE_URL must be set to the console's public address.",
        icon=":material/info:",
    )
elif st.button("New connect link", type="primary", icon=":material/add_link:"):
    connect_links.open_create()
connect_links.show_issued()
connect_links.links_table(ctx, actor)
if connect_links.CREATE in st.session_state:
    connect_links.create_dialog(ctx, actor)
