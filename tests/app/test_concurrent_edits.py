"""Two people edit one integration at once: the second save is refused, naming the first, never merged."""

from __future__ import annotations

from sqlalchemy import select

from core.models import AuditEvent, Integration
from tests.app.conftest import button, read, select_rows, sign_in, text_input

CHATWOOT = {"baseUrl": "http://127.0.0.1:9", "accountId": "1", "apiKey": "cw-token-0123456789"}


def open_edit(at, view):
    at.switch_page("app_pages/integrations.py")
    at.run()
    select_rows(at, view.name)
    button(at, "Edit").click()
    at.run()
    assert not at.exception, at.exception
    return at


def stored_with_last_update(app_env, integration_id: int):
    """The integration as stored now (or None), and when its last edit was audited."""
    with app_env.factory() as session:
        row = session.scalar(select(Integration).where(Integration.id == integration_id))
        saved_at = session.scalar(
            select(AuditEvent.at).where(
                AuditEvent.integration_id == integration_id, AuditEvent.action == "integration.update"
            )
        )
    return row, saved_at


def test_a_save_after_someone_elses_is_refused_naming_them_and_reload_shows_their_version(app_env, admin, member):
    view = app_env.integrations.create(member, "Acme desk", "CHATWOOT", CHATWOOT)
    a = open_edit(sign_in("root", "admin-password-1"), view)  # session A: the administrator
    b = open_edit(sign_in("alice", "alice-password-1"), view)  # session B: the owner

    text_input(b, "Integration name").input("Renamed by Alice")
    text_input(b, "Account ID").input("22")
    button(b, "Save integration").click()
    b.run()
    assert not b.exception, b.exception

    # A's dialog still shows what A opened, not B's save, on every rerun.
    a.run()
    assert text_input(a, "Integration name").value == "Acme desk"
    text_input(a, "Integration name").input("Renamed by root")
    button(a, "Save integration").click()
    a.run()
    assert not a.exception, a.exception

    row, saved_at = stored_with_last_update(app_env, view.id)
    assert (row.name, row.configuration["accountId"]) == ("Renamed by Alice", "22")  # B's change is intact
    refusal = read(" ".join(e.value for e in a.error))
    assert f"alice changed this integration at {saved_at:%Y-%m-%d %H:%M:%S} UTC" in refusal, refusal
    assert "not saved" in refusal

    button(a, "Reload their version").click()
    a.run()
    assert not a.exception, a.exception
    assert text_input(a, "Integration name").value == "Renamed by Alice"
    assert text_input(a, "Account ID").value == "22"
    assert not a.error  # the refusal belonged to the discarded edits

    # Saving from the reloaded version works, and keeps B's other change.
    text_input(a, "Integration name").input("Renamed by root")
    button(a, "Save integration").click()
    a.run()
    with app_env.factory() as session:
        row = session.scalar(select(Integration).where(Integration.id == view.id))
    assert (row.name, row.configuration["accountId"]) == ("Renamed by root", "22")


def test_a_delete_after_someone_elses_save_is_refused_naming_them_and_look_again_shows_their_version(
    app_env, admin, member
):
    view = app_env.integrations.create(member, "Acme desk", "CHATWOOT", CHATWOOT)
    a = sign_in("root", "admin-password-1")  # session A: the administrator opens the delete dialog
    a.switch_page("app_pages/integrations.py")
    a.run()
    select_rows(a, view.name)
    button(a, "Delete").click()
    a.run()
    assert not a.exception, a.exception
    assert "Delete **Acme desk**" in read(" ".join(m.value for m in a.markdown))

    b = open_edit(sign_in("alice", "alice-password-1"), view)  # session B: the owner renames it meanwhile
    text_input(b, "Integration name").input("Renamed by Alice")
    button(b, "Save integration").click()
    b.run()
    assert not b.exception, b.exception

    # A's dialog still deletes what A was shown, so the deletion is refused rather than taking B's version.
    button(a, "Delete permanently").click()
    a.run()
    assert not a.exception, a.exception
    row, saved_at = stored_with_last_update(app_env, view.id)
    assert row is not None and row.name == "Renamed by Alice"  # B's version is not deleted unseen
    refusal = read(" ".join(e.value for e in a.error))
    assert f"alice changed this integration at {saved_at:%Y-%m-%d %H:%M:%S} UTC" in refusal, refusal

    button(a, "Look again").click()
    a.run()
    assert not a.exception, a.exception
    assert "Delete **Renamed by Alice**" in read(" ".join(m.value for m in a.markdown))
    assert not a.error  # the refusal belonged to the version A no longer looks at

    button(a, "Delete permanently").click()
    a.run()
    assert not a.exception, a.exception
    with app_env.factory() as session:
        assert session.get(Integration, view.id) is None
