"""AES-256-GCM encryption of single configuration values.

Two formats are read:

* legacy, written by the original TypeScript system: ``iv:tag:ciphertext``, lower-case hex,
  a 16-byte IV and a 16-byte GCM tag;
* current: ``enc:v1:<key id>:<base64url(12-byte nonce + ciphertext + 16-byte tag)>``, where the
  key id is the first 8 hex characters of SHA-256 over the key bytes, so rotation can tell which
  key wrote a value.

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

CURRENT_PREFIX = "enc:v1:"
_CURRENT = re.compile(r"^enc:v1:([0-9a-f]{8}):([A-Za-z0-9_-]+)\Z")
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


def is_encrypted(value: object) -> bool:
    """True only for a value that parses completely as one of the two ciphertext formats."""
    if not isinstance(value, str):
        return False
    match = _CURRENT.match(value)
    if match:
        try:
            blob = _b64decode(match.group(2))
        except ValueError:
            return False
        return len(blob) >= _NONCE_BYTES + _TAG_BYTES
    return _LEGACY.match(value) is not None


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
    """Encrypts with the newest key of the ring; decrypts with whichever key wrote the value."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._keys = [_Key(key_id(raw), raw) for raw in (key_bytes(k) for k in keys)]
        self._by_id = {k.id: k for k in self._keys}

    @property
    def current_key_id(self) -> str:
        return self._keys[0].id

    def encrypt(self, plaintext: str) -> str:
        key = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key.raw).encrypt(nonce, plaintext.encode("utf-8"), None)
        token = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{CURRENT_PREFIX}{key.id}:{token}"

    def decrypt(self, value: str) -> str:
        match = _CURRENT.match(value) if isinstance(value, str) else None
        if match:
            return self._decrypt_current(match.group(1), match.group(2))
        legacy = _LEGACY.match(value) if isinstance(value, str) else None
        if legacy:
            return self._decrypt_legacy(*legacy.groups())
        raise DecryptionError("The value is not in a known encrypted format.")

    def key_id_of(self, value: str) -> str | None:
        """Which key wrote a value (None for the legacy format, which does not say)."""
        match = _CURRENT.match(value)
        return match.group(1) if match else None

    def _decrypt_current(self, kid: str, token: str) -> str:
        key = self._by_id.get(kid)
        if key is None:
            raise DecryptionError(f"The value was encrypted with key {kid}, which is not in the configured key ring.")
        try:
            blob = _b64decode(token)  # a truncated token may not even be valid base64
            nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
            return AESGCM(key.raw).decrypt(nonce, sealed, None).decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("The value failed its integrity check: it was altered or the key is wrong.") from exc

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
