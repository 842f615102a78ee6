"""core.signin: the sign-in limit is one atomic step taken before bcrypt sees the password."""

from __future__ import annotations

import threading

import bcrypt
import pytest

from core import signin
from core.db import make_engine, make_session_factory
from core.ratelimit import LIMITS, RateLimiter
from core.signin import SignInRefused, verify_sign_in
from core.users import UserService

ALLOWED = LIMITS[signin.SIGN_IN_FAILURE][0]


pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


@pytest.fixture
def checkpw_calls(monkeypatch) -> list[bytes]:
    """Every bcrypt evaluation of a password, from any thread."""
    calls, lock, real = [], threading.Lock(), bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        with lock:
            calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_twenty_parallel_wrong_passwords_evaluate_at_most_the_limit(ctx, database_url, member, checkpw_calls):
    """Each attempt in its own thread with its own engine (its own connections, as another process
    would have), all released at once, through the function the sign-in form calls."""
    barrier, results, lock = threading.Barrier(20), [], threading.Lock()

    def attempt(number: int) -> None:
        engine = make_engine(database_url)
        try:
            factory = make_session_factory(engine)
            barrier.wait()
            result = verify_sign_in(UserService(factory), RateLimiter(factory), "alice", f"wrong-password-{number}")
            with lock:
                results.append(result)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 20 and all(isinstance(r, SignInRefused) for r in results)
    # Exactly the limit: never more (the hole), never fewer (a limiter that refuses everything).
    assert len(checkpw_calls) == ALLOWED, f"bcrypt evaluated {len(checkpw_calls)} passwords"
    assert sum(r.locked for r in results) >= 20 - ALLOWED

    checkpw_calls.clear()
    locked = verify_sign_in(ctx.users, ctx.limiter, "alice", "alice-password-1")
    assert isinstance(locked, SignInRefused) and locked.locked
    assert "Too many failed sign-ins for this user name" in locked.message
    assert checkpw_calls == []  # refused before bcrypt: the right password is not even evaluated


def test_the_right_password_signs_in_and_clears_earlier_failures(ctx, member):
    for number in range(ALLOWED - 1):
        refused = verify_sign_in(ctx.users, ctx.limiter, "alice", f"wrong-{number}")
        assert refused == SignInRefused(signin.NO_MATCH, locked=False)
    assert verify_sign_in(ctx.users, ctx.limiter, " Alice ", "alice-password-1").username == "alice"
    for number in range(ALLOWED - 1):  # the bucket was cleared: a full allowance again
        assert not verify_sign_in(ctx.users, ctx.limiter, "alice", f"wrong-{number}").locked
    last = verify_sign_in(ctx.users, ctx.limiter, "alice", "wrong-again")
    assert last.locked and "Try again in 15 minutes" in last.message  # the failure that locks says so


def test_unknown_names_and_overlong_passwords_are_refused_and_counted(ctx, member):
    assert verify_sign_in(ctx.users, ctx.limiter, "nobody", "whatever-1") == SignInRefused(signin.NO_MATCH, False)
    assert verify_sign_in(ctx.users, ctx.limiter, "alice", "é" * 40).message == signin.NO_MATCH  # 80 bytes
    for _ in range(ALLOWED):
        verify_sign_in(ctx.users, ctx.limiter, "nobody", "whatever-1")
    assert verify_sign_in(ctx.users, ctx.limiter, "nobody", "whatever-1").locked  # same as for a real name
