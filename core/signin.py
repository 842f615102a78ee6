"""Sign-in: the one rule for checking a user name and password, for the web form, the CLI and tests.

An attempt takes a slot in the user name's failed-sign-in bucket (core/ratelimit.py) BEFORE bcrypt
looks at the password, in one atomic step across threads and processes; a right password clears the
bucket, a wrong one leaves its slot counted. So however many attempts run at once, no more than the
limit are ever evaluated in a window, and while the user name is locked even the right password is
refused without being checked. Unknown user names are counted the same way, so the lock tells nothing
about which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.ratelimit import Bucket, RateLimiter
from core.users import UserService, UserView

SIGN_IN_FAILURE = "sign_in_failure"
LOCKED_WHAT = "failed sign-ins for this user name"
NO_MATCH = "That user name and password do not match an active account. Check them and try again."


@dataclass(frozen=True)
class SignInRefused:
    message: str
    locked: bool  # the user name is locked now (this attempt was, or is, the one over the limit)


def verify_sign_in(users: UserService, limiter: RateLimiter, username: str, password: str) -> UserView | SignInRefused:
    """The account when the password is right and the user name is not locked; otherwise why not."""
    username = (username or "").strip().lower()
    bucket = Bucket(SIGN_IN_FAILURE, username)
    if not limiter.take(bucket):
        return SignInRefused(str(limiter.refusal(bucket, LOCKED_WHAT)), locked=True)
    if users.verify_password(username, password or ""):
        limiter.reset(bucket)  # the slot this attempt took, and earlier failures
        return users.get_by_username(username)
    if limiter.retry_after(bucket):  # this failure was the last one allowed
        return SignInRefused(str(limiter.refusal(bucket, LOCKED_WHAT)), locked=True)
    return SignInRefused(NO_MATCH, locked=False)
