"""Connect links (core/connect/links.py) against a fake Salesforce login server: a customer with only
the link connects; the link is single-use, expires, can be revoked and re-sent; its state is what staff
see; a reconnect link keeps the integration; the owner is told; the public pages refuse what they must."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update
from starlette.requests import Request

import connect_routes
from core.connect.flows import FlowRefused
from core.connect.links import LinkRefused
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.integrations.health import Health
from core.models import AlertDelivery, CheckRecord, ConnectLink, Integration, utcnow
from tests.contract.alerts_helpers import Clock, make_pipeline
from tests.contract.connect_helpers import (
    CUSTOMER,
    PUBLIC_BASE_URL,
    callback_params,
    connect_by_link,
    connected_by_link,
    link_token,
    plain_config,
)
from tests.contract.test_alerts_email import settings
from tests.contract.test_alerts_email import smtp_server as smtp_server
from tests.contract.test_connect_salesforce import NEW_REFRESH_TOKEN, SECRETS
from tests.contract.test_connect_salesforce import app as app
from tests.contract.test_connect_salesforce import fake as fake
from ui import state


def link(ctx, staff, owner, **kwargs):
    return ctx.links.create(staff, "SALESFORCE", kwargs.pop("name", "Acme"), owner_id=owner.id, **kwargs)


def stored_links_text(ctx) -> str:
    with ctx.factory() as session:
        return repr(
            [
                {c.name: getattr(r, c.name) for c in ConnectLink.__table__.columns}
                for r in session.scalars(select(ConnectLink))
            ]
        )


def test_a_link_holds_256_random_bits_and_only_their_keyed_hash_is_stored(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner, note="Call Ada first")
    token = link_token(issued.url)
    assert len(token) >= 43 and urlsplit(issued.url).path == "/connect/" + token
    assert token not in stored_links_text(ctx) and token not in repr(issued.view)
    assert (issued.view.state, issued.view.owner, issued.view.created_by, issued.view.note) == (
        "created",
        "olga",
        "root",
        "Call Ada first",
    )
    assert issued.view.expires_at - issued.view.created_at == timedelta(days=7)


def test_the_customer_page_says_who_asks_for_what_and_holds_no_staff_data(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner, note="internal: VIP, discount 20%")
    page = ctx.links.open(link_token(issued.url), CUSTOMER)
    assert (page.state, page.company, page.provider_name, page.reconnect) == (
        "opened",
        ctx.settings.company_name,
        "Salesforce",
        False,
    )
    assert page.access and all(isinstance(words, str) and words for words in page.access)
    for staff_data in ("olga", "root", "VIP", "Acme"):
        assert staff_data not in repr(page)
    assert ctx.links.get(admin, issued.view.id).state == "opened"


def test_a_used_link_does_nothing_more(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner)
    assert connect_by_link(ctx, fake, issued.url).endswith("/connect/done?result=connected")
    token = link_token(issued.url)
    assert ctx.links.open(token, CUSTOMER).state == "completed"
    with pytest.raises(LinkRefused, match="already used"):
        ctx.links.begin(token, CUSTOMER)
    with ctx.factory() as session:
        assert session.scalar(select(func.count()).select_from(Integration)) == 1


def test_two_tabs_of_one_link_connect_once(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner)
    token = link_token(issued.url)
    first = callback_params(fake.consent(ctx.links.begin(token, CUSTOMER)))
    second = callback_params(fake.consent(ctx.links.begin(token, CUSTOMER)))
    ctx.connect.complete(first, None, CUSTOMER)
    with pytest.raises(FlowRefused, match="can no longer be used"):
        ctx.connect.complete(second, None, CUSTOMER)
    assert fake.exchanges == 1
    with ctx.factory() as session:
        assert session.scalar(select(func.count()).select_from(Integration)) == 1


def test_a_callback_that_arrives_twice_is_refused(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner)
    params = callback_params(fake.consent(ctx.links.begin(link_token(issued.url), CUSTOMER)))
    ctx.connect.complete(params, None, CUSTOMER)
    with pytest.raises(FlowRefused, match="already used"):
        ctx.connect.complete(params, None, CUSTOMER)


def test_an_expired_link_is_refused(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner, days=1)
    with ctx.factory.begin() as session:
        session.execute(update(ConnectLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    token = link_token(issued.url)
    assert ctx.links.open(token, CUSTOMER).state == "expired"
    with pytest.raises(LinkRefused, match="expired"):
        ctx.links.begin(token, CUSTOMER)
    assert ctx.links.get(admin, issued.view.id).state == "expired"


def test_a_link_that_expires_during_consent_is_refused_at_the_callback(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner)
    params = callback_params(fake.consent(ctx.links.begin(link_token(issued.url), CUSTOMER)))
    with ctx.factory.begin() as session:
        session.execute(update(ConnectLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(FlowRefused, match="can no longer be used"):
        ctx.connect.complete(params, None, CUSTOMER)
    assert fake.exchanges == 0


def test_revoking_stops_the_link_even_during_consent(ctx, fake, app, admin, owner, audit_texts):
    issued = link(ctx, admin, owner)
    token = link_token(issued.url)
    params = callback_params(fake.consent(ctx.links.begin(token, CUSTOMER)))
    assert ctx.links.revoke(admin, issued.view.id).state == "revoked"
    with pytest.raises(FlowRefused):
        ctx.connect.complete(params, None, CUSTOMER)
    assert fake.exchanges == 0
    assert ctx.links.open(token, CUSTOMER).state == "revoked"
    with pytest.raises(ValidationError, match="revoked already"):
        ctx.links.revoke(admin, issued.view.id)
    assert any('"connect_link.revoke"' in t for t in audit_texts())


def test_resending_replaces_the_address_and_renews_the_expiry(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner, days=1)
    old = link_token(issued.url)
    ctx.links.open(old, CUSTOMER)
    with ctx.factory.begin() as session:
        session.execute(update(ConnectLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    again = ctx.links.resend(admin, issued.view.id, days=3)
    assert link_token(again.url) != old
    assert (again.view.state, again.view.sent_count) == ("created", 2)
    assert timedelta(days=3) - (again.view.expires_at - utcnow()) < timedelta(minutes=1)
    assert ctx.links.open(old, CUSTOMER).state == "unknown"
    assert connect_by_link(ctx, fake, again.url).endswith("result=connected")
    with pytest.raises(ValidationError, match="completed, so it cannot be sent again"):
        ctx.links.resend(admin, issued.view.id)


def test_a_forged_or_foreign_state_is_refused_and_the_link_stays_live(ctx, fake, app, admin, owner):
    first = link(ctx, admin, owner, name="First")
    second = link(ctx, admin, owner, name="Second")
    params_first = callback_params(fake.consent(ctx.links.begin(link_token(first.url), CUSTOMER)))
    with pytest.raises(FlowRefused, match="not one the console started"):
        ctx.connect.complete(params_first | {"state": "forged-" + "x" * 40}, None, CUSTOMER)
    # The first link's code with the second link's state: PKCE binds a code to its own flow.
    params_second = callback_params(fake.consent(ctx.links.begin(link_token(second.url), CUSTOMER)))
    landing = ctx.connect.landing(ctx.connect.complete(params_second | {"code": params_first["code"]}, None, CUSTOMER))
    assert landing.endswith("/connect/done?result=failed")
    view = ctx.links.get(admin, second.view.id)
    assert view.state == "opened" and "invalid code verifier" in (view.last_error or "")
    with ctx.factory() as session:
        assert session.scalar(select(func.count()).select_from(Integration)) == 0
    assert connect_by_link(ctx, fake, second.url).endswith("result=connected")  # it can be tried again


def test_staff_see_states_with_filters_and_members_only_their_own(ctx, fake, app, admin, owner, member):
    done = link(ctx, admin, owner, name="Done")
    connect_by_link(ctx, fake, done.url)
    revoked = link(ctx, admin, owner, name="Revoked")
    ctx.links.revoke(admin, revoked.view.id)
    opened = link(ctx, admin, owner, name="Opened")
    ctx.links.open(link_token(opened.url), CUSTOMER)
    fresh = link(ctx, admin, admin, name="Admin's")

    assert [v.state for v in ctx.links.list(admin)] == ["created", "opened", "revoked", "completed"]
    assert [v.id for v in ctx.links.list(admin, states=("opened", "created"))] == [fresh.view.id, opened.view.id]
    assert [v.id for v in ctx.links.list(admin, states=("completed",), provider="SALESFORCE")] == [done.view.id]
    assert ctx.links.list(admin, provider="HUBSPOT") == []
    assert [v.integration_name for v in ctx.links.list(owner)] == ["Opened", "Revoked", "Done"]
    assert ctx.links.list(member) == []
    with pytest.raises(NotFoundError):
        ctx.links.revoke(member, done.view.id)
    with pytest.raises(ValidationError):
        ctx.links.list(admin, states=("lost",))


def test_who_may_create_a_link_and_for_whom(ctx, fake, app, admin, owner, member):
    with pytest.raises(PermissionDeniedError):
        ctx.links.create(owner, "SALESFORCE", "For Alice", owner_id=member.id)
    assert ctx.links.create(admin, "SALESFORCE", "For Alice", owner_id=member.id).view.owner == "alice"
    ctx.users.set_active(admin, "alice", False)
    with pytest.raises(ValidationError, match="active account"):
        ctx.links.create(admin, "SALESFORCE", "For Alice", owner_id=member.id)
    with pytest.raises(ValidationError, match="cannot be connected by link"):
        ctx.links.create(admin, "HUBSPOT", "No app", owner_id=owner.id)
    with pytest.raises(ValidationError, match="1 to 30 days"):
        link(ctx, admin, owner, days=31)
    assert ctx.links.create(owner, "SALESFORCE", "Mine").view.owner == "olga"


def test_a_reconnect_link_keeps_the_integration_its_history_and_settings(ctx, fake, app, admin, owner):
    first = link(ctx, admin, owner)
    connect_by_link(ctx, fake, first.url)
    integration_id = connected_by_link(ctx, first.view.id, admin)
    with ctx.factory.begin() as session:
        session.execute(
            update(Integration).where(Integration.id == integration_id).values(health=Health.NEEDS_RECONNECT.value)
        )
        history = session.scalar(select(func.count()).select_from(CheckRecord))
    before = ctx.integrations.get(owner, integration_id)

    again = ctx.links.create_reconnect(admin, integration_id)
    assert again.view.reconnects == integration_id and again.view.owner == "olga"
    assert ctx.links.open(link_token(again.url), CUSTOMER).reconnect
    fake.refresh["token"] = NEW_REFRESH_TOKEN
    assert connect_by_link(ctx, fake, again.url).endswith("result=connected")

    after = ctx.integrations.get(owner, integration_id)
    assert (after.id, after.name, after.created_at) == (integration_id, before.name, before.created_at)
    assert after.health != Health.NEEDS_RECONNECT.value
    assert plain_config(ctx, integration_id)["refreshToken"] == NEW_REFRESH_TOKEN
    with ctx.factory() as session:
        assert session.scalar(select(func.count()).select_from(Integration)) == 1
        assert session.scalar(select(func.count()).select_from(CheckRecord)) > history  # kept, and one more


def test_the_owner_is_told_by_alert_and_on_their_next_visit(ctx, fake, app, admin, owner):
    issued = link(ctx, admin, owner)
    connect_by_link(ctx, fake, issued.url)
    with ctx.factory() as session:
        alerts = session.scalars(select(AlertDelivery).where(AlertDelivery.kind == "link_completed")).all()
        assert [(a.user_id, a.channel, a.target_hint, a.status) for a in alerts] == [
            (owner.id, "email", "olga@example.com", "pending")
        ]
    notices = ctx.links.completions(owner)
    assert [(n.integration_name, n.provider_name) for n in notices] == [("Acme", "Salesforce")]
    assert ctx.links.completions(admin) == []
    ctx.links.mark_seen(owner, [n.link_id for n in notices])
    assert ctx.links.completions(owner) == []


def test_the_public_steps_are_rate_limited_per_address(ctx, fake, app, admin, owner):
    token = link_token(link(ctx, admin, owner).url)
    for _ in range(30):
        ctx.links.open(token, "203.0.113.50")
    with pytest.raises(LinkRefused, match="Too many"):
        ctx.links.open(token, "203.0.113.50")
    assert ctx.links.open(token, CUSTOMER).state == "opened"  # another address is not held up


# ----- the public routes ---------------------------------------------------------------------------


def request(method: str, path: str, query: str = "") -> Request:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "path_params": {"token": path.rsplit("/", 1)[1]},
        "query_string": query.encode(),
        "headers": [(b"host", b"console.example.com")],
        "client": ("198.51.100.7", 50000),
        "scheme": "https",
        "server": ("console.example.com", 443),
    }
    return Request(scope)


@pytest.fixture
def routes_ctx(ctx, monkeypatch):
    monkeypatch.setattr(state, "context", lambda: ctx)  # the services the routes ask for
    return ctx


def test_the_link_page_is_escaped_static_html_that_is_never_cached_or_framed(routes_ctx, fake, app, admin, owner):
    ctx = routes_ctx
    ctx.links.company_name = 'Acme <script>alert("x")</script> & Co'
    issued = link(ctx, admin, owner, note="secret staff note")
    answer = asyncio.run(connect_routes.link_page(request("GET", urlsplit(issued.url).path)))
    body = answer.body.decode()
    assert answer.status_code == 200
    assert "Acme &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co asks to connect your Salesforce" in body
    assert "<script" not in body and "secret staff note" not in body and "olga" not in body
    assert '<form method="post">' in body
    for header, value in connect_routes.HEADERS.items():
        assert answer.headers[header] == value


def test_connect_sends_the_browser_to_the_provider_and_a_dead_link_says_why(routes_ctx, fake, app, admin, owner):
    ctx = routes_ctx
    issued = link(ctx, admin, owner)
    path = urlsplit(issued.url).path
    answer = asyncio.run(connect_routes.link_begin(request("POST", path)))
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(fake.httpserver.url_for("/")) and "state=" in location
    ctx.links.revoke(admin, issued.view.id)
    refused = asyncio.run(connect_routes.link_page(request("GET", path)))
    assert refused.status_code == 410 and "withdrawn" in refused.body.decode()
    unknown = asyncio.run(connect_routes.link_page(request("GET", "/connect/" + "n" * 43)))
    assert unknown.status_code == 404
    for secret in SECRETS:
        assert secret not in location


def test_the_done_page_names_nothing_but_the_result(routes_ctx):
    connected = asyncio.run(connect_routes.link_done(request("GET", "/connect/done", "result=connected")))
    assert "Connected. You can close this tab." in connected.body.decode()
    other = asyncio.run(connect_routes.link_done(request("GET", "/connect/done", "result=<b>x</b>")))
    assert "nothing was saved" in other.body.decode() and "<b>" not in other.body.decode()
    assert PUBLIC_BASE_URL not in connected.body.decode()


def test_the_owners_link_alert_is_an_email_saying_the_customer_connected_it(ctx, fake, app, admin, owner, smtp_server):
    port, inbox = smtp_server
    issued = link(ctx, admin, owner, name="Acme Sales")
    connect_by_link(ctx, fake, issued.url)
    with ctx.factory() as session:
        (delivery_id,) = session.scalars(select(AlertDelivery.id).where(AlertDelivery.kind == "link_completed")).all()
    pipeline = make_pipeline(
        ctx, Clock(utcnow() + timedelta(seconds=1)), smtp=settings(port), public_base_url=PUBLIC_BASE_URL
    )
    assert pipeline.deliver(delivery_id).status == "sent"
    [mail] = inbox.messages
    assert mail["To"] == "olga@example.com"
    assert mail["Subject"] == "Connected by your customer: Acme Sales (Salesforce)"
    body = mail.get_content()
    assert "Your customer connected Acme Sales (Salesforce" in body and "through the connect link" in body
    assert f"{PUBLIC_BASE_URL}/integration?id=" in body
    for secret in SECRETS:
        assert secret not in body
