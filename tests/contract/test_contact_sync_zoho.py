"""Contact sync between Zoho CRM (tests/fakes/zoho_contacts.py) and the fake Chatwoot: the shared contract
(contact_sync_cases) and what is Zoho's own (past 2,000 records by page number a read starts again from
the newest modified time; a record without a name gets its e-mail as the mandatory Last_Name)."""

from __future__ import annotations

import re

import pytest

from providers import zoho, zoho_contacts
from tests.contract.contact_sync_cases import *  # noqa: F403 - the shared contract's tests
from tests.contract.contact_sync_cases import chatwoot_people, make_sync
from tests.fakes.zoho_contacts import FakeZoho

CONFIG = {
    "dataCentre": "com",
    "clientId": "1000.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
    "clientSecret": "zs-0123456789abcdef0123456789abcdef01234567",
    "refreshToken": "1000.refresh.0f1e2d3c4b5a69788796a5b4c3d2e1f0",
}


@pytest.fixture
def module() -> str:
    return "Contacts"  # a test of leads parametrises it to Leads


@pytest.fixture
def crm(monkeypatch, httpserver, module):
    base = f"http://{httpserver.host}:{httpserver.port}"
    monkeypatch.setattr(zoho, "ACCOUNTS_BASE", base + "/{host}")
    monkeypatch.setattr(zoho, "API_DOMAIN_PATTERN", re.escape(base) + "/zohoapis")
    return FakeZoho(httpserver, module)


@pytest.fixture
def pair(ctx, owner, crm, fake_chatwoot, chatwoot_integration):
    return ctx.integrations.create(owner, "Zoho", "ZOHO", CONFIG).id, chatwoot_integration(owner)


@pytest.fixture
def page_size(monkeypatch):
    return lambda size: monkeypatch.setattr(zoho_contacts, "PAGE_SIZE", size)


def test_past_the_page_cap_a_read_starts_again_from_the_newest_time(ctx, owner, pair, crm, fake_chatwoot, monkeypatch):
    monkeypatch.setattr(zoho_contacts, "PAGE_SIZE", 5)
    monkeypatch.setattr(zoho_contacts, "PAGE_CAP", 10)
    monkeypatch.setattr("tests.fakes.zoho_contacts.PAGE_CAP", 10)
    for i in range(23):
        crm.add(f"Person {i}", f"p{i}@example.com", modified=1_000_000 + i)
    run = ctx.syncs.run_now(owner, make_sync(ctx, owner, pair, "crm_to_chatwoot"))
    assert run.status == "done", run.message
    assert run.report["chatwoot"]["created"] == 23 and len(fake_chatwoot.contacts) == 23
    reads = [e[0] for e in crm.server.log if e[0].path == "/zohoapis/crm/v2/Contacts" and e[0].method == "GET"]
    assert max(int(r.args["page"]) for r in reads) == 2
    assert [r.headers.get("If-Modified-Since") for r in reads if r.args["page"] == "1"][1:] == [
        "1970-01-12T13:46:49+00:00",
        "1970-01-12T13:46:58+00:00",  # at or after: the boundary record read again
    ]


def test_a_nameless_chatwoot_contact_gets_its_email_as_last_name(ctx, owner, pair, crm, fake_chatwoot):
    fake_chatwoot.add_contact(fake_chatwoot.seed.account_id, "", "quiet@example.com", updated_at=2_000)
    run = ctx.syncs.run_now(owner, make_sync(ctx, owner, pair, "chatwoot_to_crm"))
    assert run.status == "done" and run.report["crm"]["created"] == 1, run.report
    (record,) = crm.records.values()
    assert record["Last_Name"] == "quiet@example.com" and record["Email"] == "quiet@example.com"
    assert chatwoot_people(fake_chatwoot)["quiet@example.com"].name == ""


@pytest.mark.parametrize("module", ["Leads"])
def test_with_leads_people_who_chat_become_zoho_leads(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    fake_chatwoot.add_contact(account, "Ada Lovelace", "ada@example.com", updated_at=2_000)
    known = crm.add("Grace Hopper", "grace@example.com", modified=1_000)
    fake_chatwoot.add_contact(account, "Grace B. Hopper", "grace@example.com", updated_at=2_000)
    run = ctx.syncs.run_now(owner, make_sync(ctx, owner, pair, "chatwoot_to_crm", crm_object="leads"))
    assert run.status == "done", run.message
    assert run.report["crm"]["created"] == 1 and run.report["crm"]["updated"] == 1
    assert sorted(crm.emails()) == ["ada@example.com", "grace@example.com"]
    assert crm.name_of(known) == "Grace B. Hopper"
    paths = {e[0].path for e in crm.server.log}
    assert "/zohoapis/crm/v2/Leads" in paths and not any("/Contacts" in p for p in paths)
