"""Contact sync between HubSpot (a fake on pytest-httpserver) and Chatwoot (the stateful fake, checked
against Chatwoot's OpenAPI description), through SyncService as the app, the CLI and the engine use it."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from core.errors import NotFoundError, ValidationError
from core.models import ContactLink
from core.sync import runner as runner_module
from core.sync.contacts import normalise_phone
from providers import hubspot
from tests.conftest import wait_for
from tests.fakes.hubspot_contacts import FakeHubSpot

TOKEN = "pat-na1-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"


@pytest.fixture
def crm(monkeypatch, httpserver):
    monkeypatch.setattr(hubspot, "API_BASE", f"http://{httpserver.host}:{httpserver.port}")
    return FakeHubSpot(httpserver)


@pytest.fixture
def pair(ctx, owner, crm, fake_chatwoot, chatwoot_integration):
    hub = ctx.integrations.create(owner, "HubSpot", "HUBSPOT", {"accessToken": TOKEN}).id
    desk = chatwoot_integration(owner)
    return hub, desk


def make_sync(ctx, owner, pair, direction):
    return ctx.syncs.create(owner, pair[0], pair[1], direction).id


def chatwoot_people(fake):
    return {c.email or c.phone_number: c for c in fake.contacts_in(fake.seed.account_id)}


def hubspot_people(crm):
    return {p["email"] or p["phone"]: p for p in crm.contacts.values()}


def test_crm_contacts_appear_in_chatwoot_with_their_id_and_link(ctx, owner, pair, crm, fake_chatwoot):
    ada = crm.add("Ada Lovelace", "Ada@Example.com", "+44 20 7946 0001")
    crm.add("Nobody Atall")  # neither e-mail nor phone
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    people = chatwoot_people(fake_chatwoot)
    assert set(people) == {"ada@example.com"}
    made = people["ada@example.com"]
    assert made.phone_number == "+442079460001" and made.name == "Ada Lovelace"
    assert made.custom_attributes["crm_id"] == ada
    assert made.custom_attributes["crm_url"].endswith(f"/4242/record/0-1/{ada}")
    assert run.report["chatwoot"]["created"] == 1
    assert run.report["chatwoot"]["skippedReasons"] == {"no e-mail or phone": 1}
    again = ctx.syncs.run_now(owner, sync)  # nothing changed: nothing written
    assert again.report["chatwoot"]["created"] == 0 and len(fake_chatwoot.contacts) == 1


def test_chatwoot_contacts_become_crm_contacts_matched_by_email_then_phone(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    existing = crm.add("Grace Hopper", "grace@example.com", None, modified=1000)
    by_phone = crm.add("Linus", None, "+4930123456", modified=1000)
    fake_chatwoot.add_contact(account, "Grace H.", "GRACE@example.com", updated_at=2000)
    fake_chatwoot.add_contact(account, "Linus T", None, "+4930123456", updated_at=2000)
    fake_chatwoot.add_contact(account, "New Person", "new@example.com", updated_at=2000)
    sync = make_sync(ctx, owner, pair, "chatwoot_to_crm")
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    assert run.report["crm"] == {
        "created": 1,
        "updated": 2,
        "unchanged": 0,
        "skipped": 0,
        "failed": 0,
        "skippedReasons": {},
    }
    assert crm.contacts[existing]["firstname"] == "Grace"  # paired by e-mail, not duplicated
    assert crm.contacts[by_phone]["firstname"] == "Linus"  # paired by phone
    assert len(crm.contacts) == 3


def test_a_changed_email_keeps_the_pairing(ctx, owner, pair, crm, fake_chatwoot):
    person = crm.add("Ada Lovelace", "ada@example.com")
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    ctx.syncs.run_now(owner, sync)
    crm.contacts[person].update(email="ada@new.example", lastmodifieddate=crm.clock() + 5)
    run = ctx.syncs.run_now(owner, sync)
    assert run.report["chatwoot"]["updated"] == 1
    assert [c.email for c in fake_chatwoot.contacts_in(fake_chatwoot.seed.account_id)] == ["ada@new.example"]


def test_both_ways_the_newer_change_wins_and_nothing_is_deleted(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    a = crm.add("Ada Old", "ada@example.com", modified=1_000)
    b = crm.add("Bob Old", "bob@example.com", modified=1_000)
    sync = make_sync(ctx, owner, pair, "both")
    assert ctx.syncs.run_now(owner, sync).status == "done"
    cw = chatwoot_people(fake_chatwoot)
    now = int(time.time())
    # Ada: changed in HubSpot later than in Chatwoot; Bob: changed in Chatwoot later than in HubSpot.
    cw["ada@example.com"].name, cw["ada@example.com"].updated_at = "Ada Chatwoot", now + 10
    crm.contacts[a].update(firstname="Ada", lastname="HubSpot", lastmodifieddate=(now + 20) * 1000)
    crm.contacts[b].update(firstname="Bob", lastname="HubSpot", lastmodifieddate=(now + 10) * 1000)
    cw["bob@example.com"].name, cw["bob@example.com"].updated_at = "Bob Chatwoot", now + 20
    fake_chatwoot.add_contact(account, "Chat Only", "chat@example.com", updated_at=now + 30)
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    cw = chatwoot_people(fake_chatwoot)
    assert cw["ada@example.com"].name == "Ada HubSpot"
    assert (crm.contacts[b]["firstname"], crm.contacts[b]["lastname"]) == ("Bob", "Chatwoot")
    assert "chat@example.com" in hubspot_people(crm)
    assert len(cw) == 3 and len(crm.contacts) == 3  # nothing deleted, nothing doubled


def test_the_switch_off_refuses_new_syncs_and_stops_runs(ctx, owner, pair, crm, fake_chatwoot):
    crm.add("Ada", "ada@example.com")
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    view = ctx.integrations.get(owner, pair[1])
    ctx.integrations.update(
        owner, pair[1], view.version, configuration={**view.configuration, "features": {"syncContacts": False}}
    )
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "off" and "Sync contacts" in run.message
    assert fake_chatwoot.contacts == {}
    ctx.syncs.delete(owner, sync)
    with pytest.raises(ValidationError, match="switched off"):
        make_sync(ctx, owner, pair, "crm_to_chatwoot")


def test_dry_run_previews_and_writes_nothing(ctx, owner, pair, crm, fake_chatwoot):
    for i in range(30):
        crm.add(f"Person {i}", f"p{i}@example.com")
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    report = ctx.syncs.dry_run(owner, sync, limit=5)
    assert len(report.preview) == 5 and report.preview[0]["action"] == "create"
    assert fake_chatwoot.contacts == {} and ctx.syncs.reports(owner, sync) == []
    with ctx.factory() as session:
        assert session.scalar(select(func.count(ContactLink.id))) == 0


def test_someone_elses_integrations_and_unknown_directions_are_refused(ctx, owner, other_member, pair):
    with pytest.raises(NotFoundError):
        ctx.syncs.create(other_member, pair[0], pair[1], "both")
    with pytest.raises(ValidationError, match="direction"):
        ctx.syncs.create(owner, pair[0], pair[1], "sideways")


def test_a_429_is_waited_out(ctx, owner, pair, crm, fake_chatwoot):
    crm.add("Ada", "ada@example.com")
    crm.limit_next(1)
    fake_chatwoot.force(
        f"/api/v1/accounts/{fake_chatwoot.seed.account_id}/contacts",
        429,
        {"error": "Too many requests"},
        headers={"Retry-After": "1"},
        method="POST",
    )
    run = ctx.syncs.run_now(owner, make_sync(ctx, owner, pair, "crm_to_chatwoot"))
    assert run.status == "done", run.message
    assert len(fake_chatwoot.contacts) == 1


def test_the_scheduled_task_runs_a_sync(ctx, owner, pair, crm, fake_chatwoot, workers):
    crm.add("Ada", "ada@example.com")
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")  # Enterprise: every 15 minutes
    with ctx.factory.begin() as session:
        from core.models import ContactSync

        session.get(ContactSync, sync).next_run_at = runner_module.utcnow()
    workers(2, tick_seconds=1)
    wait_for(lambda: ctx.syncs.reports(owner, sync), timeout=30, what="a scheduled sync run")
    run = wait_for(lambda: [r for r in ctx.syncs.reports(owner, sync) if r.status != "running"], timeout=30)[0]
    assert run.trigger == "schedule" and run.status == "done"
    assert len(fake_chatwoot.contacts) == 1


def test_phone_numbers_are_read_as_e164():
    assert normalise_phone("+49 (30) 123-456") == "+4930123456"
    assert normalise_phone("0049 30 123456") == "+4930123456"
    assert normalise_phone("030 123456", "DE") == "+4930123456"
    assert normalise_phone("12") is None and normalise_phone("call me") is None


def test_a_crash_mid_run_resumes_without_duplicates_or_loss(ctx, owner, pair, crm, fake_chatwoot, monkeypatch):
    """The crash-and-resume path at a small size: 60 contacts each side, 10 a HubSpot page (15 a Chatwoot
    page), a crash after a Chatwoot contact was written but before its page's links were committed."""
    from core.sync import chatwoot as chatwoot_side
    from providers import hubspot_contacts

    monkeypatch.setattr(hubspot_contacts, "PAGE_SIZE", 10)
    account = fake_chatwoot.seed.account_id
    for i in range(60):
        crm.add(f"Crm Person{i}", f"crm{i}@example.com", modified=1_000_000 + i)
        fake_chatwoot.add_contact(account, f"Chat Person{i}", f"chat{i}@example.com", updated_at=2_000 + i)
    for i in range(6):  # on both sides already, matched by e-mail
        fake_chatwoot.add_contact(account, f"Crm Person{i}", f"CRM{i}@example.com", updated_at=1_000)
    sync = make_sync(ctx, owner, pair, "both")
    real = chatwoot_side.ChatwootContacts.create
    calls = {"n": 0}

    def crashing(self, items):
        calls["n"] += 1
        if calls["n"] == 3:  # the 3rd page of CRM contacts: written remotely, its links not committed
            real(self, items)
            raise RuntimeError("worker killed")
        return real(self, items)

    monkeypatch.setattr(chatwoot_side.ChatwootContacts, "create", crashing)
    first = ctx.syncs.run_now(owner, sync)
    assert first.status == "failed" and "carries on" in first.message
    with ctx.factory() as session:
        linked_after_crash = session.scalar(select(func.count(ContactLink.id)))
    assert 0 < linked_after_crash < 120  # two pages committed, the third not
    assert calls["n"] == 3
    second = ctx.syncs.run_now(owner, sync)
    assert second.status == "done", second.message
    cw_emails = [c.email for c in fake_chatwoot.contacts_in(account)]
    hs_emails = [p["email"] for p in crm.contacts.values()]
    assert len(cw_emails) == len(set(cw_emails)) == 120  # 0 duplicates
    assert len(hs_emails) == len(set(hs_emails)) == 120
    assert set(cw_emails) == set(hs_emails)  # 0 lost
    with ctx.factory() as session:
        assert session.scalar(select(func.count(ContactLink.id))) == 120
    third = ctx.syncs.run_now(owner, sync)  # settled: nothing left to write
    assert third.status == "done"
    assert third.report["chatwoot"]["created"] == third.report["crm"]["created"] == 0


def crash_and_resume(ctx, owner, pair, crm, fake_chatwoot, monkeypatch, n: int, crash_at: int) -> float:
    """n contacts each side (a tenth of them on both, matched by e-mail), both ways, a crash on the
    `crash_at`-th Chatwoot create call, then a resume; checks 0 duplicates, 0 lost, and answers the time."""
    account = fake_chatwoot.seed.account_id
    fake_chatwoot.validate_every = 50  # sampled: every 50th request and answer checked against the description
    for i in range(n):
        crm.add(f"Crm Person{i}", f"crm{i}@example.com", modified=1_000_000 + i)
    for i in range(n):
        fake_chatwoot.add_contact(account, f"Chat Person{i}", f"chat{i}@example.com", updated_at=2_000 + i)
    for i in range(0, n // 10):  # people on both sides, matched by e-mail
        fake_chatwoot.add_contact(account, f"Crm Person{i}", f"CRM{i}@example.com", updated_at=1_000)
    sync = make_sync(ctx, owner, pair, "both")
    started = time.monotonic()

    from core.sync import chatwoot as chatwoot_side

    real = chatwoot_side.ChatwootContacts.create
    calls = {"n": 0}

    def crashing(self, items):
        calls["n"] += 1
        if calls["n"] == crash_at:  # mid-run: remote writes happened, their links were not committed yet
            real(self, items)
            raise RuntimeError("worker killed")
        return real(self, items)

    monkeypatch.setattr(chatwoot_side.ChatwootContacts, "create", crashing)
    first = ctx.syncs.run_now(owner, sync)
    assert first.status == "failed" and "carries on" in first.message
    second = ctx.syncs.run_now(owner, sync)
    assert second.status == "done", second.message
    took = time.monotonic() - started
    cw, hs = fake_chatwoot.contacts_in(account), list(crm.contacts.values())
    cw_emails = [c.email for c in cw]
    hs_emails = [p["email"] for p in hs]
    assert len(cw_emails) == len(set(cw_emails)) == 2 * n  # 0 duplicates
    assert len(hs_emails) == len(set(hs_emails)) == 2 * n
    assert set(cw_emails) == set(hs_emails)  # 0 lost
    with ctx.factory() as session:
        assert session.scalar(select(func.count(ContactLink.id))) == 2 * n
    return took


def test_5000_each_side_both_ways_with_a_crash_resumes_without_duplicates_or_loss(
    ctx, owner, pair, crm, fake_chatwoot, monkeypatch
):
    # 100 CRM contacts a page: the 20th page's Chatwoot writes are done, its links not committed.
    took = crash_and_resume(ctx, owner, pair, crm, fake_chatwoot, monkeypatch, 5000, crash_at=20)
    print(f"\n5,000 contacts each side, both ways, crash and resume: {took:.1f} s")
    assert took < 90  # about 20 s here (2 cores); the fakes' answers were 40 ms each before TCP_NODELAY


def test_the_crm_contacts_template_creates_the_sync_once_and_runs_it(ctx, owner, pair, crm, fake_chatwoot, workers):
    crm.add("Grace Hopper", "grace@example.com")
    workers(2, periodic=False)
    template = "builtin:crm-contacts-into-chatwoot"
    values = [{"integration_id": pair[1]}, {"crm_integration_id": pair[0], "direction": "crm_to_chatwoot"}]
    assert [p.kind for p in ctx.templates.preview(owner, template, values)] == ["chatwoot", "contact_sync"]

    for _ in range(2):  # applied twice: one sync
        run_id = ctx.templates.apply(owner, template, values)
        run = wait_for(
            lambda run_id=run_id: (lambda r: r if r.finished else None)(ctx.templates.progress(owner, run_id))
        )
        assert run.status == "done", run
    (sync,) = ctx.syncs.list(owner, pair[1])
    assert "Found the contact sync" in run.steps[1].result["summary"]
    wait_for(lambda: "grace@example.com" in chatwoot_people(fake_chatwoot), what="the sync's run")
    assert sync.crm_integration_id == pair[0]
