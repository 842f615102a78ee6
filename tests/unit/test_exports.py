"""Exports mask every secret; imports validate and encrypt, and never accept a mask or a ciphertext."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from core.crypto import is_encrypted
from core.errors import ValidationError
from core.fields import MASK
from core.integrations.exports import export_csv, export_json, import_json
from core.models import Integration

CANARY = "export-canary-token-0123456789"
CONFIG = {"baseUrl": "https://chat.example.com", "accountId": "7", "apiKey": CANARY}


def test_exports_mask_every_secret(ctx, member):
    ctx.integrations.create(member, "Desk", "CHATWOOT", CONFIG)
    views = ctx.integrations.list_integrations(member)
    as_json, as_csv = export_json(views), export_csv(views)
    assert CANARY not in as_json and CANARY not in as_csv
    [row] = json.loads(as_json)["integrations"]
    assert row["configuration"]["apiKey"] == MASK and row["configuration"]["accountId"] == "7"
    [csv_row] = list(csv.DictReader(io.StringIO(as_csv)))
    assert json.loads(csv_row["configuration"])["apiKey"] == MASK


def test_reimporting_an_export_asks_for_the_secrets_instead_of_storing_masks(ctx, member, other_member):
    ctx.integrations.create(member, "Desk", "CHATWOOT", CONFIG)
    report = import_json(ctx.integrations, other_member, export_json(ctx.integrations.list_integrations(member)))
    assert report.created == [] and "API Access Token is required" in report.failed[0][1]


def test_an_import_with_secrets_encrypts_them(ctx, member):
    items = [{"name": "Imported", "provider": "CHATWOOT", "configuration": CONFIG}, {"name": "Broken"}]
    report = import_json(ctx.integrations, member, json.dumps(items))
    assert len(report.created) == 1 and report.failed[0][0] == 2
    with ctx.factory() as session:
        stored = session.scalar(select(Integration.configuration).where(Integration.id == report.created[0]))
    assert is_encrypted(stored["apiKey"]) and CANARY not in json.dumps(stored)


def test_an_import_never_takes_someone_elses_ciphertext(ctx, member, other_member):
    view = ctx.integrations.create(member, "Desk", "CHATWOOT", CONFIG)
    with ctx.factory() as session:
        sealed = session.get(Integration, view.id).configuration["apiKey"]
    items = [{"name": "Stolen", "provider": "CHATWOOT", "configuration": {**CONFIG, "apiKey": sealed}}]
    report = import_json(ctx.integrations, other_member, json.dumps(items))
    assert report.created == [] and "not an encrypted value" in report.failed[0][1]


def test_a_file_that_is_not_an_export_is_refused_plainly(ctx, member):
    with pytest.raises(ValidationError, match="not valid JSON"):
        import_json(ctx.integrations, member, "{nope")
    with pytest.raises(ValidationError, match="Expected a list"):
        import_json(ctx.integrations, member, '{"something": 1}')


def test_csv_cells_never_run_as_spreadsheet_formulas(ctx, member):
    ctx.integrations.create(
        member, "=HYPERLINK(\"http://evil.test\",\"click\")", "CHATWOOT",
        {"baseUrl": "https://chat.example.com", "accountId": "1", "apiKey": "cw-token-0123456789"},
    )  # fmt: skip
    text = export_csv(ctx.integrations.list_integrations(member))
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["name"].startswith("'=HYPERLINK")


CUSTOM_SECRETS = {
    "apiKey": "export-api-key-0123456789",
    "token": "export-bearer-0123456789",
    "password": "export-password-0123456789",
    "clientSecret": "export-client-secret-0123456789",
    "refreshToken": "export-refresh-0123456789",
}
CUSTOM_BY_AUTH_TYPE = {
    "API_KEY": {"apiKeyHeader", "apiKey"},
    "BEARER": {"token"},
    "BASIC": {"username", "password"},
    "OAUTH2": {"clientId", "clientSecret", "tokenUrl"},
    "OAUTH2_CODE": {"clientId", "clientSecret", "tokenUrl", "refreshToken"},
}


@pytest.mark.parametrize("auth_type", list(CUSTOM_BY_AUTH_TYPE))
def test_exports_mask_each_custom_crm_secret_and_a_reimport_asks_for_it(ctx, member, other_member, auth_type):
    config = {"name": "Acme", "apiEndpoint": "https://crm.example.com", "authType": auth_type}
    for name in CUSTOM_BY_AUTH_TYPE[auth_type]:
        plain = {"tokenUrl": "https://crm.example.com/token", "apiKeyHeader": "X-Key"}.get(name, "robot")
        config[name] = CUSTOM_SECRETS.get(name, plain)
    ctx.integrations.create(member, "Acme", "CUSTOM", config)
    views = ctx.integrations.list_integrations(member)
    as_json, as_csv = export_json(views), export_csv(views)

    secrets = {name: value for name, value in CUSTOM_SECRETS.items() if name in config}
    assert secrets
    for value in secrets.values():
        assert value not in as_json and value not in as_csv
    [row] = json.loads(as_json)["integrations"]
    assert {name: row["configuration"][name] for name in secrets} == dict.fromkeys(secrets, MASK)
    report = import_json(ctx.integrations, other_member, as_json)
    assert report.created == [] and "is required" in report.failed[0][1]


def test_an_old_credentials_json_is_masked_in_an_export(ctx, member, store_old_shape):
    old = {
        "name": "Acme",
        "apiEndpoint": "https://crm.example.com",
        "authType": "BEARER",
        "credentials": json.dumps({"token": CANARY}),
    }
    store_old_shape(member, "CUSTOM", old)
    as_json = export_json(ctx.integrations.list_integrations(member))
    assert CANARY not in as_json
    [row] = json.loads(as_json)["integrations"]
    assert row["configuration"]["credentials"] == MASK
