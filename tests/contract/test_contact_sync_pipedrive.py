"""Contact sync between Pipedrive (tests/fakes/pipedrive_contacts.py) and the fake Chatwoot: the shared
contract (contact_sync_cases) and what is Pipedrive's own (an update keeps a person's other e-mails)."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from providers import pipedrive, pipedrive_contacts
from tests.contract.contact_sync_cases import *  # noqa: F403 - the shared contract's tests
from tests.contract.contact_sync_cases import chatwoot_people, make_sync
from tests.fakes.pipedrive_contacts import FakePipedrive

TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"


@pytest.fixture
def crm(monkeypatch, httpserver):
    monkeypatch.setattr(pipedrive, "API_BASE", f"http://{httpserver.host}:{httpserver.port}/{{domain}}")
    return FakePipedrive(httpserver, "acme", TOKEN)


@pytest.fixture
def pair(ctx, owner, crm, fake_chatwoot, chatwoot_integration):
    made = ctx.integrations.create(owner, "Pipedrive", "PIPEDRIVE", {"companyDomain": "acme", "apiToken": TOKEN})
    return made.id, chatwoot_integration(owner)


@pytest.fixture
def page_size(monkeypatch):
    return lambda size: monkeypatch.setattr(pipedrive_contacts, "PAGE_SIZE", size)


def test_reads_are_incremental_sorted_and_the_record_link_is_the_companys(ctx, owner, pair, crm, fake_chatwoot):
    person = crm.add("Ada Lovelace", "ada@example.com", modified=1_000_000)
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    ctx.syncs.run_now(owner, sync)
    url = chatwoot_people(fake_chatwoot)["ada@example.com"].custom_attributes["crm_url"]
    assert url == f"https://acme.pipedrive.com/person/{person}"
    ctx.syncs.run_now(owner, sync)
    reads = [p for p in crm.server.log if p[0].path == "/acme/api/v2/persons" and p[0].method == "GET"]
    first, second = reads[0][0].args, reads[-1][0].args
    assert "updated_since" not in first and second["updated_since"] == "1970-01-12T13:46:40Z"
    assert second["sort_by"] == "update_time" and second["sort_direction"] == "asc"


def test_an_update_makes_the_synced_email_primary_and_keeps_the_others(ctx, owner, pair, crm, fake_chatwoot):
    person = crm.add("Ada", "ada@old.example", modified=1_000)
    crm.records[person]["emails"].append({"value": "ada@home.example", "primary": False, "label": "home"})
    fake_chatwoot.add_contact(fake_chatwoot.seed.account_id, "Ada Lovelace", "ada@home.example", updated_at=2_000)
    run = ctx.syncs.run_now(owner, make_sync(ctx, owner, pair, "chatwoot_to_crm"))
    assert run.report["crm"]["updated"] == 1, run.report
    emails = crm.records[person]["emails"]
    assert emails[0] == {"value": "ada@home.example", "primary": True, "label": "work"}
    assert {e["value"] for e in emails} == {"ada@home.example", "ada@old.example"}


def test_with_leads_a_person_who_chats_becomes_a_person_with_a_lead_once(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    fake_chatwoot.add_contact(account, "Ada Lovelace", "ada@example.com", updated_at=2_000)
    known = crm.add("Grace Hopper", "grace@example.com", modified=1_000)
    fake_chatwoot.add_contact(account, "Grace B. Hopper", "grace@example.com", updated_at=2_000)
    sync = make_sync(ctx, owner, pair, "chatwoot_to_crm", crm_object="leads")
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    ada = next(i for i, r in crm.records.items() if r["emails"][0]["value"] == "ada@example.com")
    assert crm.leads == [
        {"id": crm.leads[0]["id"], "title": "Ada Lovelace (from Chatwoot)", "person_id": int(ada)}
    ]  # a lead for the new person only; the known person is updated, not given a lead
    assert crm.name_of(known) == "Grace B. Hopper"
    fake_chatwoot.contacts_in(account)[0].updated_at = int(crm.clock()) + 60  # Ada changes in Chatwoot
    fake_chatwoot.contacts_in(account)[0].name = "Ada King"
    again = ctx.syncs.run_now(owner, sync)
    assert again.report["crm"]["updated"] == 1 and len(crm.leads) == 1  # no second lead
    assert crm.name_of(ada) == "Ada King"


def test_leads_are_refused_for_a_crm_without_them(ctx, owner, pair, chatwoot_integration):
    hubspot = ctx.integrations.create(owner, "HubSpot", "HUBSPOT", {"accessToken": "pat-na1-" + "0" * 36}).id
    with pytest.raises(ValidationError, match="HubSpot has no leads"):
        ctx.syncs.create(owner, hubspot, pair[1], "both", crm_object="leads")
    with pytest.raises(ValidationError, match="CRM records"):
        ctx.syncs.create(owner, pair[0], pair[1], "both", crm_object="deals")
    assert ctx.syncs.crm_objects("PIPEDRIVE") == ("contacts", "leads")
    assert ctx.syncs.crm_objects("HUBSPOT") == ("contacts",)


def test_a_person_deleted_in_pipedrive_fails_alone_and_the_run_goes_on(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    gone = fake_chatwoot.add_contact(account, "Ada", "ada@example.com", updated_at=2_000)
    fake_chatwoot.add_contact(account, "Grace", "grace@example.com", updated_at=2_000)
    sync = make_sync(ctx, owner, pair, "chatwoot_to_crm")
    assert ctx.syncs.run_now(owner, sync).report["crm"]["created"] == 2
    del crm.records[next(i for i, r in crm.records.items() if r["emails"][0]["value"] == "ada@example.com")]
    gone.name, gone.updated_at = "Ada King", int(crm.clock()) + 60
    fake_chatwoot.add_contact(account, "Linus", "linus@example.com", updated_at=int(crm.clock()) + 60)
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    assert run.report["crm"]["failed"] == 1 and run.report["crm"]["created"] == 1
    assert "no person" in run.report["failures"][0] and "deleted" in run.report["failures"][0]
