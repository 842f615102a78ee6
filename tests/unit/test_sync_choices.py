"""The choices a sync form offers (SyncService.partners, crm_choices over IntegrationService.owned_by): the
same owner's integrations of the pairing providers, read in SQL, so an administrator opening one
integration among a million loads a handful of rows, not every integration."""

from __future__ import annotations

import pytest

from core.integrations import service as integration_service

HUBSPOT = {"accessToken": "pat-na1-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}
CHATWOOT = {"baseUrl": "http://127.0.0.1:9", "accountId": "7", "apiKey": "cw-choices-token-0123456789"}
DATABASE = {"host": "127.0.0.1", "port": 5432, "database": "shop", "user": "reader", "password": "db-pass-01"}


@pytest.fixture
def others(ctx, owner, admin):
    """Another ENTERPRISE member's integrations of every kind: never a choice for Olga's."""
    erin = ctx.users.create(admin, "erin", "Erin", "erin@example.com", "erin-password-1", "member", "ENTERPRISE")
    actor = erin.actor()
    ctx.integrations.create(actor, "Erin's HubSpot", "HUBSPOT", HUBSPOT)
    ctx.integrations.create(actor, "Erin's desk", "CHATWOOT", CHATWOOT)
    return actor


def names(views) -> list[str]:
    return [v.name for v in views]


def test_partners_are_the_same_owners_integrations_of_the_other_side(ctx, owner, admin, others):
    desk = ctx.integrations.create(owner, "Olga's desk", "CHATWOOT", CHATWOOT)
    second_desk = ctx.integrations.create(owner, "Olga's second desk", "CHATWOOT", CHATWOOT)
    hub = ctx.integrations.create(owner, "Olga's HubSpot", "HUBSPOT", HUBSPOT)
    ctx.integrations.create(owner, "Olga's shop database", "POSTGRESQL", DATABASE)
    for viewer in (owner, admin):  # an administrator sees the owner's choices, not everyone's
        assert names(ctx.syncs.partners(viewer, desk)) == ["Olga's HubSpot"]
        assert names(ctx.syncs.partners(viewer, hub)) == ["Olga's desk", "Olga's second desk"]
    assert names(ctx.syncs.partners(others, desk)) == []  # not hers to see
    assert second_desk.id not in [v.id for v in ctx.syncs.partners(owner, second_desk)]


def test_crm_choices_are_the_persons_own_active_crms_that_sync(ctx, owner, admin, others):
    kept = ctx.integrations.create(owner, "Olga's HubSpot", "HUBSPOT", HUBSPOT)
    paused = ctx.integrations.create(owner, "Olga's paused HubSpot", "HUBSPOT", HUBSPOT)
    ctx.integrations.set_active(owner, paused.id, False)
    ctx.integrations.create(owner, "Olga's desk", "CHATWOOT", CHATWOOT)
    assert names(ctx.syncs.crm_choices(owner)) == [kept.name]
    assert names(ctx.syncs.crm_choices(admin)) == []  # the administrator's own: none


def test_the_choices_are_read_in_sql_never_by_listing_everything(ctx, owner, monkeypatch):
    desk = ctx.integrations.create(owner, "Olga's desk", "CHATWOOT", CHATWOOT)
    ctx.integrations.create(owner, "Olga's HubSpot", "HUBSPOT", HUBSPOT)

    def everything(*_args, **_kwargs):
        raise AssertionError("a form's choices listed every integration the person can see")

    monkeypatch.setattr(integration_service.IntegrationService, "matching", everything)
    assert names(ctx.syncs.partners(owner, desk)) == ["Olga's HubSpot"]
    assert names(ctx.syncs.crm_choices(owner)) == ["Olga's HubSpot"]


def test_at_most_choices_shown_are_offered(ctx, owner, monkeypatch):
    monkeypatch.setattr(integration_service, "CHOICES_SHOWN", 2)
    desk = ctx.integrations.create(owner, "Olga's desk", "CHATWOOT", CHATWOOT)
    for name in ("C", "A", "B"):
        ctx.integrations.create(owner, f"HubSpot {name}", "HUBSPOT", HUBSPOT)
    assert names(ctx.syncs.partners(owner, desk)) == ["HubSpot A", "HubSpot B"]
