"""The console's own OAuth app per provider: registered by administrators, the client secret encrypted
and bound to its row. The redirect URI every provider must be given is built from PUBLIC_BASE_URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core import audit, fields
from core.audit import Actor
from core.catalog import Catalog, Provider
from core.connect.spec import AppSettings
from core.crypto import DecryptionError, FieldCipher
from core.errors import PermissionDeniedError, ValidationError
from core.models import OAuthApp, utcnow
from core.paths import CALLBACK_PATH

MAX_CLIENT_ID = 500
MAX_SECRET = 2000
MAX_SCOPES = 40
_SCOPE = re.compile(r"[A-Za-z0-9._:/\-]{1,200}")


def redirect_uri(public_base_url: str | None) -> str | None:
    """The exact redirect URI to register at every provider, or None while PUBLIC_BASE_URL is not set."""
    return public_base_url.rstrip("/") + CALLBACK_PATH if public_base_url else None


def secret_context(app_id: int) -> bytes:
    """The associated data of an OAuth app's client secret: a copy in another row does not open."""
    return f"oauth_app:{int(app_id)}:client_secret".encode()


def parse_scopes(text: str) -> tuple[str, ...]:
    """Scopes separated by spaces or commas, each as a provider spells it; ValidationError otherwise."""
    scopes: list[str] = []
    for word in re.split(r"[\s,]+", (text or "").strip()):
        if not word:
            continue
        if not _SCOPE.fullmatch(word):
            raise ValidationError({"scopes": "A scope has only letters, digits and . _ : / -."})
        if word not in scopes:
            scopes.append(word)
    if len(scopes) > MAX_SCOPES:
        raise ValidationError({"scopes": f"At most {MAX_SCOPES} scopes."})
    return tuple(scopes)


@dataclass(frozen=True)
class AppView:
    """What a page sees of a registered app: never the secret, only whether one is stored."""

    provider: str
    client_id: str
    scopes: tuple[str, ...]
    authorize_url: str | None
    token_url: str | None
    secret_stored: bool
    updated_at: datetime
    updated_by: str | None


# The administrator's endpoints (spec.configurable_urls): field name -> (what it is, an example).
_ENDPOINTS = {
    "authorize_url": ("authorize URL", "https://crm.example.com/oauth/authorize"),
    "token_url": ("token URL", "https://crm.example.com/oauth/token"),
}


def _endpoint_problem(url: str, name: str) -> str | None:
    what, example = _ENDPOINTS[name]
    parts = urlsplit(url)
    if len(url) > fields.MAX_TEXT_LENGTH:
        return f"Keep the {what} under {fields.MAX_TEXT_LENGTH} characters."
    if problem := fields.text_problem(url):
        return problem
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment or parts.username:
        return f"Enter the {what} in full, starting with https:// or http://, like {example}."
    return None


def _endpoints(authorize_url: str | None, token_url: str | None) -> tuple[str, str]:
    """The administrator's authorize and token URLs, trimmed; ValidationError naming each one that is not
    a full http(s) address (no user name, no fragment)."""
    urls = {"authorize_url": (authorize_url or "").strip(), "token_url": (token_url or "").strip()}
    errors = {name: problem for name, url in urls.items() if (problem := _endpoint_problem(url, name))}
    if errors:
        raise ValidationError(errors)
    return urls["authorize_url"], urls["token_url"]


class OAuthApps:
    def __init__(self, factory: sessionmaker, cipher: FieldCipher, catalog: Catalog):
        self._factory = factory
        self._cipher = cipher
        self._catalog = catalog

    def providers(self) -> list[Provider]:
        """The providers that offer the authorization-code flow, in catalog order."""
        return [p for p in self._catalog if p.oauth is not None and p.available]

    def _spec_provider(self, provider_key: str) -> Provider:
        provider = self._catalog.get(provider_key)
        if provider.oauth is None:
            raise ValidationError({"provider": f"{provider.name} has no OAuth consent flow."})
        return provider

    def views(self) -> dict[str, AppView]:
        with self._factory() as session:
            rows = session.scalars(select(OAuthApp)).all()
            return {row.provider: _view(row) for row in rows}

    def view(self, provider_key: str) -> AppView | None:
        return self.views().get(provider_key)

    def save(
        self,
        actor: Actor,
        provider_key: str,
        client_id: str,
        client_secret: str | None,
        scopes: str,
        authorize_url: str | None = None,
        token_url: str | None = None,
    ) -> AppView:
        """Register or change the app (administrators only). An empty secret keeps the stored one."""
        if not actor.is_admin:
            raise PermissionDeniedError("Only administrators register OAuth apps.")
        provider = self._spec_provider(provider_key)
        spec = provider.oauth
        assert spec is not None
        client_id = (client_id or "").strip()
        errors: dict[str, str] = {}
        if not client_id or len(client_id) > MAX_CLIENT_ID or fields.text_problem(client_id):
            errors["client_id"] = "Enter the client id the provider shows for the app."
        secret = (client_secret or "").strip()
        if len(secret) > MAX_SECRET or (secret and fields.text_problem(secret)):
            errors["client_secret"] = "Paste the client secret as the provider shows it."
        urls: tuple[str | None, str | None] = (None, None)
        if spec.configurable_urls:
            try:
                urls = _endpoints(authorize_url, token_url)
            except ValidationError as exc:
                errors |= exc.errors
        if errors:
            raise ValidationError(errors)
        chosen = parse_scopes(scopes) or spec.default_scopes
        with self._factory.begin() as session:
            row = session.scalar(select(OAuthApp).where(OAuthApp.provider == provider.key).with_for_update())
            created = row is None
            if row is None:
                if not secret:
                    raise ValidationError({"client_secret": "Paste the client secret: a new app needs one."})
                row = OAuthApp(provider=provider.key, client_id=client_id, client_secret="", scopes="")
                session.add(row)
                session.flush()
            row.client_id, row.scopes = client_id, " ".join(chosen)
            row.authorize_url, row.token_url = urls
            row.updated_by, row.updated_at = actor.username, utcnow()
            if secret:
                row.client_secret = self._cipher.encrypt(secret, secret_context(row.id))
            details = {"provider": provider.key, "created": created, "secret_changed": bool(secret)}
            audit.record(session, actor, "oauth_app.save", "success", None, details)
            session.flush()
            return _view(row)

    def delete(self, actor: Actor, provider_key: str) -> None:
        if not actor.is_admin:
            raise PermissionDeniedError("Only administrators remove OAuth apps.")
        with self._factory.begin() as session:
            row = session.scalar(select(OAuthApp).where(OAuthApp.provider == provider_key))
            if row is not None:
                session.delete(row)
                audit.record(session, actor, "oauth_app.delete", "success", None, {"provider": provider_key})

    def settings(self, provider_key: str) -> AppSettings | None:
        """The registered app with its secret decrypted, for the flow only (never a page, a log)."""
        with self._factory() as session:
            row = session.scalar(select(OAuthApp).where(OAuthApp.provider == provider_key))
            if row is None:
                return None
            try:
                secret = self._cipher.decrypt(row.client_secret, secret_context(row.id))
            except DecryptionError:
                return None
            return AppSettings(
                provider=row.provider,
                client_id=row.client_id,
                client_secret=secret,
                scopes=tuple(row.scopes.split()),
                authorize_url=row.authorize_url,
                token_url=row.token_url,
            )


def _view(row: OAuthApp) -> AppView:
    return AppView(
        provider=row.provider,
        client_id=row.client_id,
        scopes=tuple(row.scopes.split()),
        authorize_url=row.authorize_url,
        token_url=row.token_url,
        secret_stored=bool(row.client_secret),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
