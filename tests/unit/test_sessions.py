"""Sign-in sessions: kept in the database, keyed hashes only, ended by sign-out, expiry or deactivation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from core.models import SignInSession, utcnow
from core.sessions import SessionService
from tests.conftest import TEST_COOKIE_KEY


def test_a_started_session_names_its_user_and_stores_no_token(ctx, member):
    token = ctx.sessions.start(member.id, days=1)
    assert ctx.sessions.username_for(token) == "alice"
    with ctx.factory() as session:
        stored = session.scalars(select(SignInSession.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0]


def test_unknown_malformed_and_missing_tokens_name_nobody(ctx, member):
    ctx.sessions.start(member.id, days=1)
    for token in (None, "", "not-a-session", "x" * 5000, 42):
        assert ctx.sessions.username_for(token) is None


def test_sign_out_revokes_only_that_session(ctx, member):
    laptop, phone = ctx.sessions.start(member.id, 1), ctx.sessions.start(member.id, 1)
    ctx.sessions.revoke(laptop)
    assert ctx.sessions.username_for(laptop) is None
    assert ctx.sessions.username_for(phone) == "alice"


def test_an_expired_session_names_nobody(ctx, member):
    token = ctx.sessions.start(member.id, 1)
    with ctx.factory.begin() as session:
        session.execute(update(SignInSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert ctx.sessions.username_for(token) is None


def test_deactivation_and_password_reset_end_every_session(ctx, member, admin):
    token = ctx.sessions.start(member.id, 1)
    ctx.users.set_active(admin, "alice", False)
    assert ctx.sessions.username_for(token) is None
    ctx.users.set_active(admin, "alice", True)
    assert ctx.sessions.username_for(token) is None  # revoked, not merely paused

    fresh = ctx.sessions.start(member.id, 1)
    ctx.users.reset_password(admin, "alice", "a-brand-new-password")
    assert ctx.sessions.username_for(fresh) is None


def test_a_new_cookie_key_ends_every_session(ctx, member):
    token = ctx.sessions.start(member.id, 1)
    assert SessionService(ctx.factory, TEST_COOKIE_KEY).username_for(token) == "alice"
    assert SessionService(ctx.factory, TEST_COOKIE_KEY + "-rotated").username_for(token) is None
