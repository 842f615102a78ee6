"""core.rotation: `keys rotate` re-encrypts every stored secret under the newest key, in all-or-nothing
batches, never destroys what it cannot open, never bumps a version, and says exactly what it did."""

from __future__ import annotations

import base64
import json
import os
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

from core.catalog import Catalog, Provider
from core.crypto import (
    KEY_CHECK_CONTEXT,
    FieldCipher,
    encrypt_legacy,
    field_context,
    format_of,
    key_bytes,
    key_id,
    token_context,
)
from core.fields import FieldSpec
from core.keys import KEY_CHECK, KEY_CHECK_PLAINTEXT, verify_key
from core.models import AuditEvent, Integration, OAuthToken
from core.results import TestResult
from core.rotation import KeyRotation, RotationInterrupted
from core.tokens import StoredTokens, stored_key
from tests.conftest import TEST_KEY

OLD = TEST_KEY  # the ctx fixture's key: the key check and everything created through ctx use it
NEW = "9c" * 32
GONE = "e1" * 32  # a key nobody has any more
OLD_ID, NEW_ID, GONE_ID = (key_id(key_bytes(k)) for k in (OLD, NEW, GONE))
OLD_OAUTH_KEY = stored_key(FieldCipher([OLD]), "oauth")  # how r1's cached token is stored (written under OLD)

FIELDS = (
    FieldSpec("baseUrl", "Base URL", "url", required=True),
    FieldSpec("token", "Token", "password", sensitive=True),
    FieldSpec("auth.secret", "Secret", "password", sensitive=True),
)
CATALOG = Catalog([Provider("FAKE", "Fake CRM", "A stub.", "CRM", FIELDS, test=lambda c, x: TestResult(True, "ok"))])
PLAINTEXTS = {
    ("r1", "token"): "r1-token-legacy",
    ("r1", "auth.secret"): "r1-secret-current",
    ("r2", "token"): "r2-token-current",
    ("r3", "token"): "r3-token-v1",
    ("r4", "token"): "r4-token-v2-old",
    ("r4", "auth.secret"): "r4-secret-v2-old",
    ("r5", "auth.secret"): "r5-secret-gone-key",
    ("r6", "token"): "r6-token-gone-legacy",
}
ACCESS_TOKENS = {"r1": "r1-access-token-old", "r2": "r2-access-token-new"}


def v1_value(hex_key: str, plaintext: str) -> str:
    raw = bytes.fromhex(hex_key)
    nonce = os.urandom(12)
    token = base64.urlsafe_b64encode(nonce + AESGCM(raw).encrypt(nonce, plaintext.encode(), None)).decode()
    return f"enc:v1:{key_id(raw)}:{token.rstrip('=')}"


@contextmanager
def failing_update(engine, nth: int):
    """The database refuses the nth UPDATE that writes an integration's configuration."""
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE INTEGRATIONS SET CONFIGURATION"):
            seen.append(statement)
            if len(seen) == nth:
                raise OperationalError(statement, {}, Exception("simulated: disk I/O error"))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.fixture
def ring():
    return FieldCipher([NEW, OLD])


@pytest.fixture
def rotation(ctx, ring):
    return KeyRotation(ctx.factory, ring, CATALOG)


def set_config(ctx, integration_id: int, config: dict) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE integrations SET configuration = :c WHERE id = :id"),
            {"c": json.dumps(config), "id": integration_id},
        )


@pytest.fixture
def stored(ctx, admin):
    """Six integrations holding every kind of stored value, two cached tokens and the key check.

    r1: token legacy (old key), auth.secret v2 new key      r2: token v2 new key
    r3: token v1 (old key)                                    r4: token and auth.secret v2 old key
    r5: token copied from r4 (bound to r4), auth.secret v2 under a key not in the ring
    r6: token legacy under a key not in the ring
    """
    old, new, gone = FieldCipher([OLD]), FieldCipher([NEW]), FieldCipher([GONE])
    ids = {}
    with ctx.factory.begin() as session:
        for name in ("r1", "r2", "r3", "r4", "r5", "r6"):
            row = Integration(owner_id=admin.id, name=name, type="CRM", provider="FAKE", configuration={})
            session.add(row)
            session.flush()
            ids[name] = row.id

    def ctx_of(name, field):
        return field_context(ids[name], field)

    r4_token = old.encrypt(PLAINTEXTS["r4", "token"], ctx_of("r4", "token"))
    configs = {
        "r1": {
            "token": encrypt_legacy(bytes.fromhex(OLD), PLAINTEXTS["r1", "token"]),
            "auth": {"secret": new.encrypt(PLAINTEXTS["r1", "auth.secret"], ctx_of("r1", "auth.secret"))},
        },
        "r2": {"token": new.encrypt(PLAINTEXTS["r2", "token"], ctx_of("r2", "token"))},
        "r3": {"token": v1_value(OLD, PLAINTEXTS["r3", "token"])},
        "r4": {
            "token": r4_token,
            "auth": {"secret": old.encrypt(PLAINTEXTS["r4", "auth.secret"], ctx_of("r4", "auth.secret"))},
        },
        "r5": {
            "token": r4_token,  # copied from r4's row: it must not open as r5's
            "auth": {"secret": gone.encrypt(PLAINTEXTS["r5", "auth.secret"], ctx_of("r5", "auth.secret"))},
        },
        "r6": {"token": encrypt_legacy(bytes.fromhex(GONE), PLAINTEXTS["r6", "token"])},
    }
    for name, config in configs.items():
        set_config(ctx, ids[name], {"baseUrl": f"https://{name}.example", **config})
    StoredTokens(ctx.factory, old, ids["r1"]).put("oauth", ACCESS_TOKENS["r1"], 3600)
    StoredTokens(ctx.factory, new, ids["r2"]).put("oauth", ACCESS_TOKENS["r2"], 3600)
    return ids


def snapshot(ctx) -> dict:
    """Every stored value that rotation may touch, plus what it must never touch."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, configuration, version, updated_at FROM integrations ORDER BY id"))
        integrations = {
            r.id: {
                "config": json.loads(r.configuration) if isinstance(r.configuration, str) else r.configuration,
                "version": r.version,
                "updated_at": str(r.updated_at),
            }
            for r in rows
        }
        tokens = dict(conn.execute(text("SELECT integration_id, access_token FROM oauth_tokens")).all())
        check = conn.execute(text("SELECT value FROM app_meta WHERE key = :k"), {"k": KEY_CHECK}).scalar()
    return {"integrations": integrations, "tokens": tokens, "key_check": check}


def value_of(snap: dict, integration_id: int, field: str):
    config = snap["integrations"][integration_id]["config"]
    for part in field.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config


def rotation_events(ctx) -> list[AuditEvent]:
    with ctx.factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "keys.rotate")))


# ----- the whole run ---------------------------------------------------------------------------------


def test_rotation_re_encrypts_everything_it_can_and_reports_exact_counts(ctx, stored, rotation, ring):
    before = snapshot(ctx)
    report = rotation.run(batch_size=2)

    # r1 token, r3 token, r4 token, r4 secret, r1's cached token, the key check
    assert report.re_encrypted == 6
    # r1 secret, r2 token, r2's cached token
    assert report.already_current == 3
    assert report.failed == 3
    assert report.key_id == NEW_ID and report.ring == (NEW_ID, OLD_ID)
    assert report.batches == 3 + 1 + 1  # six integrations in twos, one batch of tokens, the key check

    failures = {(f.integration_id, f.field): f.reason for f in report.failures}
    assert set(failures) == {(stored["r5"], "token"), (stored["r5"], "auth.secret"), (stored["r6"], "token")}
    assert "integrity check" in failures[stored["r5"], "token"]
    assert failures[stored["r5"], "auth.secret"] == f"written with key {GONE_ID}, which is not in the ring"
    assert "no key in the ring opens it" in failures[stored["r6"], "token"]

    after = snapshot(ctx)
    for (name, field), plaintext in PLAINTEXTS.items():
        value = value_of(after, stored[name], field)
        if name in ("r5", "r6"):  # left exactly as stored
            assert value == value_of(before, stored[name], field)
            continue
        assert value.startswith(f"enc:v2:{NEW_ID}:"), (name, field, value)
        # Only the new key is needed from now on.
        assert FieldCipher([NEW]).decrypt(value, field_context(stored[name], field)) == plaintext
    # Current values were not rewritten.
    for name, field in (("r1", "auth.secret"), ("r2", "token")):
        assert value_of(after, stored[name], field) == value_of(before, stored[name], field)
    # Nor was anything that is not a secret.
    for integration_id, row in after["integrations"].items():
        assert row["config"]["baseUrl"] == before["integrations"][integration_id]["config"]["baseUrl"]

    for name, access_token in ACCESS_TOKENS.items():
        assert after["tokens"][stored[name]].startswith(f"enc:v2:{NEW_ID}:")
        with ctx.factory() as session:
            [row] = session.scalars(select(OAuthToken).where(OAuthToken.integration_id == stored[name]))
        assert FieldCipher([NEW]).decrypt(row.access_token, token_context(stored[name], row.cache_key)) == access_token
    # Cache keys are keyed hashes under the newest key: r1's token, cached under the old key, now simply
    # misses (a new one is fetched and replaces it); r2's, cached under the new key, is still used.
    tokens_r1 = StoredTokens(ctx.factory, FieldCipher([NEW]), stored["r1"])
    assert tokens_r1.get("oauth") is None
    assert StoredTokens(ctx.factory, FieldCipher([NEW]), stored["r2"]).get("oauth") == ACCESS_TOKENS["r2"]
    assert after["tokens"][stored["r2"]] == before["tokens"][stored["r2"]]

    assert after["key_check"].startswith(f"enc:v2:{NEW_ID}:")
    assert FieldCipher([NEW]).decrypt(after["key_check"], KEY_CHECK_CONTEXT) == KEY_CHECK_PLAINTEXT
    verify_key(ctx.factory, FieldCipher([NEW]))  # the app now starts with the new key alone


def test_rotation_is_not_an_edit_versions_and_update_times_stay(ctx, stored, rotation):
    before = snapshot(ctx)
    rotation.run(batch_size=2)
    after = snapshot(ctx)
    for integration_id, row in before["integrations"].items():
        assert after["integrations"][integration_id]["version"] == row["version"]
        assert after["integrations"][integration_id]["updated_at"] == row["updated_at"]


def test_a_second_run_finds_everything_already_current_and_changes_nothing(ctx, stored, rotation):
    rotation.run(batch_size=2)
    after_first = snapshot(ctx)
    again = rotation.run(batch_size=2)
    assert (again.re_encrypted, again.already_current, again.failed) == (0, 9, 3)
    assert snapshot(ctx) == after_first


def test_the_audit_event_holds_the_counts_and_no_secret(ctx, stored, rotation):
    before = snapshot(ctx)
    rotation.run(batch_size=2)
    [event_] = rotation_events(ctx)
    assert event_.actor == "system" and event_.outcome == "failure"  # three values could not be rotated
    details = event_.details
    assert (details["re_encrypted"], details["already_current"], details["failed"]) == (6, 3, 3)
    assert details["key_id"] == NEW_ID
    assert {(f["integration_id"], f["field"]) for f in details["failures"]} == {
        (stored["r5"], "token"),
        (stored["r5"], "auth.secret"),
        (stored["r6"], "token"),
    }
    dumped = json.dumps(details)
    for secret in [*PLAINTEXTS.values(), *ACCESS_TOKENS.values(), KEY_CHECK_PLAINTEXT, NEW, OLD, GONE]:
        assert secret not in dumped
    assert "enc:v" not in dumped
    for integration_id in before["integrations"]:
        for field in ("token", "auth.secret"):
            value = value_of(before, integration_id, field)
            assert value is None or value.rsplit(":", 1)[-1] not in dumped


def test_a_clean_run_is_audited_as_a_success(ctx, admin, rotation):
    """Only the key check is stored: it is re-encrypted, nothing fails."""
    report = rotation.run()
    assert (report.re_encrypted, report.already_current, report.failed) == (1, 0, 0)
    assert [e.outcome for e in rotation_events(ctx)] == ["success"]


# ----- a ring that cannot open what is stored ------------------------------------------------------


def test_a_one_key_ring_reports_values_of_other_keys_instead_of_silently_doing_nothing(ctx, stored):
    """The competitors' failure: a 'rotation' with only the new key that reports success."""
    before = snapshot(ctx)
    report = KeyRotation(ctx.factory, FieldCipher([NEW]), CATALOG).run(batch_size=2)

    reasons = {(f.integration_id, f.field): f.reason for f in report.failures}
    for name, field in (("r3", "token"), ("r4", "token"), ("r4", "auth.secret")):
        assert reasons[stored[name], field] == f"written with key {OLD_ID}, which is not in the ring"
    assert reasons[None, "key check"] == f"written with key {OLD_ID}, which is not in the ring"
    assert reasons[stored["r1"], f"cached access token {OLD_OAUTH_KEY[:8]}"] == (
        f"written with key {OLD_ID}, which is not in the ring"
    )
    assert "no key in the ring opens it" in reasons[stored["r1"], "token"]  # legacy does not name its key
    assert report.re_encrypted == 0
    assert report.already_current == 3  # what the new key wrote: r1 secret, r2 token, r2's cached token
    assert report.failed == 9
    assert snapshot(ctx) == before  # nothing destroyed


def test_values_the_ring_cannot_open_are_never_rewritten(ctx, stored, rotation):
    before = snapshot(ctx)
    rotation.run(batch_size=1)
    after = snapshot(ctx)
    assert after["integrations"][stored["r5"]]["config"] == before["integrations"][stored["r5"]]["config"]
    assert after["integrations"][stored["r6"]]["config"] == before["integrations"][stored["r6"]]["config"]


# ----- batches: all-or-nothing, safe to interrupt, carries on when run again ---------------------------


def test_a_failure_in_the_second_batch_keeps_the_first_and_rolls_back_the_second(ctx, stored, rotation):
    before = snapshot(ctx)
    # Batch 1 (r1, r2) writes r1; batch 2 (r3, r4) writes r3, then the database refuses r4's write.
    with failing_update(ctx.engine, nth=3) as seen, pytest.raises(RotationInterrupted) as raised:
        rotation.run(batch_size=2)
    assert len(seen) == 3

    partial = raised.value.report
    assert (partial.re_encrypted, partial.already_current, partial.failed, partial.batches) == (1, 2, 0, 1)
    assert "batch 2" in str(raised.value) and "run `keys rotate` again" in str(raised.value).lower()

    after = snapshot(ctx)
    assert value_of(after, stored["r1"], "token").startswith(f"enc:v2:{NEW_ID}:")  # batch 1 committed
    for name in ("r3", "r4", "r5", "r6"):  # batch 2 rolled back (r3 included), later ones never started
        assert after["integrations"][stored[name]] == before["integrations"][stored[name]]
    assert after["tokens"] == before["tokens"] and after["key_check"] == before["key_check"]
    [event_] = rotation_events(ctx)
    assert event_.outcome == "failure" and "interrupted" in event_.details

    report = rotation.run(batch_size=2)  # run again: carries on where it stopped
    assert (report.re_encrypted, report.already_current, report.failed) == (5, 4, 3)
    final = snapshot(ctx)
    for name, field in (("r3", "token"), ("r4", "token"), ("r4", "auth.secret")):
        assert value_of(final, stored[name], field).startswith(f"enc:v2:{NEW_ID}:")
    assert final["key_check"].startswith(f"enc:v2:{NEW_ID}:")


@pytest.mark.parametrize("batch_size", [1, 4, 1000])
def test_the_counts_do_not_depend_on_the_batch_size(ctx, stored, rotation, batch_size):
    report = rotation.run(batch_size=batch_size)
    assert (report.re_encrypted, report.already_current, report.failed) == (6, 3, 3)


def test_a_batch_size_below_one_is_refused(rotation):
    with pytest.raises(ValueError):
        rotation.run(batch_size=0)


# ----- odd stored values ------------------------------------------------------------------------------


def test_a_secret_stored_in_clear_is_encrypted_and_a_damaged_one_is_reported(ctx, admin, rotation):
    with ctx.factory.begin() as session:
        row = Integration(owner_id=admin.id, name="odd", type="CRM", provider="FAKE", configuration={})
        session.add(row)
        session.flush()
        row_id = row.id
    damaged = "enc:v2:" + NEW_ID + ":AAAA"  # truncated: does not parse as ciphertext
    set_config(
        ctx, row_id, {"baseUrl": "https://odd.example", "token": "imported-in-clear", "auth": {"secret": damaged}}
    )

    report = rotation.run()
    assert report.from_clear_text == 1
    assert [(f.integration_id, f.field) for f in report.failures] == [(row_id, "auth.secret")]
    assert "damaged" in report.failures[0].reason
    config = snapshot(ctx)["integrations"][row_id]["config"]
    assert FieldCipher([NEW]).decrypt(config["token"], field_context(row_id, "token")) == "imported-in-clear"
    assert config["auth"]["secret"] == damaged


def test_integrations_of_a_provider_no_longer_in_the_catalog_are_rotated_too(ctx, admin, rotation):
    with ctx.factory.begin() as session:
        row = Integration(owner_id=admin.id, name="gone", type="CRM", provider="RETIRED", configuration={})
        session.add(row)
        session.flush()
        row_id = row.id
    sealed = FieldCipher([OLD]).encrypt("retired-secret", field_context(row_id, "nested.key"))
    set_config(ctx, row_id, {"url": "https://x.example", "nested": {"key": sealed}})

    report = rotation.run()
    assert report.failed == 0 and report.re_encrypted == 2  # the secret and the key check
    value = snapshot(ctx)["integrations"][row_id]["config"]["nested"]["key"]
    assert format_of(value) == "v2" and FieldCipher([NEW]).key_id_of(value) == NEW_ID
    assert snapshot(ctx)["integrations"][row_id]["config"]["url"] == "https://x.example"


def test_a_cached_token_moved_to_another_integration_is_reported_not_rotated(ctx, stored, rotation):
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE oauth_tokens SET integration_id = :to WHERE integration_id = :from"),
            {"to": stored["r3"], "from": stored["r1"]},
        )
    report = rotation.run()
    failed = {(f.integration_id, f.field) for f in report.failures}
    assert (stored["r3"], f"cached access token {OLD_OAUTH_KEY[:8]}") in failed
    with ctx.factory() as session:
        moved = session.get(OAuthToken, (stored["r3"], OLD_OAUTH_KEY))
    assert FieldCipher([OLD]).decrypt(moved.access_token, token_context(stored["r1"], OLD_OAUTH_KEY))


def test_alert_subscription_urls_and_signing_secrets_are_rotated_too(ctx, admin, rotation):
    from core.alerts.subscriptions import subscription_context
    from core.models import AlertSubscription

    slack = ctx.subscriptions.create(
        admin, "slack", "https://hooks.slack.test/services/T1/B2/abcdefghijkl", ["failing"]
    )
    hook = ctx.subscriptions.create(
        admin, "webhook", "https://hooks.example.test/console", ["failing"], secret="whsec-signing-" + "x" * 20
    )
    mail = ctx.subscriptions.create(admin, "email", "ops@example.com", ["failing"])

    report = rotation.run()

    assert not report.failures
    only_new = FieldCipher([NEW])
    with ctx.factory() as session:
        rows = {r.id: r for r in session.scalars(select(AlertSubscription))}
    assert only_new.decrypt(rows[slack.id].target, subscription_context(slack.id, "target")).endswith("abcdefghijkl")
    assert only_new.decrypt(rows[hook.id].secret, subscription_context(hook.id, "secret")).startswith("whsec-")
    assert rows[mail.id].target == "ops@example.com"  # an address is stored in clear


def test_oauth_app_client_secrets_are_rotated_too(ctx, admin, rotation):
    from core.connect.apps import secret_context
    from core.models import OAuthApp

    ctx.oauth_apps.save(admin, "HUBSPOT", "hubspot-client", "hs-app-secret-" + "y" * 20, "")

    report = rotation.run()

    assert not report.failures
    with ctx.factory() as session:
        row = session.scalars(select(OAuthApp)).one()
    assert FieldCipher([NEW]).decrypt(row.client_secret, secret_context(row.id)) == "hs-app-secret-" + "y" * 20
    assert rotation.run().re_encrypted == 0  # current now
