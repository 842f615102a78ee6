"""The console's one look for a destructive action: the button names it with a trailing "…" and the delete
(or a given) icon, and asks first, in place; the confirming button is the primary one, with the
delete_forever icon, beside Cancel. (Streamlit has no "danger" button type.)"""

from __future__ import annotations

import streamlit as st

from ui.text import esc

ASKING = "confirm:asking"  # the key of the action waiting for its confirmation


def destructive(label: str, key: str, question: str, *, icon: str = ":material/delete:", where=None) -> bool:
    """True in the run where the person confirmed ``label``; ``question`` is plain text (names are escaped)."""
    place = where if where is not None else st
    if place.button(f"{label}…", key=key, icon=icon, help="Asks first."):
        st.session_state[ASKING] = key
    if st.session_state.get(ASKING) != key:
        return False
    with st.container(border=True):
        st.warning(esc(question), icon=icon)
        yes, no = st.columns(2)
        confirmed = yes.button(
            label, key=f"{key}:yes", type="primary", icon=":material/delete_forever:", width="stretch"
        )
        if no.button("Cancel", key=f"{key}:no", width="stretch"):
            st.session_state.pop(ASKING, None)
            st.rerun()
    if confirmed:
        st.session_state.pop(ASKING, None)
    return confirmed
