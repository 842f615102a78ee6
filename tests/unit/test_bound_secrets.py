"""Each stored secret is bound to its integration and field (GCM associated data): a ciphertext copied
into another row or field is refused as undecryptable instead of being used. Through IntegrationService."""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text

from core.catalog import Catalog, Provider
from core.crypto import FieldCipher, field_context, format_of
from core.errors import ValidationError
from core.fields import MASK, FieldSpec
from core.integrations.service import IntegrationService
from core.results import TestResult
from core.tokens import StoredTokens
from tests.conftest import TEST_KEY
from tests.unit.test_crypto import v1_value

SECRET_A = "alice-crm-token-AAAA-1111"
SECRET_B = "bob-crm-token-BBBB-2222"
FIELDS = (
    FieldSpec("baseUrl", "Base URL", "url", required=True),
    FieldSpec("token", "Token", "password", required=True, min_length=8, sensitive=True),
    FieldSpec("webhookSecret", "Webhook secret", "password", sensitive=True),
)


class Recorder:
    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, config: dict, context) -> TestResult:
        self.calls.append(copy.deepcopy(config))
        return TestResult(True, "Connected.")


class StubSession:
    def close(self):
        pass


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def service(ctx, recorder) -> IntegrationService:
    catalog = Catalog([Provider("FAKE", "Fake CRM", "A stub.", "CRM", FIELDS, test=recorder)])
    return IntegrationService(ctx.factory, ctx.cipher, catalog, StubSession)


def raw_config(ctx, integration_id: int) -> dict:
    with ctx.engine.connect() as conn:
        value = conn.execute(text("SELECT configuration FROM integrations WHERE id = :id"), {"id": integration_id})
        stored = value.scalar_one()
    return json.loads(stored) if isinstance(stored, str) else stored


def write_config(ctx, integration_id: int, config: dict) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE integrations SET configuration = :c WHERE id = :id"),
            {"c": json.dumps(config), "id": integration_id},
        )


@contextmanager
def statements(engine):
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(f"{statement} {parameters!r}")

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.fixture
def two(service, admin):
    a = service.create(admin, "A", "FAKE", {"baseUrl": "https://a.example", "token": SECRET_A})
    b = service.create(admin, "B", "FAKE", {"baseUrl": "https://b.example", "token": SECRET_B})
    return a, b


def test_a_ciphertext_copied_into_another_integration_is_a_decryption_problem_not_a_secret(
    ctx, service, admin, recorder, two
):
    a, b = two
    stolen = raw_config(ctx, a.id)["token"]
    write_config(ctx, b.id, {**raw_config(ctx, b.id), "token": stolen})  # raw SQL, around the service

    result = service.test(admin, b.id)

    assert result.success is False
    assert "could not be decrypted" in result.message
    assert recorder.calls == []  # the provider was never called, so A's secret went nowhere
    assert SECRET_A not in json.dumps(result.as_dict())
    assert service.get(admin, b.id).status == "error"
    with pytest.raises(ValidationError) as raised:
        service.credentials_for(admin, b.id, "FAKE")
    assert SECRET_A not in str(raised.value.errors)
    # The original still works where it belongs.
    assert service.test(admin, a.id).success and recorder.calls[-1]["token"] == SECRET_A


def test_a_ciphertext_copied_into_another_field_of_the_same_integration_does_not_open(ctx, service, admin, recorder):
    view = service.create(
        admin, "A", "FAKE", {"baseUrl": "https://a.example", "token": SECRET_A, "webhookSecret": "hook-secret-1234"}
    )
    config = raw_config(ctx, view.id)
    write_config(ctx, view.id, {**config, "webhookSecret": config["token"]})

    result = service.test(admin, view.id)
    assert not result.success and "could not be decrypted" in result.message
    assert recorder.calls == []


def test_an_edit_form_keeping_the_mask_cannot_launder_a_copied_ciphertext(ctx, service, admin, recorder, two):
    """Testing B's edit form with the mask uses B's stored value, bound to A: still refused."""
    a, b = two
    write_config(ctx, b.id, {**raw_config(ctx, b.id), "token": raw_config(ctx, a.id)["token"]})
    form = {"baseUrl": "https://b.example", "token": MASK}
    result = service.test_configuration(admin, "FAKE", form, b.id)
    assert not result.success and "could not be decrypted" in result.message
    assert recorder.calls == []


def test_create_binds_the_secret_to_the_new_row_and_never_writes_it_in_clear(ctx, service, admin):
    with statements(ctx.engine) as seen:
        view = service.create(admin, "New", "FAKE", {"baseUrl": "https://n.example", "token": SECRET_A})
    assert not any(SECRET_A in statement for statement in seen)  # not even inside the transaction
    assert view.version == 1 and view.configuration["token"] == MASK

    stored = raw_config(ctx, view.id)["token"]
    assert format_of(stored) == "v2" and ctx.cipher.key_id_of(stored) == ctx.cipher.current_key_id
    assert ctx.cipher.decrypt(stored, field_context(view.id, "token")) == SECRET_A
    with ctx.engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM integrations WHERE id = :id"), {"id": view.id}).scalar()
    assert version == 1


def test_an_unsaved_form_is_tested_without_storing_anything(ctx, service, admin, recorder):
    result = service.test_configuration(admin, "FAKE", {"baseUrl": "https://u.example", "token": SECRET_A})
    assert result.success and recorder.calls[-1]["token"] == SECRET_A
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM integrations")).scalar() == 0


def test_an_edit_test_with_the_mask_uses_the_stored_secret(service, admin, recorder, two):
    a, _ = two
    result = service.test_configuration(admin, "FAKE", {"baseUrl": "https://a2.example", "token": MASK}, a.id)
    assert result.success and recorder.calls[-1] == {"baseUrl": "https://a2.example", "token": SECRET_A}


def test_values_written_before_binding_still_work(ctx, service, admin, recorder, two):
    """A v1 value (no associated data) from an earlier version opens until `keys rotate` rewrites it."""
    a, _ = two
    write_config(ctx, a.id, {**raw_config(ctx, a.id), "token": v1_value(TEST_KEY, "v1-era-token-123")})
    assert service.test(admin, a.id).success and recorder.calls[-1]["token"] == "v1-era-token-123"


def test_a_cached_token_copied_to_another_integration_is_not_used(ctx, two):
    a, b = two
    StoredTokens(ctx.factory, ctx.cipher, a.id).put("oauth", "access-token-of-a", 3600)
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE oauth_tokens SET integration_id = :b"), {"b": b.id})
    assert StoredTokens(ctx.factory, ctx.cipher, b.id).get("oauth") is None


def test_a_ciphertext_written_by_a_key_outside_the_ring_names_the_problem(ctx, service, admin, recorder, two):
    a, _ = two
    foreign = FieldCipher(["ab" * 32]).encrypt("x" * 12, field_context(a.id, "token"))
    write_config(ctx, a.id, {**raw_config(ctx, a.id), "token": foreign})
    result = service.test(admin, a.id)
    assert not result.success and "could not be decrypted" in result.message
    assert recorder.calls == []
