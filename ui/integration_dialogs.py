"""The add, edit and delete dialogs of an integration, shared by the Integrations list and an integration's
own page (opened from session state: open_dialog / open_delete, then show_dialogs() at the end of the page)."""

from __future__ import annotations

import streamlit as st

from core.errors import ConflictError, ConsoleError, NotFoundError, ValidationError
from core.results import TestResult
from core.tiers import Tier
from providers import CATALOG
from ui import confirm, connect, reads, state
from ui.forms import controlling_fields, render_fields
from ui.text import details_markdown, esc

DIALOG = "integration_dialog"
DELETE = "delete_dialog"  # {"view": IntegrationView captured when it opened, "then": page} or {"missing": why}
BULK_DELETE = "bulk_delete_dialog"  # [IntegrationView captured when it opened]
TRANSFER = "transfer_dialog"  # [IntegrationView captured when it opened]
RESULT_KEY = "list_result"  # the Integrations list's one message about the last action (ui/integration_list)


def _service():
    return state.context().integrations


def open_dialog(kind: str, integration_id: int | None = None, category: str = "CRM") -> None:
    """Open the add or edit dialog. An edit captures the integration now (its values and version): every
    rerun of the dialog shows and saves against what was opened, so a save after someone else's is refused
    instead of silently undoing their change. A new prefix gives the widgets fresh keys and defaults."""
    nonce = st.session_state.get("dialog_nonce", 0) + 1
    st.session_state["dialog_nonce"] = nonce
    st.session_state[DIALOG] = {"kind": kind, "id": integration_id, "category": category, "prefix": f"dlg{nonce}"}
    if integration_id is not None:
        try:
            st.session_state[DIALOG]["view"] = _service().for_edit(state.actor(), integration_id)
        except NotFoundError as exc:
            st.session_state[DIALOG]["missing"] = str(exc)


def close_dialog() -> None:
    st.session_state.pop(DIALOG, None)


def show_result(result: TestResult) -> None:
    if result.success:
        if result.details.get("limited"):  # one message for the outcome: it connects, with a limit
            st.warning(
                esc(result.message) + " This token connects, but helpdesk features need an administrator's token.",
                icon=":material/warning:",
            )
        else:
            st.success(esc(result.message), icon=":material/check_circle:")
        if found := details_markdown(result.details):
            with st.expander("What the test found"):
                st.markdown(found)
    else:
        st.error(esc(result.message), icon=":material/error:")


# ----- add / edit dialog -------------------------------------------------------------------


def choose_provider(existing):
    if existing is not None:
        provider = CATALOG.get(existing.provider)
        st.caption(f"Provider: **{provider.name}**")
        return provider
    choices = CATALOG.in_category(st.session_state[DIALOG].get("category", "CRM"))
    if len(choices) == 1:
        return choices[0]
    return st.selectbox(
        "Provider",
        choices,
        format_func=lambda p: p.name if p.available else f"{p.name} (coming soon)",
        key=f"{st.session_state[DIALOG]['prefix']}:provider",
    )


def save(provider, existing, name: str, config: dict):
    if existing is None:
        return _service().create(state.actor(), name, provider.key, config)
    return _service().update(state.actor(), existing.id, existing.version, name=name, configuration=config)


def integration_form(provider, existing, prefix: str) -> None:
    stored = existing.configuration if existing else {}
    errors = st.session_state.get(f"{prefix}:errors", {})
    name = st.text_input(
        "Integration name *",
        value=existing.name if existing else "",
        placeholder=f"e.g. Acme — {provider.name}",
        key=f"{prefix}:{provider.key}:integration-name",  # distinct from a provider field called "name"
    )
    if errors.get("name"):
        st.markdown(f":red[{esc(errors['name'])}]")
    adding = existing is None
    connect_in_form = False  # whether the form carries "Connect with" (it then submits the typed fields)
    if adding:
        connect_in_form = connect.connect_offer(state.context(), state.actor(), provider, name, prefix)
    controlling = controlling_fields(provider.fields)
    key_prefix = f"{prefix}:{provider.key}"
    hints = existing.secret_hints if existing else {}
    controls = render_fields(
        [f for f in provider.fields if f.name in controlling], stored, key_prefix, errors, {}, hints
    )
    with st.form(f"{key_prefix}:form", border=False):
        rest = render_fields(
            [f for f in provider.fields if f.name not in controlling], stored, key_prefix, errors, controls, hints
        )
        cancel_col, test_col, save_col = st.columns(3)
        cancelled = cancel_col.form_submit_button("Cancel", width="stretch")
        tested = test_col.form_submit_button("Test connection", width="stretch")
        saved = save_col.form_submit_button("Save integration", type="primary", width="stretch")
        connecting = connect_in_form and st.form_submit_button(
            f"Connect with {provider.name}", icon=":material/link:", width="stretch"
        )
    config = {**rest, **controls}
    current = st.session_state[DIALOG]
    edited = confirm.changed(current, provider.key, (name, config))  # per provider: each has its own fields
    if saved or tested or connecting:
        current.pop(confirm.DISCARDING, None)
    if cancelled:
        confirm.cancel(current, edited, close_dialog)
    if confirm.asking_to_discard(current, f"{existing.name if existing else 'this integration'}", prefix, close_dialog):
        return
    if connecting:  # what was typed (its non-secret draft fields) goes into the flow, checked there
        st.session_state[f"{prefix}:errors"] = connect.connect_with_form(
            state.context(), state.actor(), provider, name, config, prefix
        )
        st.rerun()
    if tested:
        with st.spinner(f"Testing the connection to {provider.name}…"):
            saved_id = existing.id if existing else None
            result = _service().test_configuration(state.actor(), provider.key, config, saved_id)
        st.session_state[f"{prefix}:errors"] = result.details.get("field_errors", {})
        st.session_state[f"{prefix}:result"] = result
        st.rerun()
    if saved:
        try:
            view = save(provider, existing, name, config)
        except ValidationError as exc:
            st.session_state[f"{prefix}:errors"] = exc.errors
            st.rerun()
        except ConflictError as exc:
            st.session_state[f"{prefix}:conflict"] = str(exc)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            close_dialog()
            reads.forget()
            state.flash(f"Saved {view.name}.")
            if st.session_state.get(f"{prefix}:result"):
                # It was tested in the form: record the status of what was actually stored.
                with st.spinner("Checking the saved connection…"):
                    st.session_state["last_test"] = (view.id, _service().test(state.actor(), view.id))
            st.rerun()
    if refused := st.session_state.get(f"{prefix}:conflict"):
        st.error(esc(refused), icon=":material/sync_problem:")
        if st.button("Reload their version", key=f"{prefix}:reload", icon=":material/refresh:"):
            # Knowingly discards this form's edits: the dialog reopens on the record as stored now.
            open_dialog("edit", existing.id)
            st.rerun()
    if errors:
        st.error("Some fields need attention; see the messages above.")
    if result := st.session_state.get(f"{prefix}:result"):
        show_result(result)
    if provider.guide:
        with st.expander(provider.guide[0]):
            st.code(provider.guide[1], language="python")


def close_button() -> None:
    """The way out of a dialog with no form (it cannot be dismissed with Escape)."""
    if st.button("Close", key="dialog-close"):
        close_dialog()
        st.rerun()


def dialog_body() -> None:
    current = st.session_state.get(DIALOG)
    if not current:
        return
    state.require_fresh(state.actor())  # a dialog's reruns skip Home.py's check; same person, role and tier after it
    existing = None
    if current["id"] is not None:
        if "view" not in current and "missing" not in current:  # opened without open_dialog: capture now
            try:
                current["view"] = _service().for_edit(state.actor(), current["id"])
            except NotFoundError as exc:
                current["missing"] = str(exc)
        if "missing" in current:
            st.error(esc(current["missing"]))
            close_button()
            return
        existing = current["view"]  # as it was when the dialog opened, not as it is now
    provider = choose_provider(existing)
    st.caption(provider.description)
    if not provider.available:
        st.info(
            f"{provider.name} is coming soon: its connection test is not built yet, so it cannot be connected today."
        )
        close_button()
        return
    integration_form(provider, existing, current["prefix"])


# Not dismissible: Escape or a click beside it would throw away what was typed; Cancel asks first.
add_dialog = st.dialog("Add an integration", width="large", dismissible=False)(dialog_body)
edit_dialog = st.dialog("Edit integration", width="large", dismissible=False)(dialog_body)


def open_delete(integration_id: int, then: str | None = None) -> None:
    """Open the delete dialog on the integration as it is now (id, name, version), as open_dialog does for
    an edit: the deletion is sent with that version, so one after someone else's save is refused, naming them.
    ``then``: the page to go to once it is deleted (its own page is gone); None stays on this one.
    """
    try:
        st.session_state[DELETE] = {"view": _service().get(state.actor(), integration_id), "then": then}
    except NotFoundError as exc:
        st.session_state[DELETE] = {"missing": str(exc)}


def close_delete() -> None:
    st.session_state.pop(DELETE, None)


@st.dialog("Delete integration", on_dismiss=close_delete)
def delete_dialog() -> None:
    pending = st.session_state.get(DELETE)
    if not pending:
        return
    state.require_fresh(state.actor())  # a dialog's reruns skip Home.py's check; same person, role and tier after it
    if "missing" in pending:
        st.error(esc(pending["missing"]))
        return
    view = pending["view"]  # as it was when the dialog opened, not the list row of this rerun
    if refused := pending.get("conflict"):
        st.error(esc(refused), icon=":material/sync_problem:")
        left, right = st.columns(2)
        if left.button("Look again", key="delete:reload", icon=":material/refresh:", width="stretch"):
            open_delete(view.id, pending.get("then"))  # reopens on the record as stored now, name and version
            st.rerun()
        if right.button("Cancel", key="delete:cancel", width="stretch"):
            close_delete()
            st.rerun()
        return
    st.write(
        f"Delete **{esc(view.name)}** ({view.provider_name})? Its stored credentials are erased. This cannot be undone."
    )
    left, right = st.columns(2)
    if left.button("Delete permanently", type="primary", width="stretch"):
        try:
            _service().delete(state.actor(), view.id, view.version)
        except ConflictError as exc:
            pending["conflict"] = str(exc)
            st.rerun()
        except ConsoleError as exc:
            st.error(esc(exc))
            return
        close_delete()
        reads.forget()
        state.flash(f"Deleted {view.name}.", ":material/delete:")
        if pending.get("then"):
            st.switch_page(pending["then"])
        st.rerun()
    if right.button("Cancel", width="stretch"):
        close_delete()
        st.rerun()


# ----- a selection: delete several, give to someone else ------------------------------------------


def report_bulk(outcome, keep_selection: bool = False) -> None:
    """A BulkResult as the list's one message (plain text: it names integrations); a selection's action
    clears the selection, one row's keeps it (its actions stay at hand)."""
    kind = "success" if not outcome.refused else ("error" if not outcome.done else "warning")
    st.session_state[RESULT_KEY] = (kind, outcome.summary())
    if not keep_selection:
        st.session_state["list_table_nonce"] = st.session_state.get("list_table_nonce", 0) + 1
    reads.forget()


def open_bulk_delete(views) -> None:
    """Capture the selection as it is now: each is deleted at that version, or refused if changed since."""
    st.session_state[BULK_DELETE] = list(views)


def close_bulk_delete() -> None:
    st.session_state.pop(BULK_DELETE, None)


@st.dialog("Delete integrations", on_dismiss=close_bulk_delete)
def bulk_delete_dialog() -> None:
    views = st.session_state.get(BULK_DELETE) or []
    state.require_fresh(state.actor())
    st.write(f"Delete these {len(views)} integrations? Their stored credentials are erased. This cannot be undone.")
    st.text("\n".join(f"• {v.name} ({v.provider_name}, #{v.id})" for v in views[:20]))
    if len(views) > 20:
        st.caption(f"…and {len(views) - 20} more.")
    left, right = st.columns(2)
    if left.button(f"Delete {len(views)} permanently", key="bulk-delete:confirm", type="primary", width="stretch"):
        outcome = _service().bulk_delete(state.actor(), {v.id: v.version for v in views})
        close_bulk_delete()
        report_bulk(outcome)
        st.rerun()
    if right.button("Cancel", key="bulk-delete:cancel", width="stretch"):
        close_bulk_delete()
        st.rerun()


def open_transfer(views) -> None:
    st.session_state[TRANSFER] = list(views)


def close_transfer() -> None:
    st.session_state.pop(TRANSFER, None)


@st.dialog("Give integrations to someone else", on_dismiss=close_transfer)
def transfer_dialog() -> None:
    views = st.session_state.get(TRANSFER) or []
    actor = state.require_fresh(state.actor())
    people = [u for u in state.context().users.list() if u.active]
    owners = {v.owner for v in views}
    choices = [u for u in people if not (len(owners) == 1 and u.username in owners)]
    if not choices:
        st.info("There is no one else to give them to. Add a staff account first.")
        return
    tier_words = {u.username: Tier.parse(u.tier).label for u in choices}
    chosen = st.selectbox(
        "New owner",
        [u.username for u in choices],
        format_func=lambda name: f"{name} ({tier_words[name]} tier)",
        key="transfer:owner",
    )
    st.caption(
        f"{len(views)} selected. Each counts towards the new owner's tier limit; those over it stay where they are."
    )
    left, right = st.columns(2)
    if left.button(f"Give {len(views)}", key="transfer:confirm", type="primary", width="stretch"):
        outcome = _service().bulk_transfer(actor, [v.id for v in views], chosen)
        close_transfer()
        report_bulk(outcome)
        st.rerun()
    if right.button("Cancel", key="transfer:cancel", width="stretch"):
        close_transfer()
        st.rerun()


def show_dialogs() -> None:
    """Draw whichever dialog is open; call once, at the end of the page."""
    if current := st.session_state.get(DIALOG):
        (add_dialog if current["kind"] == "add" else edit_dialog)()
    elif DELETE in st.session_state:
        delete_dialog()
    elif BULK_DELETE in st.session_state:
        bulk_delete_dialog()
    elif TRANSFER in st.session_state:
        transfer_dialog()
