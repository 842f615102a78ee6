"""Staff accounts (administrators only): add people, set their tier and role, reset passwords.

A new account and a reset get a one-time password, shown here once: the person must replace it at their
first sign-in (core/users.py). The add form submits through a callback, so the table and the picker drawn
after it already hold the new person, and a wrong field keeps what was typed in every field.
"""

import streamlit as st

from core.audit import Actor
from core.errors import ConflictError, ConsoleError, NotFoundError, ValidationError
from core.tiers import Tier
from core.users import ROLES, random_password, role_label
from ui import auth, state
from ui.tables import rows_table
from ui.text import esc

ctx, actor = state.context(), state.actor()
if not actor.is_admin:
    st.error("Only administrators can manage staff accounts.")
    st.stop()

ADD_FIELDS = {"username": "add_username", "name": "add_name", "email": "add_email"}
ADD_ROLE, ADD_TIER, ADD_ERRORS, ADDED = "add_role", "add_tier", "add_errors", "add_done"
CHOICE = "account_choice"
tiers = [t.name for t in Tier]


def add_account(fresh: Actor) -> None:
    password = random_password()
    values = {field: st.session_state.get(key) or "" for field, key in ADD_FIELDS.items()}
    try:
        view = ctx.users.create(
            fresh,
            values["username"],
            values["name"],
            values["email"],
            password,
            st.session_state.get(ADD_ROLE, "member"),
            st.session_state.get(ADD_TIER, tiers[0]),
            one_time=True,
        )
    except ValidationError as exc:
        st.session_state[ADD_ERRORS] = dict(exc.errors)
        return
    except ConsoleError as exc:
        st.session_state[ADD_ERRORS] = {"form": str(exc)}
        return
    st.session_state.pop(ADD_ERRORS, None)
    for key in ADD_FIELDS.values():
        st.session_state[key] = ""
    st.session_state[ADDED] = (view.username, password)
    st.session_state[CHOICE] = view.username  # the picker opens the new account


def one_time_password(who: str, password: str, what: str) -> None:
    st.success(
        f"{what} Their one-time password is below, shown only now: give it to {esc(who)} in person or by "
        "phone. At their first sign-in they must choose their own.",
        icon=":material/how_to_reg:",
    )
    st.code(password, language=None)


st.title("Staff accounts")
users = ctx.users.list()
st.dataframe(
    rows_table(
        [
            {
                "User": u.username,
                "Name": u.name,
                "E-mail": u.email,
                "Role": role_label(u.role),
                "Tier": Tier.parse(u.tier).label,
                "Active": u.active,
                "Password": "One-time" if u.must_change_password else "Own",
            }
            for u in users
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "Password": st.column_config.TextColumn(
            "Password", help="One-time: set by an administrator, to be replaced at the next sign-in."
        )
    },
)

left, right = st.columns(2)
with left:
    st.subheader("Add a staff member")
    if added := st.session_state.pop(ADDED, None):
        one_time_password(added[0], added[1], f"Added {esc(added[0])}.")
    errors = st.session_state.get(ADD_ERRORS, {})
    auth.field_error(errors, "form")
    with st.form("add_user"):
        st.text_input("User name", key=ADD_FIELDS["username"], max_chars=64, autocomplete="off")
        auth.field_error(errors, "username")
        st.text_input("Full name", key=ADD_FIELDS["name"], max_chars=200, autocomplete="off")
        auth.field_error(errors, "name")
        st.text_input("E-mail", key=ADD_FIELDS["email"], max_chars=254, autocomplete="off")
        auth.field_error(errors, "email")
        st.selectbox("Role", ROLES, index=1, key=ADD_ROLE, format_func=role_label)
        auth.field_error(errors, "role")
        st.selectbox("Tier", tiers, key=ADD_TIER, format_func=lambda name: Tier.parse(name).label)
        auth.field_error(errors, "tier")
        st.form_submit_button("Add account", type="primary", on_click=state.guarded(add_account, actor))

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
    who = st.selectbox("User", [u.username for u in users], key=CHOICE)
    if st.session_state.get(EDIT, {}).get("username") != who:
        open_account(who)
    editing = st.session_state[EDIT]
    current, prefix = editing["view"], f"acct{editing['nonce']}"
    with st.form(f"{prefix}:change_user"):
        new_tier = st.selectbox(
            "Tier",
            tiers,
            index=tiers.index(current.tier),
            key=f"{prefix}:tier",
            format_func=lambda name: Tier.parse(name).label,
        )
        new_role = st.selectbox(
            "Role", ROLES, index=ROLES.index(current.role), key=f"{prefix}:role", format_func=role_label
        )
        active = st.checkbox("Active (may sign in)", value=current.active, key=f"{prefix}:active")
        reset = st.checkbox(
            "Give a new one-time password",
            key=f"{prefix}:reset",
            help="Their sessions end, and they must choose their own password when they next sign in.",
        )
        saved = st.form_submit_button("Save changes")
    if saved:
        password = None
        try:
            ctx.users.update_account(actor, who, current.version, new_tier, new_role, active)
            if reset:
                password = random_password()
                ctx.users.reset_password(actor, who, password, one_time=True)
        except ConflictError as exc:
            editing["conflict"] = str(exc)
        except ConsoleError as exc:
            st.error(esc(exc))
        else:
            open_account(who)  # the next save starts from what was just stored
            if password is not None:
                one_time_password(who, password, f"Saved {esc(who)}.")
            else:
                st.success(f"Saved {esc(who)}.")
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
