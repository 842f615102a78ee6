"""The Chatwoot connection test, through the integration service, over real HTTP to the fake Chatwoot."""

from __future__ import annotations

import time

import pytest
import requests

from core.chatwoot.client import explain_status
from core.fields import MASK
from core.http import HttpPolicy, describe_exception, make_session
from core.models import utcnow
from tests.conftest import LOOPBACK_ALLOW
from tests.fakes.chatwoot import FakeChatwoot

PROFILE = "/api/v1/profile"


def config_for(base_url: str, token: str, account_id: str = "1") -> dict:
    return {
        "baseUrl": base_url,
        "accountId": account_id,
        "apiKey": token,
        "features": {"autoCreateInboxes": True, "autoCreateBots": False, "syncContacts": True},
    }


@pytest.fixture
def check(ctx, admin, audit_texts, assert_no_secret, chatwoot_tokens):
    """Test a configuration unsaved, then saved (create + test), and check the stored status and secrets."""

    def run(config: dict, *, saved: bool = True, unsaved: bool = True):
        results = []
        if unsaved:
            results.append(ctx.integrations.test_configuration(admin, "CHATWOOT", config))
        view = None
        if saved:
            created = ctx.integrations.create(admin, "Support desk", "CHATWOOT", config)
            assert created.status == "unknown"
            assert created.configuration["apiKey"] == MASK
            before = utcnow()
            results.append(ctx.integrations.test(admin, created.id))
            view = ctx.integrations.get(admin, created.id)
            result = results[-1]
            assert view.status == ("connected" if result.success else "error")
            assert view.status_message == (result.message if result.success else result.error or result.message)
            assert view.last_checked_at is not None
            assert view.last_checked_at >= before.replace(microsecond=0)  # both naive UTC
            assert view.version == created.version  # a test does not make an open edit conflict
        if len(results) == 2:
            assert (results[0].success, results[0].message) == (results[1].success, results[1].message)
        secrets = {*chatwoot_tokens.all, config["apiKey"]}
        for token in secrets:
            for result in results:
                assert_no_secret(token, result.message, result.error or "", result.details, result.as_dict())
            assert_no_secret(token, *audit_texts())
            if view is not None:
                assert_no_secret(token, view.status_message or "", view.configuration)
        assert any('"integration.test"' in text for text in audit_texts())
        return results[-1], view

    return run


def assert_sent_token(fake, token: str, count: int | None = None) -> None:
    received = fake.requests_to(PROFILE, "GET")
    assert received, "the fake received no profile request"
    if count is not None:
        assert len(received) == count
    for request in received:
        assert "api_access_token" in request.header_names  # the spec's header name, underscores included
        assert request.headers.get("api_access_token") == token
        assert "Authorization" not in request.headers


# ----- success -------------------------------------------------------------------------------------


def test_admin_token_connects_and_names_the_account_and_role(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    result, view = check(config_for(fake_chatwoot.url, tokens.admin))

    assert result.success, result.message
    assert "Acme Support" in result.message
    assert "administrator" in result.message
    assert "Ada Admin" in result.message
    assert result.details["accountInfo"] == {
        "id": 1,
        "name": "Acme Support",
        "role": "administrator",
        "user": "Ada Admin",
        "email": "ada@acme.test",
    }
    assert result.details["limited"] is False
    assert result.details["features"] == ["autoCreateInboxes", "syncContacts"]
    assert view.status == "connected"
    assert_sent_token(fake_chatwoot, tokens.admin, count=2)
    assert fake_chatwoot.requests_to(PROFILE)[0].headers.get("User-Agent", "").startswith("IntegrationsConsole/")


def test_agent_token_connects_but_is_limited(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    result, view = check(config_for(fake_chatwoot.url, tokens.agent))

    assert result.success, result.message
    assert result.details["limited"] is True
    assert result.details["accountInfo"]["role"] == "agent"
    assert "'agent'" in result.message
    assert "administrator" in result.message  # it says what is needed for the helpdesk features
    assert view.status == "connected"
    assert_sent_token(fake_chatwoot, tokens.agent)


def test_editing_a_saved_integration_tests_with_the_stored_token(
    fake_chatwoot, ctx, admin, assert_no_secret, chatwoot_tokens
):
    tokens = chatwoot_tokens
    created = ctx.integrations.create(admin, "Support desk", "CHATWOOT", config_for(fake_chatwoot.url, tokens.admin))
    form = {**created.configuration, "apiKey": MASK}  # the form gives back the mask, never the token

    result = ctx.integrations.test_configuration(admin, "CHATWOOT", form, integration_id=created.id)

    assert result.success, result.message
    assert_sent_token(fake_chatwoot, tokens.admin, count=1)
    assert_no_secret(tokens.admin, result.as_dict())


# ----- answers from Chatwoot ------------------------------------------------------------------------


def test_invalid_token_is_a_plain_401_message(fake_chatwoot, check):
    wrong = "not-the-right-token-123"
    result, view = check(config_for(fake_chatwoot.url, wrong))

    assert not result.success
    assert "401 Invalid Access Token" in result.message
    assert "Access token" in result.message  # where to find the right one
    assert wrong not in result.message and wrong not in (view.status_message or "")
    assert view.status == "error"
    assert_sent_token(fake_chatwoot, wrong)


def test_account_the_token_cannot_reach(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    result, view = check(
        config_for(fake_chatwoot.url, tokens.admin, account_id=str(fake_chatwoot.seed.other_account_id))
    )

    assert not result.success
    assert f"not a member of account {fake_chatwoot.seed.other_account_id}" in result.message
    assert "Accounts this token can reach: 1." in result.message
    assert view.status == "error"


def test_base_url_with_a_wrong_path_prefix_is_a_404(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    fake_chatwoot.allow_unrouted = True  # the misconfiguration under test
    result, view = check(config_for(fake_chatwoot.url + "/chatwoot", tokens.admin))

    assert not result.success
    assert "404 Not Found" in result.message
    assert "base URL" in result.message
    assert [r.path for r in fake_chatwoot.requests] == ["/chatwoot/api/v1/profile"] * 2
    assert view.status == "error"


def test_rate_limit_is_retried_after_retry_after_then_explained(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    fake_chatwoot.force(PROFILE, 429, {"error": "Too many requests"}, headers={"Retry-After": "1"}, times=2)
    started = time.monotonic()
    result, view = check(config_for(fake_chatwoot.url, tokens.admin), unsaved=False)

    assert time.monotonic() - started >= 0.9  # Retry-After was honoured
    assert not result.success
    assert "rate limiting" in result.message
    assert "Try again in a moment" in result.message  # Retry-After: 1
    assert_sent_token(fake_chatwoot, tokens.admin, count=2)  # one retry (http_max_retries=1), then the message
    assert view.status == "error"


def test_one_rate_limited_answer_is_retried_to_success(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    fake_chatwoot.force(PROFILE, 429, {"error": "Too many requests"}, headers={"Retry-After": "1"}, times=1)
    result, view = check(config_for(fake_chatwoot.url, tokens.admin), unsaved=False)

    assert result.success, result.message
    assert view.status == "connected"
    assert len(fake_chatwoot.requests_to(PROFILE)) == 2


def test_server_error_is_retried_then_explained(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    page = "<html><body><h1>We're sorry, but something went wrong.</h1></body></html>"
    fake_chatwoot.force(PROFILE, 500, page, times=4)
    result, view = check(config_for(fake_chatwoot.url, tokens.admin))

    assert not result.success
    assert "internal problem (500)" in result.message
    assert "<html" not in result.message
    assert len(fake_chatwoot.requests_to(PROFILE)) == 4  # two tests, each retried once
    assert view.status == "error"


def test_html_page_instead_of_the_api(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    login_page = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form></form></body></html>"
    fake_chatwoot.force(PROFILE, 200, login_page, times=2)
    result, view = check(config_for(fake_chatwoot.url, tokens.admin))

    assert not result.success
    assert "not JSON" in result.message
    assert "base URL" in result.message
    assert view.status == "error"


def test_redirect_on_the_same_server_keeps_the_token(fake_chatwoot, check, chatwoot_tokens):
    fake_chatwoot.force(PROFILE, 301, b"", headers={"Location": fake_chatwoot.url + PROFILE})
    result, _ = check(config_for(fake_chatwoot.url, chatwoot_tokens.admin), saved=False)

    assert result.success, result.message
    assert_sent_token(fake_chatwoot, chatwoot_tokens.admin, count=2)


def test_redirect_to_another_server_does_not_carry_the_token(fake_chatwoot, check, chatwoot_tokens):
    with FakeChatwoot() as elsewhere:
        fake_chatwoot.force(PROFILE, 302, b"", headers={"Location": elsewhere.url + PROFILE})
        result, _ = check(config_for(fake_chatwoot.url, chatwoot_tokens.admin), saved=False)

    (followed,) = elsewhere.requests
    assert followed.path == PROFILE
    assert not any(name.lower().replace("-", "_") == "api_access_token" for name in followed.header_names)
    assert chatwoot_tokens.admin not in str(list(followed.headers.items()))
    assert not result.success
    assert "401 Invalid Access Token" in result.message  # the other server saw no token


# ----- transport failures ----------------------------------------------------------------------------


def test_read_timeout(fake_chatwoot, check, ctx, chatwoot_tokens):
    tokens = chatwoot_tokens
    assert ctx.settings.http_read_timeout == 2
    fake_chatwoot.set_delay(3, PROFILE)
    started = time.monotonic()
    result, view = check(config_for(fake_chatwoot.url, tokens.admin), unsaved=False)

    assert time.monotonic() - started < 2.9  # gave up at the read timeout, and did not retry
    assert not result.success
    assert "did not answer in time" in result.message
    assert len(fake_chatwoot.requests_to(PROFILE)) == 1
    assert view.status == "error"


def test_connection_refused(closed_port, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    result, view = check(config_for(f"http://127.0.0.1:{closed_port}", tokens.admin))

    assert not result.success
    assert "refused the connection" in result.message
    assert view.status == "error"


def test_tls_to_a_plain_http_server(fake_chatwoot, check, chatwoot_tokens):
    tokens = chatwoot_tokens
    result, view = check(config_for(f"https://127.0.0.1:{fake_chatwoot.port}", tokens.admin))

    assert not result.success
    assert "secure connection to Chatwoot failed" in result.message
    assert view.status == "error"
    assert fake_chatwoot.requests == []  # the TLS hello never became an HTTP request


def test_dns_failure_is_described_without_any_lookup():
    exc = requests.ConnectionError(
        "HTTPSConnectionPool(host='chatwoot.invalid', port=443): Max retries exceeded with url: /api/v1/profile "
        '(Caused by NameResolutionError("<urllib3.connection.HTTPSConnection object>: Failed to resolve '
        "'chatwoot.invalid' ([Errno -2] Name or service not known)\"))"
    )
    message = describe_exception(exc, "Chatwoot")

    assert "could not be found (DNS)" in message
    assert "typos" in message


def test_chatwoot_error_bodies_become_distinct_sentences(fake_chatwoot, chatwoot_tokens):
    tokens, other = chatwoot_tokens, fake_chatwoot.seed.other_account_id
    agents = "/api/v1/accounts/1/agents"
    new = {"name": "Ada Again", "email": "ada@acme.test", "role": "agent"}
    cases = [
        ("GET", agents, "wrong-token-0000", None, "rejected the API access token (401 Invalid Access Token)"),
        ("POST", agents, tokens.agent, new, "not an administrator of this account"),
        ("GET", f"/api/v1/accounts/{other}/agents", tokens.admin, None, "not a member of this account"),
        ("POST", agents, tokens.admin, new, "refused the request: Email has already been taken."),
    ]
    with make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW)) as session:
        for method, path, token, body, expected in cases:
            response = session.request(method, fake_chatwoot.url + path, headers={"api_access_token": token}, json=body)
            assert expected in explain_status(response), (method, path, response.text)
        fake_chatwoot.accounts[1].seat_limit = 2
        full = session.post(fake_chatwoot.url + agents, headers={"api_access_token": tokens.admin}, json=new)
        assert "no agent seats left" in explain_status(full)


# ----- the fake itself answers like Chatwoot (later issues build on these endpoints) --------------


def _call(fake, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    return requests.request(
        method,
        fake.url + path,
        headers={"api_access_token": token or fake.seed.admin.access_token},
        timeout=5,
        **kwargs,
    )


def test_fake_agents_roles_seats_and_duplicates(fake_chatwoot, chatwoot_tokens):
    tokens = chatwoot_tokens
    agents = "/api/v1/accounts/1/agents"
    listed = _call(fake_chatwoot, "GET", agents, tokens.agent)
    assert listed.status_code == 200
    assert {a["email"] for a in listed.json()} == {"ada@acme.test", "andy@acme.test"}

    new = {"name": "Nia New", "email": "nia@acme.test", "role": "agent"}
    refused = _call(fake_chatwoot, "POST", agents, tokens.agent, json=new)
    assert (refused.status_code, refused.json()) == (401, {"error": "You are not authorized to do this action"})

    created = _call(fake_chatwoot, "POST", agents, json=new)
    assert created.status_code == 200
    assert created.json()["role"] == "agent" and created.json()["confirmed"] is False

    duplicate = _call(fake_chatwoot, "POST", agents, json={**new, "email": "NIA@acme.test"})
    assert duplicate.status_code == 422
    assert duplicate.json() == {"message": "Email has already been taken", "attributes": ["email"]}

    for n in range(2):  # seats: 5
        assert _call(fake_chatwoot, "POST", agents, json={**new, "email": f"x{n}@acme.test"}).status_code == 200
    full = _call(fake_chatwoot, "POST", agents, json={**new, "email": "late@acme.test"})
    assert (full.status_code, full.json()) == (402, {"error": "Account limit exceeded. Please purchase more licenses"})

    agent_id = fake_chatwoot.seed.agent.id
    assert _call(fake_chatwoot, "DELETE", f"{agents}/{agent_id}").status_code == 200
    assert _call(fake_chatwoot, "DELETE", f"{agents}/{agent_id}").json() == {"error": "Resource could not be found"}
    assert _call(fake_chatwoot, "GET", PROFILE, tokens.agent).json()["accounts"] == []
    assert all(agent_id not in inbox.members for inbox in fake_chatwoot.inboxes.values())


def test_fake_account_access_errors(fake_chatwoot):
    other = fake_chatwoot.seed.other_account_id
    outsider = _call(fake_chatwoot, "GET", f"/api/v1/accounts/{other}/agents")
    assert (outsider.status_code, outsider.json()) == (401, {"error": "You are not authorized to access this account"})
    missing = _call(fake_chatwoot, "GET", "/api/v1/accounts/99/inboxes")
    assert (missing.status_code, missing.json()) == (404, {"error": "Resource could not be found"})
    bad_token = _call(fake_chatwoot, "GET", "/api/v1/accounts/1/inboxes", "wrong-token-0000")
    assert (bad_token.status_code, bad_token.json()) == (401, {"error": "Invalid Access Token"})


def test_fake_inboxes_and_members(fake_chatwoot, chatwoot_tokens):
    tokens = chatwoot_tokens
    inboxes = _call(fake_chatwoot, "GET", "/api/v1/accounts/1/inboxes").json()["payload"]
    website = next(i for i in inboxes if i["channel_type"] == "Channel::WebWidget")
    assert website["website_token"] and website["website_token"] in website["web_widget_script"]
    assert {i["name"] for i in inboxes} == {"Website", "Support mail"}
    # An agent sees only the inboxes it works in.
    seen = _call(fake_chatwoot, "GET", "/api/v1/accounts/1/inboxes", tokens.agent).json()["payload"]
    assert [i["name"] for i in seen] == ["Website"]

    members = "/api/v1/accounts/1/inbox_members"
    admin_id, agent_id = fake_chatwoot.seed.admin.id, fake_chatwoot.seed.agent.id
    added = _call(fake_chatwoot, "POST", members, json={"inbox_id": website["id"], "user_ids": [admin_id]})
    assert [a["id"] for a in added.json()["payload"]] == [agent_id, admin_id]
    replaced = _call(fake_chatwoot, "PATCH", members, json={"inbox_id": website["id"], "user_ids": [admin_id]})
    assert [a["id"] for a in replaced.json()["payload"]] == [admin_id]
    removed = _call(fake_chatwoot, "DELETE", members, json={"inbox_id": str(website["id"]), "user_ids": [admin_id]})
    assert (removed.status_code, removed.content) == (200, b"")
    assert _call(fake_chatwoot, "GET", f"{members}/{website['id']}").json() == {"payload": []}

    unknown = _call(fake_chatwoot, "POST", members, json={"inbox_id": website["id"], "user_ids": [999]})
    assert (unknown.status_code, unknown.json()["message"]) == (422, "User must exist")
    as_agent = _call(fake_chatwoot, "POST", members, tokens.agent, json={"inbox_id": website["id"], "user_ids": [1]})
    assert as_agent.json() == {"error": "You are not authorized to do this action"}


def test_fake_platform_users_and_account_users(fake_chatwoot, chatwoot_tokens):
    tokens = chatwoot_tokens
    users = "/platform/api/v1/users"
    weak = _call(
        fake_chatwoot,
        "POST",
        users,
        tokens.platform,
        json={"name": "Pat", "email": "pat@acme.test", "password": "password"},
    )
    assert weak.status_code == 422 and weak.json()["attributes"] == ["password"]
    made = _call(
        fake_chatwoot,
        "POST",
        users,
        tokens.platform,
        json={"name": "Pat", "email": "pat@acme.test", "password": "Sup3r$ecret"},
    )
    assert made.status_code == 200
    user_id = made.json()["id"]
    again = _call(
        fake_chatwoot,
        "POST",
        users,
        tokens.platform,
        json={"name": "X", "email": "pat@acme.test", "password": "Other#Pass1"},
    )
    assert again.json()["id"] == user_id and again.json()["name"] == "Pat"  # returned unchanged
    assert _call(fake_chatwoot, "POST", users, tokens.admin, json={"email": "z@acme.test"}).status_code == 401

    link = {"user_id": user_id, "role": "agent"}
    linked = _call(fake_chatwoot, "POST", "/platform/api/v1/accounts/1/account_users", tokens.platform, json=link)
    assert linked.json() == {"account_id": 1, "user_id": user_id, "role": "agent"}
    other = fake_chatwoot.seed.other_account_id
    refused = _call(
        fake_chatwoot, "POST", f"/platform/api/v1/accounts/{other}/account_users", tokens.platform, json=link
    )
    assert (refused.status_code, refused.json()) == (401, {"error": "Non permissible resource"})
    profile = _call(fake_chatwoot, "GET", PROFILE, made.json()["access_token"]).json()
    assert [(a["id"], a["role"]) for a in profile["accounts"]] == [(1, "agent")]


def test_fake_reports_requests_that_break_the_description(fake_chatwoot, chatwoot_tokens):
    tokens = chatwoot_tokens
    response = _call(fake_chatwoot, "POST", "/api/v1/accounts/1/agents", json={"name": "No Email"})
    assert response.status_code == 422
    assert any("'email' is a required property" in v for v in fake_chatwoot.contract_violations)
    fake_chatwoot.contract_violations.clear()  # expected here; any other violation fails the test

    requests.get(fake_chatwoot.url + PROFILE, headers={"Api-Access-Token": tokens.admin}, timeout=5)
    assert any("Security" in v for v in fake_chatwoot.contract_violations)  # the header name is api_access_token
    fake_chatwoot.contract_violations.clear()
