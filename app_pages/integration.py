"""One integration's own page, at /integration?id=N (each row of the Integrations list links here)."""

import streamlit as st

from ui import integration_detail, state

ctx, actor = state.context(), state.actor()
integration_detail.render(ctx, actor, st.query_params.get("id"))
