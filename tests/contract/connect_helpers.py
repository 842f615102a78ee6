"""Shared pieces of the connect-by-consent tests: the console's public address, a staff sign-in session,
and running one consent round trip (start, the fake's consent, the callback)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from core.integrations.configuration import Configurations
from core.models import Integration, OAuthFlow
from providers import CATALOG

PUBLIC_BASE_URL = "https://console.example.com"
REDIRECT_URI = PUBLIC_BASE_URL + "/oauth/callback"


def use_public_base_url(ctx) -> None:
    """The context as PUBLIC_BASE_URL=https://console.example.com would build it."""
    ctx.connect.public_base_url = PUBLIC_BASE_URL


def signed_in(ctx, actor) -> str:
    """The handle of a new sign-in session of actor's (what a tab holds, and a cookie resolves to)."""
    token = ctx.sessions.start(actor.id, 1)
    handle = ctx.sessions.handle_for(token)
    assert handle
    return handle


def callback_params(callback_url: str) -> dict[str, str]:
    assert callback_url.startswith(REDIRECT_URI + "?"), callback_url
    return {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}


def plain_config(ctx, integration_id: int) -> dict:
    with ctx.factory() as session:
        row = session.get(Integration, integration_id)
        assert row is not None
        return Configurations(ctx.cipher).plain(CATALOG.get(row.provider), dict(row.configuration), row.id)


def stored_rows_text(ctx) -> str:
    """Every stored integration configuration and flow row, as text (to check nothing is in clear)."""
    with ctx.factory() as session:
        configs = [r.configuration for r in session.scalars(select(Integration))]
        flows = [
            {c.name: getattr(f, c.name) for c in OAuthFlow.__table__.columns}
            for f in session.scalars(select(OAuthFlow))
        ]
    return json.dumps([configs, flows], default=str)


CUSTOMER = "198.51.100.7"  # the customer's browser, as the public routes see its address


def link_token(url: str) -> str:
    assert url.startswith(PUBLIC_BASE_URL + "/connect/"), url
    return url.rsplit("/", 1)[1]


def connect_by_link(ctx, fake, url: str, **callback_changes) -> str:
    """What a customer with nothing but the link does: open it, press Connect, consent at the fake; the
    callback then answers with where it lands the browser (the public done page)."""
    token = link_token(url)
    page = ctx.links.open(token, CUSTOMER)
    assert page.state == "opened", page
    params = callback_params(fake.consent(ctx.links.begin(token, CUSTOMER))) | callback_changes
    return ctx.connect.landing(ctx.connect.complete(params, None, CUSTOMER))


def connected_by_link(ctx, link_id: int, staff) -> int:
    """The integration a completed link connected (asserting it completed)."""
    view = ctx.links.get(staff, link_id)
    assert view.state == "completed" and view.integration_id is not None, view
    return view.integration_id


def assert_a_customer_connects_by_link(ctx, fake, staff, owner, provider: str, name: str, secrets, audit, no_secret):
    """The issue's done-when for one CRM: a link made by staff, used by a customer with nothing else,
    lands on the done page; the owner's integration exists under the link's name, tested and connected,
    and no secret is in the audit, a stored row or the link's view."""
    issued = ctx.links.create(staff, provider, name, owner_id=owner.id)
    assert ctx.links.get(staff, issued.view.id).state == "created"

    assert connect_by_link(ctx, fake, issued.url) == PUBLIC_BASE_URL + "/connect/done?result=connected"

    view = ctx.integrations.get(owner, connected_by_link(ctx, issued.view.id, staff))
    assert (view.name, view.owner, view.status) == (name, owner.username, "connected")
    for secret in secrets:
        no_secret(secret, *audit(), stored_rows_text(ctx), ctx.links.get(staff, issued.view.id))
