"""core.crypto: the field cipher, the original system's format, key handling and tamper detection,
and the associated data that binds each value to where it is stored."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core import crypto
from core.crypto import (
    KEY_CHECK_CONTEXT,
    DecryptionError,
    FieldCipher,
    encrypt_legacy,
    field_context,
    format_of,
    is_encrypted,
    key_bytes,
    key_id,
    token_context,
)

HEX_KEY = "3c" * 16 + "a1" * 16  # 64 hex characters
OTHER_HEX_KEY = "5e" * 32
PHRASE_KEY = "correct horse battery staple"

LEGACY_SHAPE = re.compile(r"^[0-9a-f]{32}:[0-9a-f]{32}:(?:[0-9a-f]{2})*$")
CURRENT_SHAPE = re.compile(r"^enc:v2:([0-9a-f]{8}):([A-Za-z0-9_-]+)$")
AAD = field_context(1, "apiKey")  # the associated data most tests seal with


def node_style_encrypt(raw_key: bytes, plaintext: str, iv: bytes | None = None) -> str:
    """What the original Node code did, written independently of core.crypto.

    crypto.createCipheriv('aes-256-gcm', key, iv) with a 16-byte IV, then
    `${iv.hex}:${tag.hex}:${ciphertext.hex}`. AESGCM returns ciphertext || 16-byte tag.
    """
    iv = iv if iv is not None else os.urandom(16)
    sealed = AESGCM(raw_key).encrypt(iv, plaintext.encode("utf-8"), None)
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return f"{iv.hex()}:{tag.hex()}:{ciphertext.hex()}"


def flip_hex(text: str, index: int) -> str:
    """Change one hex digit to a different lower-case hex digit (the value still parses)."""
    digit = int(text[index], 16) ^ 0x1
    return text[:index] + format(digit, "x") + text[index + 1 :]


def flip_b64(text: str, index: int) -> str:
    """Change one base64url character so that the decoded bytes change (its top bit flips)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    position = alphabet.index(text[index])
    return text[:index] + alphabet[position ^ 0b100000] + text[index + 1 :]


# ----- keys ------------------------------------------------------------------------------------


def test_sixty_four_hex_characters_are_the_raw_key_bytes():
    assert key_bytes(HEX_KEY) == bytes.fromhex(HEX_KEY)
    assert len(key_bytes(HEX_KEY)) == 32


def test_upper_case_hex_key_is_also_raw_bytes():
    assert key_bytes(HEX_KEY.upper()) == bytes.fromhex(HEX_KEY)


@pytest.mark.parametrize(
    "key",
    [
        PHRASE_KEY,
        "a" * 63,  # one hex digit short
        "a" * 65,  # one hex digit too many
        "g" * 64,  # 64 characters, but not hex
        "0f" * 16,  # 32 hex characters: 16 bytes, not an AES-256 key
        "pässwörd-ключ",
    ],
)
def test_any_other_key_string_is_hashed_with_sha256(key):
    assert key_bytes(key) == hashlib.sha256(key.encode("utf-8")).digest()


def test_key_id_is_derived_from_the_key_bytes():
    assert key_id(key_bytes(HEX_KEY)) == hashlib.sha256(bytes.fromhex(HEX_KEY)).hexdigest()[:8]
    assert key_id(key_bytes(HEX_KEY)) != key_id(key_bytes(OTHER_HEX_KEY))


def test_generated_keys_are_random_64_hex_keys():
    first, second = crypto.generate_key(), crypto.generate_key()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert first != second
    assert key_bytes(first) == bytes.fromhex(first)


def test_a_key_ring_needs_a_key():
    with pytest.raises(ValueError):
        FieldCipher([])


# ----- current format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    ["chatwoot-token-123", "", "a:b:c", "ünïcödé ключ 🔑 秘密", json.dumps({"token": "t:o:k"}), "x" * 5000],
)
def test_round_trip(plaintext):
    cipher = FieldCipher([HEX_KEY])
    value = cipher.encrypt(plaintext, AAD)
    assert cipher.decrypt(value, AAD) == plaintext
    assert is_encrypted(value)


def test_new_values_are_versioned_and_name_their_key():
    cipher = FieldCipher([HEX_KEY])
    value = cipher.encrypt("secret-value", AAD)
    match = CURRENT_SHAPE.match(value)
    assert match, value
    assert match.group(1) == hashlib.sha256(bytes.fromhex(HEX_KEY)).hexdigest()[:8]
    assert match.group(1) == cipher.current_key_id
    assert cipher.key_id_of(value) == match.group(1)
    assert "secret-value" not in value


def test_current_format_is_aes_gcm_with_a_12_byte_nonce_under_the_named_key():
    """Decrypt a new value without core.crypto's reader, to pin the documented layout and associated data."""
    assert AAD == b"integration:1:apiKey"
    value = FieldCipher([HEX_KEY]).encrypt("layout check", AAD)
    token = CURRENT_SHAPE.match(value).group(2)
    blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    nonce, sealed = blob[:12], blob[12:]
    assert AESGCM(bytes.fromhex(HEX_KEY)).decrypt(nonce, sealed, AAD) == b"layout check"


def test_same_plaintext_encrypts_differently_each_time():
    cipher = FieldCipher([HEX_KEY])
    assert cipher.encrypt("same", AAD) != cipher.encrypt("same", AAD)


def test_phrase_key_encrypts_with_its_sha256():
    value = FieldCipher([PHRASE_KEY]).encrypt("phrase", AAD)
    assert FieldCipher([hashlib.sha256(PHRASE_KEY.encode()).hexdigest()]).decrypt(value, AAD) == "phrase"


def test_wrong_key_raises_decryption_error():
    value = FieldCipher([HEX_KEY]).encrypt("secret", AAD)
    with pytest.raises(DecryptionError):
        FieldCipher([OTHER_HEX_KEY]).decrypt(value, AAD)


def test_value_claiming_a_ring_key_but_sealed_by_another_raises():
    """Same key id, different key bytes: the integrity check, not the id lookup, must refuse it."""
    token = CURRENT_SHAPE.match(FieldCipher([OTHER_HEX_KEY]).encrypt("secret", AAD)).group(2)
    forged = f"enc:v1:{FieldCipher([HEX_KEY]).current_key_id}:{token}"
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt(forged, AAD)


def test_key_ring_decrypts_values_of_every_key_and_encrypts_with_the_first():
    old_value = FieldCipher([OTHER_HEX_KEY]).encrypt("written with the old key", AAD)
    old_legacy = encrypt_legacy(bytes.fromhex(OTHER_HEX_KEY), "old legacy")
    ring = FieldCipher([HEX_KEY, OTHER_HEX_KEY])
    new_value = ring.encrypt("written with the new key", AAD)

    assert ring.decrypt(old_value, AAD) == "written with the old key"
    assert ring.decrypt(old_legacy, AAD) == "old legacy"
    assert ring.decrypt(new_value, AAD) == "written with the new key"
    assert ring.key_id_of(new_value) == key_id(bytes.fromhex(HEX_KEY))
    assert ring.key_id_of(old_value) == key_id(bytes.fromhex(OTHER_HEX_KEY))
    # The old key alone cannot read what the ring now writes.
    with pytest.raises(DecryptionError):
        FieldCipher([OTHER_HEX_KEY]).decrypt(new_value, AAD)


def test_key_id_of_legacy_value_is_unknown():
    assert FieldCipher([HEX_KEY]).key_id_of(encrypt_legacy(bytes.fromhex(HEX_KEY), "x")) is None


# ----- the original system's format ------------------------------------------------------------


def test_encrypt_legacy_writes_iv_tag_ciphertext_in_lower_case_hex():
    iv = bytes(range(16))
    value = encrypt_legacy(bytes.fromhex(HEX_KEY), "legacy-token", iv=iv)
    assert LEGACY_SHAPE.match(value), value
    iv_hex, tag_hex, ct_hex = value.split(":")
    assert iv_hex == iv.hex()
    assert len(bytes.fromhex(tag_hex)) == 16
    assert len(bytes.fromhex(ct_hex)) == len(b"legacy-token")  # GCM is a stream mode: no padding
    # ... and it is what an independent AES-GCM with the same IV produces.
    assert value == node_style_encrypt(bytes.fromhex(HEX_KEY), "legacy-token", iv=iv)


@pytest.mark.parametrize("plaintext", ["legacy-token-abc", "ünïcödé 🔑", "with:colons:inside", ""])
def test_legacy_values_from_encrypt_legacy_decrypt_unchanged(plaintext):
    value = encrypt_legacy(bytes.fromhex(HEX_KEY), plaintext)
    assert is_encrypted(value)
    assert FieldCipher([HEX_KEY]).decrypt(value, AAD) == plaintext


@pytest.mark.parametrize("plaintext", ["node-written-token", "ünïcödé 🔑", '{"token":"a:b"}'])
def test_legacy_values_from_an_independent_implementation_decrypt_unchanged(plaintext):
    value = node_style_encrypt(bytes.fromhex(HEX_KEY), plaintext)
    assert LEGACY_SHAPE.match(value)
    assert is_encrypted(value)
    assert FieldCipher([HEX_KEY]).decrypt(value, AAD) == plaintext


def test_legacy_value_with_a_phrase_key_uses_the_sha256_of_the_phrase():
    value = node_style_encrypt(hashlib.sha256(PHRASE_KEY.encode()).digest(), "phrase legacy")
    assert FieldCipher([PHRASE_KEY]).decrypt(value, AAD) == "phrase legacy"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_legacy_value_written_by_real_node_crypto_decrypts_unchanged():
    script = """
const crypto = require('crypto');
const key = Buffer.from(process.argv[1], 'hex');
const iv = crypto.randomBytes(16);
const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
let enc = cipher.update(process.argv[2], 'utf8', 'hex');
enc += cipher.final('hex');
const tag = cipher.getAuthTag();
process.stdout.write(`${iv.toString('hex')}:${tag.toString('hex')}:${enc}`);
"""
    plaintext = "node:token ünï 🔑"
    value = subprocess.run(
        ["node", "-e", script, HEX_KEY, plaintext], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert LEGACY_SHAPE.match(value), value
    assert FieldCipher([HEX_KEY]).decrypt(value, AAD) == plaintext


def test_legacy_value_with_wrong_key_raises_decryption_error():
    value = node_style_encrypt(bytes.fromhex(HEX_KEY), "secret")
    with pytest.raises(DecryptionError):
        FieldCipher([OTHER_HEX_KEY]).decrypt(value, AAD)


# ----- is_encrypted decides by parsing ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a:b:c",
        "pass:word:with:colons",
        "0123456789abcdef0123456789abcdef:0123456789abcdef0123456789abcdef:abc",  # odd-length ciphertext
        "0123456789ABCDEF0123456789ABCDEF:0123456789abcdef0123456789abcdef:abcd",  # upper-case hex
        "0123456789abcdef0123456789abcde:0123456789abcdef0123456789abcdef:abcd",  # 15.5-byte IV
        "0123456789abcdef0123456789abcdef:0123456789abcdef0123456789abcde:abcd",  # short tag
        "0123456789abcdef0123456789abcdef:0123456789abcdef0123456789abcdef:zz",  # not hex
        "0123456789abcdef0123456789abcdef:0123456789abcdef0123456789abcdef:ab:cd",
        "enc:v1:notakey1:AAAA",
        "enc:v1:0123abcd:",
        "enc:v1:0123abcd:AAAA",  # parses, but too short to hold a nonce and a tag
        "enc:v1:0123abcd:has spaces",
        "enc:v3:0123abcd:" + "A" * 40,  # a version this code does not know
        "enc:V2:0123abcd:" + "A" * 40,
        "https://user:pass@example.com:8080",
        "",
        "plain-token",
    ],
)
def test_strings_that_only_look_like_ciphertext_are_not_encrypted(value):
    assert not is_encrypted(value)


@pytest.mark.parametrize("value", [None, 12, 1.5, True, {"a": "b"}, ["x"]])
def test_non_strings_are_not_encrypted(value):
    assert not is_encrypted(value)


@pytest.mark.parametrize(
    "password",
    ["a:b:c", "pass:word:with:colons", "0123456789abcdef0123456789abcdef:0123456789abcdef0123456789abcdef:abc"],
)
def test_a_password_with_colons_gets_encrypted_and_comes_back(password):
    cipher = FieldCipher([HEX_KEY])
    assert not is_encrypted(password)
    value = cipher.encrypt(password, AAD)
    assert value != password
    assert is_encrypted(value)
    assert password not in value
    assert cipher.decrypt(value, AAD) == password


def test_decrypting_a_plain_string_is_refused():
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt("pass:word:with:colons", AAD)


# ----- tampering -------------------------------------------------------------------------------


@pytest.mark.parametrize("part", [0, 1, 2])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_tampered_legacy_value_raises_and_never_returns_garbage(part, where):
    original = node_style_encrypt(bytes.fromhex(HEX_KEY), "a legacy secret value")
    parts = original.split(":")
    index = {"first": 0, "middle": len(parts[part]) // 2, "last": len(parts[part]) - 1}[where]
    parts[part] = flip_hex(parts[part], index)
    tampered = ":".join(parts)
    assert tampered != original
    assert is_encrypted(tampered)  # still parses: only the integrity check can catch it
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt(tampered, AAD)


def test_tampered_current_key_id_raises():
    cipher = FieldCipher([HEX_KEY])
    value = cipher.encrypt("a current secret value", AAD)
    kid = cipher.current_key_id
    tampered = value.replace(f":{kid}:", f":{flip_hex(kid, 0)}:")
    assert tampered != value
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, AAD)


@pytest.mark.parametrize("region", ["nonce", "ciphertext", "tag"])
def test_tampered_current_token_raises_and_never_returns_garbage(region):
    cipher = FieldCipher([HEX_KEY])
    plaintext = "a current secret value"
    value = cipher.encrypt(plaintext, AAD)
    prefix, token = value.rsplit(":", 1)
    # 12-byte nonce = base64 characters 0-15; the 16-byte tag is the last ~22 characters.
    index = {"nonce": 3, "ciphertext": 16 + 4, "tag": len(token) - 8}[region]
    tampered = f"{prefix}:{flip_b64(token, index)}"
    assert tampered != value
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, AAD)


@pytest.mark.parametrize("cut", range(1, 9))
def test_truncated_current_token_raises_decryption_error(cut):
    """Whatever length is left (including lengths that are not valid base64), the error is DecryptionError."""
    cipher = FieldCipher([HEX_KEY])
    value = cipher.encrypt("a current secret value", AAD)
    with pytest.raises(DecryptionError):
        cipher.decrypt(value[:-cut], AAD)


@pytest.mark.parametrize("cut", [2, 4])
def test_truncated_legacy_ciphertext_raises_decryption_error(cut):
    value = node_style_encrypt(bytes.fromhex(HEX_KEY), "a legacy secret value")
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt(value[:-cut], AAD)


def test_swapped_legacy_values_do_not_decrypt_as_each_other():
    """Splicing the IV and tag of one value onto another's ciphertext is caught."""
    key = bytes.fromhex(HEX_KEY)
    one, two = node_style_encrypt(key, "first secret"), node_style_encrypt(key, "other secret")
    spliced = ":".join(one.split(":")[:2] + two.split(":")[2:])
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt(spliced, AAD)


def test_decryption_error_message_contains_no_plaintext_or_key():
    cipher = FieldCipher([HEX_KEY])
    value = cipher.encrypt("the-plaintext-secret", AAD)
    with pytest.raises(DecryptionError) as raised:
        FieldCipher([OTHER_HEX_KEY]).decrypt(value, AAD)
    message = str(raised.value)
    assert "the-plaintext-secret" not in message
    assert HEX_KEY not in message and OTHER_HEX_KEY not in message


# ----- v2: every value bound to where it is stored (GCM associated data) ---------------------------


def v1_value(hex_key: str, plaintext: str) -> str:
    """What earlier versions of this app wrote: enc:v1, AES-256-GCM without associated data."""
    raw = bytes.fromhex(hex_key)
    nonce = os.urandom(12)
    token = base64.urlsafe_b64encode(nonce + AESGCM(raw).encrypt(nonce, plaintext.encode(), None)).decode()
    return f"enc:v1:{key_id(raw)}:{token.rstrip('=')}"


def test_contexts_name_the_integration_and_field_the_token_and_the_key_check():
    assert field_context(12, "apiKey") == b"integration:12:apiKey"
    assert field_context(12, "features.secret") == b"integration:12:features.secret"
    assert field_context(None, "apiKey") == b"integration:unsaved:apiKey"
    assert token_context(12, "ab" * 32) == b"oauth:12:" + b"ab" * 32
    assert KEY_CHECK_CONTEXT == b"key-check"


@pytest.mark.parametrize("plaintext", ["chatwoot-token-123", "", "ünïcödé 🔑", "x" * 5000])
def test_v2_round_trip_with_its_context(plaintext):
    cipher = FieldCipher([HEX_KEY])
    value = cipher.encrypt(plaintext, field_context(7, "apiKey"))
    assert value.startswith(f"enc:v2:{cipher.current_key_id}:")
    assert format_of(value) == "v2"
    assert cipher.decrypt(value, field_context(7, "apiKey")) == plaintext


@pytest.mark.parametrize(
    "elsewhere",
    [
        field_context(8, "apiKey"),  # the same field of another integration
        field_context(7, "clientSecret"),  # another field of the same integration
        field_context(None, "apiKey"),  # an unsaved form
        field_context(70, "apiKey"),  # an id that shares a prefix
        token_context(7, "apiKey"),
        KEY_CHECK_CONTEXT,
        b"",
    ],
)
def test_a_v2_value_moved_to_another_integration_or_field_does_not_open(elsewhere):
    cipher = FieldCipher([HEX_KEY])
    value = cipher.encrypt("bound-secret", field_context(7, "apiKey"))
    with pytest.raises(DecryptionError) as raised:
        cipher.decrypt(value, elsewhere)
    assert "bound-secret" not in str(raised.value)
    assert "copied from another record or field" in str(raised.value)


def test_the_context_is_not_stored_in_the_value():
    """Binding must come from where the value is read, not from anything the value itself says."""
    value = FieldCipher([HEX_KEY]).encrypt("secret", field_context(7, "apiKey"))
    assert b"integration" not in base64.urlsafe_b64decode(value.rsplit(":", 1)[1] + "==")
    assert "integration" not in value and "apiKey" not in value


@pytest.mark.parametrize("context", [None, "integration:1:apiKey"])
def test_a_context_must_be_bytes(context):
    cipher = FieldCipher([HEX_KEY])
    with pytest.raises(TypeError):
        cipher.encrypt("secret", context)
    with pytest.raises(TypeError):
        cipher.decrypt(cipher.encrypt("secret", AAD), context)


def test_v1_values_of_earlier_versions_still_open_whatever_the_context():
    value = v1_value(HEX_KEY, "written by v1")
    assert is_encrypted(value) and format_of(value) == "v1"
    cipher = FieldCipher([HEX_KEY])
    for context in (AAD, field_context(99, "other"), KEY_CHECK_CONTEXT):
        assert cipher.decrypt(value, context) == "written by v1"
    assert cipher.key_id_of(value) == cipher.current_key_id
    assert not cipher.is_current(value)  # same key, old format: rotation rewrites it


def test_v1_and_legacy_values_under_an_older_key_open_through_the_ring():
    ring = FieldCipher([HEX_KEY, OTHER_HEX_KEY])
    assert ring.decrypt(v1_value(OTHER_HEX_KEY, "old v1"), AAD) == "old v1"
    assert ring.decrypt(encrypt_legacy(bytes.fromhex(OTHER_HEX_KEY), "old legacy"), AAD) == "old legacy"


def test_tampered_v1_value_raises():
    value = v1_value(HEX_KEY, "a v1 secret")
    prefix, token = value.rsplit(":", 1)
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt(f"{prefix}:{flip_b64(token, 20)}", AAD)


def test_a_v1_token_relabelled_as_v2_does_not_open():
    """Changing the version label cannot strip the binding: v2 checks the context, v1 had none."""
    relabelled = v1_value(HEX_KEY, "v1 secret").replace("enc:v1:", "enc:v2:", 1)
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt(relabelled, AAD)


def test_a_v2_token_relabelled_as_v1_does_not_open():
    """The other way round: calling a bound value v1 does not make it open without its context."""
    relabelled = FieldCipher([HEX_KEY]).encrypt("v2 secret", AAD).replace("enc:v2:", "enc:v1:", 1)
    with pytest.raises(DecryptionError):
        FieldCipher([HEX_KEY]).decrypt(relabelled, AAD)


def test_is_current_means_v2_under_the_newest_key():
    old, new = FieldCipher([OTHER_HEX_KEY]), FieldCipher([HEX_KEY, OTHER_HEX_KEY])
    assert new.is_current(new.encrypt("x", AAD))
    assert not new.is_current(old.encrypt("x", AAD))  # v2, older key
    assert not new.is_current(v1_value(HEX_KEY, "x"))  # newest key, v1
    assert not new.is_current(encrypt_legacy(bytes.fromhex(HEX_KEY), "x"))
    assert not new.is_current("plain text")
    assert new.key_ids == (key_id(bytes.fromhex(HEX_KEY)), key_id(bytes.fromhex(OTHER_HEX_KEY)))


def test_a_value_from_a_key_outside_the_ring_names_that_key():
    value = FieldCipher([OTHER_HEX_KEY]).encrypt("secret", AAD)
    kid = key_id(bytes.fromhex(OTHER_HEX_KEY))
    with pytest.raises(DecryptionError, match=f"written with key {kid}, which is not in the ring"):
        FieldCipher([HEX_KEY]).decrypt(value, AAD)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("enc:v1:0123abcd:" + "A" * 40, "v1"),
        ("enc:v2:0123abcd:" + "A" * 40, "v2"),
        ("0123456789abcdef0123456789abcdef:0123456789abcdef0123456789abcdef:abcd", "legacy"),
        ("enc:v2:0123abcd:AAAA", None),
        ("enc:v3:0123abcd:" + "A" * 40, None),
        ("a:b:c", None),
        (None, None),
    ],
)
def test_format_of_parses_completely(value, expected):
    assert format_of(value) == expected
