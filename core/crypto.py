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
from dataclasses import dataclass, field
from typing import TypeGuard

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CURRENT_VERSION = "v2"
CURRENT_PREFIX = f"enc:{CURRENT_VERSION}:"
_VERSIONED = re.compile(r"^enc:(v1|v2):([0-9a-f]{8}):([A-Za-z0-9_-]+)\Z")
_LEGACY = re.compile(r"^([0-9a-f]{32}):([0-9a-f]{32}):((?:[0-9a-f]{2})*)\Z")
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}\Z")
_NONCE_BYTES = 12
_TAG_BYTES = 16
# The hot path below: base64url through binascii itself (the base64 module adds layers of checks). Read
# back, '-' and '_' become '+' and '/', and '+', '/' and '=' become '*', which the strict decoder refuses:
# so a token outside [A-Za-z0-9_-] is refused there, as the full pattern refuses it.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING = (b"", b"===", b"==", b"=")  # by length % 4; "===" makes the strict decoder refuse a length of 4n+1
_INTEGRITY_FAILED = (
    "The value failed its integrity check: it was altered, copied from another record or field, or the key is wrong."
)


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


def is_encrypted(value: object) -> TypeGuard[str]:
    """True only for a value that parses completely as one of the ciphertext formats."""
    return format_of(value) is not None


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def _b64encode(blob: bytes) -> str:
    """base64url without padding; the same text as base64.urlsafe_b64encode(blob) without its '='."""
    return binascii.b2a_base64(blob, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def _decode_token(token: str) -> bytes | None:
    """The bytes of a token that the full pattern accepts ([A-Za-z0-9_-]+, no padding), else None."""
    if not token:
        return None
    try:
        data = token.encode("ascii").translate(_FROM_URLSAFE)
        return binascii.a2b_base64(data + _PADDING[len(data) % 4], strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        return None


@dataclass(frozen=True)
class _Key:
    id: str
    raw: bytes
    # Built once: building an AESGCM (and its cipher context) per call costs more than the call itself.
    aead: AESGCM = field(repr=False, compare=False)
    v2_prefix: str = field(repr=False, compare=False)  # how every v2 value of this key begins: enc:v2:<id>:

    @classmethod
    def of(cls, raw: bytes) -> _Key:
        kid = key_id(raw)
        return cls(kid, raw, AESGCM(raw), f"{CURRENT_PREFIX}{kid}:")


def _require_bytes(context: object) -> None:
    """The context is checked at run time too: a caller without types passing a str must fail, not bind to it."""
    if not isinstance(context, bytes):
        raise TypeError("the context (associated data) must be bytes")


class FieldCipher:
    """Encrypts with the newest key of the ring; decrypts with whichever key wrote the value.

    ``context`` is the associated data that binds a value to where it is stored (:func:`field_context`,
    :func:`token_context`, :data:`KEY_CHECK_CONTEXT`). It is required on both sides: a v2 value opens
    only with the context it was written with. v1 and legacy values carry none, so theirs is ignored.
    """

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._keys = [_Key.of(key_bytes(k)) for k in keys]
        self._by_id = {k.id: k for k in self._keys}
        self._by_v2_prefix = {k.v2_prefix: k for k in self._keys}
        self._v2_prefix_length = len(self._keys[0].v2_prefix)

    @property
    def current_key_id(self) -> str:
        return self._keys[0].id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ring's key ids, newest first."""
        return tuple(k.id for k in self._keys)

    def derived_key(self, info: bytes) -> bytes:
        """A 32-byte key for another purpose (HKDF-SHA256 from the newest key, labelled by ``info``).

        Never the encryption key itself; it changes when a newer key heads the ring."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._keys[0].raw)

    def derived_keys(self, info: bytes) -> tuple[bytes, ...]:
        """derived_key(info) under every key of the ring, newest first: to check a keyed hash written
        before the newest key headed the ring."""
        return tuple(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(k.raw) for k in self._keys)

    def encrypt(self, plaintext: str, context: bytes) -> str:
        """A v2 value under the newest key, bound to ``context``."""
        _require_bytes(context)
        key = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode("utf-8"), context)
        return key.v2_prefix + _b64encode(nonce + sealed)

    def decrypt(self, value: object, context: bytes) -> str:
        """The plaintext of a stored value; DecryptionError for anything else (None, a number, clear text)."""
        _require_bytes(context)
        # The common case first: a v2 value of a key in the ring whose token decodes. Anything else (v1,
        # legacy, an unknown key, a malformed value) takes the full parse below, which says what is wrong.
        if type(value) is str:
            key = self._by_v2_prefix.get(value[: self._v2_prefix_length])
            blob = _decode_token(value[self._v2_prefix_length :]) if key is not None else None
            if key is not None and blob is not None:
                return self._open(key, blob, context)
        match = _VERSIONED.match(value) if isinstance(value, str) else None
        if match:
            version, kid, token = match.groups()
            return self._decrypt_versioned(kid, token, context if version == "v2" else None)
        legacy = _LEGACY.match(value) if isinstance(value, str) else None
        if legacy:
            return self._decrypt_legacy(*legacy.groups())
        raise DecryptionError("The value is not in a known encrypted format.")

    def key_id_of(self, value: object) -> str | None:
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
        except ValueError as exc:
            raise DecryptionError(_INTEGRITY_FAILED) from exc
        return self._open(key, blob, context)

    @staticmethod
    def _open(key: _Key, blob: bytes, context: bytes | None) -> str:
        try:
            return key.aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context).decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError(_INTEGRITY_FAILED) from exc

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
