"""Helpdesk: Chatwoot agents and inbox membership, with the rules every caller (page, CLI, tests) shares.

Rules (pure functions, no I/O):
- password policy: password_rules() / password_problems() / validate_password();
- plus-addressing: slugify() and agent_email();
- seat limits by tier: count_seats() / seat_usage() / check_seats().

HelpdeskService does the remote work through the actor's own, active Chatwoot integration whose token is
an administrator's (see HelpdeskService.connection), and records audit events (never a password or token).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

import requests
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core import audit, tiers
from core.audit import Actor
from core.chatwoot.client import (
    EMAIL_TAKEN,
    INVALID_TOKEN,
    NOT_ADMIN,
    NOT_IN_ACCOUNT,
    ROLES,
    Agent,
    ChatwootClient,
    ChatwootError,
    Inbox,
    Role,
)
from core.errors import ConsoleError, NotFoundError, ValidationError
from core.integrations.service import IntegrationService, IntegrationView
from core.models import User
from core.ratelimit import Bucket, RateLimitedError, RateLimiter
from core.redaction import redact

PROVIDER_KEY = "CHATWOOT"
T = TypeVar("T")

# ----- password policy ----------------------------------------------------------------------------------

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128  # Chatwoot (Devise) accepts 6 to 128 characters
# The special characters Chatwoot's password check counts (ASCII punctuation); "€" or "é" do not count.
SPECIAL_CHARACTERS = string.punctuation


@dataclass(frozen=True)
class PasswordRule:
    """One rule of the password policy and whether a given password meets it (the page shows these live)."""

    key: str  # min_length | number | special | upper | lower | max_length
    label: str
    ok: bool


def password_rules(password: str | None) -> list[PasswordRule]:
    """Every rule of the policy, in display order, each with pass/fail for ``password``.

    At least 8 characters, a number (0-9), a special character (one of ``string.punctuation``), an
    upper-case (A-Z) and a lower-case (a-z) letter (Chatwoot rejects passwords without them), and at
    most 128 characters. Letters outside A-Z/a-z do not count as upper- or lower-case: Chatwoot checks
    Latin letters only.
    """
    text = password or ""
    return [
        PasswordRule("min_length", f"At least {PASSWORD_MIN_LENGTH} characters", len(text) >= PASSWORD_MIN_LENGTH),
        PasswordRule("number", "A number (0-9)", any(c in string.digits for c in text)),
        PasswordRule(
            "special", "A special character, such as ! ? # @ or -", any(c in SPECIAL_CHARACTERS for c in text)
        ),
        PasswordRule("upper", "An upper-case letter (A-Z)", any(c in string.ascii_uppercase for c in text)),
        PasswordRule("lower", "A lower-case letter (a-z)", any(c in string.ascii_lowercase for c in text)),
        PasswordRule("max_length", f"At most {PASSWORD_MAX_LENGTH} characters", len(text) <= PASSWORD_MAX_LENGTH),
    ]


def password_problems(password: str | None) -> list[str]:
    """The labels of the rules ``password`` fails; empty when it is acceptable."""
    return [rule.label for rule in password_rules(password) if not rule.ok]


def validate_password(password: str | None) -> None:
    """Raise ValidationError({"password": ...}) naming every rule the password fails."""
    problems = password_problems(password)
    if problems:
        raise ValidationError({"password": "The password needs: " + "; ".join(p[0].lower() + p[1:] for p in problems)})


# ----- plus-addressing ------------------------------------------------------------------------------------

SLUG_MAX_LENGTH = 30
# Letters NFKD does not decompose into ASCII, spelled the way people write them without accents.
_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D"}
    | {"ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D", "ı": "i"}
)
_LOCAL_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def slugify(name: str | None) -> str:
    """The agent-name part of a plus-address.

    1. Unicode NFKD, then combining marks (accents) are dropped: "José Müller" -> "Jose Muller"; a few
       letters NFKD keeps are spelled out (ß -> ss, æ -> ae, ø -> o, ł -> l, ...).
    2. Lower-cased; every character that is not an ASCII letter or digit (spaces, punctuation, emoji,
       letters of other scripts) becomes "-".
    3. Runs of "-" collapse to one, and "-" is trimmed from both ends.
    4. At most 30 characters (cut, then trimmed of a trailing "-" again).
    5. Nothing left (a name of only emoji or of another script) is a ValidationError on "name".
    """
    text = unicodedata.normalize("NFKD", (name or "").translate(_TRANSLITERATE))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = "".join(c if (c.isascii() and c.isalnum()) else "-" for c in text)
    text = re.sub(r"-{2,}", "-", text).strip("-")
    text = text[:SLUG_MAX_LENGTH].rstrip("-")
    if not text:
        raise ValidationError(
            {"name": "Give the agent a name with at least one Latin letter or digit; it becomes part of the e-mail."}
        )
    return text


def is_valid_email(address: str) -> bool:
    """A conservative check of an ASCII address: dot-atom local part (64 max), host name domain, 254 max."""
    if not isinstance(address, str) or len(address) > 254 or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    if not local or len(local) > 64 or not _LOCAL.fullmatch(local):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def chosen_agent_email(address: str | None) -> str:
    """An agent's e-mail as typed (not the suggested plus-address), trimmed and lower-cased as Chatwoot
    stores it; raises ValidationError ("email") when it is not a usable address."""
    email = (address or "").strip().lower()
    if not email:
        raise ValidationError({"email": "Enter the agent's e-mail address, or use the suggested one."})
    if not is_valid_email(email):
        example = "use one like bo.li@example.com (letters, digits, one @)"
        raise ValidationError({"email": f"{email} is not a valid e-mail address: {example}."})
    return email


def agent_email(user_email: str, agent_name: str) -> str:
    """``local+slug(agent_name)@domain`` from the signed-in user's own address, lower-cased.

    The agent's mail arrives in the user's own mailbox (plus-addressing). If the local part already has a
    ``+tag``, the tag is replaced: ``ana+crm@acme.com`` and "Bo Li" give ``ana+bo-li@acme.com``. An
    internationalised domain is written in its ASCII (IDNA) form. Chatwoot stores e-mails lower-cased, so
    the result is lower-case and is exactly what Chatwoot will show. Raises ValidationError ("name" for
    an unusable agent name, "email" for an unusable user address or a result that is not a valid e-mail).
    """
    slug = slugify(agent_name)
    address = (user_email or "").strip()
    if address.count("@") != 1:
        raise ValidationError({"email": f"Your e-mail address ({address or 'none'}) is not a usable address."})
    local, domain = address.split("@")
    local = local.split("+", 1)[0]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError({"email": f"The domain of your e-mail address ({domain}) is not valid."}) from None
    if not local:
        raise ValidationError({"email": f"Your e-mail address ({address}) has no name before the @."})
    result = f"{local}+{slug}@{domain}".lower()
    if len(result.split("@")[0]) > 64:
        raise ValidationError({"name": "The agent's e-mail would be too long; choose a shorter agent name."})
    if not is_valid_email(result):
        raise ValidationError({"email": f"{result} is not a valid e-mail address. Check your own e-mail address."})
    return result


# ----- seat limits ------------------------------------------------------------------------------------------

SEAT_LIMIT = "helpdesk_agents"


def count_seats(agents: Iterable[Agent], own_user_id: int) -> int:
    """Seats used: the Chatwoot account's agents (any role, confirmed or not) except the integration's
    own user, the user whose token the integration holds (it is not an agent you created)."""
    return sum(1 for agent in agents if agent.id != own_user_id)


@dataclass(frozen=True)
class SeatUsage:
    """How many agent seats the actor's tier allows and uses on one Chatwoot account."""

    used: int
    allowed: int | None  # None: unlimited
    tier: tiers.Tier
    upgrade: tiers.Tier | None  # the lowest tier that allows more than `used`, when at the limit

    @property
    def can_add(self) -> bool:
        return self.allowed is None or self.used < self.allowed

    @property
    def message(self) -> str:
        """'1 of 2 agent seats used (Starter tier).' or, at the limit, which tier allows more."""
        if self.allowed is None:
            agents = "1 agent" if self.used == 1 else f"{self.used} agents"
            return f"{agents}; the {self.tier.label} tier has no agent limit."
        text = f"{self.used} of {self.allowed} agent seats used ({self.tier.label} tier)."
        if not self.can_add:
            text += f" The {self.upgrade.label} tier allows more." if self.upgrade else " No tier allows more."
        return text


def seat_usage(tier: tiers.Tier | str, agents: Iterable[Agent], own_user_id: int) -> SeatUsage:
    tier = tiers.Tier.parse(tier)
    used = count_seats(agents, own_user_id)
    allowed = tiers.limit(SEAT_LIMIT, tier)
    unlimited = allowed == tiers.UNLIMITED
    upgrade = None if unlimited or used < allowed else tiers.first_tier_above(SEAT_LIMIT, used)
    return SeatUsage(used, None if unlimited else allowed, tier, upgrade)


def check_seats(tier: tiers.Tier | str, agents: Iterable[Agent], own_user_id: int) -> None:
    """Raise core.tiers.TierLimitError (naming the tier that allows more) when no seat is left."""
    tiers.check_limit(SEAT_LIMIT, tiers.Tier.parse(tier), count_seats(agents, own_user_id), "helpdesk agents")


# ----- errors and results ---------------------------------------------------------------------------------


class HelpdeskError(ConsoleError):
    """A helpdesk action failed. ``str(error)`` is a sentence with no secret in it; ``reason`` is one of
    core.chatwoot.client's reason constants ("email_taken", "no_seats", "not_permitted", "rate_limited", ...)."""

    def __init__(self, message: str, reason: str = "failed"):
        self.reason = reason
        super().__init__(message)


class HelpdeskUnavailable(HelpdeskError):
    """The helpdesk cannot work with this integration; ``reason`` says what is missing:

    - "no_integration": no such integration of the actor's own, or it is not a Chatwoot integration;
    - "inactive": the integration is switched off;
    - "not_admin": the stored token cannot act as an administrator of the account (Chatwoot rejected it,
      its user is not a member of the account, its role is agent, or it could not be decrypted);
    - "unreachable": Chatwoot did not answer usefully (network, timeout, 5xx, 429, not a Chatwoot server).

    The first three are fixed on the Integrations page; the message says exactly what to do.
    """

    REASONS = ("no_integration", "inactive", "not_admin", "unreachable")


@dataclass(frozen=True)
class HelpdeskConnection:
    """What the helpdesk works through (no secret in it)."""

    integration_id: int
    integration_name: str
    base_url: str
    account_id: int
    account_name: str
    user_id: int  # the token's own user: not counted as a seat, never offered for deletion
    user_name: str
    user_email: str
    role: str
    has_platform_token: bool
    auto_create_inboxes: bool = False  # the integration's "Auto-create inboxes" toggle
    auto_create_bots: bool = False  # and its "Auto-create bots" toggle

    @property
    def is_administrator(self) -> bool:
        return self.role == "administrator"


def feature_on(config: Mapping, name: str) -> bool:
    """A Chatwoot integration's feature toggle (features.<name>); unset counts as its form default, on."""
    features = config.get("features")
    value = features.get(name, True) if isinstance(features, Mapping) else True
    return value is True


@dataclass(frozen=True)
class AgentCreation:
    """The outcome of HelpdeskService.create_agent."""

    agent: Agent
    email: str
    role: str
    method: Literal["platform", "application"]
    password_set: bool  # True: the agent can sign in with the password given; False: Chatwoot e-mails a link
    message: str


@dataclass(frozen=True)
class MembershipChange:
    """One add or remove of an agent in an inbox, and how it went."""

    inbox_id: int
    inbox_name: str
    agent_id: int
    agent_name: str
    action: Literal["add", "remove"]
    ok: bool
    message: str


@dataclass(frozen=True)
class MembershipResult:
    """What apply_membership did, and the live membership read back afterwards.

    ``membership`` is None when the read-back failed (``reread_error`` says why): the caller must then
    not show any membership as current, and offer a refresh.
    """

    changes: tuple[MembershipChange, ...]
    membership: dict[int, set[int]] | None
    reread_error: str | None = None

    @property
    def failed(self) -> tuple[MembershipChange, ...]:
        return tuple(change for change in self.changes if not change.ok)

    @property
    def ok(self) -> bool:
        return not self.failed and self.reread_error is None


@dataclass(frozen=True)
class HelpdeskSnapshot:
    """Everything the Manage Collaborators tab shows, read through one connection."""

    connection: HelpdeskConnection
    agents: list[Agent]
    inboxes: list[Inbox]
    membership: dict[int, set[int]]
    seats: SeatUsage


# ----- the service ------------------------------------------------------------------------------------------


class HelpdeskService:
    """Chatwoot agents and inbox membership through one of the actor's own Chatwoot integrations.

    Every method first checks the integration (see ``connection``) and raises HelpdeskUnavailable when it
    cannot be used; a Chatwoot failure afterwards is a HelpdeskError. Nothing is cached here: callers may
    cache reads briefly per integration and must drop them after any write.
    """

    def __init__(
        self,
        integrations: IntegrationService,
        http_session: Callable[[], requests.Session],
        factory: sessionmaker,
        limiter: RateLimiter | None = None,
    ):
        self._integrations = integrations
        self._http_session = http_session
        self._factory = factory
        self._limiter = limiter

    # ----- the connection ----------------------------------------------------------------------

    def connection(self, actor: Actor, integration_id: int, *, require_admin: bool = True) -> HelpdeskConnection:
        """Check the integration can be used and describe it; raise HelpdeskUnavailable otherwise.

        The integration must be the actor's own (administrators too act as themselves), a Chatwoot one,
        active, and (unless ``require_admin=False``, which the widget uses to list inboxes) its token must
        be an administrator's of the configured account, as Chatwoot's profile says right now.
        """
        with self._open(actor, integration_id, require_admin=require_admin) as (connection, _):
            return connection

    def open(
        self, actor: Actor, integration_id: int, *, require_admin: bool = True
    ) -> AbstractContextManager[tuple[HelpdeskConnection, ChatwootClient]]:
        """The checked connection and a client on its token, for the other core/chatwoot services (a
        context manager: the HTTP session closes with it). Raises HelpdeskUnavailable."""
        return self._open(actor, integration_id, require_admin=require_admin)

    def integrations(self, actor: Actor) -> list[IntegrationView]:
        """The actor's own active Chatwoot integrations (IntegrationView), to pick one from."""
        return self._integrations.list_for_provider(actor, PROVIDER_KEY, active_only=True)

    @contextmanager
    def _open(
        self, actor: Actor, integration_id: int, *, require_admin: bool = True
    ) -> Iterator[tuple[HelpdeskConnection, ChatwootClient]]:
        tiers.check_feature("HELPDESK", tiers.Tier.parse(actor.tier), "The helpdesk")
        view, config = self._configuration(actor, integration_id)
        account_id = int(config["accountId"])
        session = self._http_session()
        try:
            client = ChatwootClient(
                str(config["baseUrl"]),
                str(config.get("apiKey") or ""),
                session,
                account_id=account_id,
                platform_token=str(config.get("platformToken") or "") or None,
            )
            try:
                profile = client.profile()
            except ChatwootError as exc:
                if exc.reason == INVALID_TOKEN:
                    raise HelpdeskUnavailable(
                        f"{exc} Then save it on the Integrations page ({view.name}).", "not_admin"
                    ) from None
                raise HelpdeskUnavailable(
                    f"Chatwoot could not be reached for {view.name}: {exc}", "unreachable"
                ) from None
            access = profile.access_to(account_id)
            if access is None:
                raise HelpdeskUnavailable(
                    f"The token of {view.name} belongs to {profile.email or profile.name}, who is not a member of "
                    f"Chatwoot account {account_id}. On the Integrations page, fix the account ID or use a token "
                    "of an administrator of that account.",
                    "not_admin",
                )
            if require_admin and not access.is_administrator:
                raise HelpdeskUnavailable(
                    f"The token of {view.name} belongs to {profile.name or profile.email}, whose role in "
                    f"{access.account_name or 'the account'} is '{access.role}'. Creating agents and managing "
                    "inboxes needs an administrator's access token: on the Integrations page, replace the API "
                    "access token with one from an administrator (Chatwoot: Profile settings > Access token).",
                    "not_admin",
                )
            connection = HelpdeskConnection(
                integration_id=view.id,
                integration_name=view.name,
                base_url=str(config["baseUrl"]).rstrip("/"),
                account_id=account_id,
                account_name=access.account_name,
                user_id=profile.user_id,
                user_name=profile.name,
                user_email=profile.email,
                role=access.role,
                has_platform_token=client.has_platform_token,
                auto_create_inboxes=feature_on(config, "autoCreateInboxes"),
                auto_create_bots=feature_on(config, "autoCreateBots"),
            )
            yield connection, client
        finally:
            session.close()

    def _configuration(self, actor: Actor, integration_id: int):
        missing = (
            f"Integration {integration_id} is not one of your Chatwoot integrations. Connect Chatwoot on the "
            "Integrations page (or pick another integration)."
        )
        try:
            view = self._integrations.get(actor, integration_id)
        except NotFoundError:
            raise HelpdeskUnavailable(missing, "no_integration") from None
        if view.owner != actor.username or view.provider != PROVIDER_KEY:
            raise HelpdeskUnavailable(missing, "no_integration")
        if not view.is_active:
            raise HelpdeskUnavailable(
                f"{view.name} is inactive. Activate it on the Integrations page to manage its helpdesk.", "inactive"
            )
        try:
            config = self._integrations.credentials_for(actor, integration_id, PROVIDER_KEY)
        except NotFoundError:
            raise HelpdeskUnavailable(missing, "no_integration") from None
        except ValidationError as exc:
            message = " ".join(exc.errors.values())
            reason = "inactive" if "inactive" in message else "not_admin"
            raise HelpdeskUnavailable(f"{view.name}: {message}", reason) from None
        if not config.get("apiKey") or not str(config.get("accountId") or "").isdigit() or not config.get("baseUrl"):
            raise HelpdeskUnavailable(
                f"{view.name} lacks its base URL, account ID or API access token. "
                "Complete it on the Integrations page.",
                "not_admin",
            )
        return view, config

    # ----- reading -----------------------------------------------------------------------------

    def agents(self, actor: Actor, integration_id: int) -> list[Agent]:
        """Every user of the Chatwoot account (administrators included), by name."""
        with self._open(actor, integration_id) as (_, client):
            return _by_name(_call(client.list_agents))

    def inboxes(self, actor: Actor, integration_id: int, *, require_admin: bool = True) -> list[Inbox]:
        """The account's inboxes, by name (Inbox.is_website / website_token for the widget)."""
        with self._open(actor, integration_id, require_admin=require_admin) as (_, client):
            return sorted(_call(client.list_inboxes), key=lambda i: (i.name.lower(), i.id))

    def membership(self, actor: Actor, integration_id: int) -> dict[int, set[int]]:
        """The live membership: {inbox id: {agent id, ...}} for every inbox of the account."""
        with self._open(actor, integration_id) as (_, client):
            return _membership(client, _call(client.list_inboxes))

    def seats(self, actor: Actor, integration_id: int) -> SeatUsage:
        """Agent seats used and allowed by the actor's tier (see count_seats for what counts)."""
        with self._open(actor, integration_id) as (connection, client):
            return seat_usage(actor.tier, _call(client.list_agents), connection.user_id)

    def snapshot(self, actor: Actor, integration_id: int) -> HelpdeskSnapshot:
        """Agents, inboxes, live membership and seats in one go (one profile check instead of four)."""
        with self._open(actor, integration_id) as (connection, client):
            agents = _by_name(_call(client.list_agents))
            inboxes = sorted(_call(client.list_inboxes), key=lambda i: (i.name.lower(), i.id))
            membership = _membership(client, inboxes)
            seats = seat_usage(actor.tier, agents, connection.user_id)
            return HelpdeskSnapshot(connection, agents, inboxes, membership, seats)

    def count_attempt(self, bucket: Bucket, what: str) -> None:
        """Count one attempt against its rate limit; over it, a HelpdeskError that says when to retry."""
        if self._limiter is None:
            return
        try:
            self._limiter.attempt(bucket, what)
        except RateLimitedError as exc:
            raise HelpdeskError(str(exc), "rate_limited") from None

    def preview_email(self, actor: Actor, agent_name: str) -> str:
        """The e-mail create_agent would give an agent of this name (raises ValidationError)."""
        return agent_email(self._actor_email(actor), agent_name)

    def _actor_email(self, actor: Actor) -> str:
        with self._factory() as session:
            email = session.scalar(select(User.email).where(User.id == actor.id))
        if not email:
            raise ValidationError(
                {"email": "Your staff account has no e-mail address; an administrator can add one on Staff accounts."}
            )
        return email

    # ----- creating agents ---------------------------------------------------------------------

    def create_agent(
        self,
        actor: Actor,
        integration_id: int,
        name: str,
        role: Role,
        password: str | None = None,
        *,
        email: str | None = None,
    ) -> AgentCreation:
        """Create an agent named ``name`` with ``role`` ("agent" | "administrator").

        The e-mail is ``email`` when given (chosen_agent_email), else the suggestion agent_email(the
        actor's own e-mail, name), a plus-address that delivers the agent's mail to the actor. With a
        Platform App token on the integration, ``password`` is required (validate_password) and the agent
        is created with it through the Platform API, then linked to the account with its role. Without
        one, ``password`` is ignored: the agent is created through the Application API and Chatwoot
        e-mails it a link to set a password.

        Raises HelpdeskUnavailable, ValidationError (name, role, password, e-mail), core.tiers.TierLimitError
        (no seat left for the tier; names the tier that allows more), or HelpdeskError: reason "email_taken"
        for a duplicate (reported, never retried), "no_seats" (Chatwoot's own seat limit, 402),
        "not_permitted" (the Platform App is not permitted on the account; the message says what the
        Chatwoot administrator must do), or another core.chatwoot.client reason. Every outcome is audited as
        "helpdesk.agent_create", without the password.
        """
        name = (name or "").strip()
        if not name:
            raise ValidationError({"name": "Give the agent a name."})
        if len(name) > 255:
            raise ValidationError({"name": "Keep the agent's name under 255 characters."})
        if role not in ROLES:
            raise ValidationError({"role": "Choose the role agent or administrator."})
        email = self.preview_email(actor, name) if email is None else chosen_agent_email(email)
        self.count_attempt(Bucket("agent_create", str(actor.id)), "agents created")
        with self._open(actor, integration_id) as (connection, client):
            hidden = [password] if password else []
            details = {"name": name, "email": email, "role": role}
            method: Literal["platform", "application"] = "platform" if connection.has_platform_token else "application"
            details["method"] = method
            if method == "platform":
                validate_password(password)

            def record(outcome: str, **extra) -> None:
                clean = {k: redact(v, hidden) if isinstance(v, str) else v for k, v in {**details, **extra}.items()}
                audit.record_now(
                    self._factory,
                    actor,
                    "helpdesk.agent_create",
                    outcome,
                    integration_id=integration_id,
                    details=clean,
                )

            try:
                agents = _call(client.list_agents)
                existing = next((a for a in agents if a.email.lower() == email), None)
                if existing is not None:
                    raise HelpdeskError(
                        f"An agent with the e-mail {email} already exists in this Chatwoot account "
                        f"({existing.name}). Choose a different name, or use the existing agent.",
                        EMAIL_TAKEN,
                    )
                try:
                    check_seats(actor.tier, agents, connection.user_id)
                except tiers.TierLimitError as exc:
                    record("denied", reason="tier limit", message=str(exc))
                    raise
                if method == "platform":
                    agent = self._create_with_password(client, connection, name, email, role, password or "")
                    message = (
                        f"{name} was created as {_role_label(role)} and can sign in to Chatwoot as {email} "
                        "with the password you set."
                    )
                else:
                    agent = _call(lambda: client.create_agent(name, email, role))
                    message = (
                        f"{name} was added as {_role_label(role)}. Chatwoot e-mails {email} a link to set a "
                        "password; the agent can sign in after setting it."
                    )
            except HelpdeskError as exc:
                record("failure", reason=exc.reason, message=str(exc))
                raise
            record("success", agent_id=agent.id)
            return AgentCreation(agent, email, role, method, method == "platform", message)

    def _create_with_password(
        self, client: ChatwootClient, connection: HelpdeskConnection, name: str, email: str, role: Role, password: str
    ) -> Agent:
        user = _call(lambda: client.create_platform_user(name, email, password))
        if connection.account_id in user.account_ids:
            raise HelpdeskError(
                f"An agent with the e-mail {email} already exists in this Chatwoot account.", EMAIL_TAKEN
            )
        if user.account_ids:
            # Chatwoot answered with an existing user and kept its password: do not hand that user out.
            raise HelpdeskError(
                f"A Chatwoot user with the e-mail {email} already exists (in another account), and Chatwoot "
                "keeps that user's password, so the console did not add it. Choose a different agent name.",
                EMAIL_TAKEN,
            )
        try:
            link = client.link_account_user(connection.account_id, user.id, role)
        except ChatwootError as exc:
            raise HelpdeskError(
                f"The Chatwoot user {email} was created but could not be added to account "
                f"{connection.account_id}. {exc} When you try again, give the same password: Chatwoot keeps "
                "the password of the user it already created.",
                exc.reason,
            ) from None
        return Agent(
            id=user.id,
            name=user.name or name,
            email=user.email or email,
            role=link.role or role,
            availability_status="offline",
            confirmed=user.confirmed,
            available_name=user.name or name,
        )

    def delete_agent(self, actor: Actor, integration_id: int, agent_id: int) -> None:
        """Remove an agent from the Chatwoot account (not the integration's own user). Audited."""
        with self._open(actor, integration_id) as (connection, client):
            if int(agent_id) == connection.user_id:
                raise ValidationError({"agent": "The integration's own user cannot be removed here."})
            try:
                _call(lambda: client.delete_agent(int(agent_id)))
            except HelpdeskError as exc:
                audit.record_now(
                    self._factory,
                    actor,
                    "helpdesk.agent_delete",
                    "failure",
                    integration_id=integration_id,
                    details={"agent_id": int(agent_id), "reason": exc.reason, "message": str(exc)},
                )
                raise
            audit.record_now(
                self._factory,
                actor,
                "helpdesk.agent_delete",
                "success",
                integration_id=integration_id,
                details={"agent_id": int(agent_id)},
            )

    # ----- membership --------------------------------------------------------------------------

    def apply_membership(
        self,
        actor: Actor,
        integration_id: int,
        desired: Mapping[int, Iterable[int]],
        only_agents: Mapping[int, Iterable[int]] | None = None,
    ) -> MembershipResult:
        """Make the listed inboxes' members what ``desired`` says, changing only the difference.

        ``desired`` maps inbox id -> the agent ids that should work in it; inboxes left out are not touched.
        ``only_agents`` (inbox id -> agent ids) limits the changes to those agents: a page passes the boxes a
        person toggled, so an agent added to the inbox meanwhile (elsewhere) is not removed.
        The difference is computed against the LIVE membership read now (not what a page showed earlier),
        then each add (POST inbox_members) and each remove (DELETE inbox_members) is sent on its own, so
        every change has its own outcome; a failed change never stops the others, and nothing is retried.
        An inbox or agent that no longer exists is reported as a failed change. Afterwards the membership is
        read again and returned (None, with reread_error, if that read fails). Each change is audited as
        "helpdesk.membership".

        Raises only before anything is changed: HelpdeskUnavailable, or HelpdeskError if the live
        membership cannot be read.
        """
        wanted = {int(inbox_id): {int(a) for a in agent_ids} for inbox_id, agent_ids in desired.items()}
        with self._open(actor, integration_id) as (_, client):
            agents = {agent.id: agent for agent in _call(client.list_agents)}
            inboxes = {inbox.id: inbox for inbox in _call(client.list_inboxes)}
            current = _membership(client, inboxes.values())
            changes: list[MembershipChange] = []
            for inbox_id in sorted(wanted):
                inbox = inboxes.get(inbox_id)
                if inbox is None:
                    for agent_id in sorted(wanted[inbox_id]):
                        name = agents[agent_id].name if agent_id in agents else f"agent {agent_id}"
                        changes.append(
                            MembershipChange(
                                inbox_id,
                                f"inbox {inbox_id}",
                                agent_id,
                                name,
                                "add",
                                False,
                                f"Inbox {inbox_id} no longer exists in Chatwoot.",
                            )
                        )
                    continue
                have = current.get(inbox_id, set())
                adds, removes = wanted[inbox_id] - have, have - wanted[inbox_id]
                if only_agents is not None:
                    allowed = {int(a) for a in only_agents.get(inbox_id, ())}
                    adds, removes = adds & allowed, removes & allowed
                for agent_id in sorted(adds):
                    changes.append(self._change(client, inbox, agents, agent_id, "add"))
                for agent_id in sorted(removes):
                    changes.append(self._change(client, inbox, agents, agent_id, "remove"))
            for change in changes:
                details = {
                    "inbox_id": change.inbox_id,
                    "inbox": change.inbox_name,
                    "agent_id": change.agent_id,
                    "agent": change.agent_name,
                    "change": change.action,
                }
                if not change.ok:
                    details["message"] = change.message
                audit.record_now(
                    self._factory,
                    actor,
                    "helpdesk.membership",
                    "success" if change.ok else "failure",
                    integration_id=integration_id,
                    details=details,
                )
            try:
                after: dict[int, set[int]] | None = _membership(client, _call(client.list_inboxes))
                reread_error = None
            except HelpdeskError as exc:
                after, reread_error = None, f"The membership could not be read back: {exc} Refresh to see it."
            return MembershipResult(tuple(changes), after, reread_error)

    @staticmethod
    def _change(
        client: ChatwootClient, inbox: Inbox, agents: dict[int, Agent], agent_id: int, action: Literal["add", "remove"]
    ) -> MembershipChange:
        agent = agents.get(agent_id)
        name = agent.name if agent else f"agent {agent_id}"
        if agent is None and action == "add":
            return MembershipChange(
                inbox.id, inbox.name, agent_id, name, action, False, f"Agent {agent_id} is no longer in this account."
            )
        try:
            if action == "add":
                client.add_inbox_members(inbox.id, [agent_id])
                message = f"{name} added to {inbox.name}."
            else:
                client.remove_inbox_members(inbox.id, [agent_id])
                message = f"{name} removed from {inbox.name}."
        except ChatwootError as exc:
            return MembershipChange(inbox.id, inbox.name, agent_id, name, action, False, str(exc))
        return MembershipChange(inbox.id, inbox.name, agent_id, name, action, True, message)


# ----- helpers ------------------------------------------------------------------------------------------------


def _call(function: Callable[[], T]) -> T:
    """Run one client call; a ChatwootError becomes a HelpdeskError with the same sentence and reason."""
    try:
        return function()
    except ChatwootError as exc:
        message = str(exc)
        if exc.reason in (NOT_ADMIN, NOT_IN_ACCOUNT):
            message += " Check the integration's token on the Integrations page."
        raise HelpdeskError(message, exc.reason) from None


def _membership(client: ChatwootClient, inboxes: Iterable[Inbox]) -> dict[int, set[int]]:
    return {
        inbox.id: {agent.id for agent in _call(lambda i=inbox: client.list_inbox_members(i.id))} for inbox in inboxes
    }


def _by_name(agents) -> list[Agent]:
    return sorted(agents, key=lambda a: ((a.name or a.email).lower(), a.id))


def _role_label(role: str) -> str:
    return "an administrator" if role == "administrator" else "an agent"


__all__ = [
    "AgentCreation",
    "HelpdeskConnection",
    "HelpdeskError",
    "HelpdeskService",
    "HelpdeskSnapshot",
    "HelpdeskUnavailable",
    "MembershipChange",
    "MembershipResult",
    "PasswordRule",
    "SeatUsage",
    "agent_email",
    "check_seats",
    "count_seats",
    "feature_on",
    "is_valid_email",
    "password_problems",
    "password_rules",
    "seat_usage",
    "slugify",
    "validate_password",
]
