"""A request whose body may hold a secret never follows a redirect to another host (issue 10, item 3).

The OAuth 2 token request (client_secret_post puts the client secret in the form body) and Chatwoot's
Platform create-user call (the new agent's password in the JSON body) are both sent to 127.0.0.1, which
answers 307 or 308 to a second server on 127.0.0.2. That other host must receive nothing at all.
"""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from core.chatwoot.client import ChatwootClient, ChatwootError
from core.http import HttpPolicy, RedirectRefusedError, make_session
from core.oauth import CLIENT_SECRET_POST, TokenError, request_token
from tests.conftest import LOOPBACK_ALLOW

CLIENT_SECRET = "client-secret-that-must-stay-home-0123456789"
PASSWORD = "Agent-Password-that-must-stay-home-42!"


@pytest.fixture
def other_host():
    server = HTTPServer(host="127.0.0.2", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def session():
    return make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, connect_timeout=1, read_timeout=2, max_retries=0))


def origin(server: HTTPServer) -> str:
    return f"http://{server.host}:{server.port}"


@pytest.mark.parametrize("status", [307, 308])
def test_the_oauth_client_secret_never_follows_a_redirect_to_another_host(httpserver, other_host, status):
    other_host.expect_request("/token").respond_with_json({"access_token": "x", "expires_in": 60})
    httpserver.expect_request("/token", method="POST").respond_with_data(
        "", status=status, headers={"Location": other_host.url_for("/token")}
    )

    with pytest.raises(TokenError) as caught:
        request_token(
            session(),
            httpserver.url_for("/token"),
            client_id="client",
            client_secret=CLIENT_SECRET,
            grant_type="client_credentials",
            auth_method=CLIENT_SECRET_POST,
        )

    assert other_host.log == []  # the other host received nothing
    assert CLIENT_SECRET in httpserver.log[0][0].get_data(as_text=True)  # it was in the body sent home
    cause = caught.value.cause
    assert isinstance(cause, RedirectRefusedError)
    assert origin(httpserver) in str(cause) and origin(other_host) in str(cause)
    assert f"answered {status} and redirected the request to" in str(cause)


@pytest.mark.parametrize("status", [307, 308])
def test_a_new_agents_password_never_follows_a_redirect_to_another_host(httpserver, other_host, status):
    other_host.expect_request("/platform/api/v1/users").respond_with_json({"id": 1})
    httpserver.expect_request("/platform/api/v1/users", method="POST").respond_with_data(
        "", status=status, headers={"Location": other_host.url_for("/platform/api/v1/users")}
    )
    client = ChatwootClient(httpserver.url_for("/"), "user-token", session(), platform_token="platform-token")

    with pytest.raises(ChatwootError) as caught:
        client.create_platform_user("Ann", "ann@example.com", PASSWORD)

    assert other_host.log == []
    assert PASSWORD in httpserver.log[0][0].get_data(as_text=True)
    message = str(caught.value)
    assert origin(httpserver) in message and origin(other_host) in message
    assert "never re-sends a request's body" in message
    assert PASSWORD not in message


def test_a_body_may_follow_a_redirect_on_the_same_host(httpserver):
    httpserver.expect_request("/new", method="POST").respond_with_json({"ok": True})
    httpserver.expect_request("/old", method="POST").respond_with_data(
        "", status=307, headers={"Location": httpserver.url_for("/new")}
    )
    response = session().post(httpserver.url_for("/old"), data={"a": "b"})
    assert response.json() == {"ok": True}
    assert httpserver.log[1][0].get_data(as_text=True) == "a=b"


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_that_drops_the_body_may_go_to_another_host(httpserver, other_host, status):
    # requests turns these into a GET without a body, so nothing secret travels; the headers rule applies.
    other_host.expect_request("/there", method="GET").respond_with_json({"ok": True})
    httpserver.expect_request("/here", method="POST").respond_with_data(
        "", status=status, headers={"Location": other_host.url_for("/there")}
    )
    response = session().post(httpserver.url_for("/here"), data={"secret": PASSWORD})
    assert response.json() == {"ok": True}
    (request, _), *_ = other_host.log
    assert request.get_data() == b"" and PASSWORD not in str(request.url)
