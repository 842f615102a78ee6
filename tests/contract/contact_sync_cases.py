"""The contact sync contract, CRM by CRM: each tests/contract/test_contact_sync_<crm>.py imports these
tests and gives them three fixtures: `crm` (its fake, with the interface of tests/fakes/crm_contacts.py),
`pair` ((CRM integration id, Chatwoot integration id) of the owner) and `page_size` (sets the side's page
size, so a few hundred contacts take many pages). Chatwoot is the stateful fake checked against its
OpenAPI description."""

from __future__ import annotations

from sqlalchemy import func, select

from core.models import ContactLink


def make_sync(ctx, owner, pair, direction: str, crm_object: str | None = None) -> int:
    if crm_object is None:
        return ctx.syncs.create(owner, pair[0], pair[1], direction).id
    return ctx.syncs.create(owner, pair[0], pair[1], direction, crm_object=crm_object).id


def chatwoot_people(fake) -> dict:
    return {c.email or c.phone_number: c for c in fake.contacts_in(fake.seed.account_id)}


def links(ctx) -> int:
    with ctx.factory() as session:
        return session.scalar(select(func.count(ContactLink.id))) or 0


def test_crm_contacts_appear_in_chatwoot_with_their_id_and_a_link(ctx, owner, pair, crm, fake_chatwoot):
    ada = crm.add("Ada Lovelace", "Ada@Example.com", "+44 20 7946 0001", modified=1_000_000)
    crm.add("Nobody Atall", modified=1_000_001)  # neither e-mail nor phone
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    people = chatwoot_people(fake_chatwoot)
    assert set(people) == {"ada@example.com"}
    made = people["ada@example.com"]
    assert made.phone_number == "+442079460001" and made.name == "Ada Lovelace"
    assert made.custom_attributes["crm_id"] == ada
    assert made.custom_attributes["crm_url"].startswith("https://") and ada in made.custom_attributes["crm_url"]
    assert run.report["chatwoot"]["created"] == 1
    assert run.report["chatwoot"]["skippedReasons"] == {"no e-mail or phone": 1}
    again = ctx.syncs.run_now(owner, sync)  # nothing changed: nothing written
    assert again.status == "done", again.message
    assert again.report["chatwoot"]["created"] == again.report["chatwoot"]["updated"] == 0
    assert len(fake_chatwoot.contacts) == 1


def test_chatwoot_contacts_become_crm_contacts_matched_by_email_then_phone(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    grace = crm.add("Grace Hopper", "grace@example.com", None, modified=1_000)
    linus = crm.add("Linus", None, "+4930123456", modified=1_000)
    fake_chatwoot.add_contact(account, "Grace Brewster", "GRACE@example.com", updated_at=2_000)
    fake_chatwoot.add_contact(account, "Linus Torvalds", None, "+4930123456", updated_at=2_000)
    fake_chatwoot.add_contact(account, "New Person", "new@example.com", updated_at=2_000)
    sync = make_sync(ctx, owner, pair, "chatwoot_to_crm")
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    assert {k: run.report["crm"][k] for k in ("created", "updated", "failed")} == {
        "created": 1,
        "updated": 2,
        "failed": 0,
    }
    assert crm.name_of(grace) == "Grace Brewster"  # paired by e-mail, not duplicated
    assert crm.name_of(linus) == "Linus Torvalds"  # paired by phone
    assert len(crm.records) == 3 and "new@example.com" in crm.emails()
    assert ctx.syncs.run_now(owner, sync).report["crm"]["created"] == 0


def test_a_second_run_reads_only_what_changed(ctx, owner, pair, crm, fake_chatwoot, page_size):
    page_size(10)
    people = [crm.add(f"Person {i}", f"p{i}@example.com", modified=1_000_000 + i) for i in range(40)]
    sync = make_sync(ctx, owner, pair, "crm_to_chatwoot")
    assert ctx.syncs.run_now(owner, sync).report["chatwoot"]["created"] == 40
    crm.change(people[7], name="Person Seven", modified=crm.clock() + 60)
    calls_before = len(crm.calls)
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    counts = run.report["chatwoot"]
    assert counts["updated"] == 1 and counts["created"] == 0
    assert counts["unchanged"] <= 2  # read from the cursor on: the boundary at most, not the 40
    assert len(crm.calls) - calls_before <= 3  # one page, not four
    assert chatwoot_people(fake_chatwoot)["p7@example.com"].name == "Person Seven"


def test_both_ways_the_newer_change_wins_and_nothing_is_deleted(ctx, owner, pair, crm, fake_chatwoot):
    account = fake_chatwoot.seed.account_id
    a = crm.add("Ada Old", "ada@example.com", modified=1_000_000)
    b = crm.add("Bob Old", "bob@example.com", modified=1_000_000)
    sync = make_sync(ctx, owner, pair, "both")
    assert ctx.syncs.run_now(owner, sync).status == "done"
    cw = chatwoot_people(fake_chatwoot)
    now = int(crm.clock())
    # Ada: changed in the CRM later than in Chatwoot; Bob: changed in Chatwoot later than in the CRM.
    cw["ada@example.com"].name, cw["ada@example.com"].updated_at = "Ada Chatwoot", now + 10
    crm.change(a, name="Ada Crm", modified=now + 20)
    crm.change(b, name="Bob Crm", modified=now + 10)
    cw["bob@example.com"].name, cw["bob@example.com"].updated_at = "Bob Chatwoot", now + 20
    fake_chatwoot.add_contact(account, "Chat Only", "chat@example.com", updated_at=now + 30)
    run = ctx.syncs.run_now(owner, sync)
    assert run.status == "done", run.message
    cw = chatwoot_people(fake_chatwoot)
    assert cw["ada@example.com"].name == "Ada Crm"
    assert crm.name_of(b) == "Bob Chatwoot"
    assert "chat@example.com" in crm.emails()
    assert len(cw) == 3 and len(crm.records) == 3  # nothing deleted, nothing doubled


def test_the_crms_rate_limit_is_waited_out(ctx, owner, pair, crm, fake_chatwoot):
    crm.add("Ada", "ada@example.com", modified=1_000_000)
    crm.limit_next(1)
    run = ctx.syncs.run_now(owner, make_sync(ctx, owner, pair, "crm_to_chatwoot"))
    assert run.status == "done", run.message
    assert len(fake_chatwoot.contacts) == 1


def test_a_crash_mid_run_resumes_without_duplicates_or_loss(
    ctx, owner, pair, crm, fake_chatwoot, page_size, monkeypatch
):
    """100 contacts each side (10 of them on both, matched by e-mail), 10 a CRM page, both ways; a crash
    after the 3rd page's Chatwoot contacts were written but before that page's links were committed."""
    from core.sync import chatwoot as chatwoot_side

    page_size(10)
    n = 100
    account = fake_chatwoot.seed.account_id
    fake_chatwoot.validate_every = 25
    for i in range(n):
        crm.add(f"Crm Person{i}", f"crm{i}@example.com", modified=1_000_000 + i)
        fake_chatwoot.add_contact(account, f"Chat Person{i}", f"chat{i}@example.com", updated_at=2_000 + i)
    for i in range(n // 10):
        fake_chatwoot.add_contact(account, f"Crm Person{i}", f"CRM{i}@example.com", updated_at=1_000)
    sync = make_sync(ctx, owner, pair, "both")
    real = chatwoot_side.ChatwootContacts.create
    calls = {"n": 0}

    def crashing(self, items):
        calls["n"] += 1
        if calls["n"] == 3:
            real(self, items)
            raise RuntimeError("worker killed")
        return real(self, items)

    monkeypatch.setattr(chatwoot_side.ChatwootContacts, "create", crashing)
    first = ctx.syncs.run_now(owner, sync)
    assert first.status == "failed" and "carries on" in first.message
    assert 0 < links(ctx) < 2 * n
    second = ctx.syncs.run_now(owner, sync)
    assert second.status == "done", second.message
    cw_emails = [c.email for c in fake_chatwoot.contacts_in(account)]
    crm_emails = [e.lower() for e in crm.emails()]
    assert len(cw_emails) == len(set(cw_emails)) == 2 * n  # 0 duplicates
    assert len(crm_emails) == len(set(crm_emails)) == 2 * n
    assert set(cw_emails) == set(crm_emails)  # 0 lost
    assert links(ctx) == 2 * n
    third = ctx.syncs.run_now(owner, sync)  # settled
    assert third.status == "done"
    assert third.report["chatwoot"]["created"] == third.report["crm"]["created"] == 0
