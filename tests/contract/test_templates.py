"""Templates applied end to end against the fake Chatwoot, their runs on engine workers, and the JSON
they are exported and imported as."""

from __future__ import annotations

import json

import pytest

from core.chatwoot.inboxes import INBOXES_OFF
from core.errors import PermissionDeniedError, ValidationError
from tests.conftest import wait_for

PUBLIC = "https://console.example.com"
LIVE_CHAT = "builtin:live-chat-demo"
SHOP = "https://www.shop.example/"


@pytest.fixture
def desk(ctx, fake_chatwoot):
    ctx.bots.public_base_url = PUBLIC

    def make(actor, *, inboxes: bool = True) -> int:
        config = {
            "baseUrl": fake_chatwoot.url,
            "accountId": str(fake_chatwoot.seed.account_id),
            "apiKey": fake_chatwoot.seed.admin.access_token,
            "features": {"autoCreateInboxes": inboxes, "autoCreateBots": True, "syncContacts": False},
        }
        return ctx.integrations.create(actor, "Support desk", "CHATWOOT", config).id

    return make


def live_chat_values(integration_id: int) -> list[dict]:
    return [
        {"integration_id": integration_id},
        {"website_url": SHOP, "colour": "#112233", "title": "Hello", "tagline": "Fast replies"},
        {"welcome_message": "Welcome to the shop!"},
        {"preset_name": "Shop demo"},
    ]


def finished(ctx, actor, run_id):
    return wait_for(
        lambda: (lambda run: run if run.finished else None)(ctx.templates.progress(actor, run_id)),
        what="the template run",
    )


def test_live_chat_demo_end_to_end_and_again(ctx, admin, fake_chatwoot, desk, workers):
    workers(2, periodic=False)
    integration_id = desk(admin)
    values = live_chat_values(integration_id)
    preview = ctx.templates.preview(admin, LIVE_CHAT, values)
    assert [p.kind for p in preview] == ["chatwoot", "website_inbox", "greeting_bot", "widget"]
    assert SHOP in preview[1].description

    run = finished(ctx, admin, ctx.templates.apply(admin, LIVE_CHAT, values))
    assert run.status == "done", run
    assert [s.status for s in run.steps] == ["done"] * 4 and run.done == 4
    created = [i for i in fake_chatwoot.inboxes.values() if i.website_url == SHOP]
    assert len(created) == 1
    [inbox] = created
    [bot] = fake_chatwoot.agent_bots.values()
    assert inbox.agent_bot_id == bot.id
    assert run.script and inbox.website_token in run.script
    assert ctx.bots.status(admin, integration_id).settings.welcome_message == "Welcome to the shop!"

    inboxes, bots = len(fake_chatwoot.inboxes), len(fake_chatwoot.agent_bots)
    again = finished(ctx, admin, ctx.templates.apply(admin, LIVE_CHAT, values))
    assert again.status == "done"
    assert (len(fake_chatwoot.inboxes), len(fake_chatwoot.agent_bots)) == (inboxes, bots)
    assert "Found the website inbox" in again.steps[1].result["summary"]
    assert [p.name for p in ctx.presets.list(admin)] == ["Shop demo"]


def test_a_failed_step_keeps_what_succeeded_and_resume_continues(ctx, admin, fake_chatwoot, desk, workers):
    workers(2, periodic=False)
    integration_id = desk(admin, inboxes=False)
    run_id = ctx.templates.apply(admin, LIVE_CHAT, live_chat_values(integration_id))
    run = finished(ctx, admin, run_id)
    assert run.status == "failed" and run.message == INBOXES_OFF
    assert [s.status for s in run.steps] == ["done", "failed", "pending", "pending"]
    assert run.steps[1].message == INBOXES_OFF
    assert not [i for i in fake_chatwoot.inboxes.values() if i.website_url == SHOP]

    view = ctx.integrations.get(admin, integration_id)
    config = {**view.configuration, "features": {"autoCreateInboxes": True, "autoCreateBots": True}}
    ctx.integrations.update(admin, integration_id, view.version, configuration=config)
    ctx.templates.resume(admin, run_id)
    run = wait_for(
        lambda: (lambda r: r if r.status in ("done", "failed") and r.message != INBOXES_OFF else None)(
            ctx.templates.progress(admin, run_id)
        ),
        what="the resumed run",
    )
    assert run.status == "done", run
    assert [s.status for s in run.steps] == ["done"] * 4
    assert len([i for i in fake_chatwoot.inboxes.values() if i.website_url == SHOP]) == 1


def test_step_values_are_checked_before_anything_runs(ctx, admin, fake_chatwoot, desk):
    integration_id = desk(admin)
    values = live_chat_values(integration_id)
    values[1]["colour"] = "red"
    values[3]["position"] = "middle"
    with pytest.raises(ValidationError) as invalid:
        ctx.templates.apply(admin, LIVE_CHAT, values)
    assert set(invalid.value.errors) == {"steps[1].colour", "steps[3].position"}
    assert not fake_chatwoot.requests


def test_export_import_round_trip(ctx, admin):
    exported = json.loads(ctx.templates.export(admin, LIVE_CHAT))
    exported["name"] = "Shop chat"
    exported["steps"][1]["values"]["website_url"] = SHOP
    stored = ctx.templates.import_json(admin, json.dumps(exported))
    assert stored.key.startswith("stored:") and not stored.builtin
    assert json.loads(ctx.templates.export(admin, stored.key)) == exported
    again = ctx.templates.import_json(admin, json.dumps(exported))  # same name: replaces it, a new version
    assert again.key == stored.key and again.version == 2
    assert [t.name for t in ctx.templates.list(admin)] == [
        "Live-chat demo",
        "CRM contacts into Chatwoot",
        "Alerts to a webhook",
        "Shop chat",
    ]
    ctx.templates.delete(admin, stored.key)
    assert len(ctx.templates.list(admin)) == 3  # the built-ins


def test_invalid_templates_are_refused_with_field_messages(ctx, admin):
    with pytest.raises(ValidationError) as bad_json:
        ctx.templates.import_json(admin, "{not json")
    assert "not valid JSON" in bad_json.value.errors["json"]
    bad = {
        "name": "",
        "steps": [
            {"kind": "teleport"},
            {"kind": "website_inbox", "values": {"colour": "blue", "extra": 1}},
            {"kind": "alert_webhook", "values": {"secret": "a-secret-in-a-template-1234"}},
        ],
    }
    with pytest.raises(ValidationError) as invalid:
        ctx.templates.import_json(admin, json.dumps(bad))
    errors = invalid.value.errors
    assert {"name", "steps[0].kind", "steps[1].colour", "steps[1].extra", "steps[1].kind", "steps[2].secret"} <= set(
        errors
    )
    assert "teleport" in errors["steps[0].kind"]
    deep = {"name": "Deep", "steps": [{"kind": "widget", "values": {"a": [[[[[[1]]]]]]}}]}
    with pytest.raises(ValidationError) as too_deep:
        ctx.templates.import_json(admin, json.dumps(deep))
    assert "levels deep" in too_deep.value.errors["json"]
    with pytest.raises(ValidationError):
        ctx.templates.import_json(admin, json.dumps({"name": "Big", "description": "x" * 70_000, "steps": []}))


def test_members_cannot_save_templates(ctx, member):
    data = json.loads(ctx.templates.export(member, LIVE_CHAT))
    data["name"] = "Mine"
    with pytest.raises(PermissionDeniedError):
        ctx.templates.save(member, data)
    with pytest.raises(PermissionDeniedError):
        ctx.templates.import_json(member, json.dumps(data))
    assert len(ctx.templates.list(member)) == 3  # the built-ins


def test_the_webhook_secret_is_never_stored_in_a_run_or_an_export(ctx, owner, workers, audit_texts):
    workers(1, periodic=False)
    secret = "signing-secret-" + "Q7w8E9r0T1y2"
    values = [{"url": "http://127.0.0.1:9/hook", "secret": secret}]
    assert "secret" not in ctx.templates.preview(owner, "builtin:alerts-to-a-webhook", values)[0].values
    run = finished(ctx, owner, ctx.templates.apply(owner, "builtin:alerts-to-a-webhook", values))
    assert run.status == "done", run
    [subscription] = ctx.subscriptions.list(owner)
    assert subscription.channel == "webhook"
    assert secret not in repr(run) and secret not in " ".join(audit_texts())
    assert secret not in ctx.templates.export(owner, "builtin:alerts-to-a-webhook")
    with ctx.factory() as session:
        from core.models import TemplateRun, TemplateRunStep

        rows = [*session.query(TemplateRun).all(), *session.query(TemplateRunStep).all()]
        assert all(getattr(r, "sealed", None) is None for r in rows)
        assert secret not in repr([getattr(r, "values", None) for r in rows])
    again = finished(ctx, owner, ctx.templates.apply(owner, "builtin:alerts-to-a-webhook", values))
    assert again.status == "done" and len(ctx.subscriptions.list(owner)) == 1


def test_a_stored_template_creates_agents_working_in_the_inbox_once(ctx, admin, fake_chatwoot, desk, workers):
    """The "create N agents with inboxes" step: an administrator imports a template of it, runs it twice;
    the agents are made once and work in the created inbox."""
    workers(2, periodic=False)
    integration_id = desk(admin)
    team = {
        "name": "Support team",
        "steps": [
            {"kind": "chatwoot"},
            {"kind": "website_inbox", "values": {"website_url": SHOP}},
            {"kind": "agents", "values": {"count": 2, "name_prefix": "Shop agent"}},
        ],
    }
    stored = ctx.templates.import_json(admin, json.dumps(team))
    values = [{"integration_id": integration_id}, {}, {}]
    run = finished(ctx, admin, ctx.templates.apply(admin, stored.key, values))
    assert run.status == "done", run
    [inbox] = [i for i in fake_chatwoot.inboxes.values() if i.website_url == SHOP]
    made = {u.id: u.name for u in fake_chatwoot.users.values() if u.name.startswith("Shop agent")}
    assert sorted(made.values()) == ["Shop agent 1", "Shop agent 2"]
    assert set(made) <= set(inbox.members)
    assert run.steps[2].result["summary"] == f"2 agents work in inbox #{inbox.id}."

    again = finished(ctx, admin, ctx.templates.apply(admin, stored.key, values))
    assert again.status == "done", again
    assert len([u for u in fake_chatwoot.users.values() if u.name.startswith("Shop agent")]) == 2
    assert sorted(again.steps[2].result["agent_ids"]) == sorted(made)
