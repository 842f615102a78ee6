"""core.settings: every setting read once and validated; missing keys generated only outside production.

Every test reads an explicit env dict and a temporary secrets directory, and points the project root
at a temporary folder, so nothing in the repository (or a developer's secrets.toml) is read or written.
"""

from __future__ import annotations

import os
import re
import stat

import pytest

from core import settings as settings_module
from core.crypto import key_bytes
from core.settings import Settings, SettingsError, load_settings

KEY = "7a" * 32
COOKIE = "k" * 32


@pytest.fixture(autouse=True)
def isolated_project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(settings_module, "PROJECT_ROOT", root)
    return root


@pytest.fixture
def secrets_dir(tmp_path):
    return tmp_path / "secrets"


def env(**values) -> dict:
    base = {"INTEGRATION_ENCRYPTION_KEY": KEY, "COOKIE_KEY": COOKIE}
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


# ----- encryption key --------------------------------------------------------------------------


def test_key_from_the_environment_is_used_and_nothing_is_written(secrets_dir, capsys):
    loaded = load_settings(env(), secrets_dir=secrets_dir)
    assert loaded.encryption_key == KEY
    assert loaded.encryption_key_source == "environment"
    assert not secrets_dir.exists()
    assert capsys.readouterr().err == ""


def test_missing_key_is_generated_into_a_private_file_with_a_warning(secrets_dir, capsys):
    loaded = load_settings(env(INTEGRATION_ENCRYPTION_KEY=None), secrets_dir=secrets_dir)

    key_file = secrets_dir / "encryption.key"
    assert key_file.is_file()
    assert loaded.encryption_key == key_file.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.encryption_key)
    assert key_bytes(loaded.encryption_key) == bytes.fromhex(loaded.encryption_key)
    assert loaded.encryption_key_source == str(key_file)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    err = capsys.readouterr().err
    assert "WARNING" in err
    assert str(key_file) in err
    assert "Back this file up" in err
    assert loaded.encryption_key not in err  # the key itself is never printed


def test_generated_key_is_reused_on_the_next_start_without_a_new_warning(secrets_dir, capsys):
    first = load_settings(env(INTEGRATION_ENCRYPTION_KEY=None), secrets_dir=secrets_dir)
    capsys.readouterr()
    second = load_settings(env(INTEGRATION_ENCRYPTION_KEY=None), secrets_dir=secrets_dir)
    assert second.encryption_key == first.encryption_key
    assert capsys.readouterr().err == ""


def test_two_fresh_installations_get_different_keys(tmp_path):
    one = load_settings(env(INTEGRATION_ENCRYPTION_KEY=None), secrets_dir=tmp_path / "one")
    two = load_settings(env(INTEGRATION_ENCRYPTION_KEY=None), secrets_dir=tmp_path / "two")
    assert one.encryption_key != two.encryption_key


def test_console_secrets_dir_in_the_environment_picks_the_folder(tmp_path):
    chosen = tmp_path / "chosen"
    load_settings(
        env(INTEGRATION_ENCRYPTION_KEY=None, CONSOLE_SECRETS_DIR=str(chosen)), secrets_dir=tmp_path / "unused"
    )
    assert (chosen / "encryption.key").is_file()
    assert not (tmp_path / "unused").exists()


def test_an_empty_environment_value_counts_as_missing(secrets_dir):
    loaded = load_settings(env(INTEGRATION_ENCRYPTION_KEY=""), secrets_dir=secrets_dir)
    assert loaded.encryption_key != ""
    assert (secrets_dir / "encryption.key").is_file()


def test_an_empty_key_file_is_refused_rather_than_used(secrets_dir):
    """An empty file would make the key SHA-256 of the empty string: encryption anyone can undo."""
    secrets_dir.mkdir()
    (secrets_dir / "encryption.key").write_text("\n")
    with pytest.raises(SettingsError, match=r"encryption\.key"):
        load_settings(env(INTEGRATION_ENCRYPTION_KEY=None), secrets_dir=secrets_dir)


def test_key_file_setting_reads_that_file(tmp_path, secrets_dir):
    key_file = tmp_path / "mounted" / "key"
    key_file.parent.mkdir()
    key_file.write_text(KEY + "\n")
    loaded = load_settings(
        env(INTEGRATION_ENCRYPTION_KEY=None, INTEGRATION_ENCRYPTION_KEY_FILE=str(key_file)), secrets_dir=secrets_dir
    )
    assert loaded.encryption_key == KEY
    assert loaded.encryption_key_source == str(key_file)
    assert not (secrets_dir / "encryption.key").exists()


def test_production_refuses_a_missing_key_and_says_how_to_set_one(secrets_dir):
    with pytest.raises(SettingsError) as raised:
        load_settings(env(INTEGRATION_ENCRYPTION_KEY=None, CONSOLE_ENV="production"), secrets_dir=secrets_dir)
    message = str(raised.value)
    assert "INTEGRATION_ENCRYPTION_KEY" in message
    assert "manage.py keys generate" in message
    assert "secrets.toml" in message or "environment" in message
    assert not (secrets_dir / "encryption.key").exists()  # nothing generated behind the operator's back


def test_production_refuses_a_missing_cookie_key(secrets_dir):
    with pytest.raises(SettingsError, match="COOKIE_KEY"):
        load_settings(env(COOKIE_KEY=None, CONSOLE_ENV="Production"), secrets_dir=secrets_dir)
    assert not (secrets_dir / "cookie.key").exists()


def test_production_with_every_key_set_starts(secrets_dir):
    loaded = load_settings(env(CONSOLE_ENV="production"), secrets_dir=secrets_dir)
    assert loaded.production is True
    assert load_settings(env(), secrets_dir=secrets_dir).production is False


# ----- secrets.toml ----------------------------------------------------------------------------


def test_secrets_toml_supplies_values_the_environment_does_not(isolated_project, secrets_dir):
    (isolated_project / ".streamlit").mkdir()
    (isolated_project / ".streamlit" / "secrets.toml").write_text(
        f'INTEGRATION_ENCRYPTION_KEY = "{KEY}"\nCOOKIE_KEY = "{"t" * 40}"\nDATABASE_URL = "sqlite:///x.db"\n'
    )
    loaded = load_settings({}, secrets_dir=secrets_dir)
    assert loaded.encryption_key == KEY
    assert loaded.encryption_key_source == "secrets.toml"
    assert loaded.cookie_key == "t" * 40
    assert loaded.database_url == "sqlite:///x.db"
    # the environment wins over the file
    assert load_settings(env(), secrets_dir=secrets_dir).cookie_key == COOKIE


def test_broken_secrets_toml_is_reported(isolated_project, secrets_dir):
    (isolated_project / ".streamlit").mkdir()
    (isolated_project / ".streamlit" / "secrets.toml").write_text("COOKIE_KEY = \n")
    with pytest.raises(SettingsError, match=r"secrets\.toml"):
        load_settings(env(), secrets_dir=secrets_dir)


# ----- cookie key ------------------------------------------------------------------------------


def test_cookie_key_must_be_at_least_32_characters(secrets_dir):
    with pytest.raises(SettingsError, match="COOKIE_KEY must be at least 32"):
        load_settings(env(COOKIE_KEY="k" * 31), secrets_dir=secrets_dir)
    assert load_settings(env(COOKIE_KEY="k" * 32), secrets_dir=secrets_dir).cookie_key == "k" * 32


def test_missing_cookie_key_is_generated_quietly_outside_production(secrets_dir, capsys):
    loaded = load_settings(env(COOKIE_KEY=None), secrets_dir=secrets_dir)
    assert len(loaded.cookie_key) >= 32
    assert (secrets_dir / "cookie.key").read_text().strip() == loaded.cookie_key
    assert load_settings(env(COOKIE_KEY=None), secrets_dir=secrets_dir).cookie_key == loaded.cookie_key
    assert capsys.readouterr().err == ""


# ----- numbers and defaults --------------------------------------------------------------------


def test_defaults(secrets_dir):
    loaded = load_settings(env(), secrets_dir=secrets_dir)
    assert loaded.database_url == settings_module.DEFAULT_DATABASE_URL
    assert loaded.cookie_name
    assert loaded.cookie_expiry_days > 0
    assert 0 < loaded.http_connect_timeout <= loaded.http_read_timeout
    assert isinstance(loaded.http_max_retries, int)


def test_numbers_are_read(secrets_dir):
    loaded = load_settings(
        env(COOKIE_EXPIRY_DAYS="7", HTTP_CONNECT_TIMEOUT="2.5", HTTP_READ_TIMEOUT="30", HTTP_MAX_RETRIES="3"),
        secrets_dir=secrets_dir,
    )
    assert loaded.cookie_expiry_days == 7
    assert loaded.http_connect_timeout == 2.5
    assert loaded.http_read_timeout == 30
    assert loaded.http_max_retries == 3
    assert isinstance(loaded.http_max_retries, int)


@pytest.mark.parametrize(
    ("name", "value", "phrase"),
    [
        ("HTTP_CONNECT_TIMEOUT", "fast", "must be a number"),
        ("HTTP_READ_TIMEOUT", "0", "between"),
        ("HTTP_READ_TIMEOUT", "121", "between"),
        ("HTTP_MAX_RETRIES", "-1", "between"),
        ("HTTP_MAX_RETRIES", "6", "between"),
        ("COOKIE_EXPIRY_DAYS", "365", "between"),
        ("COOKIE_EXPIRY_DAYS", "", "must be a number"),
    ],
)
def test_bad_numbers_are_refused_with_the_setting_named(secrets_dir, name, value, phrase):
    with pytest.raises(SettingsError) as raised:
        load_settings(env(**{name: value}), secrets_dir=secrets_dir)
    assert name in str(raised.value)
    assert phrase in str(raised.value)


def test_database_url_from_the_environment(secrets_dir):
    url = "postgresql://u@127.0.0.1/console"
    assert load_settings(env(DATABASE_URL=url), secrets_dir=secrets_dir).database_url == url


# ----- the key ring ----------------------------------------------------------------------------

NEW_KEY = "5d" * 32


def test_without_a_ring_the_single_key_is_a_ring_of_one(secrets_dir):
    loaded = load_settings(env(), secrets_dir=secrets_dir)
    assert loaded.encryption_keys == (KEY,)


def test_the_ring_wins_over_the_single_key_newest_first(secrets_dir):
    loaded = load_settings(
        env(INTEGRATION_ENCRYPTION_KEYS=f" {NEW_KEY} , {KEY} ", INTEGRATION_ENCRYPTION_KEY="ignored-key"),
        secrets_dir=secrets_dir,
    )
    assert loaded.encryption_keys == (NEW_KEY, KEY)
    assert loaded.encryption_key == NEW_KEY  # the newest, for code that needs one key
    assert loaded.encryption_key_source == "environment"
    assert not secrets_dir.exists()


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        (f"{NEW_KEY},,{KEY}", "empty entry"),
        (f"{NEW_KEY},", "empty entry"),
        (f"{NEW_KEY},{KEY},{NEW_KEY}", "same key twice"),
        (f"{KEY},{KEY.upper()}", "same key twice"),  # the same key bytes, spelled differently
    ],
)
def test_a_malformed_ring_is_refused_without_printing_a_key(secrets_dir, ring, message):
    with pytest.raises(SettingsError, match=message) as raised:
        load_settings(env(INTEGRATION_ENCRYPTION_KEYS=ring), secrets_dir=secrets_dir)
    assert KEY not in str(raised.value) and NEW_KEY not in str(raised.value)


def test_the_ring_may_be_a_list_in_secrets_toml(isolated_project, secrets_dir):
    (isolated_project / ".streamlit").mkdir()
    (isolated_project / ".streamlit" / "secrets.toml").write_text(
        f'INTEGRATION_ENCRYPTION_KEYS = ["{NEW_KEY}", "{KEY}"]\n'
    )
    loaded = load_settings(env(INTEGRATION_ENCRYPTION_KEY=None), secrets_dir=secrets_dir)
    assert loaded.encryption_keys == (NEW_KEY, KEY)
    assert loaded.encryption_key_source == "secrets.toml"


def test_settings_built_in_code_keep_key_and_ring_consistent():
    common = dict(database_url="sqlite://", encryption_key_source="test", cookie_key="c" * 32, cookie_name="c")
    common |= dict(cookie_expiry_days=1, http_connect_timeout=1, http_read_timeout=1, http_max_retries=0)
    one = Settings(encryption_key=KEY, production=False, **common)
    assert one.encryption_keys == (KEY,)
    ring = Settings(encryption_key=KEY, encryption_keys=(NEW_KEY, KEY), production=False, **common)
    assert ring.encryption_key == NEW_KEY


@pytest.mark.parametrize("known_default", ["some_key", "some_signature_key", "random_signature_key", "changeme"])
def test_a_known_default_cookie_key_is_refused(known_default, secrets_dir):
    with pytest.raises(SettingsError, match="COOKIE_KEY must be at least 32 characters"):
        load_settings(env(COOKIE_KEY=known_default, CONSOLE_ENV="production"), secrets_dir=secrets_dir)


# ----- alerts ------------------------------------------------------------------------------------


def test_alert_settings_have_their_documented_defaults(secrets_dir):
    loaded = load_settings(env(), secrets_dir=secrets_dir)
    assert (loaded.alert_group_window_seconds, loaded.alert_incident_threshold, loaded.alert_max_attempts) == (
        120,
        5,
        6,
    )
    assert (loaded.smtp.host, loaded.smtp.security, loaded.smtp.port, loaded.smtp.timeout) == (
        None,
        "starttls",
        587,
        30,
    )
    assert loaded.public_base_url is None


def test_smtp_settings_are_read_and_the_password_never_printed(secrets_dir):
    password = "smtp-" + "Secret-Pw-991"
    loaded = load_settings(
        env(
            SMTP_HOST="mail.example.com",
            SMTP_SECURITY="TLS",
            SMTP_USERNAME="bot",
            SMTP_PASSWORD=password,
            SMTP_FROM="alerts@example.com",
            PUBLIC_BASE_URL="https://console.example.com/",
        ),
        secrets_dir=secrets_dir,
    )
    assert (loaded.smtp.host, loaded.smtp.security, loaded.smtp.port) == ("mail.example.com", "tls", 465)
    assert loaded.smtp.password == password and password not in repr(loaded)
    assert loaded.public_base_url == "https://console.example.com"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("SMTP_SECURITY", "ssl", "SMTP_SECURITY must be one of none, starttls or tls"),
        ("SMTP_FROM", "not-an-address", "SMTP_FROM must be an e-mail address"),
        ("SMTP_PASSWORD", "lonely-password", "SMTP_PASSWORD is set without SMTP_USERNAME"),
        ("ALERT_INCIDENT_THRESHOLD", "1", "ALERT_INCIDENT_THRESHOLD must be between 2 and 1000"),
        ("PUBLIC_BASE_URL", "console.example.com", "PUBLIC_BASE_URL must be the console's address"),
    ],
)
def test_a_bad_alert_setting_is_refused_with_a_sentence(secrets_dir, name, value, words):
    with pytest.raises(SettingsError, match=re.escape(words)):
        load_settings(env(**{name: value}), secrets_dir=secrets_dir)
