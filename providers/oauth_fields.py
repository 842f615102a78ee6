"""The fields and rule shared by providers that take either a pasted token or an OAuth refresh token
(filled in by Connect with <provider>): one definition, so the two modes read and check alike."""

from __future__ import annotations

from core.fields import FieldSpec

OAUTH_FIELDS = ("clientId", "clientSecret", "refreshToken")


def oauth_client_fields(provider_name: str) -> tuple[FieldSpec, ...]:
    """Client id, client secret and refresh token, shown when authMode is OAUTH."""
    shown = ("authMode", ("OAUTH",))
    return (
        FieldSpec("clientId", "OAuth Client ID", "text", shown_when=shown),
        FieldSpec("clientSecret", "OAuth Client Secret", "password", sensitive=True, shown_when=shown),
        FieldSpec(
            "refreshToken",
            "OAuth Refresh Token",
            "password",
            sensitive=True,
            shown_when=shown,
            help=f"Filled in by Connect with {provider_name}.",
        ),
    )


def uses_oauth(config: dict) -> bool:
    return config.get("authMode") == "OAUTH"


def check_token_or_oauth(config: dict, token_field: str, missing_token: str) -> dict[str, str]:
    """OAuth needs the client and the refresh token; otherwise the pasted token is required."""
    if uses_oauth(config):
        return {name: "Needed for an OAuth connection." for name in OAUTH_FIELDS if not config.get(name)}
    return {} if config.get(token_field) else {token_field: missing_token}
