"""core.keys: the stored check value that detects, at start, a key that cannot open the stored data."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text

import app_context
from core.crypto import KEY_CHECK_CONTEXT, FieldCipher, is_encrypted
from core.keys import KEY_CHECK, KEY_CHECK_PLAINTEXT, KeyMismatchError, verify_key
from core.models import AppMeta
from tests.conftest import TEST_KEY, make_settings

OTHER_KEY = "a5" * 32


def stored_check(ctx) -> str | None:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT value FROM app_meta WHERE key = :k"), {"k": KEY_CHECK}).scalar()


def meta_rows(ctx) -> list[tuple]:
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT key, value FROM app_meta ORDER BY key"))]


@pytest.fixture
def empty_meta(ctx):
    with ctx.factory.begin() as session:
        session.execute(delete(AppMeta))
    return ctx


def test_first_start_stores_an_encrypted_check_value(empty_meta):
    ctx = empty_meta
    assert stored_check(ctx) is None
    verify_key(ctx.factory, FieldCipher([TEST_KEY]))
    value = stored_check(ctx)
    assert value is not None
    assert is_encrypted(value)
    assert KEY_CHECK_PLAINTEXT not in value
    assert FieldCipher([TEST_KEY]).decrypt(value, KEY_CHECK_CONTEXT) == KEY_CHECK_PLAINTEXT
    assert FieldCipher([TEST_KEY]).key_id_of(value) == FieldCipher([TEST_KEY]).current_key_id


def test_the_same_key_passes_and_changes_nothing(ctx):
    before = meta_rows(ctx)
    assert before  # the ctx fixture already started the app once
    verify_key(ctx.factory, FieldCipher([TEST_KEY]))
    verify_key(ctx.factory, FieldCipher([TEST_KEY]))
    assert meta_rows(ctx) == before


def test_a_different_key_is_refused_and_nothing_is_overwritten(ctx):
    before = meta_rows(ctx)
    with pytest.raises(KeyMismatchError) as raised:
        verify_key(ctx.factory, FieldCipher([OTHER_KEY]))
    message = str(raised.value)
    assert "INTEGRATION_ENCRYPTION_KEY" in message
    assert "Nothing was changed" in message
    assert OTHER_KEY not in message and TEST_KEY not in message
    assert meta_rows(ctx) == before
    # still refused the second time: the first refusal did not "fix" the check value
    with pytest.raises(KeyMismatchError):
        verify_key(ctx.factory, FieldCipher([OTHER_KEY]))
    verify_key(ctx.factory, FieldCipher([TEST_KEY]))


def test_a_key_ring_holding_the_old_key_passes(ctx):
    """Rotation: a new key first, the old one second, still opens the stored data."""
    before = meta_rows(ctx)
    verify_key(ctx.factory, FieldCipher([OTHER_KEY, TEST_KEY]))
    assert meta_rows(ctx) == before


def test_a_tampered_check_value_is_a_mismatch_not_a_crash(ctx):
    value = stored_check(ctx)
    tampered = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE app_meta SET value = :v WHERE key = :k"), {"v": tampered, "k": KEY_CHECK})
    try:
        with pytest.raises(KeyMismatchError):
            verify_key(ctx.factory, FieldCipher([TEST_KEY]))
        assert stored_check(ctx) == tampered
    finally:
        # the shared ctx fixture starts the app (and checks the key) before it empties the database
        with ctx.engine.begin() as conn:
            conn.execute(text("UPDATE app_meta SET value = :v WHERE key = :k"), {"v": value, "k": KEY_CHECK})


def test_the_app_refuses_to_start_with_the_wrong_key(ctx, database_url):
    before = meta_rows(ctx)
    with pytest.raises(KeyMismatchError):
        app_context.build(make_settings(database_url, encryption_key=OTHER_KEY), migrate=False)
    assert meta_rows(ctx) == before
    rebuilt = app_context.build(make_settings(database_url), migrate=False)
    rebuilt.engine.dispose()


def test_the_app_starts_with_a_ring_whose_older_key_wrote_the_check(ctx, database_url):
    """Rotation step 2: the new key first, the old one after it; the new one encrypts from now on."""
    before = meta_rows(ctx)
    rebuilt = app_context.build(make_settings(database_url, encryption_keys=(OTHER_KEY, TEST_KEY)), migrate=False)
    try:
        assert rebuilt.cipher.key_ids == (
            FieldCipher([OTHER_KEY]).current_key_id,
            FieldCipher([TEST_KEY]).current_key_id,
        )
        assert rebuilt.cipher.key_id_of(rebuilt.cipher.encrypt("x", KEY_CHECK_CONTEXT)) == rebuilt.cipher.key_ids[0]
    finally:
        rebuilt.engine.dispose()
    assert meta_rows(ctx) == before  # starting with a ring rewrites nothing; `keys rotate` does that


def test_the_mismatch_message_names_both_settings(ctx):
    with pytest.raises(KeyMismatchError) as raised:
        verify_key(ctx.factory, FieldCipher([OTHER_KEY]))
    assert "INTEGRATION_ENCRYPTION_KEYS" in str(raised.value)
