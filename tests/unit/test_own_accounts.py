"""The rules of one's own account: one-time passwords, choosing one's own, self-edit, session rotation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.errors import ConflictError, PermissionDeniedError, ValidationError
from core.models import AuditEvent
from core.signin import verify_sign_in
from core.users import UserView

pytestmark = pytest.mark.usefixtures("fast_bcrypt")
ONE_TIME = "one-time-pass-42"


@pytest.fixture
def carol(ctx, admin):
    """Carol, added by an administrator with a one-time password."""
    return ctx.users.create(admin, "carol", "Carol New", "carol@example.com", ONE_TIME, one_time=True)


def events(ctx, action: str) -> list[AuditEvent]:
    with ctx.factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_one_time_password_signs_in_to_a_session_that_opens_nothing_else(ctx, carol):
    view = verify_sign_in(ctx.users, ctx.limiter, "carol", ONE_TIME)
    assert isinstance(view, UserView) and view.must_change_password
    with pytest.raises(PermissionDeniedError, match="one-time password"):
        carol.actor()  # no service call can be made as her
    handle, _ = ctx.sessions.start_with_ticket(carol.id, 1)
    token = ctx.sessions.start(carol.id, 1)
    assert ctx.sessions.username_for_handle(handle) is None
    assert ctx.sessions.username_for(token) is None
    assert ctx.sessions.handle_for(token) is None
    assert ctx.sessions.password_change_for_handle(handle) == "carol"
    assert ctx.sessions.handle_for(token, restricted=True) is not None


def test_choosing_the_first_password_needs_a_live_session_and_a_new_password(ctx, carol, member):
    with pytest.raises(PermissionDeniedError, match="signed out"):
        ctx.users.choose_first_password("no-such-handle", "carols-own-password", "carols-own-password")
    handle, _ = ctx.sessions.start_with_ticket(carol.id, 1)
    with pytest.raises(ValidationError) as refused:
        ctx.users.choose_first_password(handle, ONE_TIME, "something-else")
    assert set(refused.value.errors) == {"password", "again"}  # every wrong field at once
    with pytest.raises(ValidationError) as refused:
        ctx.users.choose_first_password(handle, "short", "short")
    assert "at least 10 characters" in refused.value.errors["password"]
    assert ctx.users.verify_password("carol", ONE_TIME)  # nothing changed yet

    phone = ctx.sessions.start(carol.id, 1)
    chosen = ctx.users.choose_first_password(handle, "carols-own-password", "carols-own-password")
    assert not chosen.must_change_password and chosen.actor().username == "carol"
    assert ctx.users.verify_password("carol", "carols-own-password")
    assert not ctx.users.verify_password("carol", ONE_TIME)
    assert ctx.sessions.username_for_handle(handle) == "carol"  # this tab stays (and is rotated next)
    assert ctx.sessions.username_for(phone) is None  # any other sign-in ended
    assert [e.actor for e in events(ctx, "user.choose_password")] == ["carol"]
    assert set(events(ctx, "user.choose_password")[0].details) == {"username", "must_change_password"}  # no hash

    # Only a one-time password may be replaced this way; a person's own needs the current one.
    with pytest.raises(PermissionDeniedError, match="already your own"):
        ctx.users.choose_first_password(handle, "another-password-3", "another-password-3")
    alice_handle, _ = ctx.sessions.start_with_ticket(member.id, 1)
    with pytest.raises(PermissionDeniedError):
        ctx.users.choose_first_password(alice_handle, "taken-over-pass-1", "taken-over-pass-1")
    assert ctx.users.verify_password("alice", "alice-password-1")


def test_an_administrators_reset_can_be_one_time_and_ends_every_session(ctx, admin, member):
    token = ctx.sessions.start(member.id, 1)
    ctx.users.reset_password(admin, "alice", "reset-by-admin-1", one_time=True)
    assert ctx.users.get_by_username("alice").must_change_password
    assert ctx.sessions.username_for(token) is None
    ctx.users.reset_password(admin, "alice", "reset-by-admin-2")  # the CLI's kind: the person's own now
    assert not ctx.users.get_by_username("alice").must_change_password


def test_changing_ones_own_password_reports_every_wrong_field_and_keeps_this_session(ctx, member):
    with pytest.raises(ValidationError) as refused:
        ctx.users.change_own_password(member, "wrong-current", "short", "different")
    assert set(refused.value.errors) == {"current", "password", "again"}
    here, _ = ctx.sessions.start_with_ticket(member.id, 1)
    elsewhere = ctx.sessions.start(member.id, 1)
    ctx.users.change_own_password(member, "alice-password-1", "alice-new-pass-2", "alice-new-pass-2", keep_handle=here)
    assert ctx.sessions.username_for_handle(here) == "alice"
    assert ctx.sessions.username_for(elsewhere) is None
    assert [e.actor for e in events(ctx, "user.change_password")] == ["alice"]


def test_rotating_a_session_replaces_it_and_ends_the_others_in_one_step(ctx, member, other_member):
    here, _ = ctx.sessions.start_with_ticket(member.id, 1)
    elsewhere = ctx.sessions.start(member.id, 1)
    bobs = ctx.sessions.start(other_member.id, 1)
    rotated = ctx.sessions.rotate(here, 1)
    assert rotated is not None
    new_handle, ticket = rotated
    assert new_handle != here
    assert ctx.sessions.username_for_handle(here) is None
    assert ctx.sessions.username_for(elsewhere) is None
    assert ctx.sessions.username_for_handle(new_handle) == "alice"
    assert ctx.sessions.ticket_pending(new_handle)  # the browser's cookie comes from this ticket
    redeemed = ctx.sessions.redeem(ticket)
    assert redeemed is not None and ctx.sessions.username_for(redeemed[0]) == "alice"
    assert ctx.sessions.username_for(bobs) == "bob"  # someone else's sessions are not touched
    # A session that has ended cannot be rotated back to life.
    assert ctx.sessions.rotate(here, 1) is None
    assert ctx.sessions.rotate(None, 1) is None
    assert ctx.sessions.username_for_handle(new_handle) == "alice"


def test_a_person_edits_their_own_name_and_email_by_the_rules(ctx, member, admin):
    with pytest.raises(ValidationError) as refused:
        ctx.users.update_own_profile(member, 1, "  ", "no-at-sign")
    assert set(refused.value.errors) == {"name", "email"}
    with pytest.raises(ValidationError):
        ctx.users.update_own_profile(member, 1, "x" * 201, "alice@example.com")
    saved = ctx.users.update_own_profile(member, 1, " Alice Liddell ", "alice@wonderland.example")
    assert (saved.name, saved.email, saved.role, saved.tier) == (
        "Alice Liddell",
        "alice@wonderland.example",
        "member",
        "FREE",
    )
    with pytest.raises(ConflictError):  # a form opened at version 1 is stale now
        ctx.users.update_own_profile(member, 1, "Alice Old Tab", "alice@example.com")
    [event] = events(ctx, "user.update_profile")
    assert (event.actor, event.details["name"]) == ("alice", "Alice Liddell")
    ctx.users.set_active(admin, "alice", False)
    with pytest.raises(PermissionDeniedError, match="deactivated"):
        ctx.users.update_own_profile(member, saved.version + 1, "Alice", "alice@example.com")
