"""The console's one look for a destructive action: the button names it with a trailing "…" and the delete
(or a given) icon, and asks first, in place; the confirming button is the primary one, with the
delete_forever icon, beside Cancel. (Streamlit has no "danger" button type.)"""

from __future__ import annotations

from collections.abc import Callable

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


# ----- a dialog's Cancel ---------------------------------------------------------------------------------
# Add/edit dialogs are opened with dismissible=False: a form's typed values reach the server only when it
# is submitted, so an Escape could not tell a half-filled form from an empty one. Cancel submits the form;
# with nothing changed it closes at once, with changes it asks first.

DISCARDING = "discarding"  # set in the dialog's state dict while the question is shown


def changed(pending: dict, form: str, entered: object) -> bool:
    """Whether ``entered`` differs from what form ``form`` of this dialog held when it first showed (kept in
    ``pending``; a dialog whose fields depend on a choice keeps one first state per choice)."""
    return pending.setdefault("untouched", {}).setdefault(form, entered) != entered


def cancel(pending: dict, changed: bool, close: Callable[[], None]) -> None:
    """The form's Cancel was pressed: close, or ask first when something was changed."""
    if not changed:
        close()
        st.rerun()
    pending[DISCARDING] = True


def asking_to_discard(pending: dict, what: str, key: str, close: Callable[[], None]) -> bool:
    """Shows "Discard the changes you made to ``what``?" while it is asked; True while it is (the caller
    then stops, leaving the form above it as it was typed). Keep editing returns to the form."""
    if not pending.get(DISCARDING):
        return False
    st.warning(f"Discard the changes you made to {esc(what)}?", icon=":material/edit_off:")
    keep, discard = st.columns(2)
    if keep.button("Keep editing", key=f"{key}:keep", width="stretch"):
        pending.pop(DISCARDING, None)
        st.rerun()
    if discard.button("Discard changes", key=f"{key}:discard", icon=":material/delete:", width="stretch"):
        close()
        st.rerun()
    return True
