"""The issue's "done when", on the engine: an integration added and left alone is checked on schedule; as
its host keeps failing it goes degraded -> failing -> paused, and one e-mail reaches a real SMTP server
(aiosmtpd on 127.0.0.1) on each worsening, and one on its recovery."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import app_context
from core.models import AlertDelivery, Integration
from core.settings import SmtpSettings
from tests.conftest import make_settings, wait_for
from tests.fakes import slow_hosts
from tests.fakes.slow_hosts import SlowHosts
from tests.fakes.smtp import Inbox, running_inbox

TOKEN = "bt-alerts-" + "P0o9I8u7Y6t5"


@pytest.fixture
def inbox():
    with running_inbox() as served:
        yield served


@pytest.fixture
def hosts():
    servers = SlowHosts(1, delay=0.01).start()
    yield servers
    servers.stop()


def subjects(box: Inbox) -> list[str]:
    return [str(m["Subject"]) for m in box.messages]


def test_one_email_per_worsening_and_one_on_recovery(ctx, owner, hosts, inbox, workers):
    port, box = inbox
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", from_address="alerts@console.example", timeout=5)
    engine_ctx = app_context.build(
        make_settings(
            ctx.settings.database_url,
            engine_tick_seconds=1,
            check_interval_override=1,
            health_failing_after_checks=2,
            health_pause_after_seconds=3,
            health_pause_after_checks=4,
            alert_group_window_seconds=0,
            smtp=smtp,
        ),
        migrate=False,
    )
    engine_ctx.subscriptions.create(
        owner, "email", "olga@example.com", ["degraded", "failing", "paused", "needs_reconnect"], recovery=True
    )
    hosts.broken.add("127.0.0.1")
    view = slow_hosts.add_crm(engine_ctx, owner, hosts.urls[0], "Acme CRM", TOKEN)
    workers(2, tick_seconds=1, context=engine_ctx)

    paused = lambda: any("paused" in subject.lower() for subject in subjects(box))  # noqa: E731
    wait_for(paused, 100, what="the paused alert")  # generous: a loaded CI machine
    with engine_ctx.factory() as session:
        row = session.get(Integration, view.id)
        assert row is not None and row.health == "paused" and not row.is_active

    hosts.broken.clear()
    engine_ctx.integrations.set_active(owner, view.id, True)  # fixed, and resumed by a person
    wait_for(lambda: any("connected" in s.lower() for s in subjects(box)), 60, what="the recovery alert")

    # One e-mail per worsening the alert planner saw, in order, none twice, then one on recovery. When two
    # checks land between two plans, degraded -> failing is one change to failing: one e-mail, not two.
    said = subjects(box)
    words = [next(w for w in ("Degraded", "Failing", "Paused", "Connected") if w.lower() in s.lower()) for s in said]
    assert words[-2:] == ["Paused", "Connected"] and "Failing" in words, said
    assert words in (["Degraded", "Failing", "Paused", "Connected"], ["Failing", "Paused", "Connected"]), said
    assert all("Acme CRM" in subject for subject in said), said
    assert all(m["To"] == "olga@example.com" for m in box.messages)
    assert all(TOKEN not in m.as_string() for m in box.messages)

    def sent() -> int:  # the SMTP server has the message a moment before its delivery is marked sent
        with engine_ctx.factory() as session:
            return session.scalars(select(AlertDelivery.status)).all().count("sent")

    assert wait_for(lambda: sent() == len(said), 30, what="every delivery marked sent")

    # ... and the integration's page shows it all.
    detail = engine_ctx.integrations.detail(owner, view.id)
    assert detail.health.value == "connected"
    classes = [c.check_class for c in detail.checks]
    assert classes[0] == "ok" and "provider_error" in classes and len(classes) >= 5
    assert detail.uptime_7 is not None and 0 < detail.uptime_7 < 1
    labels = [a.label for a in detail.activity]
    assert labels.count("Health changed") >= 4 and "Resumed" in labels
