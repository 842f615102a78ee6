"""Bad input becomes a field message or a sentence, never an exception (issue 10, item 8)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from core.errors import ValidationError
from core.models import Integration

DEEP_JSON = "[" * 8000 + "]" * 8000
SURROGATE = "tok\ud800en"


def custom_config(**changes) -> dict:
    config = {
        "name": "Acme CRM",
        "apiEndpoint": "https://127.0.0.1:9",
        "authType": "BEARER",
        "healthPath": "/",
        "token": "custom-token-123",
    }
    config.update(changes)
    return config


def deep_object(depth: int) -> str:
    return '{"token": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("credentials", [DEEP_JSON, deep_object(8000), deep_object(200)])
def test_deeply_nested_json_credentials_are_refused_with_a_field_message(ctx, admin, credentials):
    with pytest.raises(ValidationError) as refused:
        ctx.integrations.create(admin, "Deep", "CUSTOM", custom_config(credentials=credentials))
    assert "nested" in refused.value.errors["credentials"]
    result = ctx.integrations.test_configuration(admin, "CUSTOM", custom_config(credentials=credentials))
    assert not result.success and "nested" in result.details["field_errors"]["credentials"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("credentials", json.dumps({"token": SURROGATE}, ensure_ascii=False)),
        ("credentials", '{"token": "tok\\ud800en"}'),  # the JSON escape decodes to a lone surrogate too
        ("token", SURROGATE),
        ("token", "custom\x00token"),
        ("name", SURROGATE),
        ("healthPath", "/health\ud800"),
        ("healthPath", "/health\x00"),
        ("name", "Acme\x1b[31m"),
    ],
)
def test_lone_surrogates_and_control_characters_are_refused_with_a_field_message(ctx, admin, field, value):
    with pytest.raises(ValidationError) as refused:
        ctx.integrations.create(admin, "Bad text", "CUSTOM", custom_config(**{field: value}))
    assert refused.value.errors[field]
    result = ctx.integrations.test_configuration(admin, "CUSTOM", custom_config(**{field: value}))
    assert not result.success and result.details["field_errors"][field]


def test_an_integration_name_with_a_lone_surrogate_is_refused(ctx, admin):
    with pytest.raises(ValidationError) as refused:
        ctx.integrations.create(admin, "Acme\ud800", "CUSTOM", custom_config())
    assert refused.value.errors["name"]


def test_a_stored_value_from_before_with_a_lone_surrogate_tests_to_a_sentence(ctx, admin):
    view = ctx.integrations.create(admin, "Old", "CUSTOM", custom_config())
    stored = dict(view.configuration)
    with ctx.factory.begin() as session:  # as an older version could have saved it
        row = session.get(Integration, view.id)
        config = dict(row.configuration)
        config["healthPath"] = "/health\ud800"
        session.execute(update(Integration).where(Integration.id == view.id).values(configuration=config))
    assert stored["healthPath"] == "/"
    result = ctx.integrations.test(admin, view.id)
    assert not result.success
    assert "Health Check Path" in result.message and "edit" in result.message.lower()
