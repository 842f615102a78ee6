"""Staff accounts: bcrypt hashes in the database, roles and tiers."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import bcrypt
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core import audit, sessions
from core.audit import Actor
from core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError, conflict
from core.models import User, utcnow
from core.tiers import Tier

ROLES = ("admin", "member")
ROLE_LABELS = {"admin": "Administrator", "member": "Member"}  # how a role reads on a page


def role_label(role: str) -> str:
    """The one way a role is shown to a person; a stored value this version does not know is shown as stored."""
    return ROLE_LABELS.get(role, role)


MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MUST_CHOOSE = "Your password is a one-time password. Choose a new password before doing anything else."
LAST_ADMIN = (
    "{username} is the last active administrator, so the account cannot stop being one. "
    "Make another account an administrator first."
)


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    name: str
    email: str
    role: str
    tier: str
    active: bool
    version: int = 1  # send it back with an edit: a save from an older version is refused
    must_change_password: bool = False  # signed in with a one-time password: may only choose a new one

    def actor(self) -> Actor:
        """Who acts in the services. Nobody acts with a one-time password: it must be replaced first."""
        if self.must_change_password:
            raise PermissionDeniedError(MUST_CHOOSE)
        return Actor(self.id, self.username, self.role, self.tier)


def _view(user: User) -> UserView:
    return UserView(
        user.id,
        user.username,
        user.name,
        user.email,
        user.role,
        user.tier,
        user.active,
        user.version,
        bool(user.must_change_password),
    )


def _conflict(factory: sessionmaker, user_id: int | None) -> ConflictError:
    with factory() as session:
        found = session.execute(select(User.updated_by, User.updated_at).where(User.id == user_id)).first()
    return conflict("this account", *(found or (None, None)))


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def password_problems(password: str) -> list[str]:
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8")) > 72:
        problems.append("at most 72 bytes (bcrypt ignores the rest)")
    return problems


def random_password() -> str:
    return secrets.token_urlsafe(12)


def _password_error(password: str) -> str | None:
    problems = password_problems(password)
    return "The password needs " + " and ".join(problems) + "." if problems else None


def profile_errors(name: str, email: str) -> dict[str, str]:
    """What is wrong with a name and e-mail, by field ("name", "email"); empty when both are usable."""
    errors = {}
    if not name.strip():
        errors["name"] = "Enter the person's name."
    elif len(name.strip()) > 200:
        errors["name"] = "Keep the name to 200 characters."
    if len(email.strip()) > 254 or not _EMAIL.match(email.strip()):
        errors["email"] = "Enter a valid e-mail address, like ana@example.com."
    return errors


def _new_password_errors(new: str, again: str | None) -> dict[str, str]:
    errors = {}
    if problem := _password_error(new):
        errors["password"] = problem
    if again is not None and again != new:
        errors["again"] = "The two new passwords differ: type the same password in both fields."
    return errors


def first_admin_notice(password: str) -> str:
    """The one line that hands the first administrator's password to whoever started the console."""
    return (
        f"Created the first administrator: user name admin, password {password} "
        "(one-time: you choose your own at the first sign-in)"
    )


class UserService:
    def __init__(self, factory: sessionmaker):
        self._factory = factory

    def count(self) -> int:
        with self._factory() as session:
            return session.scalar(select(func.count(User.id))) or 0

    def ensure_first_admin(self) -> str | None:
        """On an empty database create `admin` with a random one-time password, returned to print once
        (first_admin_notice): it stays in a console log, so it opens only "Choose a new password"."""
        if self.count():
            return None
        password = random_password()
        try:
            self.create(
                None, "admin", "Administrator", "admin@example.com", password, "admin", "ENTERPRISE", one_time=True
            )
        except ValidationError:
            if self.count():  # another process created it between the count and the insert
                return None
            raise
        return password

    def create(
        self,
        actor: Actor | None,
        username: str,
        name: str,
        email: str,
        password: str,
        role: str = "member",
        tier: str = "FREE",
        *,
        one_time: bool = False,
    ) -> UserView:
        """A new account. one_time: the password is one an administrator chose for the person, who must
        replace it at their first sign-in before anything else."""
        if actor is not None and not actor.is_admin:
            raise PermissionDeniedError("Only an administrator can add staff accounts.")
        username = username.strip().lower()
        errors = {}
        if not _USERNAME.match(username):
            errors["username"] = "Use 2-64 lower-case letters, digits, dots, dashes or underscores."
        errors.update(profile_errors(name, email))
        if role not in ROLES:
            errors["role"] = f"Choose one of: {', '.join(ROLES)}."
        if problem := _password_error(password):
            errors["password"] = problem
        try:
            tier = Tier.parse(tier).name
        except ValueError as exc:
            errors["tier"] = str(exc)
        if errors:
            raise ValidationError(errors)
        user = User(
            username=username,
            name=name.strip(),
            email=email.strip(),
            password_hash=hash_password(password),
            role=role,
            tier=tier,
            active=True,
            must_change_password=one_time,
        )
        try:
            with self._factory.begin() as session:
                session.add(user)
                session.flush()
                audit.record(session, actor, "user.create", "success", details={"username": username, "role": role})
        except IntegrityError as exc:
            raise ValidationError({"username": f"The user name {username!r} is taken."}) from exc
        return _view(user)

    def list(self) -> list[UserView]:
        with self._factory() as session:
            return [_view(u) for u in session.scalars(select(User).order_by(User.username))]

    def get_by_username(self, username: str) -> UserView:
        with self._factory() as session:
            user = session.scalar(select(User).where(User.username == username.strip().lower()))
            if user is None:
                raise NotFoundError(f"There is no user called {username!r}.")
            return _view(user)

    def verify_password(self, username: str, password: str) -> bool:
        with self._factory() as session:
            user = session.scalar(select(User).where(User.username == username.strip().lower()))
            if user is None or not user.active:
                return False
            return _matches(password, user.password_hash)

    def _change(
        self,
        actor: Actor | None,
        username: str,
        action: str,
        expected_version: int | None = None,
        by: str | None = None,
        *,
        own: bool = False,
        keep_handle: str | None = None,
        **values,
    ) -> UserView:
        """Change an account in one transaction. With expected_version, an account changed since that
        version is refused (ConflictError naming who changed it and when); the UPDATE itself carries
        "AND version = <expected>", so of two concurrent saves from one version only one passes.

        own: the actor changes their own account (any role may). A new password or a deactivation ends
        the person's sessions, all but keep_handle (the tab that changed its own password)."""
        if own:
            if actor is None or actor.username != username:
                raise PermissionDeniedError("A person can only change their own account this way.")
        elif actor is not None and not actor.is_admin:
            raise PermissionDeniedError("Only an administrator can change staff accounts.")
        user_id = None
        try:
            with self._factory.begin() as session:
                user = session.scalar(select(User).where(User.username == username.strip().lower()))
                if user is None:
                    raise NotFoundError(f"There is no user called {username!r}.")
                user_id = user.id
                if expected_version is not None and user.version != expected_version:
                    raise _conflict(self._factory, user.id)
                changed = {k: v for k, v in values.items() if getattr(user, k) != v or k == "password_hash"}
                if own and not user.active:
                    raise PermissionDeniedError("This account is deactivated. Ask an administrator.")
                if not changed:
                    return _view(user)
                stamp = {"updated_at": utcnow(), "updated_by": by or (actor.username if actor else None)}
                if _steps_down(user, changed):
                    _step_down(session, user, {**changed, **stamp})  # the last active administrator stays one
                else:
                    for key, value in {**changed, **stamp}.items():
                        setattr(user, key, value)
                if "password_hash" in changed or changed.get("active") is False:
                    # A new password or a deactivation signs them out (but for the tab that chose the password).
                    sessions.revoke_all(session, user.id, keep_handle=keep_handle if own else None)
                shown = {k: v for k, v in changed.items() if k != "password_hash"}
                audit.record(session, actor, action, "success", details={"username": user.username, **shown})
                session.flush()
                return _view(user)
        except StaleDataError as exc:
            raise _conflict(self._factory, user_id) from exc
        except _LastAdmin as refused:  # rolled back: nothing was changed
            audit.record_now(
                self._factory, actor, action, "denied", details={"username": refused.username, "reason": "last admin"}
            )
            raise PermissionDeniedError(LAST_ADMIN.format(username=refused.username)) from None

    def update_account(
        self, actor: Actor, username: str, expected_version: int, tier: str, role: str, active: bool
    ) -> UserView:
        """Tier, role and whether they may sign in, in one save from the version the editor opened."""
        errors = {}
        try:
            tier = Tier.parse(tier).name
        except ValueError as exc:
            errors["tier"] = str(exc)
        if role not in ROLES:
            errors["role"] = f"Choose one of: {', '.join(ROLES)}."
        if errors:
            raise ValidationError(errors)
        return self._change(actor, username, "user.update", expected_version, tier=tier, role=role, active=bool(active))

    def set_tier(self, actor: Actor | None, username: str, tier: str) -> UserView:
        try:
            tier = Tier.parse(tier).name
        except ValueError as exc:
            raise ValidationError({"tier": str(exc)}) from exc
        return self._change(actor, username, "user.set_tier", tier=tier)

    def set_role(self, actor: Actor | None, username: str, role: str) -> UserView:
        if role not in ROLES:
            raise ValidationError({"role": f"Choose one of: {', '.join(ROLES)}."})
        return self._change(actor, username, "user.set_role", role=role)

    def set_active(self, actor: Actor | None, username: str, active: bool) -> UserView:
        return self._change(actor, username, "user.set_active", active=active)

    def update_own_profile(self, actor: Actor, expected_version: int, name: str, email: str) -> UserView:
        """A person (any role) changes their own name and e-mail, from the version their form opened."""
        if errors := profile_errors(name, email):
            raise ValidationError(errors)
        return self._change(
            actor,
            actor.username,
            "user.update_profile",
            expected_version,
            own=True,
            name=name.strip(),
            email=email.strip(),
        )

    def change_own_password(
        self, actor: Actor, current: str, new: str, again: str | None = None, *, keep_handle: str | None = None
    ) -> UserView:
        """A person changes their own password. Every other session of theirs ends; keep_handle names this
        tab's session, which stays live (rotate it next: SessionService.rotate). Every wrong field is
        reported at once, by field: "current", "password", "again"."""
        errors = {}
        if not self.verify_password(actor.username, current):
            errors["current"] = "Your current password is not right. Type the password you signed in with."
        elif new == current:
            errors["password"] = "Choose a password different from the current one."
        errors = {**_new_password_errors(new, again), **errors}
        if errors:
            raise ValidationError(errors)
        return self._change(
            actor,
            actor.username,
            "user.change_password",
            by=actor.username,
            own=True,
            keep_handle=keep_handle,
            password_hash=hash_password(new),
            must_change_password=False,
        )

    def choose_first_password(self, handle: str, new: str, again: str | None = None) -> UserView:
        """The person signed in with a one-time password (the session ``handle``) chooses their own.

        Allowed only for a live session of a person whose password is one-time; the new one must differ
        from it. Every other session of theirs ends; this one stays live (rotate it next)."""
        with self._factory() as session:
            user_id = sessions.live_user_id(session, handle) if handle else None
            user = session.get(User, user_id) if user_id is not None else None
            if user is None:
                raise PermissionDeniedError("You are signed out. Sign in again with the one-time password.")
            if not user.must_change_password:
                raise PermissionDeniedError("Your password is already your own. Change it on Your account.")
            actor = Actor(user.id, user.username, user.role, user.tier)  # for the own-account rule and the audit
            username, password_hash = user.username, user.password_hash
        errors = _new_password_errors(new, again)
        if "password" not in errors and _matches(new, password_hash):
            errors["password"] = "Choose a password of your own, different from the one-time password."
        if errors:
            raise ValidationError(errors)
        return self._change(
            actor,
            username,
            "user.choose_password",
            by=username,
            own=True,
            keep_handle=handle,
            password_hash=hash_password(new),
            must_change_password=False,
        )

    def reset_password(self, actor: Actor | None, username: str, password: str, *, one_time: bool = False) -> UserView:
        """A new password for someone; one_time: they must replace it at their next sign-in. Their sessions end."""
        if problem := _password_error(password):
            raise ValidationError({"password": problem})
        return self._change(
            actor,
            username,
            "user.reset_password",
            password_hash=hash_password(password),
            must_change_password=one_time,
        )


def _matches(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:  # bcrypt 5 refuses passwords over 72 bytes; no stored one is that long
        return False


def _is_active_admin():
    return and_(User.role == "admin", User.active.is_(True))


def _steps_down(user: User, values: dict) -> bool:
    """Whether the change takes an active administrator's administration away (role or deactivation)."""
    after_role, after_active = values.get("role", user.role), values.get("active", user.active)
    return user.role == "admin" and user.active and not (after_role == "admin" and after_active)


class _LastAdmin(Exception):
    def __init__(self, username: str):
        self.username = username


def _step_down(session, user: User, values: dict) -> None:
    """Apply values to an active administrator unless no other active administrator would remain.

    Raises _LastAdmin (nothing written) when the account is the last active administrator. Atomic against
    any number of concurrent step-downs, in any process, on both databases:

    1. PostgreSQL: lock every active administrator's row and this one, in id order (so two step-downs
       cannot deadlock), with SELECT ... FOR UPDATE. A concurrent step-down waits here until this
       transaction ends; under READ COMMITTED it then re-reads the rows and sees this demotion. SQLite
       ignores FOR UPDATE (SQLAlchemy renders none) and the driver runs this read outside a transaction.
    2. Both: one conditional UPDATE whose WHERE counts the other active administrators. On PostgreSQL
       the statement takes a fresh snapshot after the locks of step 1, so the count is current and no
       one can change it before commit. On SQLite a writing statement takes the database's single
       write lock before it reads anything (the driver starts the transaction with this statement),
       so the count and the write are one step that no other connection or process can interleave.
    A count in Python followed by an UPDATE would not hold on either database on its own.
    """
    session.execute(
        select(User.id).where(or_(_is_active_admin(), User.id == user.id)).order_by(User.id).with_for_update()
    )
    others = select(func.count(User.id)).where(_is_active_admin(), User.id != user.id).scalar_subquery()
    result = session.execute(
        update(User)
        .where(User.id == user.id, User.version == user.version, others >= 1)
        .values(**values, version=User.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        if session.scalar(select(User.version).where(User.id == user.id)) != user.version:
            raise StaleDataError(f"account {user.username} was changed by someone else meanwhile")
        raise _LastAdmin(user.username)
    session.refresh(user)
