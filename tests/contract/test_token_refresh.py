"""OAuth tokens refreshed before they die (core.integrations.refresh), against OAuth token servers on 127.0.0.1.

Salesforce (refresh token, rotated), Zoho (refresh token) and a Custom CRM (client credentials) each get a
pytest-httpserver token endpoint; the refresher runs as the app wires it, over the test database.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select, update
from werkzeug import Request, Response

from core.crypto import field_context, is_encrypted
from core.integrations.refresh import AUDIT_ACTION, DEFAULT_IDLE_LIMITS, TokenRefresher
from core.models import AuditEvent, Integration, OAuthToken, utcnow
from core.tokens import StoredTokens
from providers import salesforce, zoho
from tests.contract.helpers import requests_to

SF_TOKEN_PATH = "/acme.my.salesforce.com/services/oauth2/token"
ZOHO_TOKEN_PATH = "/accounts.zoho.com/oauth/v2/token"
CUSTOM_TOKEN_PATH = "/oauth/token"

SF_CLIENT_SECRET = "sf-secret-0123456789ABCDEF0123456789"
SF_REFRESH_TOKEN = "5Aep861refresh.token.0123456789abcdef"
SF_ROTATED_TOKEN = "5Aep861rotated.token.fedcba9876543210"
SF_ACCESS_TOKENS = ("00Dxx!AQ4AQfirst.access.0123456789", "00Dxx!AQ4AQsecond.access.9876543210")
ZOHO_CLIENT_SECRET = "zs-0123456789abcdef0123456789abcdef01234567"
ZOHO_REFRESH_TOKEN = "1000.refresh.0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ZOHO_ACCESS_TOKENS = ("1000.access.aa11bb22cc33dd44ee55ff66", "1000.access.99887766554433221100ffee")
CUSTOM_CLIENT_SECRET = "cs-Zx9Cv7Bn5Mm3Kk1J-refresh"
CUSTOM_ACCESS_TOKEN = "custom-issued-access-token-0123456789"
SECRETS = (
    SF_CLIENT_SECRET,
    SF_REFRESH_TOKEN,
    SF_ROTATED_TOKEN,
    *SF_ACCESS_TOKENS,
    ZOHO_CLIENT_SECRET,
    ZOHO_REFRESH_TOKEN,
    *ZOHO_ACCESS_TOKENS,
    CUSTOM_CLIENT_SECRET,
    CUSTOM_ACCESS_TOKEN,
)
WAIT = 10  # seconds any test waits for another thread or the server, at most


@pytest.fixture(autouse=True)
def fake_vendors(monkeypatch, httpserver):
    """Salesforce's My Domain host and Zoho's accounts host become /<host>/ on the fake; its /instance and
    /zohoapis pass as a Salesforce instance and a Zoho API domain."""
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(salesforce, "LOGIN_BASE", base + "/{host}")
    monkeypatch.setattr(salesforce, "INSTANCE_URL_PATTERN", re.escape(base) + "/instance")
    monkeypatch.setattr(zoho, "ACCOUNTS_BASE", base + "/{host}")
    monkeypatch.setattr(zoho, "API_DOMAIN_PATTERN", re.escape(base) + "/zohoapis")
    return httpserver


@pytest.fixture
def refresher(ctx) -> TokenRefresher:
    return TokenRefresher(ctx.integrations)


@pytest.fixture
def no_secret_anywhere(caplog, audit_texts, assert_no_secret):
    """no_secret_anywhere(*results): no secret in the results, any audit row, or anything logged."""
    caplog.set_level(logging.DEBUG)

    def check(*results) -> None:
        texts = [json.dumps(r.__dict__, default=str) for r in results]
        for secret in SECRETS:
            assert_no_secret(secret, *texts, *audit_texts(), caplog.text)

    return check


def base(httpserver) -> str:
    return f"http://{httpserver.host}:{httpserver.port}"


def salesforce_config(refresh_token: str | None = SF_REFRESH_TOKEN) -> dict:
    config = {"instanceUrl": "https://acme.my.salesforce.com", "clientId": "3MVG9key", "clientSecret": SF_CLIENT_SECRET}
    return config | ({"refreshToken": refresh_token} if refresh_token else {})


def zoho_config() -> dict:
    return {
        "dataCentre": "com",
        "clientId": "1000.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
        "clientSecret": ZOHO_CLIENT_SECRET,
        "refreshToken": ZOHO_REFRESH_TOKEN,
    }


def custom_config(httpserver, auth_type: str = "OAUTH2") -> dict:
    config = {
        "name": "Acme CRM",
        "apiEndpoint": httpserver.url_for("/api"),
        "authType": auth_type,
        "healthPath": "/health",
    }
    if auth_type == "OAUTH2":
        credentials = {"clientId": "client-4f7a9c", "clientSecret": CUSTOM_CLIENT_SECRET}
        config |= {"tokenUrl": httpserver.url_for(CUSTOM_TOKEN_PATH), "clientAuth": "header", "scope": "read"}
    else:
        credentials = {"token": "bearer-token-not-oauth-0123"}
    return config | {"credentials": json.dumps(credentials)}


def salesforce_answer(httpserver, access_token: str = SF_ACCESS_TOKENS[0], **extra) -> dict:
    return {"access_token": access_token, "instance_url": base(httpserver) + "/instance", "scope": "api"} | extra


def zoho_answer(httpserver, access_token: str = ZOHO_ACCESS_TOKENS[0]) -> dict:
    return {"access_token": access_token, "api_domain": base(httpserver) + "/zohoapis", "expires_in": 3600}


def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}


def stored_config(ctx, integration_id: int) -> dict:
    with ctx.factory() as session:
        return session.get(Integration, integration_id).configuration


def cached_rows(ctx, integration_id: int) -> list[tuple[str, str, datetime]]:
    with ctx.factory() as session:
        rows = session.scalars(select(OAuthToken).where(OAuthToken.integration_id == integration_id)).all()
        return sorted((r.cache_key, r.access_token, r.expires_at) for r in rows)


def expire_cached_tokens(ctx, integration_id: int, at: datetime) -> None:
    with ctx.factory.begin() as session:
        session.execute(update(OAuthToken).where(OAuthToken.integration_id == integration_id).values(expires_at=at))


def refresh_events(ctx) -> list[AuditEvent]:
    with ctx.factory() as session:
        return list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == AUDIT_ACTION).order_by(AuditEvent.id))
        )


def decrypted_refresh_token(ctx, integration_id: int) -> str:
    sealed = stored_config(ctx, integration_id)["refreshToken"]
    assert is_encrypted(sealed)
    return ctx.cipher.decrypt(sealed, field_context(integration_id, "refreshToken"))


# ----- due: which tokens are refreshed ------------------------------------------------------------------


def test_a_token_near_expiry_is_due_and_refreshed(httpserver, ctx, admin, refresher, no_secret_anywhere):
    answers = iter([zoho_answer(httpserver, ZOHO_ACCESS_TOKENS[0]), zoho_answer(httpserver, ZOHO_ACCESS_TOKENS[1])])
    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_handler(
        lambda request: json_response(next(answers))
    )
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", zoho_config())
    first = refresher.refresh(view.id)
    assert first.ok, first.message
    ahead = timedelta(minutes=10)
    assert refresher.due(utcnow(), ahead, {}) == []  # a token with 59 minutes left is not due

    expire_cached_tokens(ctx, view.id, utcnow() + timedelta(minutes=2))  # nearly dead

    assert refresher.due(utcnow(), ahead, {}) == [view.id]
    result = refresher.refresh(view.id)

    assert result.ok and not result.needs_reconnect and not result.rotated, result.message
    assert result.error is None
    assert result.expires_at is not None
    assert timedelta(minutes=59) < result.expires_at - utcnow() <= timedelta(hours=1)
    assert "Refreshed the Zoho CRM access token" in result.message
    assert refresher.due(utcnow(), ahead, {}) == []
    sent = [form(r) for r in requests_to(httpserver, ZOHO_TOKEN_PATH)]
    assert [s["grant_type"] for s in sent] == ["refresh_token", "refresh_token"]
    assert all(s["refresh_token"] == ZOHO_REFRESH_TOKEN for s in sent)
    # The new token is the cached one, which the next connection test uses.
    (_, _, expires_at), *others = cached_rows(ctx, view.id)
    assert not others and expires_at > utcnow() + timedelta(minutes=55)
    cache_key = zoho._cache_key(zoho_config())
    assert (
        json.loads(StoredTokens(ctx.factory, ctx.cipher, view.id).get(cache_key) or "{}")["access_token"]
        == (ZOHO_ACCESS_TOKENS[1])
    )
    events = refresh_events(ctx)
    assert [(e.outcome, e.actor, e.integration_id) for e in events] == [("success", "system", view.id)] * 2
    assert events[-1].details["provider"] == "ZOHO"
    assert events[-1].details["needsReconnect"] is False
    no_secret_anywhere(first, result)


def test_due_takes_the_most_urgent_first_and_at_most_limit(httpserver, ctx, admin, refresher):
    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_json(zoho_answer(httpserver))
    ids = [ctx.integrations.create(admin, f"Zoho {n}", "ZOHO", zoho_config()).id for n in range(3)]
    for integration_id in ids:
        assert refresher.refresh(integration_id).ok
    now = utcnow()
    for integration_id, minutes in zip(ids, (8, -30, 3), strict=True):  # one already expired
        expire_cached_tokens(ctx, integration_id, now + timedelta(minutes=minutes))

    assert refresher.due(now, timedelta(minutes=10), {}) == [ids[1], ids[2], ids[0]]
    assert refresher.due(now, timedelta(minutes=10), {}, limit=2) == [ids[1], ids[2]]
    assert refresher.due(now, timedelta(minutes=5), {}) == [ids[1], ids[2]]
    assert refresher.due(now.replace(tzinfo=UTC), timedelta(minutes=5), {}) == [ids[1], ids[2]]  # aware works too
    assert refresher.due(now, timedelta(minutes=10), {}, limit=0) == []


def test_only_active_oauth_integrations_are_due(httpserver, ctx, admin, refresher):
    oauth2 = ctx.integrations.create(admin, "OAuth2 CRM", "CUSTOM", custom_config(httpserver)).id
    ctx.integrations.create(admin, "Bearer CRM", "CUSTOM", custom_config(httpserver, "BEARER"))
    ctx.integrations.create(
        admin, "Chatwoot", "CHATWOOT", {"baseUrl": base(httpserver), "accountId": "1", "apiKey": "k" * 24}
    )
    inactive = ctx.integrations.create(admin, "Old Zoho", "ZOHO", zoho_config()).id
    ctx.integrations.set_active(admin, inactive, False)

    # Never refreshed by the console: due once an idle limit applies to the provider.
    assert refresher.due(utcnow(), timedelta(minutes=10), {"CUSTOM": timedelta(days=1), "ZOHO": timedelta(days=1)}) == [
        oauth2
    ]
    assert refresher.due(utcnow(), timedelta(minutes=10), {}) == []
    inactive_result = refresher.refresh(inactive)
    assert not inactive_result.ok and inactive_result.error == "inactive"


def test_a_refresh_token_unused_past_its_idle_limit_is_due(httpserver, ctx, admin, refresher):
    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_json(zoho_answer(httpserver))
    used = ctx.integrations.create(admin, "Zoho used", "ZOHO", zoho_config()).id
    never = ctx.integrations.create(admin, "Zoho never", "ZOHO", zoho_config()).id
    assert refresher.refresh(used).ok
    now, ahead = utcnow(), timedelta(minutes=10)

    assert refresher.due(now, ahead) == [never]  # DEFAULT_IDLE_LIMITS: Zoho's 30 days
    assert DEFAULT_IDLE_LIMITS["ZOHO"] == timedelta(days=30) and DEFAULT_IDLE_LIMITS["SALESFORCE"] == timedelta(days=7)
    # Its cached token was fetched within the last day, at the earliest: a 2-hour idle limit may have passed.
    assert refresher.due(now, ahead, {"ZOHO": timedelta(hours=2)}) == [used, never]  # a known expiry first
    # Under a day after the fetch, whatever its lifetime, it has not: a 2-day limit is not reached.
    assert refresher.due(now, ahead, {"ZOHO": timedelta(days=2)}) == [never]
    assert refresher.due(now + timedelta(days=1, minutes=1), ahead, {"ZOHO": timedelta(days=2)}) == [used, never]


# ----- rotation -------------------------------------------------------------------------------------------


def test_a_rotated_refresh_token_replaces_the_stored_one(httpserver, ctx, admin, refresher, no_secret_anywhere):
    def token(request: Request) -> Response:
        sent = form(request)["refresh_token"]
        if sent == SF_REFRESH_TOKEN:  # rotation: a new refresh token, and the old one is dead from now on
            return json_response(salesforce_answer(httpserver, SF_ACCESS_TOKENS[0], refresh_token=SF_ROTATED_TOKEN))
        if sent == SF_ROTATED_TOKEN:
            return json_response(salesforce_answer(httpserver, SF_ACCESS_TOKENS[1], refresh_token=SF_ROTATED_TOKEN))
        return json_response({"error": "invalid_grant", "error_description": "expired access/refresh token"}, 400)

    httpserver.expect_request(SF_TOKEN_PATH, method="POST").respond_with_handler(token)
    view = ctx.integrations.create(admin, "Salesforce", "SALESFORCE", salesforce_config())

    first = refresher.refresh(view.id)

    assert first.ok and first.rotated, first.message
    assert "issued a new refresh token" in first.message
    assert decrypted_refresh_token(ctx, view.id) == SF_ROTATED_TOKEN
    assert ctx.integrations.get(admin, view.id).version == view.version  # a rotation is not an edit
    with ctx.factory() as session:
        rotated = session.scalars(select(AuditEvent).where(AuditEvent.action == "integration.secret_rotated")).one()
    assert rotated.details == {"field": "refreshToken"}
    assert refresh_events(ctx)[-1].details["rotated"] is True

    second = refresher.refresh(view.id)  # sends the new refresh token: the old one is no longer used

    assert second.ok and not second.rotated, second.message
    sent = [form(r)["refresh_token"] for r in requests_to(httpserver, SF_TOKEN_PATH)]
    assert sent == [SF_REFRESH_TOKEN, SF_ROTATED_TOKEN]
    assert decrypted_refresh_token(ctx, view.id) == SF_ROTATED_TOKEN
    # Salesforce names no lifetime: the token counts as a 15-minute session.
    assert second.expires_at is not None
    assert timedelta(minutes=14) < second.expires_at - utcnow() <= timedelta(minutes=15)
    no_secret_anywhere(first, second)


def test_a_rotation_never_overwrites_a_secret_changed_meanwhile(httpserver, ctx, admin, refresher):
    new_token = "5Aep861entered.by.a.person.00000000"
    view = ctx.integrations.create(admin, "Salesforce", "SALESFORCE", salesforce_config())

    def token(request: Request) -> Response:
        # While the refresh waits for its answer, someone saves a new refresh token.
        ctx.integrations.update(admin, view.id, view.version, configuration=salesforce_config(new_token))
        return json_response(salesforce_answer(httpserver, refresh_token=SF_ROTATED_TOKEN))

    httpserver.expect_request(SF_TOKEN_PATH, method="POST").respond_with_handler(token)

    result = refresher.refresh(view.id)

    assert result.ok and result.rotated, result.message
    assert decrypted_refresh_token(ctx, view.id) == new_token


# ----- failures keep what is stored -----------------------------------------------------------------------


def slow_answer(httpserver):
    def answer(request: Request) -> Response:
        time.sleep(3)  # longer than the tests' read timeout (2 s)
        return json_response(salesforce_answer(httpserver, SF_ACCESS_TOKENS[1]))

    return answer


@pytest.mark.parametrize(
    ("failing", "error", "reconnect"),
    [
        (lambda httpserver: lambda request: Response("upstream broke", status=500), "http_500", False),
        (slow_answer, "timeout", False),
        (
            lambda httpserver: (
                lambda request: json_response(
                    {"error": "invalid_grant", "error_description": f"expired access/refresh token {SF_REFRESH_TOKEN}"},
                    400,
                )
            ),
            "invalid_grant",
            True,
        ),
    ],
    ids=["500", "timeout", "invalid_grant"],
)
def test_a_failed_refresh_leaves_the_stored_tokens_as_they_were(
    httpserver, ctx, admin, refresher, no_secret_anywhere, failing, error, reconnect
):
    handlers = iter(
        [lambda request: json_response(salesforce_answer(httpserver, SF_ACCESS_TOKENS[0])), failing(httpserver)]
    )
    httpserver.expect_request(SF_TOKEN_PATH, method="POST").respond_with_handler(
        lambda request: next(handlers)(request)
    )
    view = ctx.integrations.create(admin, "Salesforce", "SALESFORCE", salesforce_config())
    assert refresher.refresh(view.id).ok  # a cached access token to keep
    config_before, cached_before = stored_config(ctx, view.id), cached_rows(ctx, view.id)
    assert len(cached_before) == 1

    result = refresher.refresh(view.id)

    assert not result.ok and not result.rotated
    assert (result.error, result.needs_reconnect) == (error, reconnect)
    assert result.expires_at is None
    assert "stored credentials were kept" in result.message
    assert ("connected again" in result.message) is reconnect
    assert stored_config(ctx, view.id) == config_before  # byte for byte: the same ciphertexts
    assert decrypted_refresh_token(ctx, view.id) == SF_REFRESH_TOKEN
    assert cached_rows(ctx, view.id) == cached_before
    last = refresh_events(ctx)[-1]
    assert (last.outcome, last.details["error"], last.details["needsReconnect"]) == ("failure", error, reconnect)
    with ctx.factory() as session:
        assert session.get(Integration, view.id).check_lease_holder is None  # the lease is free again
    no_secret_anywhere(result)


def test_zoho_refusing_its_refresh_token_needs_a_reconnect(httpserver, ctx, admin, refresher, no_secret_anywhere):
    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_json({"error": "invalid_code"})
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", zoho_config())
    before = stored_config(ctx, view.id)

    result = refresher.refresh(view.id)

    assert not result.ok and result.needs_reconnect and result.error == "invalid_code"
    assert "Generate a new one" in result.message
    assert stored_config(ctx, view.id) == before
    no_secret_anywhere(result)


def test_zoho_rate_limiting_is_not_a_reconnect(httpserver, ctx, admin, refresher):
    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_json(
        {
            "error_description": "You have made too many requests continuously. Please try again after some time.",
            "error": "Access Denied",
            "status": "failure",
        },
        status=400,
    )
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", zoho_config())

    result = refresher.refresh(view.id)

    assert not result.ok and not result.needs_reconnect and result.error == "Access Denied"
    assert "Wait ten minutes" in result.message


def test_a_refused_client_needs_a_reconnect_and_its_echoed_secret_is_hidden(
    httpserver, ctx, admin, refresher, no_secret_anywhere
):
    httpserver.expect_request(CUSTOM_TOKEN_PATH, method="POST").respond_with_json(
        {"error": "invalid_client", "error_description": f"unknown client secret {CUSTOM_CLIENT_SECRET}"}, status=401
    )
    view = ctx.integrations.create(admin, "OAuth2 CRM", "CUSTOM", custom_config(httpserver))

    result = refresher.refresh(view.id)

    assert not result.ok and result.needs_reconnect and result.error == "invalid_client"
    assert "unknown client secret" in result.message  # the endpoint's words, the secret itself masked
    no_secret_anywhere(result)


def test_an_unreachable_token_endpoint_is_tried_again_later(httpserver, ctx, admin, refresher, closed_port):
    config = custom_config(httpserver) | {"tokenUrl": f"http://127.0.0.1:{closed_port}/oauth/token"}
    view = ctx.integrations.create(admin, "OAuth2 CRM", "CUSTOM", config)

    result = refresher.refresh(view.id)

    assert not result.ok and not result.needs_reconnect and result.error == "unreachable"


# ----- client credentials ----------------------------------------------------------------------------------


def test_a_client_credentials_token_is_refreshed_and_used_by_the_next_test(httpserver, ctx, admin, refresher):
    httpserver.expect_request(CUSTOM_TOKEN_PATH, method="POST").respond_with_json(
        {"access_token": CUSTOM_ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 1800, "scope": "read"}
    )
    httpserver.expect_request(
        "/api/health", method="GET", headers={"Authorization": f"Bearer {CUSTOM_ACCESS_TOKEN}"}
    ).respond_with_json({"ok": True})
    view = ctx.integrations.create(admin, "OAuth2 CRM", "CUSTOM", custom_config(httpserver))

    refreshed = refresher.refresh(view.id)
    tested = ctx.integrations.test(admin, view.id)

    assert refreshed.ok, refreshed.message
    assert refreshed.expires_at is not None and refreshed.expires_at - utcnow() > timedelta(minutes=29)
    assert tested.success and tested.details["token"]["cached"] is True, tested.message
    assert [form(r)["grant_type"] for r in requests_to(httpserver, CUSTOM_TOKEN_PATH)] == ["client_credentials"]


def test_salesforce_client_credentials_are_refreshed_too(httpserver, ctx, admin, refresher):
    httpserver.expect_request(SF_TOKEN_PATH, method="POST").respond_with_json(salesforce_answer(httpserver))
    view = ctx.integrations.create(admin, "Salesforce CC", "SALESFORCE", salesforce_config(refresh_token=None))

    result = refresher.refresh(view.id)

    assert result.ok and not result.rotated, result.message
    assert [form(r)["grant_type"] for r in requests_to(httpserver, SF_TOKEN_PATH)] == ["client_credentials"]


def test_what_cannot_be_refreshed_says_so(httpserver, ctx, admin, refresher):
    bearer = ctx.integrations.create(admin, "Bearer CRM", "CUSTOM", custom_config(httpserver, "BEARER")).id

    assert refresher.refresh(bearer).error == "not_oauth"
    assert refresher.refresh(bearer + 1000).error == "not_found"
    assert refresh_events(ctx) == []  # nothing was attempted
    assert httpserver.log == []


# ----- one at a time ---------------------------------------------------------------------------------------


def test_two_refreshes_at_once_reach_the_token_server_once(httpserver, ctx, admin, refresher):
    arrived, second_tried = threading.Event(), threading.Event()

    def token(request: Request) -> Response:
        arrived.set()
        second_tried.wait(WAIT)  # hold the first request until the second refresh has tried
        return json_response(zoho_answer(httpserver))

    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_handler(token)
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", zoho_config())
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", refresher.refresh(view.id)))
    first.start()
    try:
        assert arrived.wait(WAIT), "the first refresh never reached the token server"
        second = TokenRefresher(ctx.integrations).refresh(view.id)  # as another process would
        test_meanwhile = ctx.integrations.test(admin, view.id)
    finally:
        second_tried.set()
        first.join(WAIT * 3)
    assert not first.is_alive()

    assert results["first"].ok, results["first"].message
    assert not second.ok and not second.needs_reconnect and second.error == "busy"
    assert "right now" in second.message
    assert not test_meanwhile.success and test_meanwhile.error == "busy"
    assert len(requests_to(httpserver, ZOHO_TOKEN_PATH)) == 1
    assert [e.outcome for e in refresh_events(ctx)] == ["success"]  # the refused one did nothing to audit
    with ctx.factory() as session:
        assert session.get(Integration, view.id).check_lease_holder is None


# ----- on the engine -------------------------------------------------------------------------------


def test_the_engine_refreshes_a_dying_token_once_per_plan(httpserver, ctx, admin):
    answers = iter([zoho_answer(httpserver, ZOHO_ACCESS_TOKENS[0]), zoho_answer(httpserver, ZOHO_ACCESS_TOKENS[1])])
    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_handler(
        lambda request: json_response(next(answers))
    )
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", zoho_config())
    assert ctx.tasks.refresher is not None and ctx.tasks.refresher.refresh(view.id).ok
    expire_cached_tokens(ctx, view.id, utcnow() + timedelta(minutes=2))  # nearly dead
    huey = ctx.tasks.huey

    ctx.tasks.tick.call_local()
    ctx.tasks.tick.call_local()  # the next tick, before the refresh ran: handed out once only
    jobs = []
    while (job := huey.dequeue()) is not None:
        jobs.append(job)
    refreshes = [job for job in jobs if job.name == "refresh_token"]
    assert [job.args for job in refreshes] == [(view.id,)]
    huey.execute(refreshes[0])

    assert [token for _, token, _ in cached_rows(ctx, view.id)][-1:] != []
    assert len(httpserver.log) == 2  # the first refresh and the engine's


def test_a_refused_grant_on_the_engine_moves_the_integration_to_needs_reconnect(httpserver, ctx, admin):
    from core.models import CheckRecord, HealthChange

    httpserver.expect_request(ZOHO_TOKEN_PATH, method="POST").respond_with_json({"error": "invalid_code"})
    view = ctx.integrations.create(admin, "Zoho", "ZOHO", zoho_config())

    ctx.tasks.refresh_token.call_local(view.id)

    with ctx.factory() as session:
        row = session.get(Integration, view.id)
        assert row is not None and row.health == "needs_reconnect" and row.last_check_class == "auth"
        changes = session.scalars(select(HealthChange).where(HealthChange.integration_id == view.id)).all()
        history = session.scalars(select(CheckRecord).where(CheckRecord.integration_id == view.id)).all()
    assert [(c.old, c.new) for c in changes] == [("unknown", "needs_reconnect")]
    assert [(h.trigger, h.code) for h in history] == [("refresh", "invalid_code")]
    assert ctx.tasks.refresher.due(utcnow(), timedelta(days=365)) == []  # not retried while refused
