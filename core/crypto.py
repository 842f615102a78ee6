"""AES-256-GCM encryption of single configuration values.

Two formats are read:

* legacy, written by the original TypeScript system: ``iv:tag:ciphertext``, lower-case hex,
  a 16-byte IV and a 16-byte GCM tag;
* ``enc:v1:<key id>:<base64url(12-byte nonce + ciphertext + 16-byte tag)>``, AES-256-GCM without
  associated data, written by earlier versions of this app;
* current: ``enc:v2:<key id>:<base64url(12-byte nonce + ciphertext + 16-byte tag)>``, AES-256-GCM with
  associated data that names where the value belongs (``integration:<id>:<field>``, see
  :func:`field_context`), so a value copied into another row or field fails its integrity check.

The key id is the first 8 hex characters of SHA-256 over the key bytes, so rotation can tell which
key wrote a value. Every value is written as v2 with the newest key of the ring; v1 and the legacy
format are only read (``python manage.py keys rotate`` rewrites them as v2).

Whether a value is encrypted is decided by parsing it completely, never by looking for ':'.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CURRENT_VERSION = "v2"
CURRENT_PREFIX = f"enc:{CURRENT_VERSION}:"
_VERSIONED = re.compile(r"^enc:(v1|v2):([0-9a-f]{8}):([A-Za-z0-9_-]+)\Z")
_LEGACY = re.compile(r"^([0-9a-f]{32}):([0-9a-f]{32}):((?:[0-9a-f]{2})*)\Z")
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}\Z")
_NONCE_BYTES = 12
_TAG_BYTES = 16


class DecryptionError(Exception):
    """A stored value could not be decrypted: wrong key, or the value was altered."""


def key_bytes(key: str) -> bytes:
    """64 hex characters are the 32 key bytes; any other string is hashed with SHA-256."""
    if _HEX_KEY.match(key):
        return bytes.fromhex(key)
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_id(raw_key: bytes) -> str:
    return hashlib.sha256(raw_key).hexdigest()[:8]


def generate_key() -> str:
    return os.urandom(32).hex()


# ----- associated data: where a value belongs ---------------------------------------------------

KEY_CHECK_CONTEXT = b"key-check"


def field_context(integration_id: int | None, field: str) -> bytes:
    """The associated data of an integration's sensitive field (None: a form that is not saved yet)."""
    owner = "unsaved" if integration_id is None else str(int(integration_id))
    return f"integration:{owner}:{field}".encode()


def token_context(integration_id: int, cache_key_hash: str) -> bytes:
    """The associated data of a cached access token (its integration and the hash of its cache key)."""
    return f"oauth:{int(integration_id)}:{cache_key_hash}".encode()


def format_of(value: object) -> str | None:
    """'v2', 'v1', 'legacy', or None for anything that does not parse completely as ciphertext."""
    if not isinstance(value, str):
        return None
    match = _VERSIONED.match(value)
    if match:
        try:
            blob = _b64decode(match.group(3))
        except ValueError:
            return None
        return match.group(1) if len(blob) >= _NONCE_BYTES + _TAG_BYTES else None
    return "legacy" if _LEGACY.match(value) else None


def is_encrypted(value: object) -> bool:
    """True only for a value that parses completely as one of the ciphertext formats."""
    return format_of(value) is not None


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


@dataclass(frozen=True)
class _Key:
    id: str
    raw: bytes


class FieldCipher:
    """Encrypts with the newest key of the ring; decrypts with whichever key wrote the value.

    ``context`` is the associated data that binds a value to where it is stored (:func:`field_context`,
    :func:`token_context`, :data:`KEY_CHECK_CONTEXT`). It is required on both sides: a v2 value opens
    only with the context it was written with. v1 and legacy values carry none, so theirs is ignored.
    """

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._keys = [_Key(key_id(raw), raw) for raw in (key_bytes(k) for k in keys)]
        self._by_id = {k.id: k for k in self._keys}

    @property
    def current_key_id(self) -> str:
        return self._keys[0].id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ring's key ids, newest first."""
        return tuple(k.id for k in self._keys)

    def encrypt(self, plaintext: str, context: bytes) -> str:
        """A v2 value under the newest key, bound to ``context``."""
        if not isinstance(context, bytes):
            raise TypeError("the context (associated data) must be bytes")
        key = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key.raw).encrypt(nonce, plaintext.encode("utf-8"), context)
        token = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{CURRENT_PREFIX}{key.id}:{token}"

    def decrypt(self, value: str, context: bytes) -> str:
        if not isinstance(context, bytes):
            raise TypeError("the context (associated data) must be bytes")
        match = _VERSIONED.match(value) if isinstance(value, str) else None
        if match:
            version, kid, token = match.groups()
            return self._decrypt_versioned(kid, token, context if version == "v2" else None)
        legacy = _LEGACY.match(value) if isinstance(value, str) else None
        if legacy:
            return self._decrypt_legacy(*legacy.groups())
        raise DecryptionError("The value is not in a known encrypted format.")

    def key_id_of(self, value: str) -> str | None:
        """Which key wrote a value (None for the legacy format, which does not say)."""
        match = _VERSIONED.match(value) if isinstance(value, str) else None
        return match.group(2) if match else None

    def is_current(self, value: object) -> bool:
        """Written in the current format (v2) with the newest key. Says nothing about integrity."""
        return format_of(value) == CURRENT_VERSION and self.key_id_of(value) == self.current_key_id

    def _decrypt_versioned(self, kid: str, token: str, context: bytes | None) -> str:
        key = self._by_id.get(kid)
        if key is None:
            raise DecryptionError(f"The value was written with key {kid}, which is not in the ring.")
        try:
            blob = _b64decode(token)  # a truncated token may not even be valid base64
            nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
            return AESGCM(key.raw).decrypt(nonce, sealed, context).decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError(
                "The value failed its integrity check: it was altered, copied from another record or field, "
                "or the key is wrong."
            ) from exc

    def _decrypt_legacy(self, iv_hex: str, tag_hex: str, ct_hex: str) -> str:
        iv, tag, ciphertext = bytes.fromhex(iv_hex), bytes.fromhex(tag_hex), bytes.fromhex(ct_hex)
        # The original system's 16-byte IV goes through the GCM mode object, which takes the tag apart.
        for key in self._keys:
            decryptor = Cipher(algorithms.AES(key.raw), modes.GCM(iv, tag)).decryptor()
            try:
                return (decryptor.update(ciphertext) + decryptor.finalize()).decode("utf-8")
            except (InvalidTag, UnicodeDecodeError):
                continue
        raise DecryptionError(
            "A value in the original iv:tag:ciphertext format failed its integrity check: "
            "it was altered or none of the configured keys wrote it."
        )


def encrypt_legacy(raw_key: bytes, plaintext: str, iv: bytes | None = None) -> str:
    """Write the original system's format. Used only to prove compatibility in tests and tools."""
    iv = iv or os.urandom(16)
    encryptor = Cipher(algorithms.AES(raw_key), modes.GCM(iv)).encryptor()
    ciphertext = encryptor.update(plaintext.encode("utf-8")) + encryptor.finalize()
    return f"{iv.hex()}:{encryptor.tag.hex()}:{ciphertext.hex()}"
