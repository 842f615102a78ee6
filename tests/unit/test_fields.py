"""core.fields: validation of every field type, nested names, normalising and masking."""

from __future__ import annotations

import copy
import json

import pytest

from core import fields
from core.fields import MASK, FieldSpec, get_path, masked, normalise, set_path, validate

NAME = FieldSpec("name", "CRM Name", "text", required=True)
BASE_URL = FieldSpec("baseUrl", "Base URL", "url", required=True)
ACCOUNT = FieldSpec(
    "accountId", "Account ID", "text", required=True, pattern=r"[1-9][0-9]*", pattern_message="Use the number."
)
TOKEN = FieldSpec("apiKey", "API Token", "password", required=True, min_length=10, sensitive=True)
PORT = FieldSpec("port", "Port", "number")
MODE = FieldSpec("mode", "Mode", "select", options=("A", "B"), default="A")
CREDS = FieldSpec("credentials", "Credentials", "json", required=True, sensitive=True)
NOTES = FieldSpec("notes", "Notes", "textarea")
INBOXES = FieldSpec("features.autoCreateInboxes", "Auto-create inboxes", "checkbox", default=True)
BOTS = FieldSpec("features.autoCreateBots", "Auto-create bots", "checkbox", default=False)
HEADER = FieldSpec("apiKeyHeader", "Header", "text", required=True, default="X-API-Key", shown_when=("mode", ("B",)))
NESTED_SECRET = FieldSpec("oauth.clientSecret", "Client Secret", "password", sensitive=True)

SPECS = (NAME, BASE_URL, ACCOUNT, TOKEN, PORT, MODE, CREDS, NOTES, INBOXES, BOTS, HEADER, NESTED_SECRET)


def valid_config(**changes) -> dict:
    config = {
        "name": "Acme",
        "baseUrl": "https://crm.example.com",
        "accountId": "42",
        "apiKey": "0123456789abcdef",
        "port": 443,
        "mode": "A",
        "credentials": '{"token": "abc"}',
        "features": {"autoCreateInboxes": False, "autoCreateBots": True},
    }
    config.update(changes)
    return config


def errors_for(spec: FieldSpec, value) -> dict:
    config: dict = {}
    set_path(config, spec.name, value)
    return validate([spec], config)


# ----- nested names ----------------------------------------------------------------------------


def test_get_path_reads_nested_values_and_defaults():
    config = {"features": {"syncContacts": False, "deep": {"x": 1}}, "top": "t"}
    assert get_path(config, "top") == "t"
    assert get_path(config, "features.syncContacts") is False
    assert get_path(config, "features.deep.x") == 1
    assert get_path(config, "features.missing") is None
    assert get_path(config, "features.missing", "fallback") == "fallback"
    assert get_path(config, "top.inner", "fallback") == "fallback"  # "top" is not a dict
    assert get_path({}, "a.b.c") is None


def test_set_path_creates_and_replaces_intermediate_dicts():
    config: dict = {"features": {"keep": 1}, "flat": "x"}
    set_path(config, "features.syncContacts", True)
    set_path(config, "new.deeper.value", "v")
    set_path(config, "flat.child", 2)  # a non-dict in the way becomes a dict
    assert config == {
        "features": {"keep": 1, "syncContacts": True},
        "new": {"deeper": {"value": "v"}},
        "flat": {"child": 2},
    }


def test_delete_path_removes_only_the_named_leaf():
    config = {"features": {"a": 1, "b": 2}, "x": 1}
    fields.delete_path(config, "features.a")
    fields.delete_path(config, "missing.path")
    fields.delete_path(config, "x.y")
    assert config == {"features": {"b": 2}, "x": 1}


# ----- validation ------------------------------------------------------------------------------


def test_a_valid_configuration_has_no_errors():
    assert validate(SPECS, valid_config()) == {}


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_required_fields_report_their_label(missing):
    config = valid_config(name=missing, baseUrl=missing, accountId=missing, apiKey=missing, credentials=missing)
    assert validate(SPECS, config) == {
        "name": "CRM Name is required.",
        "baseUrl": "Base URL is required.",
        "accountId": "Account ID is required.",
        "apiKey": "API Token is required.",
        "credentials": "Credentials is required.",
    }


def test_absent_required_field_is_reported():
    config = valid_config()
    del config["name"]
    assert validate(SPECS, config) == {"name": "CRM Name is required."}


def test_optional_blank_fields_are_fine():
    assert validate([PORT, NOTES, MODE], {"port": "", "notes": None}) == {}


def test_mask_in_a_sensitive_field_counts_as_empty():
    assert validate([TOKEN], {"apiKey": MASK}) == {"apiKey": "API Token is required."}
    # ... unless the stored secret is kept
    assert validate([TOKEN], {"apiKey": MASK}, keep_secrets=["apiKey"]) == {}
    assert validate([TOKEN], {}, keep_secrets=["apiKey"]) == {}


def test_mask_in_a_non_sensitive_field_is_just_text():
    assert validate([NAME], {"name": MASK}) == {}


@pytest.mark.parametrize(
    ("value", "ok"),
    [("42", True), (" 42 ", True), ("1", True), ("0", False), ("42a", False), ("a42", False), ("4 2", False)],
)
def test_pattern_must_match_the_whole_trimmed_value(value, ok):
    assert errors_for(ACCOUNT, value) == ({} if ok else {"accountId": "Use the number."})


def test_pattern_without_message_names_the_label():
    spec = FieldSpec("code", "Code", pattern=r"[A-Z]{3}")
    assert errors_for(spec, "abc") == {"code": "Code is not in the expected format."}
    assert errors_for(spec, "ABC") == {}


@pytest.mark.parametrize(("value", "ok"), [("123456789", False), ("1234567890", True), ("x" * 200, True)])
def test_min_length(value, ok):
    expected = {} if ok else {"apiKey": "API Token must be at least 10 characters long."}
    assert errors_for(TOKEN, value) == expected


def test_text_longer_than_the_limit_is_refused():
    assert "under" in errors_for(NAME, "x" * (fields.MAX_TEXT_LENGTH + 1))["name"]
    assert errors_for(NAME, "x" * fields.MAX_TEXT_LENGTH) == {}


@pytest.mark.parametrize(
    "value",
    ["https://crm.example.com", "http://localhost:3000", "https://10.0.0.1/api", " https://x.example.com/ "],
)
def test_url_accepts_web_addresses(value):
    assert errors_for(BASE_URL, value) == {}


@pytest.mark.parametrize(
    "value", ["crm.example.com", "ftp://crm.example.com", "https://", "javascript:alert(1)", "https:///path"]
)
def test_url_refuses_non_web_addresses(value):
    assert errors_for(BASE_URL, value) == {"baseUrl": "Enter a full web address starting with http:// or https://."}


def test_url_refuses_embedded_credentials():
    message = errors_for(BASE_URL, "https://user:secret@crm.example.com")["baseUrl"]
    assert "credential" in message
    assert "secret" not in message


@pytest.mark.parametrize("value", [0, 8080, 1.5, -3, "12", "12.5", " 7 "])
def test_number_accepts_numbers_and_numeric_text(value):
    assert errors_for(PORT, value) == {}


@pytest.mark.parametrize("value", ["abc", "12a", True, False, [1], {"n": 1}])
def test_number_refuses_everything_else(value):
    assert errors_for(PORT, value) == {"port": "Enter a number."}


def test_select_accepts_only_its_options():
    assert errors_for(MODE, "B") == {}
    assert errors_for(MODE, "C") == {"mode": "Choose one of: A, B."}
    assert errors_for(MODE, "a") == {"mode": "Choose one of: A, B."}


def test_json_must_be_an_object():
    assert errors_for(CREDS, '{"apiKey": "k", "nested": {"a": [1]}}') == {}
    assert errors_for(CREDS, "[1, 2]") == {"credentials": 'Enter a JSON object, for example {"token": "..."}.'}
    assert errors_for(CREDS, '"text"') == {"credentials": 'Enter a JSON object, for example {"token": "..."}.'}


def test_invalid_json_says_where():
    message = errors_for(CREDS, '{"token": "abc",\n "x": }')["credentials"]
    assert message.startswith("This is not valid JSON")
    assert "line 2" in message


def test_json_has_its_own_length_limit():
    long_json = json.dumps({"k": "x" * (fields.MAX_TEXT_LENGTH + 10)})
    assert errors_for(CREDS, long_json) == {}
    too_long = json.dumps({"k": "x" * fields.MAX_JSON_LENGTH})
    assert "under" in errors_for(CREDS, too_long)["credentials"]


@pytest.mark.parametrize("value", [True, False])
def test_checkbox_accepts_booleans(value):
    assert errors_for(INBOXES, value) == {}


@pytest.mark.parametrize("value", ["true", 1, 0, "on"])
def test_checkbox_refuses_non_booleans(value):
    assert errors_for(INBOXES, value) == {"features.autoCreateInboxes": "Choose on or off."}


@pytest.mark.parametrize("spec", [NAME, BASE_URL, TOKEN, CREDS, NOTES, MODE])
def test_text_like_fields_refuse_non_strings(spec):
    assert errors_for(spec, 12) == {spec.name: "Enter text."}


def test_nested_field_is_validated_at_its_dotted_path():
    config = valid_config(features={"autoCreateInboxes": "yes"})
    assert validate(SPECS, config) == {"features.autoCreateInboxes": "Choose on or off."}


def test_hidden_fields_are_not_validated_and_shown_ones_are():
    assert validate([MODE, HEADER], {"mode": "A"}) == {}
    assert validate([MODE, HEADER], {"mode": "B"}) == {"apiKeyHeader": "Header is required."}
    assert validate([MODE, HEADER], {"mode": "B", "apiKeyHeader": "X-Key"}) == {}


def test_every_problem_is_reported_at_once():
    config = valid_config(name="", baseUrl="nope", accountId="x", apiKey="short", port="p", credentials="[]")
    assert set(validate(SPECS, config)) == {"name", "baseUrl", "accountId", "apiKey", "port", "credentials"}


def test_validate_does_not_change_its_input():
    config = valid_config(name="  padded  ")
    before = copy.deepcopy(config)
    validate(SPECS, config)
    assert config == before


# ----- normalise -------------------------------------------------------------------------------


def test_normalise_applies_defaults_for_nested_toggles():
    config = valid_config()
    del config["features"]
    clean = normalise(SPECS, config)
    assert clean["features"] == {"autoCreateInboxes": True, "autoCreateBots": False}


def test_normalise_keeps_explicit_false_over_a_true_default():
    clean = normalise(SPECS, valid_config(features={"autoCreateInboxes": False}))
    assert clean["features"] == {"autoCreateInboxes": False, "autoCreateBots": False}


def test_normalise_fills_a_missing_select_with_its_default():
    config = valid_config()
    del config["mode"]
    assert normalise(SPECS, config)["mode"] == "A"


def test_normalise_trims_text_but_not_secrets_json_or_textareas():
    clean = normalise(
        SPECS,
        valid_config(
            name="  Acme  ",
            accountId=" 42\n",
            apiKey="  spaced secret  ",
            credentials=' {"token": "x"} ',
            notes="  line one\n",
        ),
    )
    assert clean["name"] == "Acme"
    assert clean["accountId"] == "42"
    assert clean["apiKey"] == "  spaced secret  "
    assert clean["credentials"] == ' {"token": "x"} '
    assert clean["notes"] == "  line one\n"


def test_normalise_trims_urls_and_their_trailing_slash():
    assert normalise([BASE_URL], {"baseUrl": "  https://crm.example.com/  "})["baseUrl"] == "https://crm.example.com"


@pytest.mark.parametrize(("raw", "number"), [("8080", 8080), (" 12.5 ", 12.5), (3.0, 3), (7, 7)])
def test_normalise_converts_numbers(raw, number):
    value = normalise([PORT], {"port": raw})["port"]
    assert value == number
    assert type(value) is type(number)


def test_normalise_drops_undeclared_keys():
    clean = normalise(SPECS, valid_config(injected="x", features={"autoCreateInboxes": True, "rogue": 1}))
    assert "injected" not in clean
    assert "rogue" not in clean["features"]


def test_normalise_drops_fields_hidden_by_shown_when():
    assert "apiKeyHeader" not in normalise([MODE, HEADER], {"mode": "A", "apiKeyHeader": "X-Leftover"})
    assert normalise([MODE, HEADER], {"mode": "B", "apiKeyHeader": " X-Key "}) == {"mode": "B", "apiKeyHeader": "X-Key"}
    # a shown field gets its default too
    assert normalise([MODE, HEADER], {"mode": "B"}) == {"mode": "B", "apiKeyHeader": "X-API-Key"}


def test_normalise_leaves_absent_optional_fields_out():
    assert "oauth" not in normalise(SPECS, valid_config())
    assert "notes" not in normalise(SPECS, valid_config())


def test_normalise_does_not_change_its_input():
    config = valid_config(name="  Acme  ")
    before = copy.deepcopy(config)
    normalise(SPECS, config)
    assert config == before


def test_chatwoot_feature_toggles_default_on():
    from providers import chatwoot

    clean = normalise(chatwoot.FIELDS, {"baseUrl": "https://chat.example.com/", "accountId": "1", "apiKey": "k" * 12})
    assert clean["features"] == {"autoCreateInboxes": True, "autoCreateBots": True, "syncContacts": True}
    assert clean["baseUrl"] == "https://chat.example.com"


# ----- masking ---------------------------------------------------------------------------------


def test_masked_replaces_every_stored_secret_including_nested_ones():
    config = valid_config(oauth={"clientSecret": "nested-secret", "clientId": "public-id"})
    shown = masked(SPECS, config)
    assert shown["apiKey"] == MASK
    assert shown["credentials"] == MASK
    assert shown["oauth"] == {"clientSecret": MASK, "clientId": "public-id"}
    for name in ("name", "baseUrl", "accountId", "port", "mode", "features"):
        assert shown[name] == config[name]
    text = json.dumps(shown)
    for secret in ("0123456789abcdef", '{"token": "abc"}', "nested-secret", "abc"):
        assert secret not in text


def test_masked_leaves_empty_secrets_empty_and_adds_no_keys():
    shown = masked(SPECS, {"name": "n", "apiKey": ""})
    assert shown == {"name": "n", "apiKey": ""}


def test_masked_returns_a_copy():
    config = valid_config(oauth={"clientSecret": "nested-secret"})
    before = copy.deepcopy(config)
    shown = masked(SPECS, config)
    shown["features"]["autoCreateBots"] = "changed"
    assert config == before


def test_sensitive_names():
    assert fields.sensitive_names(SPECS) == ["apiKey", "credentials", "oauth.clientSecret"]


def test_a_select_shows_its_option_labels_and_stores_its_values():
    spec = FieldSpec("kind", "Kind", "select", options=("A_B", "C"), option_labels=(("A_B", "A and B"),))
    assert [spec.option_label(v) for v in spec.options] == ["A and B", "C"]
    assert fields.validate([spec], {"kind": "A_B"}) == {}
    assert fields.validate([spec], {"kind": "A and B"}) == {"kind": "Choose one of: A and B, C."}


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("0123456789ab", "89ab"),
        ("a-much-longer-secret-WXYZ", "WXYZ"),
        ("0123456789a", None),  # under twelve characters: no hint at all
        ("", None),
        (None, None),
        (fields.MASK, None),
        (12345678901234, None),
    ],
)
def test_a_secret_hint_is_at_most_the_last_four_of_a_long_enough_value(value, hint):
    assert fields.secret_hint(value) == hint


def test_secret_hints_cover_single_line_sensitive_fields_only():
    specs = [
        FieldSpec("token", "Token", "password", sensitive=True),
        FieldSpec("short", "Short", "password", sensitive=True),
        FieldSpec("creds", "Credentials", "json", sensitive=True),
        FieldSpec("name", "Name"),
    ]
    plain = {
        "token": "tok-0123456789",
        "short": "abc",
        "creds": '{"token": "tok-0123456789"}',
        "name": "long name here",
    }
    assert fields.secret_hints(specs, plain) == {"token": "6789"}
