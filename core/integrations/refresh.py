"""OAuth access tokens refreshed before they die, and refresh tokens exercised before a provider's idle limit.

`TokenRefresher.due` names the active integrations whose cached access token expires soon, or whose refresh
token may have gone unused for longer than its provider allows; `TokenRefresher.refresh` refreshes one,
holding the integration's check lease (core.integrations.leases), so a refresh never races a connection
test or another refresh of it, in this process or any other. A provider's refresh (Provider.refresh) fetches
a new access token bypassing the cache and caches it (core.tokens.StoredTokens); a refresh token it
rotates is stored through the same guarded replacement a connection test uses (IntegrationChecks.
stored_context: never over a secret someone changed meanwhile). A failed refresh changes nothing stored:
neither the refresh token nor a cached access token. Scheduling the calls is the caller's (a task queue).

When was a refresh token last used? Every token fetched with a lifetime is cached as an oauth_tokens row
whose expires_at is the fetch time plus at most core.tokens.MAX_LIFETIME_SECONDS, so the refresh token was
used no earlier than the newest row's expires_at minus that. `due` counts idleness from this lower bound:
it may exercise a refresh token up to a day early, never late, and needs no column of its own. Connection
tests that fetch a token count as uses too, as they are.

Idle limits (DEFAULT_IDLE_LIMITS; pass your own to `due`):

- Salesforce: a connected app's Refresh Token Policy may be "Expire refresh token if not used for N" (the
  org's administrator picks N), and where Salesforce's idle refresh-token TTL limit is on, every policy but
  "immediately expire" becomes a 30-day sliding window (help.salesforce.com, "Limit the Idle Refresh Token
  TTL in Connected Apps"). 7 days stays well inside that window, with room for an outage of the scheduler.
- Zoho: refresh tokens do not expire by themselves, but a user keeps at most 20 (making a 21st deletes the
  oldest) and a revoked one says nothing until used. 30 days finds such a token before someone needs it.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select

from core import audit
from core.catalog import Provider
from core.crypto import DecryptionError
from core.errors import StorageError
from core.http import HttpPolicy, deadline
from core.integrations import leases
from core.integrations.checks import IntegrationChecks
from core.integrations.configuration import secret_values
from core.models import Integration, OAuthToken
from core.results import RefreshResult
from core.tokens import MAX_LIFETIME_SECONDS

DEFAULT_IDLE_LIMITS: dict[str, timedelta] = {
    "SALESFORCE": timedelta(days=7),
    "ZOHO": timedelta(days=30),
}
MAX_DUE = 10_000  # ids one call of due() returns at most, whatever limit asks for
AUDIT_ACTION = "integration.token_refreshed"
log = logging.getLogger(__name__)

__all__ = ["AUDIT_ACTION", "DEFAULT_IDLE_LIMITS", "RefreshResult", "TokenRefresher"]


class TokenRefresher:
    """Refreshes saved integrations' OAuth tokens through the integration service's checks (IntegrationService
    is one): its database, cipher, catalog, outbound sessions, leases and guarded secret rotation."""

    def __init__(self, integrations: IntegrationChecks):
        self._checks = integrations

    # ----- which ----------------------------------------------------------------------------------

    def due(
        self,
        now: datetime,
        ahead: timedelta,
        idle_limit: dict[str, timedelta] | None = None,
        limit: int = 500,
    ) -> list[int]:
        """Ids of active integrations of an OAuth provider (Provider.refreshes) whose token is due, most urgent first:

        - its newest cached access token (oauth_tokens.expires_at) expires by now + ahead (or has expired), or
        - its provider has an idle limit (idle_limit, by provider key; None: DEFAULT_IDLE_LIMITS; {}: none)
          and its refresh token may not have been used for that long, or was never used by the console.

        now is UTC (naive, as stored, or aware). At most limit ids (and never more than MAX_DUE).
        """
        limit = min(limit, MAX_DUE)
        if limit <= 0:
            return []
        if now.tzinfo is not None:
            now = now.astimezone(UTC).replace(tzinfo=None)
        limits = DEFAULT_IDLE_LIMITS if idle_limit is None else idle_limit
        refreshing = {p.key: p for p in self._checks._catalog if p.refresh is not None}
        if not refreshing:
            return []
        newest = (
            select(OAuthToken.integration_id, func.max(OAuthToken.expires_at).label("expires_at"))
            .group_by(OAuthToken.integration_id)
            .subquery()
        )
        expiry = newest.c.expires_at
        conditions = [expiry <= now + ahead]
        # Last used no earlier than expiry - MAX_LIFETIME: idle too long when that is before now - idle.
        lifetime = timedelta(seconds=MAX_LIFETIME_SECONDS)
        conditions += [
            and_(Integration.provider == key, or_(expiry.is_(None), expiry <= now - idle + lifetime))
            for key, idle in sorted(limits.items())
            if key in refreshing
        ]
        query = (
            select(Integration.id, Integration.provider, Integration.configuration)
            .outerjoin(newest, newest.c.integration_id == Integration.id)
            .where(
                Integration.is_active.is_(True),
                Integration.health != "needs_reconnect",  # a refused grant stays refused until reconnected
                Integration.provider.in_(sorted(refreshing)),
                or_(*conditions),
            )
            .order_by(case((expiry.is_(None), 1), else_=0), expiry, Integration.id)
            .execution_options(yield_per=1000)
        )
        found: list[int] = []
        with self._checks._factory() as session:
            for integration_id, provider_key, config in session.execute(query):
                if refreshing[provider_key].refreshes(config or {}):  # Custom CRM / API: only with OAUTH2
                    found.append(integration_id)
                    if len(found) >= limit:
                        break
        return found

    # ----- refreshing -----------------------------------------------------------------------------

    def refresh(self, integration_id: int) -> RefreshResult:
        """Refresh one integration's OAuth access token now, under its check lease; audited, never raising.

        ok=False (error "busy", not needs_reconnect) while a connection test or another refresh of it runs.
        A failure leaves every stored secret and cached token as it was; needs_reconnect when the provider
        refused the refresh token or the client (invalid_grant, ...). A database that refuses: error "storage".
        """
        try:
            return self._refresh(integration_id)
        except StorageError as exc:
            return RefreshResult(False, str(exc), error="storage")

    def _refresh(self, integration_id: int) -> RefreshResult:
        with self._checks._factory() as session:
            row = session.get(Integration, integration_id)
            if row is None:
                return RefreshResult(False, f"There is no integration #{integration_id}.", error="not_found")
            name, key, active, config = row.name, row.provider, row.is_active, copy.deepcopy(row.configuration or {})
        provider = self._checks._catalog.get(key) if key in self._checks._catalog else None
        if provider is None or not provider.refreshes(config):
            return RefreshResult(False, f"{name} uses no OAuth access token to refresh.", error="not_oauth")
        if not active:
            return RefreshResult(False, f"{name} is deactivated; activate it to refresh its token.", error="inactive")
        holder = leases.new_holder()
        claimed = self._checks.claim_checks([integration_id], holder)
        if integration_id not in claimed:
            message = (
                f"{name} is being checked or its token refreshed right now (by a colleague, another process or "
                "a scheduled job). Nothing to do: that one keeps its token fresh."
            )
            return RefreshResult(False, message, error="busy")
        try:
            _, stored = claimed[integration_id]  # read under the lease: what this refresh may replace
            result = self._run(provider, stored, integration_id)
        finally:
            self._checks.release_checks([integration_id], holder)
        details = {
            "provider": provider.key,
            "message": result.message,
            "error": result.error,
            "rotated": result.rotated,
            "needsReconnect": result.needs_reconnect,
            "expiresAt": result.expires_at.isoformat(timespec="seconds") if result.expires_at else None,
        }
        outcome = "success" if result.ok else "failure"
        audit.record_now(
            self._checks._factory, None, AUDIT_ACTION, outcome, integration_id=integration_id, details=details
        )
        log.info("Token refresh of integration %s: %s (%s) %s", integration_id, outcome, result.error, result.message)
        return result

    def _run(self, provider: Provider, stored: dict, integration_id: int) -> RefreshResult:
        """The provider's refresh of the stored configuration, within one check's deadline, without secrets."""
        assert provider.refresh is not None
        try:
            plain = self._checks._configurations.plain(provider, stored, integration_id)
        except DecryptionError:
            message = "A stored secret could not be decrypted. Edit the integration, enter its secrets again and save."
            return RefreshResult(False, message, needs_reconnect=True, error="undecryptable")
        secrets = secret_values(provider, plain)
        session = self._checks._http_session()
        policy = getattr(session, "policy", None)
        policy = policy if isinstance(policy, HttpPolicy) else HttpPolicy()
        context = self._checks.stored_context(session, integration_id, stored)
        try:
            with deadline(policy.check_deadline):  # what the lease (leases.lease_time) outlives
                result = provider.refresh(plain, context)
        except Exception as exc:
            message = (
                f"The {provider.name} token refresh failed unexpectedly ({type(exc).__name__}). The stored "
                "credentials were kept; the refresh is tried again later."
            )
            result = RefreshResult(False, message, error="unexpected")
        finally:
            session.close()
        return result.redacted(secrets)
