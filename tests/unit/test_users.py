"""core.users: bcrypt hashes, the first admin, sign-in checks, validation and who may change accounts."""

from __future__ import annotations

import json

import bcrypt
import pytest
from sqlalchemy import select, text

from core import users
from core.audit import Actor
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.models import AuditEvent

PASSWORD = "correct-horse-42"


pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


def stored_hash(ctx, username: str) -> str | None:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT password_hash FROM users WHERE username = :u"), {"u": username}).scalar()


def user_count(ctx) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM users")).scalar_one()


def create(ctx, actor=None, **changes):
    values = dict(
        username="carol", name="Carol Staff", email="carol@example.com", password=PASSWORD, role="member", tier="FREE"
    )
    values.update(changes)
    return ctx.users.create(actor, **values)


# ----- hashing ---------------------------------------------------------------------------------


def test_passwords_are_stored_as_bcrypt_hashes_never_as_plaintext(ctx):
    create(ctx)
    stored = stored_hash(ctx, "carol")
    assert stored.startswith("$2b$")
    assert PASSWORD not in stored
    assert bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    assert not bcrypt.checkpw(b"something-else", stored.encode())


def test_same_password_hashes_differently_each_time():
    assert users.hash_password(PASSWORD) != users.hash_password(PASSWORD)


def test_the_real_hash_cost_is_at_least_twelve(monkeypatch):
    monkeypatch.undo()  # the real gensalt, just for this check
    cost = int(users.hash_password(PASSWORD).split("$")[2])
    assert cost >= 12


# ----- first admin -----------------------------------------------------------------------------


def test_ensure_first_admin_creates_one_admin_once(ctx):
    assert user_count(ctx) == 0
    password = ctx.users.ensure_first_admin()
    assert password and len(password) >= users.MIN_PASSWORD_LENGTH
    admin = ctx.users.get_by_username("admin")
    assert admin.role == "admin"
    assert admin.active
    assert admin.must_change_password  # it stays in a console log: it opens only "Choose a new password"
    assert ctx.users.verify_password("admin", password)
    assert password not in stored_hash(ctx, "admin")

    assert ctx.users.ensure_first_admin() is None
    assert user_count(ctx) == 1
    assert ctx.users.verify_password("admin", password)  # not reset by the second call


def test_first_admin_passwords_are_random():
    assert len({users.random_password() for _ in range(20)}) == 20


def test_ensure_first_admin_does_nothing_when_anyone_exists(ctx):
    create(ctx)
    assert ctx.users.ensure_first_admin() is None
    assert user_count(ctx) == 1
    with pytest.raises(NotFoundError):
        ctx.users.get_by_username("admin")


# ----- verify_password -------------------------------------------------------------------------


def test_verify_password(ctx):
    create(ctx)
    assert ctx.users.verify_password("carol", PASSWORD)
    assert ctx.users.verify_password("  Carol ", PASSWORD)  # user names are case-insensitive
    assert not ctx.users.verify_password("carol", PASSWORD + "x")
    assert not ctx.users.verify_password("carol", PASSWORD.upper())
    assert not ctx.users.verify_password("carol", "")
    assert not ctx.users.verify_password("nobody", PASSWORD)


def test_a_deactivated_user_cannot_sign_in(ctx, admin):
    create(ctx)
    ctx.users.set_active(admin, "carol", False)
    assert not ctx.users.verify_password("carol", PASSWORD)
    ctx.users.set_active(admin, "carol", True)
    assert ctx.users.verify_password("carol", PASSWORD)


def test_reset_password_replaces_the_hash(ctx, admin):
    create(ctx)
    before = stored_hash(ctx, "carol")
    ctx.users.reset_password(admin, "carol", "a-brand-new-pass")
    assert stored_hash(ctx, "carol") != before
    assert ctx.users.verify_password("carol", "a-brand-new-pass")
    assert not ctx.users.verify_password("carol", PASSWORD)


def test_reset_password_checks_the_policy_and_keeps_the_old_hash(ctx, admin):
    create(ctx)
    before = stored_hash(ctx, "carol")
    with pytest.raises(ValidationError) as raised:
        ctx.users.reset_password(admin, "carol", "short")
    assert "at least 10 characters" in raised.value.errors["password"]
    assert stored_hash(ctx, "carol") == before


# ----- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "phrase"),
    [
        ({"username": "a"}, "username", "lower-case letters"),
        ({"username": "has space"}, "username", "lower-case letters"),
        ({"username": "-dash-first"}, "username", "lower-case letters"),
        ({"username": "x" * 65}, "username", "lower-case letters"),
        ({"name": "   "}, "name", "name"),
        ({"email": "not-an-email"}, "email", "e-mail"),
        ({"email": "a@b"}, "email", "e-mail"),
        ({"role": "owner"}, "role", "admin, member"),
        ({"password": "short"}, "password", "at least 10 characters"),
        ({"password": "é" * 40}, "password", "at most 72 bytes"),
        ({"tier": "PLATINUM"}, "tier", "PLATINUM"),
    ],
)
def test_validation_messages(ctx, changes, field, phrase):
    with pytest.raises(ValidationError) as raised:
        create(ctx, **changes)
    assert set(raised.value.errors) == {field}
    assert phrase in raised.value.errors[field]
    assert user_count(ctx) == 0


def test_every_problem_is_reported_together(ctx):
    with pytest.raises(ValidationError) as raised:
        create(ctx, username="!", name="", email="x", role="boss", password="zqxw")
    assert set(raised.value.errors) == {"username", "name", "email", "role", "password"}
    assert "zqxw" not in str(raised.value)  # the password is not echoed


def test_usernames_are_normalised_and_unique(ctx):
    view = create(ctx, username="  Carol ")
    assert view.username == "carol"
    with pytest.raises(ValidationError) as raised:
        create(ctx, username="CAROL", email="other@example.com")
    assert "taken" in raised.value.errors["username"]
    assert user_count(ctx) == 1


def test_tier_is_stored_by_name(ctx):
    assert create(ctx, tier="pro plus").tier == "PRO_PLUS"


# ----- who may change accounts -----------------------------------------------------------------


def test_a_member_cannot_create_users(ctx, member):
    before = user_count(ctx)
    with pytest.raises(PermissionDeniedError):
        create(ctx, actor=member, role="admin", tier="ENTERPRISE")
    assert user_count(ctx) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda s, a: s.set_tier(a, "bob", "ENTERPRISE"),
        lambda s, a: s.set_role(a, "bob", "admin"),
        lambda s, a: s.set_active(a, "bob", False),
        lambda s, a: s.reset_password(a, "bob", "taken-over-pass"),
    ],
)
def test_a_member_cannot_change_accounts(ctx, member, other_member, change):
    before = ctx.users.get_by_username("bob")
    hash_before = stored_hash(ctx, "bob")
    with pytest.raises(PermissionDeniedError):
        change(ctx.users, member)
    assert ctx.users.get_by_username("bob") == before
    assert stored_hash(ctx, "bob") == hash_before


def test_an_admin_can_create_and_change_accounts(ctx, admin):
    view = create(ctx, actor=admin)
    assert view.role == "member"
    assert ctx.users.set_tier(admin, "carol", "team").tier == "TEAM"
    assert ctx.users.set_role(admin, "carol", "admin").role == "admin"
    with pytest.raises(ValidationError):
        ctx.users.set_role(admin, "carol", "superuser")
    with pytest.raises(NotFoundError):
        ctx.users.set_tier(admin, "nobody", "TEAM")
    assert ctx.users.get_by_username("carol").actor() == Actor(view.id, "carol", "admin", "TEAM")


def test_user_audit_events_never_hold_a_password_or_hash(ctx, admin):
    create(ctx, actor=admin)
    ctx.users.reset_password(admin, "carol", "a-brand-new-pass")
    with ctx.factory() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action.like("user.%"))))
    assert {e.action for e in events} >= {"user.create", "user.reset_password"}
    dumped = json.dumps([e.details for e in events])
    assert PASSWORD not in dumped
    assert "a-brand-new-pass" not in dumped
    assert "$2b$" not in dumped
    assert "password_hash" not in dumped
    carol = next(e for e in events if e.action == "user.create" and e.details.get("username") == "carol")
    assert carol.actor == "root"


def test_list_is_sorted_and_has_no_hashes(ctx, admin, member, other_member):
    listed = ctx.users.list()
    assert [u.username for u in listed] == ["alice", "bob", "root"]
    assert all(not hasattr(u, "password_hash") for u in listed)


def test_first_admin_created_by_another_process_meanwhile_is_not_an_error(ctx, monkeypatch):
    """Two processes start on an empty database: the one that loses the insert race returns None."""
    counts = iter([0, 1])  # empty when this process looked, filled by the other before its insert
    ctx.users.create(None, "admin", "Other Process", "other@example.com", "other-password-1", "admin")
    monkeypatch.setattr(ctx.users, "count", lambda: next(counts))
    assert ctx.users.ensure_first_admin() is None


# ----- the last administrator stays one --------------------------------------------------------


def active_admins(ctx) -> list[str]:
    return sorted(u.username for u in ctx.users.list() if u.role == "admin" and u.active)


@pytest.mark.parametrize(
    "step_down",
    [
        pytest.param(lambda ctx, actor: ctx.users.set_role(actor, "root", "member"), id="demote"),
        pytest.param(lambda ctx, actor: ctx.users.set_active(actor, "root", False), id="deactivate"),
        pytest.param(lambda ctx, actor: ctx.users.set_role(None, "root", "member"), id="demote-from-cli"),
        pytest.param(lambda ctx, actor: ctx.users.set_active(None, "root", False), id="deactivate-from-cli"),
    ],
)
def test_the_last_active_admin_cannot_step_down_not_even_themselves(ctx, admin, member, step_down):
    with pytest.raises(PermissionDeniedError, match="root is the last active administrator"):
        step_down(ctx, admin)
    assert active_admins(ctx) == ["root"]
    assert ctx.users.verify_password("root", "admin-password-1")  # still active, sessions untouched
    with ctx.factory() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).all()
    assert event.details == {"username": "root", "reason": "last admin"}


def test_an_admin_can_step_down_while_another_active_admin_remains(ctx, admin):
    create(ctx, admin, username="dana", role="admin")
    create(ctx, admin, username="erin", role="admin")
    ctx.users.set_active(admin, "erin", False)  # an inactive administrator does not count
    assert ctx.users.set_role(admin, "root", "member").role == "member"
    assert active_admins(ctx) == ["dana"]
    with pytest.raises(PermissionDeniedError, match="dana is the last active administrator"):
        ctx.users.set_active(None, "dana", False)
    ctx.users.set_role(None, "dana", "admin")  # no change of administration: allowed
    assert ctx.users.set_tier(None, "dana", "TEAM").tier == "TEAM"  # other changes are never refused


def test_two_admins_demoting_each_other_at_once_leave_one(ctx, admin):
    """Each in its own thread and database session, released together, several rounds."""
    import threading

    create(ctx, admin, username="dana", role="admin")
    for round_ in range(5):
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def demote(username: str, change: str, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                if change == "role":
                    ctx.users.set_role(None, username, "member")
                else:
                    ctx.users.set_active(None, username, False)
                outcomes[username] = "done"
            except PermissionDeniedError:
                outcomes[username] = "refused"

        changes = ("role", "active") if round_ % 2 else ("role", "role")
        threads = [
            threading.Thread(target=demote, args=(name, change))
            for name, change in zip(("root", "dana"), changes, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes.values()) == ["done", "refused"], outcomes
        assert len(active_admins(ctx)) == 1
        for name in ("root", "dana"):  # both administrators again for the next round
            ctx.users.set_active(None, name, True)
            ctx.users.set_role(None, name, "admin")
