"""Rate limits on connection tests, agent creation and widget scripts, enforced in the services."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.chatwoot.helpdesk import HelpdeskError, HelpdeskService
from core.chatwoot.widget import WidgetSettings
from core.chatwoot.widget_service import WidgetService
from core.integrations.service import IntegrationService
from core.models import AuditEvent, Integration
from core.ratelimit import LIMITS, RateLimiter
from providers import CATALOG

SMALL = {
    **LIMITS,
    "test_per_user": (2, 60),
    "test_per_host": (3, 60),
    "agent_create": (1, 600),
    "widget_script": (1, 60),
}


@pytest.fixture
def limited(ctx):
    limiter = RateLimiter(ctx.factory, SMALL)
    integrations = IntegrationService(ctx.factory, ctx.cipher, CATALOG, ctx.integrations._http_session, limiter)
    helpdesk = HelpdeskService(integrations, ctx.integrations._http_session, ctx.factory, limiter)
    return integrations, helpdesk, WidgetService(helpdesk)


def test_the_third_test_in_a_minute_is_refused_and_says_when(ctx, limited, member, chatwoot_integration):
    integrations, _, _ = limited
    integration_id = chatwoot_integration(member)
    assert integrations.test(member, integration_id).success
    assert integrations.test(member, integration_id).success
    refused = integrations.test(member, integration_id)
    assert not refused.success and refused.error == "rate_limited"
    assert refused.message.startswith("Too many connection tests in a short time. Try again in ")
    with ctx.factory() as session:
        assert session.get(Integration, integration_id).status == "connected"  # a refusal is not a result
        outcomes = session.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "integration.test")).all()
    assert sorted(outcomes) == ["denied", "success", "success"]


def test_one_customer_host_is_protected_from_everyone_together(limited, member, other_member, chatwoot_integration):
    integrations, _, _ = limited
    mine, theirs = chatwoot_integration(member), chatwoot_integration(other_member)
    assert integrations.test(member, mine).success and integrations.test(member, mine).success
    assert integrations.test(other_member, theirs).success
    refused = integrations.test(other_member, theirs)
    assert "connection tests of 127.0.0.1" in refused.message


def test_agent_creation_and_widget_scripts_are_limited(limited, admin, fake_chatwoot, chatwoot_integration):
    _, helpdesk, widget = limited
    integration_id = chatwoot_integration(admin)
    helpdesk.create_agent(admin, integration_id, "First Agent", "agent")
    with pytest.raises(HelpdeskError) as refused:
        helpdesk.create_agent(admin, integration_id, "Second Agent", "agent")
    assert refused.value.reason == "rate_limited" and "Try again in 10 minutes" in str(refused.value)

    inbox = next(i for i in widget.website_inboxes(admin, integration_id))
    widget.script(admin, integration_id, inbox.id, WidgetSettings())
    with pytest.raises(HelpdeskError, match="Too many widget scripts generated"):
        widget.script(admin, integration_id, inbox.id, WidgetSettings())
