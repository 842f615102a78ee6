"""Staff accounts and widget presets: a save from an older version is refused, naming who saved the newer
one and when, and never merged silently (integrations: tests/unit/test_integration_service.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.chatwoot.widget import WidgetSettings
from core.errors import ConflictError
from core.models import User, WidgetPreset

pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


@pytest.fixture
def dana(ctx):
    return ctx.users.create(None, "dana", "Dana Admin", "dana@example.com", "dana-password-1", "admin", "ENTERPRISE")


def stored_user(ctx, username):
    with ctx.factory() as session:
        return session.scalar(select(User).where(User.username == username))


def stored_preset(ctx, preset_id):
    with ctx.factory() as session:
        return session.scalar(select(WidgetPreset).where(WidgetPreset.id == preset_id))


# ----- staff accounts --------------------------------------------------------------------------------


def test_an_account_saved_by_another_admin_since_it_was_opened_is_refused_naming_them(ctx, admin, dana, member):
    opened_by_root = ctx.users.get_by_username("alice")
    opened_by_dana = ctx.users.get_by_username("alice")

    ctx.users.update_account(dana.actor(), "alice", opened_by_dana.version, "TEAM", "member", True)
    with pytest.raises(ConflictError) as raised:
        ctx.users.update_account(admin, "alice", opened_by_root.version, "FREE", "admin", False)

    row = stored_user(ctx, "alice")
    assert (row.tier, row.role, row.active) == ("TEAM", "member", True)  # Dana's save is intact
    assert (raised.value.changed_by, raised.value.changed_at) == ("dana", row.updated_at)
    assert str(raised.value).startswith(f"dana changed this account at {row.updated_at:%Y-%m-%d %H:%M:%S} UTC")
    # Reloading (opening again) takes Dana's version, and a save from it goes through.
    reloaded = ctx.users.get_by_username("alice")
    assert reloaded.tier == "TEAM"
    ctx.users.update_account(admin, "alice", reloaded.version, reloaded.tier, "admin", True)
    assert (stored_user(ctx, "alice").tier, stored_user(ctx, "alice").role) == ("TEAM", "admin")


def test_a_change_from_the_command_line_also_makes_an_open_account_form_stale(ctx, admin, member):
    opened = ctx.users.get_by_username("alice")
    ctx.users.set_tier(None, "alice", "BUSINESS")  # manage.py users set-tier
    with pytest.raises(ConflictError):
        ctx.users.update_account(admin, "alice", opened.version, "FREE", "member", True)
    assert stored_user(ctx, "alice").tier == "BUSINESS"


def test_an_account_write_between_load_and_save_is_detected_by_the_update_itself(
    ctx, admin, member, written_just_before_the_flush
):
    """The UPDATE carries the version, so a save racing the check cannot both pass."""
    opened = ctx.users.get_by_username("alice")
    dana_saves = "UPDATE users SET tier = 'TEAM', version = version + 1, updated_by = 'dana' WHERE id = :id"
    refused = pytest.raises(ConflictError, match=r"^dana changed this account")
    with written_just_before_the_flush(dana_saves, id=opened.id) as fired, refused:
        ctx.users.update_account(admin, "alice", opened.version, "FREE", "admin", True)
    assert fired
    row = stored_user(ctx, "alice")
    assert (row.tier, row.role, row.version) == ("TEAM", "member", opened.version + 1)


# ----- widget presets ----------------------------------------------------------------------------------


def test_a_preset_saved_in_another_tab_since_it_was_loaded_is_refused(ctx, other_member):
    first = ctx.presets.save(other_member, "Home", WidgetSettings())
    tab_a = ctx.presets.get(other_member, first.id)
    tab_b = ctx.presets.get(other_member, first.id)

    ctx.presets.save(other_member, "Home", WidgetSettings(position="left"), expected_version=tab_b.version)
    with pytest.raises(ConflictError) as raised:
        ctx.presets.save(other_member, "Home", WidgetSettings(dark_mode="auto"), expected_version=tab_a.version)

    row = stored_preset(ctx, first.id)
    assert row.settings == WidgetSettings(position="left").as_sdk()  # tab B's save is intact
    assert str(raised.value).startswith(
        f"bob changed the preset Home (in another tab or window) at {row.updated_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    reloaded = ctx.presets.get(other_member, first.id)
    assert reloaded.settings.position == "left"
    ctx.presets.save(other_member, "Home", WidgetSettings(position="left", dark_mode="auto"), expected_version=2)
    assert stored_preset(ctx, first.id).settings == WidgetSettings(position="left", dark_mode="auto").as_sdk()


def test_a_preset_name_seen_free_but_taken_since_is_refused(ctx, other_member):
    ctx.presets.save(other_member, "Shop", WidgetSettings(position="left"), expected_version=0)
    with pytest.raises(ConflictError, match=r"^bob changed the preset Shop"):
        ctx.presets.save(other_member, "Shop", WidgetSettings(), expected_version=0)
    [preset] = ctx.presets.list(other_member)
    assert preset.settings.position == "left"


def test_a_preset_write_between_load_and_save_is_detected_by_the_update_itself(
    ctx, other_member, written_just_before_the_flush
):
    first = ctx.presets.save(other_member, "Home", WidgetSettings())
    other_tab_saves = "UPDATE widget_presets SET version = version + 1, inbox_id = 7 WHERE id = :id"
    with written_just_before_the_flush(other_tab_saves, id=first.id) as fired, pytest.raises(ConflictError):
        ctx.presets.save(other_member, "Home", WidgetSettings(position="left"), expected_version=first.version)
    assert fired
    row = stored_preset(ctx, first.id)
    assert (row.inbox_id, row.settings) == (7, WidgetSettings().as_sdk())
