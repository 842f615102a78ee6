"""IntegrationService: encryption at rest, masking, ownership, tier limits, locking, failed saves,
redaction of test results, auditing and statistics. No network: provider tests are stubbed."""

from __future__ import annotations

import copy
import json
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

from core.catalog import Catalog, Provider, UnknownProviderError
from core.crypto import field_context, is_encrypted
from core.errors import ConflictError, NotFoundError, StorageError, TierLimitError, ValidationError
from core.fields import MASK, FieldSpec
from core.integrations.service import IntegrationService
from core.models import AuditEvent, Integration
from core.results import TestResult

CW_TOKEN = "cw-plaintext-token-0001"
CW_TOKEN_2 = "cw-plaintext-token-0002"
FAKE_TOKEN = "fake-stored-secret-9f3a"
FAKE_CREDS_SECRET = "inner-client-secret-77x"
COLON_TOKEN = "pass:word:with:colons"


def chatwoot_config(**changes) -> dict:
    config = {
        "baseUrl": "https://chat.example.com",
        "accountId": "7",
        "apiKey": CW_TOKEN,
        "features": {"autoCreateInboxes": True, "autoCreateBots": False, "syncContacts": True},
    }
    config.update(changes)
    return config


def raw_row(ctx, integration_id: int) -> dict | None:
    """The row as stored, configuration as the exact text in the database (no ORM, no service)."""
    with ctx.engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT name, configuration, version, is_active, status, status_message, last_checked_at "
                    "FROM integrations WHERE id = :id"
                ),
                {"id": integration_id},
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    values = dict(row)
    stored = values["configuration"]
    # SQLite hands back the JSON text; a PostgreSQL driver may already parse it.
    values["configuration_text"] = stored if isinstance(stored, str) else json.dumps(stored)
    values["configuration"] = json.loads(stored) if isinstance(stored, str) else stored
    return values


def integration_count(ctx) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM integrations")).scalar_one()


def audit_events(ctx, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    with ctx.factory() as session:
        return list(session.scalars(query))


@contextmanager
def count_statements(engine):
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


@contextmanager
def failing(engine, prefix: str):
    """Make the database refuse statements starting with `prefix` (as a full disk or lost connection would)."""

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(prefix.upper()):
            raise OperationalError(statement, parameters, Exception("simulated: database is unavailable"))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)


# ----- a provider whose connection test records what it receives -------------------------------


class RecordingTest:
    def __init__(self):
        self.calls: list[dict] = []
        self.respond = lambda config: TestResult(True, "Connected to the fake CRM.", {"version": "1"})

    def __call__(self, config: dict, session) -> TestResult:
        self.calls.append(copy.deepcopy(config))
        return self.respond(config)


class StubSession:
    """Stands in for requests.Session: the fake provider never uses the network."""

    closed = False

    def close(self):
        self.closed = True


FAKE_FIELDS = (
    FieldSpec("baseUrl", "Base URL", "url", required=True),
    FieldSpec("token", "Token", "password", required=True, min_length=8, sensitive=True),
    FieldSpec("credentials", "Credentials", "json", sensitive=True),
    FieldSpec("features.sync", "Sync", "checkbox", default=True),
)


def fake_config(**changes) -> dict:
    config = {
        "baseUrl": "https://crm.example.com",
        "token": FAKE_TOKEN,
        "credentials": json.dumps({"clientId": "public-id", "clientSecret": FAKE_CREDS_SECRET}),
        "features": {"sync": True},
    }
    config.update(changes)
    return config


pytestmark = pytest.mark.usefixtures("fast_bcrypt")  # the lowest bcrypt cost (tests/conftest.py)


@pytest.fixture
def recorder():
    return RecordingTest()


@pytest.fixture
def fake(ctx, recorder) -> IntegrationService:
    catalog = Catalog(
        [
            Provider("FAKE", "Fake CRM", "A stub.", "CRM", FAKE_FIELDS, test=recorder),
            Provider("SOON", "Soon CRM", "Not yet.", "CRM", FAKE_FIELDS, test=recorder, status="coming_soon"),
            Provider("FAKEDB", "Fake DB", "A database.", "DATABASE", FAKE_FIELDS, test=recorder),
        ]
    )
    return IntegrationService(ctx.factory, ctx.cipher, catalog, StubSession)


# ----- encryption at rest and masking ----------------------------------------------------------


def test_create_stores_the_secret_as_ciphertext_and_shows_only_the_mask(ctx, member):
    view = ctx.integrations.create(member, "Support desk", "CHATWOOT", chatwoot_config())

    row = raw_row(ctx, view.id)
    stored = row["configuration"]["apiKey"]
    assert is_encrypted(stored)
    assert ctx.cipher.decrypt(stored, field_context(view.id, "apiKey")) == CW_TOKEN
    assert CW_TOKEN not in row["configuration_text"]
    assert row["configuration"]["baseUrl"] == "https://chat.example.com"
    assert row["configuration"]["features"] == {
        "autoCreateInboxes": True,
        "autoCreateBots": False,
        "syncContacts": True,
    }

    for shown in (view, ctx.integrations.get(member, view.id), ctx.integrations.list_integrations(member)[0]):
        assert shown.configuration["apiKey"] == MASK
        assert CW_TOKEN not in json.dumps(shown.configuration)
        assert stored not in json.dumps(shown.configuration)  # not even the ciphertext goes to a form


def test_a_secret_containing_colons_is_still_encrypted(ctx, member):
    view = ctx.integrations.create(member, "Colons", "CHATWOOT", chatwoot_config(apiKey=COLON_TOKEN))
    row = raw_row(ctx, view.id)
    assert row["configuration"]["apiKey"] != COLON_TOKEN
    assert is_encrypted(row["configuration"]["apiKey"])
    assert ctx.cipher.decrypt(row["configuration"]["apiKey"], field_context(view.id, "apiKey")) == COLON_TOKEN
    assert COLON_TOKEN not in row["configuration_text"]


def test_each_custom_crm_secret_is_encrypted_in_its_own_field(ctx, member):
    config = {
        "name": "Acme",
        "apiEndpoint": "https://api.acme.example",
        "authType": "OAUTH2",
        "tokenUrl": "https://auth.acme.example/token",
        "clientId": "cid",
        "clientSecret": "custom-client-secret-xyz",
    }
    view = ctx.integrations.create(member, "Acme CRM", "CUSTOM", config)
    row = raw_row(ctx, view.id)
    assert row["configuration"]["clientId"] == "cid"  # an identifier, not a secret
    assert is_encrypted(row["configuration"]["clientSecret"])
    opened = ctx.cipher.decrypt(row["configuration"]["clientSecret"], field_context(view.id, "clientSecret"))
    assert opened == "custom-client-secret-xyz"
    assert "custom-client-secret-xyz" not in row["configuration_text"]
    assert view.configuration["clientSecret"] == MASK and "credentials" not in view.configuration


def test_an_old_credentials_json_sent_to_create_is_split_into_the_fields(ctx, member):
    creds = {"clientId": "cid", "clientSecret": "custom-client-secret-xyz"}
    config = {
        "name": "Acme",
        "apiEndpoint": "https://api.acme.example",
        "authType": "OAUTH2",
        "tokenUrl": "https://auth.acme.example/token",
        "credentials": json.dumps(creds),
    }
    view = ctx.integrations.create(member, "Acme CRM", "CUSTOM", config)
    row = raw_row(ctx, view.id)
    assert "credentials" not in row["configuration"]
    assert row["configuration"]["clientId"] == "cid"
    opened = ctx.cipher.decrypt(row["configuration"]["clientSecret"], field_context(view.id, "clientSecret"))
    assert opened == "custom-client-secret-xyz"
    assert "custom-client-secret-xyz" not in row["configuration_text"]


def test_create_refuses_invalid_configuration_and_stores_nothing(ctx, member):
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(member, "Bad", "CHATWOOT", chatwoot_config(apiKey="short", baseUrl="nope"))
    assert set(raised.value.errors) == {"apiKey", "baseUrl"}
    assert "short" not in str(raised.value)
    assert integration_count(ctx) == 0


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_create_refuses_bad_names(ctx, member, name):
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(member, name, "CHATWOOT", chatwoot_config())
    assert set(raised.value.errors) == {"name"}
    assert integration_count(ctx) == 0


def test_an_imported_ciphertext_our_key_cannot_open_is_refused(ctx, member):
    from core.crypto import FieldCipher

    foreign = FieldCipher(["ab" * 32]).encrypt("someone else's token", field_context(1, "apiKey"))
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.create(member, "Foreign", "CHATWOOT", chatwoot_config(apiKey=foreign))
    assert set(raised.value.errors) == {"apiKey"}
    assert integration_count(ctx) == 0


# ----- ownership -------------------------------------------------------------------------------


def test_a_member_cannot_reach_another_members_integration(ctx, member, other_member):
    view = ctx.integrations.create(member, "Alice's desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)

    with pytest.raises(NotFoundError):
        ctx.integrations.get(other_member, view.id)
    with pytest.raises(NotFoundError):
        ctx.integrations.update(other_member, view.id, view.version, name="Bob's now")
    with pytest.raises(NotFoundError):
        ctx.integrations.update(other_member, view.id, view.version, configuration=chatwoot_config(apiKey=CW_TOKEN_2))
    with pytest.raises(NotFoundError):
        ctx.integrations.set_active(other_member, view.id, False)
    with pytest.raises(NotFoundError):
        ctx.integrations.test(other_member, view.id)
    with pytest.raises(NotFoundError):
        # the edit-form test route must not hand Alice's stored token to Bob's address
        ctx.integrations.test_configuration(
            other_member, "CHATWOOT", chatwoot_config(apiKey=MASK, baseUrl="https://bob.example"), view.id
        )
    with pytest.raises(NotFoundError):
        ctx.integrations.delete(other_member, view.id)

    assert raw_row(ctx, view.id) == before
    assert ctx.integrations.list_integrations(other_member) == []


def test_not_found_for_someone_elses_integration_reads_like_a_missing_one(ctx, member, other_member):
    view = ctx.integrations.create(member, "Alice's desk", "CHATWOOT", chatwoot_config())
    with pytest.raises(NotFoundError) as theirs:
        ctx.integrations.get(other_member, view.id)
    with pytest.raises(NotFoundError) as missing:
        ctx.integrations.get(other_member, view.id + 1000)
    assert str(theirs.value) == str(missing.value).replace(str(view.id + 1000), str(view.id))


def test_list_shows_members_their_own_and_admins_everything(ctx, admin, member, other_member):
    mine = ctx.integrations.create(member, "Alice desk", "CHATWOOT", chatwoot_config())
    theirs = ctx.integrations.create(other_member, "Bob desk", "CHATWOOT", chatwoot_config(apiKey=CW_TOKEN_2))
    root = ctx.integrations.create(admin, "Root desk", "CHATWOOT", chatwoot_config())

    assert [v.id for v in ctx.integrations.list_integrations(member)] == [mine.id]
    assert [v.id for v in ctx.integrations.list_integrations(other_member)] == [theirs.id]
    assert {v.id for v in ctx.integrations.list_integrations(admin)} == {mine.id, theirs.id, root.id}
    assert {v.owner for v in ctx.integrations.list_integrations(admin)} == {"alice", "bob", "root"}


def test_an_admin_can_read_change_and_delete_any_integration(ctx, admin, member):
    view = ctx.integrations.create(member, "Alice desk", "CHATWOOT", chatwoot_config())
    assert ctx.integrations.get(admin, view.id).owner == "alice"
    updated = ctx.integrations.update(admin, view.id, view.version, name="Renamed by admin")
    assert ctx.integrations.get(member, view.id).name == "Renamed by admin"
    ctx.integrations.set_active(admin, view.id, False)
    assert ctx.integrations.get(member, view.id).is_active is False
    ctx.integrations.delete(admin, view.id)
    assert raw_row(ctx, view.id) is None
    assert updated.owner == "alice"


# ----- tiers and the catalog -------------------------------------------------------------------


def test_free_tier_allows_three_integrations_and_refuses_the_fourth(ctx, member):
    for n in range(3):
        ctx.integrations.create(member, f"Desk {n}", "CHATWOOT", chatwoot_config())
    with pytest.raises(TierLimitError) as raised:
        ctx.integrations.create(member, "Desk 4", "CHATWOOT", chatwoot_config())
    assert "starter" in str(raised.value).lower()
    assert integration_count(ctx) == 3

    denied = [e for e in audit_events(ctx, "integration.create") if e.outcome == "denied"]
    assert len(denied) == 1
    assert denied[0].actor == "alice"
    assert denied[0].actor_id == member.id
    assert CW_TOKEN not in json.dumps(denied[0].details)


def test_the_limit_counts_only_the_owners_integrations(ctx, admin, member):
    for n in range(4):
        ctx.integrations.create(admin, f"Root {n}", "CHATWOOT", chatwoot_config())
    for n in range(3):
        ctx.integrations.create(member, f"Alice {n}", "CHATWOOT", chatwoot_config())
    assert integration_count(ctx) == 7


def test_deleting_frees_a_place_under_the_limit(ctx, member):
    views = [ctx.integrations.create(member, f"Desk {n}", "CHATWOOT", chatwoot_config()) for n in range(3)]
    ctx.integrations.delete(member, views[0].id)
    ctx.integrations.create(member, "Desk 4", "CHATWOOT", chatwoot_config())
    assert integration_count(ctx) == 3


def test_coming_soon_provider_is_refused(ctx, fake, admin):
    with pytest.raises(ValidationError) as raised:
        fake.create(admin, "Soon", "SOON", fake_config())
    assert "coming soon" in str(raised.value)
    assert integration_count(ctx) == 0


def test_coming_soon_provider_cannot_be_tested(fake, recorder, admin):
    result = fake.test_configuration(admin, "SOON", fake_config())
    assert not result.success
    assert "coming soon" in result.message
    assert recorder.calls == []


def test_unknown_provider_is_refused(ctx, admin):
    with pytest.raises(UnknownProviderError):
        ctx.integrations.create(admin, "X", "NOPE", {})
    assert integration_count(ctx) == 0


def test_a_category_gated_by_tier_names_the_tier_that_opens_it(fake, ctx, member, admin):
    with pytest.raises(TierLimitError) as raised:
        fake.create(member, "DB", "FAKEDB", fake_config())
    assert "Pro Plus" in str(raised.value)
    assert integration_count(ctx) == 0
    fake.create(admin, "DB", "FAKEDB", fake_config())  # ENTERPRISE is above PRO_PLUS
    assert integration_count(ctx) == 1


# ----- the mask round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("returned", [MASK, "", "   ", None, "omitted"])
def test_update_with_mask_or_empty_secret_keeps_the_stored_ciphertext(ctx, member, returned):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)["configuration"]["apiKey"]

    form = copy.deepcopy(view.configuration)  # what the form received: the mask
    form["accountId"] = "8"
    if returned == "omitted":
        del form["apiKey"]
    else:
        form["apiKey"] = returned
    updated = ctx.integrations.update(member, view.id, view.version, configuration=form)

    after = raw_row(ctx, view.id)["configuration"]
    assert after["apiKey"] == before  # byte for byte
    assert after["accountId"] == "8"
    assert updated.configuration["apiKey"] == MASK


def test_saving_the_form_unchanged_changes_nothing(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)
    ctx.integrations.update(member, view.id, view.version, name=view.name, configuration=view.configuration)
    assert raw_row(ctx, view.id) == before
    assert audit_events(ctx, "integration.update") == []


def test_a_non_secret_edit_keeps_the_ciphertext_identical(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)["configuration"]
    form = view.configuration | {"baseUrl": "https://chat2.example.com", "features": {"syncContacts": False}}
    ctx.integrations.update(member, view.id, view.version, configuration=form)
    after = raw_row(ctx, view.id)["configuration"]
    assert after["apiKey"] == before["apiKey"]
    assert after["baseUrl"] == "https://chat2.example.com"
    assert after["features"]["syncContacts"] is False


def test_resubmitting_the_same_plaintext_secret_is_not_re_encrypted(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)["configuration"]["apiKey"]
    ctx.integrations.update(member, view.id, view.version, configuration=chatwoot_config(accountId="9"))
    assert raw_row(ctx, view.id)["configuration"]["apiKey"] == before


def test_a_new_secret_is_re_encrypted(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)["configuration"]["apiKey"]
    form = view.configuration | {"apiKey": CW_TOKEN_2}
    updated = ctx.integrations.update(member, view.id, view.version, configuration=form)

    row = raw_row(ctx, view.id)
    after = row["configuration"]["apiKey"]
    assert after != before
    assert is_encrypted(after)
    assert ctx.cipher.decrypt(after, field_context(view.id, "apiKey")) == CW_TOKEN_2
    assert CW_TOKEN_2 not in row["configuration_text"]
    assert updated.configuration["apiKey"] == MASK
    assert row["version"] == view.version + 1


def test_update_refuses_an_invalid_new_secret_and_keeps_the_old(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)
    with pytest.raises(ValidationError) as raised:
        ctx.integrations.update(member, view.id, view.version, configuration=view.configuration | {"apiKey": "short"})
    assert set(raised.value.errors) == {"apiKey"}
    assert raw_row(ctx, view.id) == before


def test_the_mask_is_never_stored_as_a_secret(ctx, member):
    with pytest.raises(ValidationError):
        ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config(apiKey=MASK))
    assert integration_count(ctx) == 0


def test_changing_the_configuration_resets_the_connection_status(fake, ctx, recorder, member):
    view = fake.create(member, "Fake", "FAKE", fake_config())
    fake.test(member, view.id)
    assert raw_row(ctx, view.id)["status"] == "connected"
    fresh = fake.get(member, view.id)
    fake.update(member, view.id, fresh.version, configuration=fresh.configuration | {"baseUrl": "https://new.example"})
    assert raw_row(ctx, view.id)["status"] == "unknown"


# ----- testing with stored secrets -------------------------------------------------------------


def test_testing_an_edited_form_with_the_mask_uses_the_stored_secret(fake, recorder, member):
    view = fake.create(member, "Fake", "FAKE", fake_config())
    form = view.configuration | {"baseUrl": "https://edited.example.com"}
    assert form["token"] == MASK and form["credentials"] == MASK

    result = fake.test_configuration(member, "FAKE", form, integration_id=view.id)

    assert result.success
    assert len(recorder.calls) == 1
    received = recorder.calls[0]
    assert received["token"] == FAKE_TOKEN
    assert json.loads(received["credentials"])["clientSecret"] == FAKE_CREDS_SECRET
    assert received["baseUrl"] == "https://edited.example.com"


def test_testing_an_edited_form_with_a_new_secret_uses_the_new_one_without_saving(fake, ctx, recorder, member):
    view = fake.create(member, "Fake", "FAKE", fake_config())
    before = raw_row(ctx, view.id)
    fake.test_configuration(member, "FAKE", view.configuration | {"token": "brand-new-token-1"}, integration_id=view.id)
    assert recorder.calls[0]["token"] == "brand-new-token-1"
    assert raw_row(ctx, view.id)["configuration"] == before["configuration"]


def test_testing_a_new_form_with_the_mask_has_nothing_to_use(fake, recorder, member):
    result = fake.test_configuration(member, "FAKE", fake_config(token=MASK))
    assert not result.success
    assert "token" in result.details["field_errors"]
    assert recorder.calls == []


def test_testing_an_unsaved_form_passes_the_plaintext(fake, recorder, member):
    result = fake.test_configuration(member, "FAKE", fake_config())
    assert result.success
    assert recorder.calls[0]["token"] == FAKE_TOKEN


def test_testing_a_saved_integration_decrypts_and_records_the_outcome(fake, ctx, recorder, member):
    view = fake.create(member, "Fake", "FAKE", fake_config())
    result = fake.test(member, view.id)
    assert result.success
    assert recorder.calls[0]["token"] == FAKE_TOKEN

    row = raw_row(ctx, view.id)
    assert row["status"] == "connected"
    assert row["status_message"] == "Connected to the fake CRM."
    assert row["last_checked_at"] is not None
    assert row["version"] == view.version  # a test must not make someone's open edit conflict

    recorder.respond = lambda config: TestResult(False, "Refused.", error="401 from the fake")
    assert not fake.test(member, view.id).success
    row = raw_row(ctx, view.id)
    assert row["status"] == "error"
    assert row["status_message"] == "401 from the fake"


def test_a_provider_that_crashes_becomes_a_failed_result(fake, recorder, member):
    def boom(config):
        raise RuntimeError(f"provider bug while using {config['token']}")

    recorder.respond = boom
    result = fake.test_configuration(member, "FAKE", fake_config())
    assert not result.success
    assert "RuntimeError" in result.message
    assert FAKE_TOKEN not in json.dumps(result.as_dict())


def test_a_result_that_echoes_the_secret_is_redacted(fake, ctx, recorder, member):
    recorder.respond = lambda config: TestResult(
        False,
        f"The server said: invalid token {config['token']}",
        {
            "echo": config["token"],
            "nested": {"list": [f"Bearer {config['token']}"], "client": FAKE_CREDS_SECRET},
            "credentials": config["credentials"],
        },
        error=f"401 for token={config['token']}&secret={FAKE_CREDS_SECRET}",
    )
    view = fake.create(member, "Fake", "FAKE", fake_config())

    for result in (
        fake.test_configuration(member, "FAKE", fake_config()),
        fake.test_configuration(member, "FAKE", view.configuration, integration_id=view.id),
        fake.test(member, view.id),
    ):
        dumped = json.dumps(result.as_dict())
        assert FAKE_TOKEN not in dumped
        assert FAKE_CREDS_SECRET not in dumped
        assert "invalid token" in result.message  # the rest of the message survives
        assert "[redacted]" in result.message

    row = raw_row(ctx, view.id)
    assert FAKE_TOKEN not in (row["status_message"] or "")
    assert FAKE_CREDS_SECRET not in (row["status_message"] or "")
    for event_ in audit_events(ctx, "integration.test"):
        assert FAKE_TOKEN not in json.dumps(event_.details)


# ----- optimistic locking ----------------------------------------------------------------------


def test_the_second_of_two_edits_from_the_same_version_is_refused(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    first_form, second_form = copy.deepcopy(view.configuration), copy.deepcopy(view.configuration)

    ctx.integrations.update(member, view.id, view.version, name="First", configuration=first_form | {"accountId": "11"})
    with pytest.raises(ConflictError) as raised:
        ctx.integrations.update(
            member, view.id, view.version, name="Second", configuration=second_form | {"accountId": "22"}
        )

    assert "reload their version" in str(raised.value).lower()
    row = raw_row(ctx, view.id)
    assert row["name"] == "First"
    assert row["configuration"]["accountId"] == "11"
    assert row["version"] == view.version + 1


def test_a_stale_save_is_refused_with_who_saved_the_newer_version_and_when(ctx, admin, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    ctx.integrations.update(member, view.id, view.version, name="Alice's")
    [saved] = [e for e in audit_events(ctx, "integration.update")]
    with pytest.raises(ConflictError) as raised:
        ctx.integrations.update(admin, view.id, view.version, name="Root's")
    assert (raised.value.changed_by, raised.value.changed_at) == ("alice", saved.at)
    assert str(raised.value).startswith(f"alice changed this integration at {saved.at:%Y-%m-%d %H:%M:%S} UTC")
    assert raw_row(ctx, view.id)["name"] == "Alice's"


def test_a_write_that_lands_between_load_and_save_is_detected(ctx, member, written_just_before_the_flush):
    """The version column, not only the Python check, stops a concurrent overwrite."""
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    someone_else_saves = "UPDATE integrations SET name = 'Other person', version = version + 1 WHERE id = :id"
    with written_just_before_the_flush(someone_else_saves, id=view.id) as fired, pytest.raises(ConflictError):
        ctx.integrations.update(member, view.id, view.version, name="Mine")

    assert fired
    row = raw_row(ctx, view.id)
    assert row["name"] == "Other person"
    assert row["version"] == view.version + 1


def test_delete_with_a_stale_version_is_refused(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    ctx.integrations.update(member, view.id, view.version, name="Changed")
    with pytest.raises(ConflictError):
        ctx.integrations.delete(member, view.id, expected_version=view.version)
    assert raw_row(ctx, view.id)["name"] == "Changed"


# ----- a failed save keeps the stored record ---------------------------------------------------


def test_a_failed_update_leaves_the_stored_record_as_it_was(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)
    audit_before = len(audit_events(ctx))

    with failing(ctx.engine, "UPDATE integrations"), pytest.raises(StorageError):
        ctx.integrations.update(
            member, view.id, view.version, name="Lost", configuration=view.configuration | {"apiKey": CW_TOKEN_2}
        )

    assert raw_row(ctx, view.id) == before
    assert len(audit_events(ctx)) == audit_before  # no "success" event for a save that did not happen

    # the service still works afterwards, from the same version
    ctx.integrations.update(member, view.id, view.version, name="Saved")
    assert raw_row(ctx, view.id)["name"] == "Saved"


def test_a_failed_audit_write_rolls_the_update_back(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)
    with failing(ctx.engine, "INSERT INTO audit_events"), pytest.raises(StorageError):
        ctx.integrations.update(member, view.id, view.version, name="Unaudited")
    assert raw_row(ctx, view.id) == before


def test_a_failed_create_stores_nothing(ctx, member):
    with failing(ctx.engine, "INSERT INTO integrations"), pytest.raises(StorageError):
        ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    assert integration_count(ctx) == 0
    assert [e for e in audit_events(ctx) if e.outcome == "success" and e.action == "integration.create"] == []


def test_a_failed_delete_keeps_the_record(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    before = raw_row(ctx, view.id)
    with failing(ctx.engine, "DELETE FROM integrations"), pytest.raises(StorageError):
        ctx.integrations.delete(member, view.id)
    assert raw_row(ctx, view.id) == before
    assert audit_events(ctx, "integration.delete") == []


# ----- audit -----------------------------------------------------------------------------------


def test_every_change_and_test_is_audited_without_secrets(fake, ctx, recorder, member):
    view = fake.create(member, "Fake", "FAKE", fake_config())
    fresh = fake.update(
        member, view.id, view.version, name="Fake 2", configuration=view.configuration | {"token": "rotated-token-55"}
    )
    fake.test(member, view.id)
    fake.test_configuration(member, "FAKE", fresh.configuration, integration_id=view.id)
    fake.set_active(member, view.id, False)
    fake.set_active(member, view.id, True)
    fake.delete(member, view.id)

    events = [e for e in audit_events(ctx) if e.action.startswith("integration.")]
    actions = [e.action for e in events]
    assert actions == [
        "integration.create",
        "integration.update",
        "integration.test",
        "integration.health_changed",
        "integration.test",
        "integration.pause",
        "integration.resume",
        "integration.delete",
    ]
    for e in events:
        if e.action == "integration.health_changed":  # the engine's, not the person's
            assert e.actor_id is None and e.details == {"from": "unknown", "to": "connected"}
            continue
        assert e.actor == "alice"
        assert e.actor_id == member.id
        assert e.outcome == "success"
        assert e.integration_id == view.id
        assert e.at is not None
        dumped = json.dumps(e.details)
        for secret in (FAKE_TOKEN, FAKE_CREDS_SECRET, "rotated-token-55", "enc:v"):
            assert secret not in dumped, (e.action, dumped)

    update = next(e for e in events if e.action == "integration.update")
    assert set(update.details["fields"]) == {"name", "token"}


def test_a_failed_test_is_audited_as_a_failure(fake, ctx, recorder, member):
    recorder.respond = lambda config: TestResult(False, "Nope.", error="refused")
    view = fake.create(member, "Fake", "FAKE", fake_config())
    fake.test(member, view.id)
    (event_,) = audit_events(ctx, "integration.test")
    assert event_.outcome == "failure"
    assert event_.integration_id == view.id


def test_toggling_to_the_same_state_is_not_an_event(fake, ctx, member):
    view = fake.create(member, "Fake", "FAKE", fake_config())
    fake.set_active(member, view.id, True)
    assert [e.action for e in audit_events(ctx) if e.action.startswith("integration.")] == ["integration.create"]


# ----- statistics ------------------------------------------------------------------------------


def test_stats_count_total_active_inactive_and_error_in_one_query(fake, ctx, recorder, admin, member, other_member):
    ok = fake.create(member, "A ok", "FAKE", fake_config())
    broken = fake.create(member, "A broken", "FAKE", fake_config())
    off_and_broken = fake.create(member, "A off", "FAKE", fake_config())
    bob_off = fake.create(other_member, "B off", "FAKE", fake_config())
    fake.create(other_member, "B unknown", "FAKE", fake_config())

    fake.test(member, ok.id)
    recorder.respond = lambda config: TestResult(False, "Refused.", error="401")
    fake.test(member, broken.id)
    fake.test(member, off_and_broken.id)
    fake.set_active(member, off_and_broken.id, False)
    fake.set_active(other_member, bob_off.id, False)

    with count_statements(ctx.engine) as statements:
        alice = fake.stats(member)
    assert len(statements) == 1, statements
    assert (alice.total, alice.active, alice.inactive, alice.error) == (3, 2, 1, 2)

    bob = fake.stats(other_member)
    assert (bob.total, bob.active, bob.inactive, bob.error) == (2, 1, 1, 0)

    with count_statements(ctx.engine) as statements:
        everyone = fake.stats(admin)
    # Every tenant's: the two statistics ledgers, and the one hour of the freshness index the stale cut-off
    # falls in (core.integrations.ledgers.fresh): never a scan of every integration.
    assert len(statements) == 3, statements
    assert [re.search(r"\bFROM\s+(\w+)", s).group(1) for s in statements] == [  # type: ignore[union-attr]
        "stat_integration_counts",
        "stat_integration_freshness",
        "integrations",
    ]
    assert "coalesce(integrations.last_checked_at, integrations.created_at) >=" in statements[2]
    assert (everyone.total, everyone.active, everyone.inactive, everyone.error) == (5, 3, 2, 2)


def test_stats_of_nothing_are_zero(ctx, member):
    stats = ctx.integrations.stats(member)
    assert (stats.total, stats.active, stats.inactive, stats.error) == (0, 0, 0, 0)


def test_counts_by_provider_and_status(fake, ctx, recorder, member, other_member):
    a = fake.create(member, "A", "FAKE", fake_config())
    fake.create(member, "B", "FAKE", fake_config())
    fake.create(other_member, "C", "FAKE", fake_config())
    fake.test(member, a.id)
    assert sorted(fake.counts_by_provider_and_status(member)) == [
        ("Fake CRM", "connected", 1),
        ("Fake CRM", "unknown", 1),
    ]


# ----- delete and set_active -------------------------------------------------------------------


def test_delete_removes_the_integration(ctx, member):
    keep = ctx.integrations.create(member, "Keep", "CHATWOOT", chatwoot_config())
    gone = ctx.integrations.create(member, "Gone", "CHATWOOT", chatwoot_config())
    ctx.integrations.delete(member, gone.id, expected_version=gone.version)
    assert raw_row(ctx, gone.id) is None
    assert raw_row(ctx, keep.id) is not None
    with pytest.raises(NotFoundError):
        ctx.integrations.get(member, gone.id)
    with pytest.raises(NotFoundError):
        ctx.integrations.delete(member, gone.id)
    (event_,) = audit_events(ctx, "integration.delete")
    assert event_.integration_id == gone.id  # the trail outlives the record


def test_set_active_switches_and_persists(ctx, member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    assert view.is_active is True
    off = ctx.integrations.set_active(member, view.id, False)
    assert off.is_active is False
    assert raw_row(ctx, view.id)["is_active"] in (False, 0)
    assert ctx.integrations.get(member, view.id).is_active is False
    on = ctx.integrations.set_active(member, view.id, True)
    assert on.is_active is True
    assert raw_row(ctx, view.id)["is_active"] in (True, 1)
    assert on.configuration["apiKey"] == MASK


def test_integration_model_is_what_the_service_writes(ctx, member):
    """The ORM sees the same ciphertext as the raw row (no second copy of the secret anywhere)."""
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", chatwoot_config())
    with ctx.factory() as session:
        stored = session.get(Integration, view.id)
        assert stored.configuration == raw_row(ctx, view.id)["configuration"]
        assert stored.type == "CRM"
        assert stored.provider == "CHATWOOT"
