"""The vocabulary providers fill in: Provider, TestContext (TestResult is core.results'), and the catalog the
services are given."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import requests

from core.errors import NotFoundError
from core.fields import FieldSpec
from core.results import RefreshResult, TestResult
from core.tiers import Tier

if TYPE_CHECKING:  # core.connect.spec imports core.oauth, which imports this module
    from core.connect.spec import OAuthSpec

ProviderStatus = Literal["available", "coming_soon"]


class TokenCache(Protocol):
    """Where a provider keeps access tokens between tests (per integration, encrypted at rest)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, token: str, expires_in: float) -> None: ...


@dataclass
class TestContext:
    """What a connection test may use besides the configuration."""

    http: requests.Session
    tokens: TokenCache
    # A provider that receives a new refresh token (rotation) hands it here; the stored one is replaced.
    rotate_secret: Callable[[str, str], None] = lambda field_name, value: None

    __test__ = False


ConnectionTest = Callable[[dict, TestContext], TestResult]
# Fetch a new OAuth access token now, bypassing context.tokens, and cache it there; a rotated refresh token
# goes to context.rotate_secret. Never clears or changes a stored secret when it fails.
TokenRefresh = Callable[[dict, TestContext], RefreshResult]


@dataclass(frozen=True)
class Provider:
    key: str  # stored in integrations.provider, e.g. CHATWOOT
    name: str
    description: str
    category: str  # integration type: CRM, DATABASE, API, WEBHOOK
    fields: tuple[FieldSpec, ...]
    test: ConnectionTest | None = None
    status: ProviderStatus = "available"
    min_tier: Tier = Tier.FREE
    docs_url: str | None = None
    # Rules across fields, beyond what one FieldSpec can say: {field name: message}.
    check: Callable[[dict], dict[str, str]] | None = None
    # Completes a valid, normalised configuration before its secrets are encrypted (a webhook generates
    # its signing secret here). A secret kept from storage is still its ciphertext: fill in blanks only.
    prepare: Callable[[dict], dict] | None = None
    # Rewrites pasted input into what the fields expect, before anything is validated (a Chatwoot address-bar
    # URL into its base URL and account ID). Given a copy of the submitted values; secrets may be the mask.
    normalise: Callable[[dict], dict] | None = None
    # Turns a decrypted stored configuration of an older shape into today's (the Custom CRM's one Credentials
    # JSON into a field per secret); returns it unchanged when it is current.
    upgrade: Callable[[dict], dict] | None = None
    # Code a person needs next to the form (a webhook receiver's signature check), shown as a code block.
    guide: tuple[str, str] | None = None  # (title, Python code)
    # For a provider that obtains OAuth access tokens: refresh one ahead of its expiry (core.integrations.refresh).
    refresh: TokenRefresh | None = None
    # Whether a (stored, sealed) configuration obtains OAuth tokens at all (Custom CRM: only with OAUTH2);
    # None: every configuration of a provider with refresh does.
    uses_oauth: Callable[[dict], bool] | None = None
    # The authorization-code flow ("Connect with <provider>"), for a provider that offers one.
    oauth: OAuthSpec | None = None
    # A CRM's side of a contact sync: (plain configuration, context, budget_left) -> core.sync.contacts.ContactSide.
    contacts: Callable[..., Any] | None = None
    # The CRM objects a sync may use on that side (its crm_object keyword): contacts, and leads where the CRM has them.
    sync_objects: tuple[str, ...] = ("contacts",)

    @property
    def available(self) -> bool:
        return self.status == "available" and self.test is not None

    def refreshes(self, config: dict) -> bool:
        """Whether this configuration's OAuth access token can be refreshed ahead of its expiry."""
        return self.refresh is not None and (self.uses_oauth is None or self.uses_oauth(config))

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


class Catalog:
    """Providers by key, in display order."""

    def __init__(self, providers: Iterable[Provider]):
        self._providers = {p.key: p for p in providers}

    def __iter__(self):
        return iter(self._providers.values())

    def __contains__(self, key: str) -> bool:
        return key in self._providers

    def get(self, key: str) -> Provider:
        try:
            return self._providers[key]
        except KeyError as exc:
            raise UnknownProviderError(f"There is no provider called {key!r}.") from exc

    def in_category(self, category: str) -> list[Provider]:
        return [p for p in self if p.category == category]


class UnknownProviderError(NotFoundError):
    pass


@dataclass(frozen=True)
class IntegrationType:
    """A card on the Integrations page: what can be connected, and from which tier."""

    key: str
    name: str
    description: str
    available: bool
    note: str = ""


INTEGRATION_TYPES = (
    IntegrationType("CRM", "CRM Integration", "Chatwoot, Salesforce, HubSpot, Zoho, Pipedrive or any REST CRM.", True),
    IntegrationType("HELPDESK", "Helpdesk Setup", "Create Chatwoot agents and assign them to inboxes.", True, ""),
    IntegrationType("CHAT_WIDGET", "Chat Widget Script", "The live-chat script for a customer's website.", True, ""),
    IntegrationType("DATABASE", "Database", "PostgreSQL, MySQL / MariaDB and MongoDB connections.", True, ""),
    IntegrationType("API", "API", "Generic REST or GraphQL endpoints.", True, ""),
    IntegrationType("WEBHOOK", "Webhook", "Signed outgoing webhooks.", True, ""),
)
