"""The authorization-code flow: start (an authorize URL with a single-use state, PKCE where the provider
supports it) and complete (the console's callback: the state is claimed once, the code exchanged with
authlib through the console's outbound session, the provider's checks of the token answer, the tokens
stored encrypted on a new integration or on the reconnected one, a test, an audit record at every step).

The state is 256 random bits; only its keyed hash is stored, the flow expires after FLOW_MINUTES and is
claimed by one conditional UPDATE, so a second callback with it (a replayed or a raced code) is refused.
A staff flow is bound to the sign-in session that started it: a callback in another browser is refused.
The callback's answer names only an opaque outcome id, which only the person who started may read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import requests
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import sessionmaker

from core import audit, fields, oauth
from core.audit import Actor
from core.catalog import Catalog, Provider
from core.connect.apps import OAuthApps, redirect_uri
from core.connect.spec import AppSettings, ConnectRefused
from core.crypto import DecryptionError, FieldCipher
from core.errors import ConsoleError, NotFoundError, ValidationError
from core.http import describe_exception
from core.integrations.service import IntegrationService
from core.models import ConnectLink, OAuthFlow, User, utcnow
from core.paths import LINK_DONE_PATH
from core.ratelimit import Bucket, RateLimiter
from core.redaction import redact

FLOW_MINUTES = 10
OUTCOME_HOURS = 1  # how long the page the callback redirects to can still read what happened
STATE_BYTES = 32
MAX_PARAM = 2000
# The console page a staff flow lands on (it shows the outcome); a customer's lands on LINK_DONE_PATH.
STAFF_OUTCOME_PAGE = "/integrations"
log = logging.getLogger(__name__)


class FlowRefused(ConsoleError):
    """The callback was refused before anything was exchanged (unknown, used or expired state, another
    session). The message is for the person's browser and holds nothing from the request."""


@dataclass(frozen=True)
class Outcome:
    connected: bool
    provider: str
    message: str  # may hold a provider's words: show as plain text
    integration_id: int | None


def _verifier_context(state_hash: str) -> bytes:
    return f"oauth_flow:{state_hash}:verifier".encode()


def checked_draft(provider: Provider, draft: Mapping[str, object] | None) -> dict | None:
    """What a new integration keeps from the form before consent: the values of the spec's draft_fields
    (never a sensitive one: the flow row holds them in clear), validated and normalised by the fields layer
    as a save would (ValidationError {field: sentence}). Anything else in draft is dropped: the token
    answer provides it."""
    spec = provider.oauth
    if spec is None or not spec.draft_fields:
        return None
    specs = [provider.field(name) for name in spec.draft_fields]
    specs = [field for field in specs if not field.sensitive]
    given = dict(draft or {})
    submitted = {field.name: value for field in specs if (value := fields.get_path(given, field.name)) is not None}
    if errors := fields.validate(specs, submitted):
        raise ValidationError(errors)
    return fields.normalise(specs, submitted) or None


class ConnectFlows:
    def __init__(
        self,
        factory: sessionmaker,
        cipher: FieldCipher,
        catalog: Catalog,
        apps: OAuthApps,
        integrations: IntegrationService,
        http_session: Callable[[], requests.Session],
        limiter: RateLimiter,
        public_base_url: str | None,
    ):
        self._factory = factory
        self._cipher = cipher
        self._catalog = catalog
        self._apps = apps
        self._integrations = integrations
        self._http_session = http_session
        self._limiter = limiter
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        # Told the link's id when a customer completes one (the owner's alert); set by the app context.
        self.on_link_completed: Callable[[int], object] | None = None

    @property
    def redirect_uri(self) -> str | None:
        """The exact redirect URI every authorization request names (None without PUBLIC_BASE_URL)."""
        return redirect_uri(self.public_base_url)

    def _hash(self, purpose: bytes, value: str) -> str:
        key = self._cipher.derived_key(b"oauth-flow:" + purpose)
        return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    # ----- start ---------------------------------------------------------------------------

    def start(
        self,
        actor: Actor,
        session_handle: str | None,
        provider_key: str,
        name: str = "",
        integration_id: int | None = None,
        draft: Mapping[str, object] | None = None,
    ) -> str:
        """The provider's consent address for a new integration (name) or to reconnect integration_id.

        draft: the new integration's non-secret fields entered before consent (the Custom CRM's API
        address); the token answer's fields are added to them. Only the provider's spec.draft_fields are
        kept, checked as the provider's fields are (ValidationError naming each field to fix); a reconnect
        keeps the integration's own settings and takes no draft."""
        provider = self._catalog.get(provider_key)
        spec = provider.oauth
        if spec is None:
            raise ValidationError({"provider": f"{provider.name} has no OAuth consent flow."})
        if not self.redirect_uri:
            raise ValidationError(
                {"oauth": "PUBLIC_BASE_URL is not set, so the console has no address to be sent back to."}
            )
        if not session_handle:
            raise ValidationError({"oauth": "Sign in again: this tab has no sign-in session to bind the flow to."})
        app = self._apps.settings(provider.key)
        if app is None:
            raise ValidationError({"oauth": f"An administrator has not registered the console's {provider.name} app."})
        if integration_id is not None:
            view = self._integrations.get(actor, integration_id)  # someone else's is not found
            if view.provider != provider.key:
                raise NotFoundError(f"Integration {integration_id} is not a {provider.name} integration.")
            name = view.name
        else:
            name = self._integrations.check_new(actor, provider.key, name)
            draft = checked_draft(provider, draft)
        return self._open_flow(
            actor,
            provider,
            app,
            purpose="staff",
            name=name,
            integration_id=integration_id,
            draft=draft,
            session_hash=self._hash(b"session", session_handle),
        )

    def start_for_link(
        self,
        link_id: int,
        owner_id: int,
        provider_key: str,
        name: str,
        integration_id: int | None,
        draft: Mapping[str, object] | None,
    ) -> str:
        """The consent address for a customer who opened a live connect link (core/connect/links.py checked
        it): the flow is bound to the link, not to a sign-in session, and acts for the link's owner."""
        provider = self._catalog.get(provider_key)
        app = self._apps.settings(provider.key)
        if provider.oauth is None or app is None or not self.redirect_uri:
            raise ConnectRefused(
                f"Connecting {provider.name} is not available right now. Ask the person who sent this link."
            )
        return self._open_flow(
            None,
            provider,
            app,
            purpose="link",
            name=name,
            integration_id=integration_id,
            draft=draft,
            actor_id=owner_id,
            link_id=link_id,
        )

    def _open_flow(
        self,
        actor: Actor | None,
        provider: Provider,
        app: AppSettings,
        *,
        purpose: str,
        name: str,
        integration_id: int | None,
        draft: Mapping[str, object] | None,
        session_hash: str | None = None,
        actor_id: int | None = None,
        link_id: int | None = None,
    ) -> str:
        """Store a new flow (single-use state, PKCE verifier where supported) and give its consent address."""
        spec = provider.oauth
        assert spec is not None and self.redirect_uri
        state = secrets.token_urlsafe(STATE_BYTES)
        state_hash = self._hash(b"state", state)
        verifier = secrets.token_urlsafe(64) if spec.pkce else None
        now = utcnow()
        with self._factory.begin() as session:
            session.execute(delete(OAuthFlow).where(OAuthFlow.expires_at < now - timedelta(days=1)))
            session.add(
                OAuthFlow(
                    state_hash=state_hash,
                    verifier=self._cipher.encrypt(verifier, _verifier_context(state_hash)) if verifier else None,
                    provider=provider.key,
                    purpose=purpose,
                    session_hash=session_hash,
                    actor_id=actor.id if actor is not None else actor_id,
                    integration_name=name,
                    integration_id=integration_id,
                    draft_configuration=dict(draft) if draft and integration_id is None else None,
                    link_id=link_id,
                    created_at=now,
                    expires_at=now + timedelta(minutes=FLOW_MINUTES),
                )
            )
            details = {"provider": provider.key, "reconnect": integration_id is not None, "pkce": bool(verifier)}
            if link_id is not None:
                details["link"] = link_id
            audit.record(session, actor, "oauth.start", "success", integration_id, details)
        return oauth.authorization_url(
            spec.authorize_url(app),
            client_id=app.client_id,
            redirect_uri=self.redirect_uri,
            scope=spec.scope_separator.join(app.scopes),
            state=state,
            code_verifier=verifier,
            params=dict(spec.extra_params),
        )

    # ----- the callback --------------------------------------------------------------------

    def complete(self, params: Mapping[str, str], session_handle: str | None, client: str = "") -> str:
        """Handle the callback's query; returns the opaque outcome id. FlowRefused when the state is not a
        live flow of this session (nothing is exchanged then)."""
        if client and not self._limiter.take(Bucket("oauth_callback", client)):
            raise FlowRefused("Too many sign-in answers from this address. Wait a few minutes and start again.")
        state = params.get("state")
        if not isinstance(state, str) or not state or len(state) > MAX_PARAM:
            audit.record_now(self._factory, None, "oauth.callback", "denied", details={"reason": "no state"})
            raise FlowRefused("This answer carries no valid sign-in state. Start connecting again from the console.")
        flow = self._claim(self._hash(b"state", state))
        actor = self._actor(flow.actor_id)
        if flow.link_id is not None:
            self._take_link(flow, actor)
        else:
            self._check_bound(flow, actor, session_handle)
        assert actor is not None
        provider = self._catalog.get(flow.provider)
        outcome_id = secrets.token_urlsafe(STATE_BYTES)
        try:
            connected, message, integration_id = self._connect(actor, flow, provider, params)
        except BaseException:
            if flow.link_id is not None:  # nothing was saved: the link stays live for another try
                with self._factory.begin() as session:
                    session.execute(update(ConnectLink).where(ConnectLink.id == flow.link_id).values(completed_at=None))
            raise
        with self._factory.begin() as session:
            session.execute(
                update(OAuthFlow)
                .where(OAuthFlow.id == flow.id)
                .values(
                    outcome_hash=self._hash(b"outcome", outcome_id),
                    outcome="connected" if connected else "failed",
                    outcome_message=message,
                    result_integration_id=integration_id,
                    verifier=None,
                )
            )
            if flow.link_id is not None:
                # Failed: the link is live again for another try, and its sender sees why.
                session.execute(
                    update(ConnectLink)
                    .where(ConnectLink.id == flow.link_id)
                    .values(
                        completed_at=ConnectLink.completed_at if connected else None,
                        result_integration_id=integration_id if connected else ConnectLink.result_integration_id,
                        last_error=None if connected else message,
                    )
                )
        if connected and flow.link_id is not None and self.on_link_completed is not None:
            self.on_link_completed(flow.link_id)
        return outcome_id

    def landing(self, outcome_id: str) -> str:
        """Where the callback sends the browser: a staff flow to the console page that shows its outcome;
        a customer's to the public page that says only whether it worked (no staff data on it)."""
        with self._factory() as session:
            flow = session.scalar(select(OAuthFlow).where(OAuthFlow.outcome_hash == self._hash(b"outcome", outcome_id)))
        if flow is not None and flow.link_id is not None:
            return f"{self.public_base_url or ''}{LINK_DONE_PATH}?result={flow.outcome or 'failed'}"
        return f"{self.public_base_url or ''}{STAFF_OUTCOME_PAGE}?oauth={outcome_id}"

    def _check_bound(self, flow: OAuthFlow, actor: Actor | None, session_handle: str | None) -> None:
        """A staff flow completes only in the sign-in session that started it, of an active account."""
        bound = flow.session_hash is not None and hmac.compare_digest(
            flow.session_hash, self._hash(b"session", session_handle or "")
        )
        if actor is None or not bound:
            reason = "signed out" if actor is None else "another session"
            details = {"provider": flow.provider, "reason": reason}
            audit.record_now(
                self._factory, actor, "oauth.callback", "denied", integration_id=flow.integration_id, details=details
            )
            raise FlowRefused(
                "This answer belongs to a sign-in started in another browser or session, so it was not used. "
                "Start connecting again from the console."
            )

    def _take_link(self, flow: OAuthFlow, owner: Actor | None) -> None:
        """A customer's flow completes only while its link is live, once: the link is taken by one
        conditional UPDATE (a second tab's answer, or one after a revoke, is refused)."""
        now = utcnow()
        with self._factory.begin() as session:
            taken = session.execute(
                update(ConnectLink)
                .where(ConnectLink.id == flow.link_id, ConnectLink.unsettled(), ConnectLink.expires_at > now)
                .values(completed_at=now)
                .execution_options(synchronize_session=False)
            )
            live = cast(CursorResult, taken).rowcount == 1
        if live and owner is not None:
            return
        if live:  # taken, but its owner's account was deactivated meanwhile: give the link back
            with self._factory.begin() as session:
                session.execute(update(ConnectLink).where(ConnectLink.id == flow.link_id).values(completed_at=None))
        reason = "owner inactive" if live else "link not live"
        details = {"provider": flow.provider, "reason": reason, "link": flow.link_id}
        audit.record_now(
            self._factory, None, "oauth.callback", "denied", integration_id=flow.integration_id, details=details
        )
        raise FlowRefused(
            "This link can no longer be used (it was used already, revoked, or it expired), so nothing was "
            "changed. Ask the person who sent it for a new link."
            if not live
            else "The account this link connects for is no longer active, so nothing was changed. Ask the person "
            "who sent it."
        )

    def _claim(self, state_hash: str) -> OAuthFlow:
        now = utcnow()
        with self._factory.begin() as session:
            claimed = session.execute(
                update(OAuthFlow)
                .where(OAuthFlow.state_hash == state_hash, OAuthFlow.used_at.is_(None), OAuthFlow.expires_at > now)
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            flow = session.scalar(select(OAuthFlow).where(OAuthFlow.state_hash == state_hash))
            if flow is not None:
                session.expunge(flow)
        if claimed == 1 and flow is not None:
            return flow
        reason = "unknown" if flow is None else "expired" if flow.used_at is None else "already used"
        details = {"reason": reason} | ({"provider": flow.provider} if flow else {})
        audit.record_now(
            self._factory,
            None,
            "oauth.callback",
            "denied",
            integration_id=flow.integration_id if flow else None,
            details=details,
        )
        if reason == "already used":
            raise FlowRefused("This sign-in answer was already used. Start connecting again from the console.")
        if reason == "expired":
            raise FlowRefused(
                f"This sign-in took longer than {FLOW_MINUTES} minutes and expired. Start connecting again."
            )
        raise FlowRefused("This sign-in answer is not one the console started. Start connecting again.")

    def _actor(self, user_id: int) -> Actor | None:
        with self._factory() as session:
            user = session.get(User, user_id)
            if user is None or not user.active:
                return None
            return Actor(user.id, user.username, user.role, user.tier)

    def _connect(
        self, actor: Actor, flow: OAuthFlow, provider: Provider, params: Mapping[str, str]
    ) -> tuple[bool, str, int | None]:
        """(connected, a sentence, the integration's id): exchange, check, store, test; each step audited."""
        spec = provider.oauth
        base = {"provider": provider.key, "reconnect": flow.integration_id is not None}
        app = self._apps.settings(provider.key)
        secrets_seen: list[str | None] = [params.get("code")]
        try:
            if spec is None or app is None:
                raise ConnectRefused(f"The console's {provider.name} app is no longer registered.")
            secrets_seen.append(app.client_secret)
            if error := params.get("error"):
                said = params.get("error_description") or ""
                raise ConnectRefused(
                    f"{provider.name} did not grant access ({str(error)[:64]}"
                    + (f": {said[:200]}" if said else "")
                    + "). Nothing was changed."
                )
            code = params.get("code")
            if not isinstance(code, str) or not code or len(code) > MAX_PARAM:
                raise ConnectRefused(f"{provider.name} sent no authorization code. Nothing was changed.")
            granted = self._exchange(app, provider, flow, code, params)
            secrets_seen += [granted.issued.access_token, granted.refresh_token]
            config = spec.configuration(app, granted, params)
        except ConnectRefused as exc:
            message = redact(str(exc), secrets_seen)
            audit.record_now(
                self._factory, actor, "oauth.exchange", "failure", integration_id=flow.integration_id, details=base
            )
            return False, message, flow.integration_id
        audit.record_now(
            self._factory, actor, "oauth.exchange", "success", integration_id=flow.integration_id, details=base
        )
        try:
            if flow.integration_id is not None:
                values = {name: config[name] for name in spec.token_fields if name in config}
                view = self._integrations.replace_tokens(actor, flow.integration_id, values)
            else:
                draft = flow.draft_configuration or {}
                view = self._integrations.create(actor, flow.integration_name, provider.key, draft | config)
        except (ConsoleError, KeyError) as exc:
            said = " ".join(exc.errors.values()) if isinstance(exc, ValidationError) else str(exc)
            message = redact(f"{provider.name} granted access, but it was not saved: {said}", secrets_seen)
            audit.record_now(
                self._factory, actor, "oauth.connect", "failure", integration_id=flow.integration_id, details=base
            )
            return False, message, flow.integration_id
        result = self._integrations.test(actor, view.id)
        done = "Reconnected" if flow.integration_id is not None else "Connected"
        tested = result.message if result.success else f"The first test failed: {result.message}"
        message = redact(f"{done} {view.name} ({provider.name}). {tested}", secrets_seen)
        audit.record_now(
            self._factory,
            actor,
            "oauth.connect",
            "success",
            integration_id=view.id,
            details=base | {"tested": result.success},
        )
        return True, message, view.id

    def _exchange(
        self, app: AppSettings, provider: Provider, flow: OAuthFlow, code: str, params: Mapping[str, str]
    ) -> oauth.GrantedToken:
        spec = provider.oauth
        assert spec is not None and self.redirect_uri
        verifier = None
        if flow.verifier:
            try:
                verifier = self._cipher.decrypt(flow.verifier, _verifier_context(flow.state_hash))
            except DecryptionError:
                raise ConnectRefused("The sign-in's stored proof could not be read. Start again.") from None
        token_url = spec.token_url(app, params)
        try:
            with self._http_session() as http:
                return oauth.exchange_code(
                    http,
                    token_url,
                    client_id=app.client_id,
                    client_secret=app.client_secret,
                    code=code,
                    redirect_uri=self.redirect_uri,
                    code_verifier=verifier,
                    auth_method=spec.auth_method,
                )
        except oauth.TokenError as exc:
            if exc.cause is not None:
                raise ConnectRefused(describe_exception(exc.cause, f"{provider.name}'s token endpoint")) from None
            said = f" ({exc.error}{': ' + exc.reason if exc.reason and exc.reason != exc.error else ''})"
            status = f" (status {exc.status})" if exc.status and not exc.error else ""
            raise ConnectRefused(
                f"{provider.name} did not exchange the authorization code for tokens{said if exc.error else status}. "
                "Nothing was changed; start connecting again."
            ) from None

    # ----- the page after the callback ------------------------------------------------------

    def outcome(self, actor: Actor, outcome_id: str | None) -> Outcome | None:
        """What the callback did, for the person who started the flow, for OUTCOME_HOURS; else None."""
        if not isinstance(outcome_id, str) or not outcome_id or len(outcome_id) > 200:
            return None
        with self._factory() as session:
            flow = session.scalar(
                select(OAuthFlow).where(
                    OAuthFlow.outcome_hash == self._hash(b"outcome", outcome_id),
                    OAuthFlow.actor_id == actor.id,
                    OAuthFlow.created_at > utcnow() - timedelta(hours=OUTCOME_HOURS),
                )
            )
            if flow is None or flow.outcome is None:
                return None
            return Outcome(
                flow.outcome == "connected", flow.provider, flow.outcome_message or "", flow.result_integration_id
            )

    def offered(self, provider_key: str) -> bool:
        """Whether "Connect with" / "Reconnect" can be offered for this provider: it has a consent flow,
        an administrator registered the app, and PUBLIC_BASE_URL gives the callback an address."""
        if provider_key not in self._catalog or not self.redirect_uri:
            return False
        return self._catalog.get(provider_key).oauth is not None and self._apps.view(provider_key) is not None
