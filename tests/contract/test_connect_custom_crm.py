"""Connecting a Custom CRM by consent against a fake OAuth 2 server on 127.0.0.1 (RFC 6749 4.1, its error
shapes; RFC 7636 PKCE S256): the administrator's app names the authorize and token URLs, the client
authenticates with HTTP Basic, the add form's API address goes in as the flow's draft, and the console tests
the new integration against a fake CRM with an access token minted from the stored refresh token."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete, select, update
from werkzeug import Response

from core.crypto import is_encrypted
from core.errors import ValidationError
from core.fields import MASK
from core.integrations.health import Health
from core.integrations.refresh import TokenRefresher
from core.models import Integration, OAuthFlow, OAuthToken, utcnow
from providers import custom
from tests.contract.connect_helpers import (
    REDIRECT_URI,
    callback_params,
    connect_by_link,
    connected_by_link,
    plain_config,
    signed_in,
    stored_rows_text,
    use_public_base_url,
)
from tests.contract.helpers import basic, requests_to
from tests.factories import add_sealed_integration
from tests.fakes.oauth_server import FakeAuthServer

CLIENT_ID = "acme-crm-console-client"
CLIENT_SECRET = "acme-crm-client-secret-0123456789abcdef"
REFRESH_TOKEN = "acme-refresh-0123456789abcdef0123456789"
NEW_REFRESH_TOKEN = "acme-refresh-reconnected-fedcba98765432"
ROTATED_REFRESH_TOKEN = "acme-refresh-rotated-00112233445566778899"
ACCESS_TOKEN = "acme-access-from-the-code-0123456789abcdef"
MINTED_TOKEN = "acme-access-minted-by-refresh-0123456789ab"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, NEW_REFRESH_TOKEN, ROTATED_REFRESH_TOKEN, ACCESS_TOKEN, MINTED_TOKEN)
AUTHORIZE_PATH = "/crm-oauth/authorize"
TOKEN_PATH = "/crm-oauth/token"
HEALTH_PATH = "/api/health"


@pytest.fixture
def fake(httpserver, ctx):
    issued = {"refresh_token": REFRESH_TOKEN}
    refreshes: list[str] = []
    revoked: set[str] = set()
    rotate: dict[str, str] = {}  # refresh token -> the one the next refresh issues in its place

    def code_answer(grant) -> dict:
        answer = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}
        return answer | ({"refresh_token": issued["refresh_token"]} if issued["refresh_token"] else {})

    def refresh(token: str) -> dict | tuple[int, dict]:
        refreshes.append(token)
        if token in revoked:  # RFC 6749 5.2
            return 400, {"error": "invalid_grant", "error_description": "The refresh token was revoked."}
        answer = {"access_token": MINTED_TOKEN, "token_type": "Bearer", "expires_in": 3600}
        return answer | ({"refresh_token": rotate[token]} if token in rotate else {})

    server = FakeAuthServer(
        httpserver,
        AUTHORIZE_PATH,
        TOKEN_PATH,
        CLIENT_ID,
        CLIENT_SECRET,
        answer=code_answer,
        auth_method="client_secret_basic",
        require_pkce=True,  # the console sends S256; this server insists on it
        refresh_answer=refresh,
    ).install()
    server.issued, server.refreshes = issued, refreshes  # type: ignore[attr-defined]
    server.revoked, server.rotate = revoked, rotate  # type: ignore[attr-defined]

    def health(request):
        ok = request.headers.get("Authorization") == f"Bearer {MINTED_TOKEN}"
        return Response(json.dumps({"ok": ok}), 200 if ok else 401, content_type="application/json")

    httpserver.expect_request(HEALTH_PATH).respond_with_handler(health)
    use_public_base_url(ctx)
    yield server
    assert server.violations == []


@pytest.fixture
def app(ctx, admin, httpserver):
    return ctx.oauth_apps.save(
        admin,
        "CUSTOM",
        CLIENT_ID,
        CLIENT_SECRET,
        "",
        authorize_url=httpserver.url_for(AUTHORIZE_PATH),
        token_url=httpserver.url_for(TOKEN_PATH),
    )


def draft(httpserver, **changes) -> dict:
    return {"name": "Acme CRM", "apiEndpoint": httpserver.url_for("/api"), "healthPath": "/health"} | changes


def connect(ctx, fake, httpserver, actor, handle, **start):
    if "integration_id" not in start:
        start = {"name": "Acme", "draft": draft(httpserver)} | start
    url = ctx.connect.start(actor, handle, "CUSTOM", **start)
    params = callback_params(fake.consent(url))
    return url, params, ctx.connect.outcome(actor, ctx.connect.complete(params, handle, "127.0.0.1"))


def token_forms(httpserver) -> list[dict[str, str]]:
    requests = requests_to(httpserver, TOKEN_PATH)
    return [{k: v[0] for k, v in parse_qs(r.get_data(as_text=True)).items()} for r in requests]


def test_start_sends_the_browser_to_the_administrators_authorize_url_with_pkce(ctx, fake, app, owner, httpserver):
    url = ctx.connect.start(owner, signed_in(ctx, owner), "CUSTOM", "Acme", draft=draft(httpserver))
    assert url.startswith(httpserver.url_for(AUTHORIZE_PATH) + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43  # 256 bits
    assert "scope" not in query  # no default scopes, no empty scope parameter
    assert CLIENT_SECRET not in url
    with ctx.factory() as session:
        flow = session.scalars(select(OAuthFlow)).one()
    assert flow.draft_configuration == draft(httpserver)
    assert flow.verifier and is_encrypted(flow.verifier)
    assert query["state"] not in stored_rows_text(ctx)


def test_connect_exchanges_the_code_stores_the_tokens_encrypted_and_tests_the_draft_endpoint(
    ctx, fake, app, owner, httpserver, audit_texts, assert_no_secret
):
    handle = signed_in(ctx, owner)
    url, params, outcome = connect(ctx, fake, httpserver, owner, handle)
    assert outcome is not None and outcome.connected, outcome
    assert outcome.message.startswith("Connected Acme (Custom CRM). Connected to Acme CRM:")
    exchange, _ = requests_to(httpserver, TOKEN_PATH)
    assert exchange.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
    exchange_form, refresh_form = token_forms(httpserver)
    assert exchange_form["grant_type"] == "authorization_code" and exchange_form["redirect_uri"] == REDIRECT_URI
    assert len(exchange_form["code_verifier"]) >= 43 and "client_secret" not in exchange_form
    assert refresh_form == {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}
    (health,) = requests_to(httpserver, HEALTH_PATH)
    assert health.headers["Authorization"] == f"Bearer {MINTED_TOKEN}"
    view = ctx.integrations.get(owner, outcome.integration_id)
    assert (view.name, view.provider, view.status) == ("Acme", "CUSTOM", "connected")
    config = plain_config(ctx, view.id)
    assert config == draft(httpserver) | {
        "authType": "OAUTH2_CODE",
        "tokenUrl": httpserver.url_for(TOKEN_PATH),
        "clientAuth": "header",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }
    with ctx.factory() as session:
        stored = session.get(Integration, view.id).configuration
    assert is_encrypted(stored["clientSecret"]) and is_encrypted(stored["refreshToken"])
    assert stored["clientId"] == CLIENT_ID and "credentials" not in stored
    for secret in (*SECRETS, params["code"]):
        assert_no_secret(secret, url, outcome.message, view.configuration, *audit_texts(), stored_rows_text(ctx))
    # The next test reuses the cached access token.
    assert ctx.integrations.test(owner, view.id).success
    assert fake.refreshes == [REFRESH_TOKEN]


def test_a_form_without_a_valid_api_address_is_refused_before_consent(ctx, fake, app, owner, httpserver):
    handle = signed_in(ctx, owner)
    with pytest.raises(ValidationError) as missing:
        ctx.connect.start(owner, handle, "CUSTOM", "Acme", draft={"name": "Acme CRM"})
    assert missing.value.errors == {"apiEndpoint": "API Base URL is required."}
    with pytest.raises(ValidationError) as wrong:
        ctx.connect.start(owner, handle, "CUSTOM", "Acme", draft=draft(httpserver, apiEndpoint="ftp://crm.example"))
    assert set(wrong.value.errors) == {"apiEndpoint"} and "http://" in wrong.value.errors["apiEndpoint"]
    with pytest.raises(ValidationError) as no_draft:
        ctx.connect.start(owner, handle, "CUSTOM", "Acme")
    assert set(no_draft.value.errors) == {"name", "apiEndpoint"}
    with ctx.factory() as session:
        assert session.scalars(select(OAuthFlow)).all() == []


def test_only_the_draft_fields_are_kept_never_a_secret(ctx, fake, app, owner, httpserver):
    typed = draft(httpserver, token="typed-secret-0123456789", authType="BEARER")
    ctx.connect.start(owner, signed_in(ctx, owner), "CUSTOM", "Acme", draft=typed)
    with ctx.factory() as session:
        assert session.scalars(select(OAuthFlow)).one().draft_configuration == draft(httpserver)
    assert "typed-secret-0123456789" not in stored_rows_text(ctx)


def test_a_refused_code_is_reported_in_the_servers_words_and_nothing_is_saved(ctx, fake, app, owner, httpserver):
    handle = signed_in(ctx, owner)
    url = ctx.connect.start(owner, handle, "CUSTOM", "Acme", draft=draft(httpserver))
    params = callback_params(fake.consent(url))
    outcome = ctx.connect.outcome(owner, ctx.connect.complete(params | {"code": "code-unknown"}, handle, "x"))
    assert outcome is not None and not outcome.connected
    assert outcome.message.startswith(
        "Custom CRM did not exchange the authorization code for tokens (invalid_grant: authorization code is invalid"
    )
    assert ctx.integrations.list_integrations(owner) == []


def test_an_answer_without_a_refresh_token_is_refused(ctx, fake, app, owner, httpserver):
    fake.issued["refresh_token"] = None
    _, _, outcome = connect(ctx, fake, httpserver, owner, signed_in(ctx, owner))
    assert outcome is not None and not outcome.connected
    assert "issued no refresh token" in outcome.message and "offline_access" in outcome.message
    assert ctx.integrations.list_integrations(owner) == []


def test_reconnect_keeps_the_integration_and_replaces_only_the_tokens(ctx, fake, app, owner, httpserver, audit_texts):
    handle = signed_in(ctx, owner)
    _, _, first = connect(ctx, fake, httpserver, owner, handle)
    assert first is not None and first.connected
    integration_id = first.integration_id
    with ctx.factory.begin() as session:
        session.execute(
            update(Integration)
            .where(Integration.id == integration_id)
            .values(health=Health.NEEDS_RECONNECT.value, status="error")
        )
    before = ctx.integrations.get(owner, integration_id)
    fake.issued["refresh_token"] = NEW_REFRESH_TOKEN
    _, _, second = connect(ctx, fake, httpserver, owner, handle, integration_id=integration_id)
    assert second is not None and second.connected and second.integration_id == integration_id, second
    assert second.message.startswith("Reconnected Acme (Custom CRM).")
    after = ctx.integrations.get(owner, integration_id)
    assert (after.name, after.created_at, after.status) == ("Acme", before.created_at, "connected")
    assert after.health != Health.NEEDS_RECONNECT.value
    config = plain_config(ctx, integration_id)
    assert config["refreshToken"] == NEW_REFRESH_TOKEN
    assert {k: config[k] for k in ("name", "apiEndpoint", "healthPath")} == draft(httpserver)
    with ctx.factory() as session:
        assert len(session.scalars(select(Integration)).all()) == 1
    (reconnect,) = [json.loads(t) for t in audit_texts() if '"integration.reconnect"' in t]
    assert reconnect["details"]["fields"] == ["refreshToken"]


def test_a_refused_refresh_token_makes_the_integration_need_reconnecting(ctx, fake, app, owner, httpserver):
    _, _, outcome = connect(ctx, fake, httpserver, owner, signed_in(ctx, owner))
    assert outcome is not None and outcome.connected
    fake.revoked.add(REFRESH_TOKEN)
    refreshed = TokenRefresher(ctx.integrations).refresh(outcome.integration_id)
    assert not refreshed.ok and refreshed.needs_reconnect and refreshed.error == "invalid_grant"
    assert "Reconnect" in refreshed.message
    with ctx.factory.begin() as session:  # the cached access token has expired
        session.execute(delete(OAuthToken))
    result = ctx.integrations.test(owner, outcome.integration_id)
    assert not result.success and "refused the refresh token (invalid_grant" in result.message
    view = ctx.integrations.get(owner, outcome.integration_id)
    assert view.health == Health.NEEDS_RECONNECT.value
    assert plain_config(ctx, view.id)["refreshToken"] == REFRESH_TOKEN  # kept


def test_the_refresher_keeps_it_alive_and_stores_a_rotated_refresh_token(ctx, fake, app, owner, httpserver):
    _, _, outcome = connect(ctx, fake, httpserver, owner, signed_in(ctx, owner))
    assert outcome is not None and outcome.connected
    refresher = TokenRefresher(ctx.integrations)
    assert refresher.due(utcnow(), timedelta(minutes=15)) == []  # its access token lives an hour
    assert refresher.due(utcnow(), timedelta(hours=2)) == [outcome.integration_id]
    fake.rotate[REFRESH_TOKEN] = ROTATED_REFRESH_TOKEN
    result = refresher.refresh(outcome.integration_id)
    assert result.ok and result.rotated, result.message
    assert plain_config(ctx, outcome.integration_id)["refreshToken"] == ROTATED_REFRESH_TOKEN
    # The token the refresh cached is found under the rotated credentials: the next test refreshes nothing.
    assert ctx.integrations.test(owner, outcome.integration_id).success
    assert fake.refreshes == [REFRESH_TOKEN, REFRESH_TOKEN]


def test_a_pasted_refresh_token_works_without_consent(ctx, fake, owner, httpserver):
    config = draft(httpserver) | {
        "authType": "OAUTH2_CODE",
        "tokenUrl": httpserver.url_for(TOKEN_PATH),
        "clientAuth": "header",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }
    view = ctx.integrations.create(owner, "Pasted", "CUSTOM", config)
    result = ctx.integrations.test(owner, view.id)
    assert result.success, result.message
    assert token_forms(httpserver) == [{"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}]
    with pytest.raises(ValidationError) as refused:
        ctx.integrations.create(owner, "Empty", "CUSTOM", config | {"refreshToken": ""})
    assert refused.value.errors == {"refreshToken": "Refresh Token is required."}


def old_shape(httpserver) -> dict:
    """An OAUTH2_CODE configuration as the form stored it before the credentials were split: one JSON."""
    credentials = {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "refreshToken": REFRESH_TOKEN}
    return draft(httpserver) | {
        "authType": "OAUTH2_CODE",
        "tokenUrl": httpserver.url_for(TOKEN_PATH),
        "clientAuth": "header",
        "credentials": json.dumps(credentials),
    }


def test_an_old_credentials_json_is_tested_refreshed_and_its_rotated_token_kept(ctx, fake, owner, httpserver):
    integration = add_sealed_integration(ctx, owner, "CUSTOM", old_shape(httpserver))
    with ctx.factory() as session:
        assert is_encrypted(session.get(Integration, integration).configuration["credentials"])

    tested = ctx.integrations.test(owner, integration)
    assert tested.success, tested.message
    fake.rotate[REFRESH_TOKEN] = ROTATED_REFRESH_TOKEN
    refreshed = TokenRefresher(ctx.integrations).refresh(integration)
    assert refreshed.ok and refreshed.rotated, refreshed.message
    # The rotated refresh token went to its own field, which the old JSON no longer overrides.
    assert plain_config(ctx, integration)["refreshToken"] == ROTATED_REFRESH_TOKEN
    assert ctx.integrations.test(owner, integration).success  # the access token cached under the rotated one
    assert fake.refreshes == [REFRESH_TOKEN, REFRESH_TOKEN]


def test_a_form_test_of_an_old_credentials_json_keeps_the_refresh_token_it_rotated(ctx, fake, owner, httpserver):
    integration = add_sealed_integration(ctx, owner, "CUSTOM", old_shape(httpserver))
    fake.rotate[REFRESH_TOKEN] = ROTATED_REFRESH_TOKEN
    form = ctx.integrations.for_edit(owner, integration).configuration  # the secrets masked, as the form sends

    result = ctx.integrations.test_configuration(owner, "CUSTOM", form, integration)

    assert result.success, result.message
    with ctx.factory() as session:
        stored = session.get(Integration, integration).configuration
    assert "credentials" not in stored  # written back in today's shape before the test, so the rotation lands
    assert plain_config(ctx, integration)["refreshToken"] == ROTATED_REFRESH_TOKEN
    assert ctx.integrations.test(owner, integration).success
    assert fake.refreshes == [REFRESH_TOKEN]  # the next test used the access token cached under the rotated one


def test_an_edit_of_an_old_credentials_json_saves_the_new_fields_and_keeps_the_secrets(ctx, fake, owner, httpserver):
    integration = add_sealed_integration(ctx, owner, "CUSTOM", old_shape(httpserver))
    view = ctx.integrations.for_edit(owner, integration)
    assert {view.configuration[k] for k in ("clientSecret", "refreshToken")} == {MASK}
    assert view.configuration["clientId"] == CLIENT_ID and "credentials" not in view.configuration
    assert view.secret_hints == {"clientSecret": CLIENT_SECRET[-4:], "refreshToken": REFRESH_TOKEN[-4:]}

    saved = ctx.integrations.update(owner, integration, view.version, configuration=view.configuration)

    with ctx.factory() as session:
        stored = session.get(Integration, integration).configuration
    assert "credentials" not in stored and is_encrypted(stored["refreshToken"])
    assert {k: plain_config(ctx, saved.id)[k] for k in ("clientId", "clientSecret", "refreshToken")} == {
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "refreshToken": REFRESH_TOKEN,
    }
    assert ctx.integrations.test(owner, integration).success


def test_the_custom_crm_app_needs_http_authorize_and_token_urls(ctx, admin):
    with pytest.raises(ValidationError) as missing:
        ctx.oauth_apps.save(admin, "CUSTOM", CLIENT_ID, CLIENT_SECRET, "")
    assert set(missing.value.errors) == {"authorize_url", "token_url"}
    assert "authorize URL" in missing.value.errors["authorize_url"] and "token URL" in missing.value.errors["token_url"]
    for wrong in ("ftp://crm.example.com/token", "javascript:alert(1)", "https://user@crm.example.com/t", "crm/token"):
        with pytest.raises(ValidationError) as refused:
            ctx.oauth_apps.save(
                admin, "CUSTOM", CLIENT_ID, CLIENT_SECRET, "", "https://crm.example.com/authorize", wrong
            )
        assert set(refused.value.errors) == {"token_url"}, wrong
    assert ctx.oauth_apps.view("CUSTOM") is None
    saved = ctx.oauth_apps.save(
        admin, "CUSTOM", CLIENT_ID, CLIENT_SECRET, "crm.read offline_access",
        " https://crm.example.com/oauth/authorize ", "http://crm.internal:8080/oauth/token",
    )  # fmt: skip
    assert (saved.authorize_url, saved.token_url) == (
        "https://crm.example.com/oauth/authorize",
        "http://crm.internal:8080/oauth/token",
    )
    assert saved.scopes == ("crm.read", "offline_access")
    assert custom.OAUTH.configurable_urls and custom.OAUTH.pkce


def test_a_customer_connects_a_custom_crm_by_link_at_the_address_staff_entered(
    ctx, fake, app, owner, admin, httpserver
):
    with pytest.raises(ValidationError) as missing:  # the API address is staff's to give, before the link
        ctx.links.create(admin, "CUSTOM", "Acme by link", owner_id=owner.id)
    assert "apiEndpoint" in missing.value.errors
    issued = ctx.links.create(admin, "CUSTOM", "Acme by link", owner_id=owner.id, draft=draft(httpserver))

    assert connect_by_link(ctx, fake, issued.url).endswith("/connect/done?result=connected")

    integration_id = connected_by_link(ctx, issued.view.id, admin)
    config = plain_config(ctx, integration_id)
    assert (config["apiEndpoint"], config["authType"]) == (httpserver.url_for("/api"), "OAUTH2_CODE")
    assert ctx.integrations.get(owner, integration_id).status == "connected"
