"""Contact sync between Salesforce (tests/fakes/salesforce_contacts.py) and the fake Chatwoot: the shared
contract (contact_sync_cases) and what is Salesforce's own (a refused record fails alone; the org's daily
allocation used up ends a run with a sentence, and the next run carries on)."""

from __future__ import annotations

import re

import pytest

from providers import salesforce, salesforce_contacts
from tests.contract.contact_sync_cases import *  # noqa: F403 - the shared contract's tests
from tests.contract.contact_sync_cases import chatwoot_people, make_sync
from tests.fakes.salesforce_contacts import FakeSalesforce

CONFIG = {
    "instanceUrl": "https://acme.my.salesforce.com",
    "clientId": "3MVG9consumer.key.0123456789abcdefABCDEF",
    "clientSecret": "sf-secret-0123456789ABCDEF0123456789",
    "refreshToken": "5Aep861refresh.token.0123456789abcdef",
}


@pytest.fixture
def sobject() -> str:
    return "Contact"  # a test of leads parametrises it to Lead


@pytest.fixture
def crm(monkeypatch, httpserver, sobject):
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(salesforce, "LOGIN_BASE", base + "/{host}")
    monkeypatch.setattr(salesforce, "INSTANCE_URL_PATTERN", re.escape(base) + "/instance")
    return FakeSalesforce(httpserver, sobject)


@pytest.fixture
def pair(ctx, owner, crm, fake_chatwoot, chatwoot_integration):
    return ctx.integrations.create(owner, "Salesforce", "SALESFORCE", CONFIG).id, chatwoot_integration(owner)


@pytest.fixture
def page_size(monkeypatch):
    return lambda size: monkeypatch.setattr(salesforce_contacts, "PAGE_SIZE", size)


def test_a_record_salesforce_refuses_fails_alone(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    fake_chatwoot.add_contact(account, "Ada Lovelace", "ada@example.com", updated_at=2_000)
    fake_chatwoot.add_contact(account, "Bad Address", "refused@example.com", updated_at=2_001)
    fake_chatwoot.add_contact(account, "Grace", "grace@example.com", updated_at=2_002)
    run = ctx.syncs.run_now(owner, make_sync(ctx, owner, pair, "chatwoot_to_crm"))
    assert run.status == "done", run.message
    assert run.report["crm"]["created"] == 2 and run.report["crm"]["failed"] == 1
    assert any("INVALID_EMAIL_ADDRESS" in f for f in run.report["failures"])
    assert sorted(crm.emails()) == ["ada@example.com", "grace@example.com"]
    grace = next(i for i, r in crm.records.items() if r["Email"] == "grace@example.com")
    assert crm.records[grace]["LastName"] == "Grace" and not crm.records[grace]["FirstName"]


def test_the_daily_allocation_used_up_ends_the_run_and_the_next_carries_on(ctx, owner, pair, crm, fake_chatwoot):
    crm.add("Ada Lovelace", "ada@example.com", modified=1_000_000)
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    crm.exhaust()
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "failed" and "daily API allocation" in run.message and "REQUEST_LIMIT_EXCEEDED" in run.message
    assert fake_chatwoot.contacts == {}
    crm.restore()
    assert ctx.syncs.run_now(owner, sync).status == "done"
    url = chatwoot_people(fake_chatwoot)["ada@example.com"].custom_attributes["crm_url"]
    assert url.endswith("/lightning/r/Contact/" + next(iter(crm.records)) + "/view")


@pytest.mark.parametrize("sobject", ["Lead"])
def test_with_leads_people_who_chat_become_leads_and_leads_reach_chatwoot(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    fake_chatwoot.add_contact(account, "Ada Lovelace", "ada@example.com", updated_at=2_000)
    lead = crm.add("Grace Hopper", "grace@example.com", modified=1_000_000)
    sync = make_sync(ctx, owner, pair, "both", crm_object="leads")
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    assert run.report["crm"]["created"] == 1 and run.report["chatwoot"]["created"] == 1
    made = next(r for r in crm.records.values() if r["Email"] == "ada@example.com")
    assert (made["FirstName"], made["LastName"], made["Company"]) == ("Ada", "Lovelace", "[not provided]")
    assert all(i.startswith("00Q") for i in crm.records)  # Lead ids: nothing went to Contact
    url = chatwoot_people(fake_chatwoot)["grace@example.com"].custom_attributes["crm_url"]
    assert url == f"https://acme.lightning.force.com/lightning/r/Lead/{lead}/view"
    assert ctx.syncs.list(owner)[0].crm_object_label == "Leads"
