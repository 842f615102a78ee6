"""People: staff accounts, one-time passwords at first sign-in, each person's own account, sign-in fields."""

from __future__ import annotations

from sqlalchemy import select

from core.models import AuditEvent
from tests.app.conftest import button, new_app, open_page, read, sign_in, text_input, texts

ADMIN = ("root", "admin-password-1")


def errors(at) -> str:
    return " ".join(read(e.value) for e in at.error)


def add_person(at, username: str, name: str, email: str):
    text_input(at, "User name").input(username)
    text_input(at, "Full name").input(name)
    text_input(at, "E-mail").input(email)
    button(at, "Add account").click()
    at.run()
    assert not at.exception, at.exception
    return at


def shown_one_time_password(at) -> str:
    (code,) = at.code
    return code.value


def test_the_sign_in_form_is_one_password_managers_understand(app_env, member):
    at = new_app()
    at.run()
    username, password = at.text_input
    assert (username.label, username.proto.autocomplete) == ("User name", "username")
    assert (password.label, password.proto.autocomplete, password.proto.type) == ("Password", "current-password", 1)


def test_a_wrong_password_keeps_the_user_name(app_env, member):
    at = sign_in("alice", "not-the-password")
    assert "do not match an active account" in texts(at)
    assert at.text_input[0].value == "alice"


def test_a_new_person_is_in_the_table_and_the_picker_at_once_with_a_one_time_password(app_env, admin):
    at = add_person(open_page(sign_in(*ADMIN), "app_pages/admin.py"), "carol", "Carol New", "carol@example.com")
    assert "Added carol" in " ".join(read(s.value) for s in at.success)
    table = at.dataframe[0].value
    assert "carol" in list(table["User"])
    assert table.set_index("User").loc["carol", "Password"] == "One-time"
    assert table.set_index("User").loc["carol", "Role"] == "Member"  # words, never the stored "member"
    assert table.set_index("User").loc["root", "Role"] == "Administrator"
    assert "Enterprise tier · Administrator" in texts(at)  # the sidebar says who is signed in, in words
    picker = next(s for s in at.selectbox if s.label == "User")
    assert "carol" in picker.options and picker.value == "carol"  # the change form opens the new person
    password = shown_one_time_password(at)
    assert app_env.users.verify_password("carol", password)
    assert app_env.users.get_by_username("carol").must_change_password
    # The form is empty again for the next person, and the password is shown once only.
    assert text_input(at, "User name").value == ""
    at.run()
    assert not at.code


def test_one_wrong_field_keeps_the_others_and_says_which_field(app_env, admin):
    at = add_person(open_page(sign_in(*ADMIN), "app_pages/admin.py"), "carol", "Carol New", "carol-at-example")
    assert "Enter a valid e-mail address" in errors(at)
    assert (text_input(at, "User name").value, text_input(at, "Full name").value) == ("carol", "Carol New")
    assert text_input(at, "E-mail").value == "carol-at-example"
    assert "carol" not in list(at.dataframe[0].value["User"])
    text_input(at, "E-mail").input("carol@example.com")
    button(at, "Add account").click()
    at.run()
    assert not at.error
    assert "carol" in list(at.dataframe[0].value["User"])


def test_a_one_time_password_opens_only_choose_a_new_password(app_env, admin):
    password = shown_one_time_password(
        add_person(open_page(sign_in(*ADMIN), "app_pages/admin.py"), "carol", "Carol New", "carol@example.com")
    )
    at = sign_in("carol", password)
    assert [t.value for t in at.title] == ["Choose a new password"]
    assert not at.metric and not at.sidebar.button
    assert [(t.label, t.proto.autocomplete) for t in at.text_input] == [
        ("User name", "username"),
        ("New password", "new-password"),
        ("New password again", "new-password"),
    ]
    handle = at.session_state["session_handle"]
    # The session opens nothing else: no page, action, dialog or download takes it as signed in.
    assert app_env.sessions.username_for_handle(handle) is None
    assert app_env.sessions.password_change_for_handle(handle) == "carol"
    at.run()
    assert [t.value for t in at.title] == ["Choose a new password"]

    text_input(at, "New password").input(password)  # the one-time password itself
    text_input(at, "New password again").input("something-else-9")
    button(at, "Save my password").click()
    at.run()
    assert "different from the one-time password" in errors(at)
    assert "The two new passwords differ" in errors(at)
    assert text_input(at, "New password again").value == "something-else-9"  # nothing typed was cleared

    text_input(at, "New password").input("carols-own-password")
    text_input(at, "New password again").input("carols-own-password")
    button(at, "Save my password").click()
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Overview"]  # signed in with the new password, at once
    assert "Your new password is set" in " ".join(t.value for t in at.toast)
    assert app_env.users.verify_password("carol", "carols-own-password")
    assert not app_env.users.verify_password("carol", password)
    assert not app_env.users.get_by_username("carol").must_change_password
    assert sign_in("carol", "carols-own-password").metric


def test_a_reset_gives_a_one_time_password_and_ends_the_persons_sessions(app_env, admin, member):
    alices_tab = sign_in("alice", "alice-password-1")
    at = open_page(sign_in(*ADMIN), "app_pages/admin.py")
    next(s for s in at.selectbox if s.label == "User").select("alice")
    at.run()
    next(c for c in at.checkbox if c.label == "Give a new one-time password").check()
    button(at, "Save changes").click()
    at.run()
    password = shown_one_time_password(at)
    alices_tab.run()
    assert not alices_tab.metric  # signed out by the reset
    assert [t.value for t in sign_in("alice", password).title] == ["Choose a new password"]


def test_everyone_edits_their_own_name_and_email(app_env, member):
    at = open_page(sign_in("alice", "alice-password-1"), "app_pages/account.py")
    name = next(t for t in at.text_input if t.label == "Full name")
    assert (name.value, name.proto.autocomplete) == ("Alice Member", "name")
    name.input("Alice Liddell")
    text_input(at, "E-mail").input("not an address")
    button(at, "Save name and e-mail").click()
    at.run()
    assert "Enter a valid e-mail address" in errors(at)
    assert text_input(at, "Full name").value == "Alice Liddell"  # kept while the e-mail is fixed
    assert app_env.users.get_by_username("alice").name == "Alice Member"  # nothing saved
    text_input(at, "E-mail").input("alice@wonderland.example")
    button(at, "Save name and e-mail").click()
    at.run()
    assert not at.exception, at.exception
    assert "Saved your name and e-mail." in [s.value for s in at.success]
    assert "Alice Liddell" in at.sidebar.markdown[0].value and "wonderland" in read(at.sidebar.markdown[0].value)
    stored = app_env.users.get_by_username("alice")
    assert (stored.name, stored.email) == ("Alice Liddell", "alice@wonderland.example")
    with app_env.factory() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.update_profile")).one()
    assert event.details["name"] == "Alice Liddell"


def test_an_edit_made_meanwhile_is_not_overwritten(app_env, admin, member):
    at = open_page(sign_in("alice", "alice-password-1"), "app_pages/account.py")
    app_env.users.update_own_profile(member, 1, "Alice Elsewhere", "alice@example.com")  # another tab
    text_input(at, "Full name").input("Alice Here")
    button(at, "Save name and e-mail").click()
    at.run()
    assert "changed" in errors(at)
    assert app_env.users.get_by_username("alice").name == "Alice Elsewhere"
    button(at, "Load the stored version").click()
    at.run()
    assert text_input(at, "Full name").value == "Alice Elsewhere"


def test_the_account_page_is_there_for_every_role(app_env, admin, member):
    for person in (("alice", "alice-password-1"), ADMIN):
        at = open_page(sign_in(*person), "app_pages/account.py")
        assert [t.value for t in at.title] == ["Your account"]
        assert [t.value for t in at.subheader] == ["Name and e-mail", "Password"]
