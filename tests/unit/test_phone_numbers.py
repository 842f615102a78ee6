"""The contact sync's phone identity: E.164 by libphonenumber, national numbers read in SYNC_PHONE_REGION."""

from __future__ import annotations

import pytest

from core.settings import SettingsError, load_settings
from core.sync import contacts
from core.sync.contacts import Contact, normalise_phone, set_phone_region


@pytest.fixture(autouse=True)
def no_region():
    set_phone_region("")
    yield
    set_phone_region("")


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("030 123456", "DE", "+4930123456"),  # national, with the trunk 0
        ("(415) 555-2671", "US", "+14155552671"),
        ("020 7946 0001", "GB", "+442079460001"),
        ("415.555.2671", "us", "+14155552671"),  # the region's case does not matter
    ],
)
def test_national_numbers_are_read_in_the_region(text, region, expected):
    assert normalise_phone(text, region) == expected


@pytest.mark.parametrize(
    "text",
    ["+49 (30) 123-456", "+49 30 123456", "+49-30-123456", " +4930123456 ", "+49 (0)30 123456"],
)
def test_international_numbers_are_read_in_any_region(text):
    for region in ("", "DE", "US", "GB"):
        assert normalise_phone(text, region) == "+4930123456", (text, region)


def test_the_international_prefix_is_the_regions():
    assert normalise_phone("0049 30 123456", "DE") == "+4930123456"
    assert normalise_phone("0049 30 123456", "") == "+4930123456"  # no region: 00, as most of the world
    assert normalise_phone("011 49 30 123456", "US") == "+4930123456"  # the US prefix is 011
    assert normalise_phone("0044 20 7946 0001", "GB") == "+442079460001"


@pytest.mark.parametrize(
    "text",
    ["+1 415 555 2671 ext. 42", "+1 415-555-2671 x42", "+1 (415) 555-2671 #42", "+14155552671;ext=42"],
)
def test_an_extension_is_dropped(text):
    assert normalise_phone(text, "") == "+14155552671"


def test_without_a_region_a_national_number_is_no_number():
    assert normalise_phone("030 123456", "") is None
    assert normalise_phone("(415) 555-2671", "") is None


@pytest.mark.parametrize(
    "text",
    ["", None, "12", "call me", "1-800-FLOWERS", "+49", "+999 123 456 789", "+1 415 555 2671 9999 9999 99", "0"],
)
def test_what_is_not_a_phone_number_is_none(text):
    for region in ("", "DE", "US"):
        assert normalise_phone(text, region) is None, (text, region)


def test_a_long_text_is_cut_before_it_is_read():
    assert normalise_phone("+" + "1" * 10_000, "US") is None


def test_the_configured_region_is_what_a_contact_key_uses():
    person = Contact("7", "Linus", None, "030 123456")
    assert person.key_phone is None
    set_phone_region("de")
    assert person.key_phone == "+4930123456" and normalise_phone("030 123456") == "+4930123456"
    assert normalise_phone("030 123456", "") is None  # an explicit region wins
    assert contacts.normalise_phone("+1 415 555 2671") == "+14155552671"


def test_the_setting_is_a_country_code(tmp_path):
    base = {"DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", "CONSOLE_SECRETS_DIR": str(tmp_path / "s")}
    assert load_settings({**base}, secrets_dir=tmp_path / "s").sync_phone_region == ""
    assert load_settings({**base, "SYNC_PHONE_REGION": " gb "}, secrets_dir=tmp_path / "s").sync_phone_region == "GB"
    with pytest.raises(SettingsError, match="SYNC_PHONE_REGION must be a country's two-letter code"):
        load_settings({**base, "SYNC_PHONE_REGION": "Germany"}, secrets_dir=tmp_path / "s")
