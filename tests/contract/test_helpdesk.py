"""The helpdesk and widget services against the fake Chatwoot, over real HTTP on 127.0.0.1.

The fake checks every request and response against Chatwoot's OpenAPI description; the fixture fails a
test whose traffic broke it.
"""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import inspect, select

from core.chatwoot.client import NO_SEATS, NOT_PERMITTED, RATE_LIMITED, ChatwootClient, ChatwootError
from core.chatwoot.helpdesk import HelpdeskError, HelpdeskUnavailable
from core.chatwoot.widget import WidgetSettings
from core.errors import NotFoundError, ValidationError
from core.http import HttpPolicy, make_session
from core.models import AuditEvent, WidgetPreset
from core.tiers import Tier, TierLimitError
from tests.conftest import LOOPBACK_ALLOW
from tests.fakes.chatwoot import WEB_WIDGET

AGENTS = "/api/v1/accounts/1/agents"
MEMBERS = "/api/v1/accounts/1/inbox_members"
PLATFORM_USERS = "/platform/api/v1/users"
ACCOUNT_USERS = "/platform/api/v1/accounts/1/account_users"
PASSWORD = "Corr3ct-Horse!"


def audit_events(ctx, action: str | None = None) -> list[AuditEvent]:
    with ctx.factory() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


def inbox_ids(fake) -> tuple[int, int]:
    website = next(i for i in fake.inboxes.values() if i.channel_type == WEB_WIDGET and i.account_id == 1)
    mail = next(i for i in fake.inboxes.values() if i.channel_type != WEB_WIDGET and i.account_id == 1)
    return website.id, mail.id


def writes(fake) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method != "GET"]


# ----- the connection -------------------------------------------------------------------------------------


def test_connection_of_an_administrators_integration(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    connection = ctx.helpdesk.connection(admin, integration_id)

    assert connection.integration_id == integration_id
    assert (connection.account_id, connection.account_name) == (1, "Acme Support")
    assert connection.user_id == fake_chatwoot.seed.admin.id
    assert connection.is_administrator and connection.role == "administrator"
    assert connection.base_url == fake_chatwoot.url
    assert connection.has_platform_token is False
    assert [v.id for v in ctx.helpdesk.integrations(admin)] == [integration_id]


def test_unavailable_says_exactly_what_is_missing(
    ctx, admin, member, fake_chatwoot, chatwoot_integration, chatwoot_tokens, closed_port
):
    def reason(actor, integration_id) -> HelpdeskUnavailable:
        with pytest.raises(HelpdeskUnavailable) as caught:
            ctx.helpdesk.connection(actor, integration_id)
        assert caught.value.reason in HelpdeskUnavailable.REASONS
        for token in chatwoot_tokens.all:
            assert token not in str(caught.value)
        return caught.value

    assert reason(admin, 12345).reason == "no_integration"
    members = chatwoot_integration(member)
    # An administrator may see a member's integration, but the helpdesk acts only through one's own.
    assert reason(admin, members).reason == "no_integration"

    inactive = chatwoot_integration(admin, name="Switched off")
    ctx.integrations.set_active(admin, inactive, False)
    error = reason(admin, inactive)
    assert error.reason == "inactive" and "Activate it on the Integrations page" in str(error)

    as_agent = reason(admin, chatwoot_integration(admin, chatwoot_tokens.agent, name="Agent token"))
    assert as_agent.reason == "not_admin"
    assert "'agent'" in str(as_agent) and "administrator's access token" in str(as_agent)

    wrong = reason(admin, chatwoot_integration(admin, "wrong-token-1234567", name="Wrong token"))
    assert wrong.reason == "not_admin" and "401 Invalid Access Token" in str(wrong)

    elsewhere = chatwoot_integration(admin, account_id=fake_chatwoot.seed.other_account_id, name="Other account")
    outsider = reason(admin, elsewhere)
    assert outsider.reason == "not_admin" and "not a member of Chatwoot account" in str(outsider)

    down = reason(admin, chatwoot_integration(admin, base_url=f"http://127.0.0.1:{closed_port}", name="Down"))
    assert down.reason == "unreachable" and "refused the connection" in str(down)

    fake_chatwoot.force("/api/v1/profile", 500, {"error": "boom"}, times=2)
    assert reason(admin, chatwoot_integration(admin, name="Broken server")).reason == "unreachable"


def test_reads_agents_inboxes_membership_and_seats(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    website, mail = inbox_ids(fake_chatwoot)
    seed = fake_chatwoot.seed

    agents = ctx.helpdesk.agents(admin, integration_id)
    assert [(a.name, a.role) for a in agents] == [("Ada Admin", "administrator"), ("Andy Agent", "agent")]
    inboxes = ctx.helpdesk.inboxes(admin, integration_id)
    assert [(i.name, i.is_website, bool(i.website_token)) for i in inboxes] == [
        ("Support mail", False, False),
        ("Website", True, True),
    ]
    assert ctx.helpdesk.membership(admin, integration_id) == {website: {seed.agent.id}, mail: set()}
    seats = ctx.helpdesk.seats(admin, integration_id)
    assert (seats.used, seats.allowed, seats.can_add) == (1, None, True)  # Ada is the integration's own user

    snapshot = ctx.helpdesk.snapshot(admin, integration_id)
    assert snapshot.agents == agents and snapshot.inboxes == inboxes
    assert snapshot.membership == {website: {seed.agent.id}, mail: set()}
    assert snapshot.connection.user_id == seed.admin.id
    assert len(fake_chatwoot.requests_to("/api/v1/profile")) == 5  # one check per call, one for the snapshot


# ----- creating agents -------------------------------------------------------------------------------------


def test_create_agent_through_the_application_api(
    ctx, admin, fake_chatwoot, chatwoot_integration, audit_texts, assert_no_secret, chatwoot_tokens
):
    integration_id = chatwoot_integration(admin)
    assert ctx.helpdesk.preview_email(admin, "Nia New") == "root+nia-new@example.com"

    created = ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent", password=PASSWORD)

    assert created.method == "application" and created.password_set is False
    assert created.email == "root+nia-new@example.com"
    assert "e-mails root+nia-new@example.com a link to set a password" in created.message
    assert created.agent.confirmed is False and created.agent.role == "agent"
    (sent,) = fake_chatwoot.requests_to(AGENTS, "POST")
    assert sent.json() == {"name": "Nia New", "email": "root+nia-new@example.com", "role": "agent"}
    assert sent.headers.get("api_access_token") == chatwoot_tokens.admin
    assert fake_chatwoot.requests_to(PLATFORM_USERS) == []
    user = fake_chatwoot.users[created.agent.id]
    assert user.password is None  # Chatwoot sets none: it e-mails a link
    assert fake_chatwoot.account_users[(1, user.id)].role == "agent"

    (event,) = audit_events(ctx, "helpdesk.agent_create")
    assert (event.outcome, event.integration_id) == ("success", integration_id)
    assert event.details == {
        "name": "Nia New",
        "email": "root+nia-new@example.com",
        "role": "agent",
        "method": "application",
        "agent_id": created.agent.id,
    }
    for secret in (PASSWORD, *chatwoot_tokens.all):
        assert_no_secret(secret, *audit_texts(), created.message)


def test_create_agent_with_a_password_through_the_platform_api(
    ctx, admin, fake_chatwoot, chatwoot_integration, audit_texts, assert_no_secret, chatwoot_tokens
):
    integration_id = chatwoot_integration(admin, platform_token=chatwoot_tokens.platform)
    assert ctx.helpdesk.connection(admin, integration_id).has_platform_token

    created = ctx.helpdesk.create_agent(admin, integration_id, "Zoë Ops", "administrator", password=PASSWORD)

    assert created.method == "platform" and created.password_set is True
    assert created.email == "root+zoe-ops@example.com"
    assert "with the password you set" in created.message
    (made,) = fake_chatwoot.requests_to(PLATFORM_USERS, "POST")
    assert made.json() == {"name": "Zoë Ops", "email": "root+zoe-ops@example.com", "password": PASSWORD}
    assert made.headers.get("api_access_token") == chatwoot_tokens.platform
    (linked,) = fake_chatwoot.requests_to(ACCOUNT_USERS, "POST")
    assert linked.json() == {"user_id": created.agent.id, "role": "administrator"}
    assert linked.headers.get("api_access_token") == chatwoot_tokens.platform
    assert fake_chatwoot.requests_to(AGENTS, "POST") == []
    user = fake_chatwoot.users[created.agent.id]
    assert user.password == PASSWORD
    assert fake_chatwoot.account_users[(1, user.id)].role == "administrator"
    assert created.agent.id in {a.id for a in ctx.helpdesk.agents(admin, integration_id)}

    (event,) = audit_events(ctx, "helpdesk.agent_create")
    assert event.outcome == "success" and event.details["method"] == "platform"
    for secret in (PASSWORD, *chatwoot_tokens.all):
        assert_no_secret(secret, *audit_texts(), created.message, repr(created))


def test_platform_path_enforces_the_password_policy_before_calling_chatwoot(
    ctx, admin, fake_chatwoot, chatwoot_integration, chatwoot_tokens
):
    integration_id = chatwoot_integration(admin, platform_token=chatwoot_tokens.platform)
    for weak in (None, "", "password", "Password1", "PASSWORD1!", "pass1!"):
        with pytest.raises(ValidationError) as caught:
            ctx.helpdesk.create_agent(admin, integration_id, "Pat", "agent", password=weak)
        assert "password" in caught.value.errors
    assert writes(fake_chatwoot) == []
    with pytest.raises(ValidationError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "Pat", "owner", password=PASSWORD)
    assert "role" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "🙂", "agent", password=PASSWORD)
    assert "name" in caught.value.errors
    assert writes(fake_chatwoot) == []


def test_a_duplicate_email_is_reported_not_retried(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent")

    with pytest.raises(HelpdeskError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "NIA  new!", "agent")  # the same slug

    assert caught.value.reason == "email_taken"
    assert "root+nia-new@example.com already exists" in str(caught.value)
    assert len(fake_chatwoot.requests_to(AGENTS, "POST")) == 1
    outcomes = [(e.outcome, e.details.get("reason")) for e in audit_events(ctx, "helpdesk.agent_create")]
    assert outcomes == [("success", None), ("failure", "email_taken")]


def test_chatwoots_own_duplicate_answer_is_passed_on_once(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    # Someone adds the same address in Chatwoot between our check and our create.
    fake_chatwoot.force(
        AGENTS, 422, {"message": "Email has already been taken", "attributes": ["email"]}, method="POST"
    )
    with pytest.raises(HelpdeskError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent")
    assert caught.value.reason == "email_taken"
    assert "Chatwoot refused the request: Email has already been taken." in str(caught.value)
    assert len(fake_chatwoot.requests_to(AGENTS, "POST")) == 1


def test_platform_user_existing_elsewhere_is_not_handed_out(
    ctx, admin, fake_chatwoot, chatwoot_integration, chatwoot_tokens
):
    integration_id = chatwoot_integration(admin, platform_token=chatwoot_tokens.platform)
    stranger = fake_chatwoot.add_user("Someone", "root+sam@example.com", password="Old-Pass1!")
    fake_chatwoot.add_account_user(fake_chatwoot.seed.other_account_id, stranger.id, "agent")

    with pytest.raises(HelpdeskError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "Sam", "agent", password=PASSWORD)

    assert caught.value.reason == "email_taken" and "keeps that user's password" in str(caught.value)
    assert fake_chatwoot.requests_to(ACCOUNT_USERS) == []
    assert (1, stranger.id) not in fake_chatwoot.account_users
    assert stranger.password == "Old-Pass1!"


def test_chatwoot_out_of_seats_is_a_402_sentence(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    fake_chatwoot.accounts[1].seat_limit = 2  # Ada and Andy fill it

    with pytest.raises(HelpdeskError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent")

    assert caught.value.reason == NO_SEATS
    assert "no agent seats left" in str(caught.value)
    assert len(fake_chatwoot.requests_to(AGENTS, "POST")) == 1  # a POST is never repeated
    (event,) = audit_events(ctx, "helpdesk.agent_create")
    assert (event.outcome, event.details["reason"]) == ("failure", NO_SEATS)


def test_tier_seat_limit_names_the_tier_that_allows_more(
    ctx, member, other_member, fake_chatwoot, chatwoot_integration
):
    free = chatwoot_integration(member)  # FREE: 1 seat; Andy already uses it (Ada is the integration's own)
    seats = ctx.helpdesk.seats(member, free)
    assert (seats.used, seats.allowed, seats.can_add, seats.upgrade) == (1, 1, False, Tier.STARTER)
    assert "The Starter tier allows more." in seats.message

    with pytest.raises(TierLimitError) as caught:
        ctx.helpdesk.create_agent(member, free, "Nia New", "agent")
    assert str(caught.value) == "Your Free tier allows 1 helpdesk agents, and you have 1. The Starter tier allows more."
    assert fake_chatwoot.requests_to(AGENTS, "POST") == []
    (event,) = audit_events(ctx, "helpdesk.agent_create")
    assert (event.outcome, event.details["reason"]) == ("denied", "tier limit")

    starter = chatwoot_integration(other_member)  # STARTER: 2 seats
    ctx.helpdesk.create_agent(other_member, starter, "Nia New", "agent")
    with pytest.raises(TierLimitError, match="The Team tier allows more"):
        ctx.helpdesk.create_agent(other_member, starter, "Noa Next", "agent")
    assert len(fake_chatwoot.requests_to(AGENTS, "POST")) == 1


def test_a_non_administrator_token_is_refused_before_any_write(
    ctx, admin, fake_chatwoot, chatwoot_integration, chatwoot_tokens
):
    integration_id = chatwoot_integration(admin, chatwoot_tokens.agent)
    website, _ = inbox_ids(fake_chatwoot)
    for attempt in (
        lambda: ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent"),
        lambda: ctx.helpdesk.apply_membership(admin, integration_id, {website: set()}),
        lambda: ctx.helpdesk.agents(admin, integration_id),
    ):
        with pytest.raises(HelpdeskUnavailable) as caught:
            attempt()
        assert caught.value.reason == "not_admin"
    assert writes(fake_chatwoot) == []


def test_platform_app_not_permitted_on_the_account(
    ctx, admin, fake_chatwoot, chatwoot_integration, chatwoot_tokens, audit_texts, assert_no_secret
):
    integration_id = chatwoot_integration(admin, platform_token=chatwoot_tokens.platform)
    fake_chatwoot.platform_apps[chatwoot_tokens.platform].account_ids.clear()

    with pytest.raises(HelpdeskError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent", password=PASSWORD)

    message = str(caught.value)
    assert caught.value.reason == NOT_PERMITTED
    assert "Non permissible resource" in message
    assert "Super Admin" in message and "Platform Apps" in message and "permit" in message
    assert "root+nia-new@example.com was created but could not be added to account 1" in message
    assert len(fake_chatwoot.requests_to(ACCOUNT_USERS, "POST")) == 1
    for secret in (PASSWORD, *chatwoot_tokens.all):
        assert_no_secret(secret, message, *audit_texts())

    # Once the administrator permits the app, trying again links the user Chatwoot already has.
    fake_chatwoot.platform_apps[chatwoot_tokens.platform].account_ids.add(1)
    created = ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent", password=PASSWORD)
    assert fake_chatwoot.account_users[(1, created.agent.id)].role == "agent"


def test_a_rate_limited_create_is_not_repeated(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    fake_chatwoot.force(AGENTS, 429, {"error": "Too many requests"}, headers={"Retry-After": "30"}, method="POST")
    with pytest.raises(HelpdeskError) as caught:
        ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent")
    assert caught.value.reason == RATE_LIMITED
    assert "Wait 30 seconds and try again." in str(caught.value)
    assert len(fake_chatwoot.requests_to(AGENTS, "POST")) == 1


def test_delete_agent(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    created = ctx.helpdesk.create_agent(admin, integration_id, "Nia New", "agent")
    ctx.helpdesk.delete_agent(admin, integration_id, created.agent.id)
    assert (1, created.agent.id) not in fake_chatwoot.account_users
    with pytest.raises(HelpdeskError) as caught:
        ctx.helpdesk.delete_agent(admin, integration_id, created.agent.id)
    assert caught.value.reason == "not_found"
    with pytest.raises(ValidationError):
        ctx.helpdesk.delete_agent(admin, integration_id, fake_chatwoot.seed.admin.id)  # the integration's own user
    assert [e.outcome for e in audit_events(ctx, "helpdesk.agent_delete")] == ["success", "failure"]


# ----- membership -----------------------------------------------------------------------------------------


def test_membership_applies_only_the_difference(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    website, mail = inbox_ids(fake_chatwoot)
    ada, andy = fake_chatwoot.seed.admin.id, fake_chatwoot.seed.agent.id
    before = len(fake_chatwoot.requests)

    unchanged = ctx.helpdesk.apply_membership(admin, integration_id, {website: {andy}, mail: set()})
    assert unchanged.changes == () and unchanged.ok
    assert writes(fake_chatwoot) == []

    result = ctx.helpdesk.apply_membership(admin, integration_id, {website: {ada}, mail: {andy}})

    assert result.ok
    assert [(c.inbox_id, c.agent_id, c.action, c.ok) for c in result.changes] == [
        (website, ada, "add", True),
        (website, andy, "remove", True),
        (mail, andy, "add", True),
    ]
    assert result.changes[0].message == "Ada Admin added to Website."
    assert result.membership == {website: {ada}, mail: {andy}}
    sent = [(r.method, r.json()) for r in fake_chatwoot.requests[before:] if r.method != "GET"]
    assert sent == [
        ("POST", {"inbox_id": website, "user_ids": [ada]}),
        ("DELETE", {"inbox_id": website, "user_ids": [andy]}),
        ("POST", {"inbox_id": mail, "user_ids": [andy]}),
    ]
    assert fake_chatwoot.requests_to(MEMBERS, "PATCH") == []  # never "replace everyone"
    events = audit_events(ctx, "helpdesk.membership")
    assert [(e.outcome, e.details["change"], e.details["agent_id"]) for e in events] == [
        ("success", "add", ada),
        ("success", "remove", andy),
        ("success", "add", andy),
    ]

    # Only the inboxes given are considered: leaving one out changes nothing there.
    assert ctx.helpdesk.apply_membership(admin, integration_id, {website: {ada}}).changes == ()


def test_the_difference_is_taken_against_the_live_membership(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    website, _ = inbox_ids(fake_chatwoot)
    ada, andy = fake_chatwoot.seed.admin.id, fake_chatwoot.seed.agent.id
    shown = ctx.helpdesk.membership(admin, integration_id)
    fake_chatwoot.add_inbox_member(website, ada)  # someone else adds Ada in Chatwoot meanwhile

    desired = {website: shown[website] | {ada}}  # the page adds Ada too
    result = ctx.helpdesk.apply_membership(admin, integration_id, desired)

    assert result.changes == ()  # already true: nothing sent
    assert result.membership[website] == {ada, andy}


def test_an_agent_added_elsewhere_meanwhile_is_not_removed_by_a_save(ctx, admin, fake_chatwoot, chatwoot_integration):
    """The page shows a snapshot; saving one toggled box must not undo what it did not show."""
    integration_id = chatwoot_integration(admin)
    website, _ = inbox_ids(fake_chatwoot)
    ada, andy = fake_chatwoot.seed.admin.id, fake_chatwoot.seed.agent.id
    shown = ctx.helpdesk.membership(admin, integration_id)
    assert shown[website] == {andy}
    fake_chatwoot.add_inbox_member(website, ada)  # a colleague adds Ada in Chatwoot meanwhile

    # This person unticks Andy, with Ada still unticked in the snapshot they see.
    result = ctx.helpdesk.apply_membership(admin, integration_id, {website: set()}, only_agents={website: {andy}})

    assert [(c.agent_id, c.action) for c in result.changes] == [(andy, "remove")]
    assert result.membership[website] == {ada}


def test_a_partial_failure_is_reported_and_the_reread_shows_the_truth(
    ctx, admin, fake_chatwoot, chatwoot_integration, chatwoot_tokens, assert_no_secret
):
    integration_id = chatwoot_integration(admin)
    website, mail = inbox_ids(fake_chatwoot)
    ada, andy = fake_chatwoot.seed.admin.id, fake_chatwoot.seed.agent.id
    fake_chatwoot.force(MEMBERS, 500, "<html>oops</html>", method="POST")  # the first add fails

    result = ctx.helpdesk.apply_membership(admin, integration_id, {website: {ada, andy}, mail: {ada, andy}})

    assert not result.ok
    assert [(c.inbox_id, c.agent_id, c.action, c.ok) for c in result.changes] == [
        (website, ada, "add", False),
        (mail, ada, "add", True),
        (mail, andy, "add", True),
    ]
    (failed,) = result.failed
    assert "internal problem (500)" in failed.message and "<html" not in failed.message
    assert len(fake_chatwoot.requests_to(MEMBERS, "POST")) == 3  # the failed POST was not repeated
    assert result.membership == {website: {andy}, mail: {ada, andy}}  # the truth, not the wish
    assert result.reread_error is None
    events = audit_events(ctx, "helpdesk.membership")
    outcomes = [(e.outcome, e.details["inbox_id"], e.details["agent_id"]) for e in events]
    assert ("failure", website, ada) in outcomes and ("success", mail, ada) in outcomes
    for token in chatwoot_tokens.all:
        assert_no_secret(token, [c.message for c in result.changes])


def test_vanished_inboxes_and_agents_are_failed_changes(ctx, admin, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(admin)
    website, _ = inbox_ids(fake_chatwoot)
    andy = fake_chatwoot.seed.agent.id

    result = ctx.helpdesk.apply_membership(admin, integration_id, {website: {andy, 999}, 4242: {andy}})

    assert [(c.inbox_id, c.agent_id, c.ok) for c in result.changes] == [(website, 999, False), (4242, andy, False)]
    assert "no longer in this account" in result.changes[0].message
    assert "Inbox 4242 no longer exists" in result.changes[1].message
    assert writes(fake_chatwoot) == []
    assert result.membership[website] == {andy}


# ----- the client on its own ------------------------------------------------------------------------------


def test_client_error_messages_never_carry_a_token(fake_chatwoot, chatwoot_tokens):
    tokens = chatwoot_tokens
    with make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, read_timeout=0.5, max_retries=0)) as session:
        client = ChatwootClient(fake_chatwoot.url, tokens.admin, session, account_id=1, platform_token=tokens.platform)
        fake_chatwoot.force(AGENTS, 422, {"message": f"token {tokens.admin} / {tokens.platform} refused"})
        with pytest.raises(ChatwootError) as caught:
            client.create_agent("X", "x@acme.test", "agent")
        assert tokens.admin not in str(caught.value) and tokens.platform not in str(caught.value)
        assert tokens.admin not in caught.value.said and "[redacted]" in str(caught.value)

        fake_chatwoot.force(PLATFORM_USERS, 422, {"message": f"Password {PASSWORD} is weak", "attributes": []})
        with pytest.raises(ChatwootError) as caught:
            client.create_platform_user("X", "x@acme.test", PASSWORD)
        assert PASSWORD not in str(caught.value) and PASSWORD not in caught.value.said

        fake_chatwoot.set_delay(1.5, AGENTS)
        with pytest.raises(ChatwootError) as caught:
            client.list_agents()
        assert caught.value.reason == "unreachable" and "did not answer in time" in str(caught.value)

    with make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW)) as session:
        wrong = ChatwootClient(fake_chatwoot.url, tokens.admin, session, platform_token="wrong-platform-token")
        with pytest.raises(ChatwootError) as caught:
            wrong.create_platform_user("X", "x@acme.test", PASSWORD)
        assert caught.value.reason == "invalid_token" and "Platform App token" in str(caught.value)
        assert "wrong-platform-token" not in str(caught.value)


def test_client_members_round_trip(fake_chatwoot, chatwoot_tokens):
    website, _ = inbox_ids(fake_chatwoot)
    ada = fake_chatwoot.seed.admin.id
    with make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW)) as session:
        client = ChatwootClient(fake_chatwoot.url, chatwoot_tokens.admin, session, account_id=1)
        after = client.add_inbox_members(website, [ada, ada])
        assert {a.id for a in after} == {ada, fake_chatwoot.seed.agent.id}
        client.remove_inbox_members(website, [ada])
        assert [a.name for a in client.list_inbox_members(website)] == ["Andy Agent"]
        with pytest.raises(ValueError):
            client.add_inbox_members(website, [])
        with pytest.raises(ChatwootError) as caught:
            client.list_inbox_members(999)
        assert caught.value.reason == "not_found" and "404 Not Found" in str(caught.value)
        without_account = ChatwootClient(fake_chatwoot.url, chatwoot_tokens.admin, session)
        with pytest.raises(ValueError):
            without_account.list_agents()


# ----- the widget and its presets -------------------------------------------------------------------------


def test_widget_is_gated_by_tier_in_the_service(ctx, member, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(member)
    for attempt in (
        lambda: ctx.widget.website_inboxes(member, integration_id),
        lambda: ctx.widget.script(member, integration_id, 1, WidgetSettings()),
        lambda: ctx.presets.list(member),
        lambda: ctx.presets.save(member, "Demo", WidgetSettings()),
    ):
        with pytest.raises(TierLimitError, match="needs the Starter tier or higher; yours is Free"):
            attempt()
    assert fake_chatwoot.requests == []


def test_widget_script_for_a_website_inbox(ctx, other_member, fake_chatwoot, chatwoot_integration, chatwoot_tokens):
    integration_id = chatwoot_integration(other_member, chatwoot_tokens.agent)  # any member's token will do
    website, mail = inbox_ids(fake_chatwoot)
    token = fake_chatwoot.inboxes[website].website_token

    inboxes = ctx.widget.website_inboxes(other_member, integration_id)
    assert [(i.id, i.website_token) for i in inboxes] == [(website, token)]

    made = ctx.widget.script(other_member, integration_id, website, WidgetSettings(launcher_title="</script>"))
    assert made.base_url == fake_chatwoot.url
    assert f'var BASE_URL="{fake_chatwoot.url}";' in made.script
    assert f'websiteToken: "{token}"' in made.script
    assert made.script.lower().count("</script") == 1
    with pytest.raises(ValidationError) as caught:
        ctx.widget.script(other_member, integration_id, mail, WidgetSettings())
    assert "inbox_id" in caught.value.errors


def test_a_public_widget_host_replaces_the_integrations_url(
    ctx, other_member, fake_chatwoot, chatwoot_integration, chatwoot_tokens
):
    from core.chatwoot.widget_service import WidgetService

    service = WidgetService(ctx.helpdesk, "https://chat.example.com")
    integration_id = chatwoot_integration(other_member, chatwoot_tokens.agent)
    website, _ = inbox_ids(fake_chatwoot)
    made = service.script(other_member, integration_id, website, WidgetSettings())
    assert made.base_url == "https://chat.example.com"
    assert 'var BASE_URL="https://chat.example.com";' in made.script
    assert service.base_url(other_member, integration_id) == "https://chat.example.com"


def test_presets_crud_with_ownership(ctx, admin, other_member, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(other_member)
    first = ctx.presets.save(other_member, "  Shop demo ", WidgetSettings(position="left"), integration_id, 1)
    assert first.name == "Shop demo" and first.settings.position == "left"
    assert (first.integration_id, first.inbox_id) == (integration_id, 1)

    again = ctx.presets.save(other_member, "Shop demo", WidgetSettings(dark_mode="auto"))  # upsert by name
    assert again.id == first.id and again.settings == WidgetSettings(dark_mode="auto")
    assert again.integration_id is None
    ctx.presets.save(other_member, "Another", WidgetSettings())
    assert [p.name for p in ctx.presets.list(other_member)] == ["Another", "Shop demo"]
    assert ctx.presets.get(other_member, first.id).settings.dark_mode == "auto"

    # Nobody else, administrators included, sees or removes them.
    assert ctx.presets.list(admin) == []
    with pytest.raises(NotFoundError):
        ctx.presets.get(admin, first.id)
    with pytest.raises(NotFoundError):
        ctx.presets.delete(admin, first.id)
    ctx.presets.save(admin, "Shop demo", WidgetSettings())  # the same name is fine for another owner
    admins_integration = chatwoot_integration(admin, name="Admin's")
    with pytest.raises(ValidationError) as caught:
        ctx.presets.save(other_member, "Stolen", WidgetSettings(), admins_integration)
    assert "integration" in caught.value.errors

    for bad_name in ("", "   ", "x" * 101, "tab\there", "zero\u200bwidth"):
        with pytest.raises(ValidationError) as caught:
            ctx.presets.save(other_member, bad_name, WidgetSettings())
        assert "name" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        ctx.presets.save(other_member, "Bad", WidgetSettings(position="top"))
    assert "position" in caught.value.errors

    ctx.presets.delete(other_member, first.id)
    assert [p.name for p in ctx.presets.list(other_member)] == ["Another"]
    with pytest.raises(NotFoundError):
        ctx.presets.delete(other_member, first.id)
    actions = [e.action for e in audit_events(ctx) if e.action.startswith("widget.")]
    assert actions.count("widget.preset_save") == 4 and actions.count("widget.preset_delete") == 1


def test_a_preset_outlives_its_integration(ctx, other_member, fake_chatwoot, chatwoot_integration):
    integration_id = chatwoot_integration(other_member)
    preset = ctx.presets.save(other_member, "Demo", WidgetSettings(), integration_id, 3)
    ctx.integrations.delete(other_member, integration_id)
    kept = ctx.presets.get(other_member, preset.id)
    assert (kept.integration_id, kept.inbox_id) == (None, 3)


def test_the_migrations_created_the_presets_table(ctx):
    """0002 created it; 0007 added the version that refuses a save over a newer one."""
    with ctx.engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("widget_presets")}
        uniques = inspect(connection).get_unique_constraints("widget_presets")
    assert columns == {
        *("id", "owner_id", "integration_id", "name", "settings", "inbox_id", "created_at", "updated_at"),
        "version",
    }
    assert any(set(u["column_names"]) == {"owner_id", "name"} for u in uniques)
    with ctx.factory() as session:
        assert session.scalars(select(WidgetPreset)).all() == []  # emptied with the users between tests


def test_requests_library_is_used_through_the_safe_session(monkeypatch, ctx, admin, chatwoot_integration):
    """Every helpdesk call goes through the session factory it was given (core.http.make_session)."""
    made: list[requests.Session] = []
    original = ctx.helpdesk._http_session

    def counting():
        session = original()
        made.append(session)
        return session

    monkeypatch.setattr(ctx.helpdesk, "_http_session", counting)
    ctx.helpdesk.agents(admin, chatwoot_integration(admin))
    assert len(made) == 1 and type(made[0]).__name__ == "_Session"
    assert json.dumps(made[0].headers.get("User-Agent")).startswith('"IntegrationsConsole/')
