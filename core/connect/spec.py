"""What a provider declares for the authorization-code flow: endpoints, default scopes, PKCE, and how a
token answer becomes the provider's configuration (after the provider's own checks of that answer)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.errors import ConsoleError
from core.oauth import CLIENT_SECRET_POST, GrantedToken


class ConnectRefused(ConsoleError):
    """The flow stops here: the message is a sentence for a person and holds no secret."""


@dataclass(frozen=True)
class AppSettings:
    """An administrator's registered OAuth app, its secret decrypted (core services only, never a page)."""

    provider: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    authorize_url: str | None = None
    token_url: str | None = None

    def __repr__(self) -> str:  # never the secret, in a traceback or a log
        return f"AppSettings(provider={self.provider!r}, client_id={self.client_id!r})"


# The callback's query parameters besides code and state (Zoho's accounts-server and location).
CallbackParams = Mapping[str, str]


@dataclass(frozen=True)
class OAuthSpec:
    default_scopes: tuple[str, ...]
    # The consent page at the provider.
    authorize_url: Callable[[AppSettings], str]
    # The token endpoint for this callback; raises ConnectRefused when the callback names an unknown server.
    token_url: Callable[[AppSettings, CallbackParams], str]
    # The provider's configuration from a checked token answer; raises ConnectRefused.
    configuration: Callable[[AppSettings, GrantedToken, CallbackParams], dict]
    # Provider fields the flow fills (the rest of a reconnected integration's configuration is kept).
    token_fields: tuple[str, ...]
    pkce: bool = False
    auth_method: str = CLIENT_SECRET_POST
    scope_separator: str = " "
    extra_params: Mapping[str, str] = field(default_factory=dict)
    # Plain words for scopes, for the page that asks for consent.
    scope_words: Mapping[str, str] = field(default_factory=dict)
    # Whether the administrator enters the authorize and token URLs (the Custom CRM).
    configurable_urls: bool = False
    # The non-secret provider fields a new integration takes from the add form before consent (the Custom
    # CRM's API address): ConnectFlows.start checks them, keeps them as the flow's draft configuration, and
    # the token answer's fields are added to them. Empty: the token answer is the whole configuration.
    draft_fields: tuple[str, ...] = ()
    # Where the administrator registers the app, for the OAuth apps page.
    console_hint: str = ""
