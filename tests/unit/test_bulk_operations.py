"""IntegrationService's operations on a selection (test, activate, deactivate, delete, transfer), duplicate,
and the natural order of names that the list sorts and pages by in SQL."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from sqlalchemy import insert, select, text

from core.catalog import Catalog, Provider
from core.crypto import DecryptionError, field_context, is_encrypted
from core.engine.runs import scope_text
from core.errors import PermissionDeniedError, TierLimitError
from core.integrations.checks import CheckAllScope
from core.integrations.service import IntegrationService, ListQuery
from core.models import AuditEvent, Integration
from core.natural import natural_key
from tests.unit.test_integration_service import FAKE_FIELDS, FAKE_TOKEN, RecordingTest, StubSession, fake_config

pytestmark = pytest.mark.usefixtures("fast_bcrypt")


@pytest.fixture
def recorder():
    return RecordingTest()


@pytest.fixture
def fake(ctx, recorder) -> IntegrationService:
    catalog = Catalog([Provider("FAKE", "Fake CRM", "A stub.", "CRM", FAKE_FIELDS, test=recorder)])
    return IntegrationService(ctx.factory, ctx.cipher, catalog, cast(Any, StubSession))


def events(ctx, action: str) -> list[AuditEvent]:
    with ctx.factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def stored(ctx, integration_id: int) -> dict:
    with ctx.engine.connect() as conn:
        value = conn.execute(text("SELECT configuration FROM integrations WHERE id = :id"), {"id": integration_id})
        raw = value.scalar_one()
    return json.loads(raw) if isinstance(raw, str) else raw


def test_natural_key_orders_numbers_by_value_and_ignores_case():
    names = ["Acme 100", "acme 20", "Acme 3", "Beta", "acme 20b", "Acme 020"]
    assert sorted(names, key=natural_key) == ["Acme 3", "acme 20", "Acme 020", "acme 20b", "Acme 100", "Beta"]
    assert len(natural_key("1 " * 150)) == 255  # bounded by the column


def test_the_list_pages_in_natural_order_in_sql(fake, ctx, owner):
    with ctx.factory.begin() as session:  # a Core-free ORM insert: the validator keeps the key
        session.add_all(
            Integration(owner_id=owner.id, name=f"Acme {n}", type="CRM", provider="FAKE", configuration={})
            for n in (100, 20, 3, 1000, 21)
        )
    with ctx.engine.begin() as conn:  # a plain INSERT naming only the name: the column default keys it
        conn.execute(
            insert(Integration).values(owner_id=owner.id, name="Acme 4", type="CRM", provider="FAKE", configuration={})
        )
    first = fake.page(owner, ListQuery(limit=3))
    second = fake.page(owner, ListQuery(limit=3, offset=3))
    assert [v.name for v in first.views + second.views] == [
        "Acme 3",
        "Acme 4",
        "Acme 20",
        "Acme 21",
        "Acme 100",
        "Acme 1000",
    ]
    renamed = fake.update(owner, first.views[0].id, first.views[0].version, name="Acme 999")
    assert [v.name for v in fake.page(owner, ListQuery()).views][-2:] == [renamed.name, "Acme 1000"]


def test_duplicate_copies_the_settings_and_re_encrypts_each_secret_for_the_copy(fake, ctx, owner, recorder):
    original = fake.create(owner, "Acme CRM", "FAKE", fake_config())
    copy = fake.duplicate(owner, original.id)
    assert copy.id != original.id and copy.name == "Acme CRM (copy)" and copy.owner == "olga"
    assert copy.configuration == original.configuration  # masked alike
    sealed, source = stored(ctx, copy.id), stored(ctx, original.id)
    assert is_encrypted(sealed["token"]) and sealed["token"] != source["token"]
    assert ctx.cipher.decrypt(sealed["token"], field_context(copy.id, "token")) == FAKE_TOKEN
    with pytest.raises(DecryptionError):  # bound to the copy's id: it does not open as the original's field
        ctx.cipher.decrypt(sealed["token"], field_context(original.id, "token"))
    fake.test(owner, copy.id)
    assert recorder.calls[-1]["token"] == FAKE_TOKEN  # the copy connects with the same secret
    (event,) = events(ctx, "integration.duplicate")
    assert event.integration_id == copy.id and event.details["copied_from"] == original.id
    assert FAKE_TOKEN not in json.dumps(event.details)


def test_duplicate_is_refused_at_the_owners_tier_limit(fake, ctx, member):
    views = [fake.create(member, f"CRM {n}", "FAKE", fake_config()) for n in range(3)]  # FREE: 3
    with pytest.raises(TierLimitError, match="Starter tier allows more"):
        fake.duplicate(member, views[0].id)
    assert len(fake.list_integrations(member)) == 3
    assert events(ctx, "integration.duplicate")[-1].outcome == "denied"


def test_a_member_cannot_duplicate_someone_elses(fake, member, other_member):
    theirs = fake.create(other_member, "Bob CRM", "FAKE", fake_config())
    result = fake.bulk_set_active(member, [theirs.id], False)
    assert not result.done and "was not found" in result.refused[0].message
    with pytest.raises(Exception, match="not found"):
        fake.duplicate(member, theirs.id)


def test_bulk_deactivate_and_activate_each_audited(fake, ctx, owner):
    ids = [fake.create(owner, f"CRM {n}", "FAKE", fake_config()).id for n in range(3)]
    result = fake.bulk_set_active(owner, ids, False)
    assert result.summary() == "Deactivated 3 integrations."
    assert all(not fake.get(owner, i).is_active for i in ids)
    assert sorted(e.integration_id or 0 for e in events(ctx, "integration.pause")) == sorted(ids)
    assert fake.bulk_set_active(owner, ids[:2], True).summary() == "Activated 2 integrations."
    assert [fake.get(owner, i).is_active for i in ids] == [True, True, False]


def test_bulk_delete_refuses_one_changed_since_and_deletes_the_rest(fake, ctx, owner):
    views = [fake.create(owner, f"CRM {n}", "FAKE", fake_config()) for n in range(3)]
    versions = {v.id: v.version for v in views}
    fake.update(owner, views[1].id, views[1].version, name="Renamed meanwhile")
    result = fake.bulk_delete(owner, versions)
    assert [o.done for o in result.outcomes] == [True, False, True]
    assert result.summary().startswith("Deleted 2 of 3 integrations. Not done for Renamed meanwhile:")
    assert [v.name for v in fake.list_integrations(owner)] == ["Renamed meanwhile"]
    assert len(events(ctx, "integration.delete")) == 2


def test_a_selection_scoped_check_run_covers_the_selected_active_rows_the_person_may_test(fake, owner, member, admin):
    mine = [fake.create(owner, f"Mine {n}", "FAKE", fake_config()) for n in range(3)]
    theirs = fake.create(member, "Theirs", "FAKE", fake_config())
    fake.set_active(owner, mine[2].id, False)
    selected = (mine[0].id, mine[2].id, theirs.id)
    as_owner = [t.integration_id for t in fake.check_targets(owner, CheckAllScope(ids=selected))]
    assert as_owner == [mine[0].id]  # not the inactive one, not someone else's
    as_admin = [t.integration_id for t in fake.check_targets(admin, CheckAllScope(ids=selected))]
    assert as_admin == [mine[0].id, theirs.id]
    assert scope_text(CheckAllScope(ids=selected)) == "3 selected"


def test_transfer_is_for_administrators_and_keeps_the_new_owners_limit(fake, ctx, admin, member, owner):
    mine = [fake.create(owner, f"Olga {n}", "FAKE", fake_config()) for n in range(3)]
    with pytest.raises(PermissionDeniedError):
        fake.transfer(member, mine[0].id, "alice")
    fake.create(member, "Alice 1", "FAKE", fake_config())
    fake.create(member, "Alice 2", "FAKE", fake_config())  # alice (FREE: 3) has room for one more
    result = fake.bulk_transfer(admin, [v.id for v in mine], "alice")
    assert [o.done for o in result.outcomes] == [True, False, False]
    assert "alice's Free tier allows 3 integrations, and they have 3. The Starter tier allows more." in result.summary()
    assert fake.get(admin, mine[0].id).owner == "alice" and fake.get(admin, mine[1].id).owner == "olga"
    transfers = events(ctx, "integration.transfer")
    assert [e.outcome for e in transfers] == ["success", "denied", "denied"]
    event = transfers[0]
    assert event.details == {"name": "Olga 0", "from": "olga", "to": "alice"}
    assert fake.test(member, mine[0].id).success  # its secrets open for the new owner: bound to the integration
    unknown = fake.bulk_transfer(admin, [mine[1].id], "nobody")
    assert "No user called nobody" in unknown.summary()
