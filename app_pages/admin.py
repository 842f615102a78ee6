"""Staff accounts (administrators only): add people, set their tier and role, reset passwords."""

import pandas as pd
import streamlit as st

from core.errors import ConflictError, ConsoleError, NotFoundError
from core.tiers import Tier
from core.users import ROLES, random_password
from ui import state
from ui.text import esc

ctx, actor = state.context(), state.actor()
if not actor.is_admin:
    st.error("Only administrators can manage staff accounts.")
    st.stop()

st.title("Staff accounts")
users = ctx.users.list()
st.dataframe(
    pd.DataFrame(
        [
            {"User": u.username, "Name": u.name, "E-mail": u.email, "Role": u.role, "Tier": u.tier, "Active": u.active}
            for u in users
        ]
    ),
    hide_index=True,
    width="stretch",
)

tiers = [t.name for t in Tier]
left, right = st.columns(2)
with left, st.form("add_user", clear_on_submit=True):
    st.subheader("Add a staff member")
    username = st.text_input("User name")
    name = st.text_input("Full name")
    email = st.text_input("E-mail")
    role = st.selectbox("Role", ROLES, index=1)
    tier = st.selectbox("Tier", tiers)
    if st.form_submit_button("Add account", type="primary"):
        password = random_password()
        try:
            ctx.users.create(actor, username, name, email, password, role, tier)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            st.success(
                f"Added {esc(username)}. Their first password, shown once: `{password}`. Ask them to keep it safe."
            )

EDIT = "account_edit"


def open_account(username: str) -> None:
    """Capture the account as it is now (values and version): the form shows and saves against it, so a
    save after someone else's change is refused instead of undoing it. New widget keys, fresh defaults."""
    nonce = st.session_state.get(EDIT, {}).get("nonce", 0) + 1
    try:
        view = ctx.users.get_by_username(username)
    except NotFoundError:
        st.session_state.pop(EDIT, None)
        return
    st.session_state[EDIT] = {"username": username, "view": view, "nonce": nonce}


with right:
    st.subheader("Change an account")
    who = st.selectbox("User", [u.username for u in users], key="account_choice")
    if st.session_state.get(EDIT, {}).get("username") != who:
        open_account(who)
    editing = st.session_state[EDIT]
    current, prefix = editing["view"], f"acct{editing['nonce']}"
    with st.form(f"{prefix}:change_user"):
        new_tier = st.selectbox("Tier", tiers, index=tiers.index(current.tier), key=f"{prefix}:tier")
        new_role = st.selectbox("Role", ROLES, index=ROLES.index(current.role), key=f"{prefix}:role")
        active = st.checkbox("Active (may sign in)", value=current.active, key=f"{prefix}:active")
        reset = st.checkbox("Reset the password", key=f"{prefix}:reset")
        saved = st.form_submit_button("Save changes")
    if saved:
        try:
            ctx.users.update_account(actor, who, current.version, new_tier, new_role, active)
            message = f"Saved {esc(who)}."
            if reset:
                password = random_password()
                ctx.users.reset_password(actor, who, password)
                message += f" New password, shown once: `{password}`."
        except ConflictError as exc:
            editing["conflict"] = str(exc)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            open_account(who)  # the next save starts from what was just stored
            st.success(message)
    if refused := editing.get("conflict"):
        st.error(esc(refused), icon=":material/sync_problem:")
        if st.button("Reload their version", key=f"{prefix}:reload", icon=":material/refresh:"):
            open_account(who)  # knowingly discards the stale edits
            st.rerun()

st.divider()
st.subheader("Installation")
settings = ctx.settings
older_keys = ", ".join(f"`{k}`" for k in ctx.cipher.key_ids[1:])
st.markdown(
    f"- Database: `{ctx.engine.url.render_as_string(hide_password=True)}`\n"
    f"- Encryption key: id `{ctx.cipher.current_key_id}`, from {settings.encryption_key_source}\n"
    + (
        f"- Older keys in the ring: {older_keys} (run `python manage.py keys rotate`, then drop them)\n"
        if older_keys
        else ""
    )
    + f"- Outbound timeouts: connect {settings.http_connect_timeout:g} s, read {settings.http_read_timeout:g} s, "
    f"{settings.http_max_retries} retries"
)
if settings.encryption_key_source not in ("environment", "secrets.toml"):
    st.warning(
        "The encryption key was generated into a file on this machine. Back that file up: without it "
        "no stored credential can be read. For production, set INTEGRATION_ENCRYPTION_KEY instead."
    )
