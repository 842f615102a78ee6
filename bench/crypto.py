"""Encrypt and decrypt a configuration with 10 sensitive fields: FieldCipher against bare AES-GCM calls.

Both sides seal the same ten 40-character values with the same associated data (field_context of
integration 42 and the field's name) and open them again. The bare side is cryptography's AESGCM built
once, a fresh os.urandom(12) nonce per value, encrypt and decrypt, UTF-8 in and out: what any AES-GCM
field encryption must do. FieldCipher adds its format (the v2 prefix, key id, base64url) and parsing it
back. Each side is timed with timeit; the two alternate over several rounds and the best round of each
counts (the least disturbed by the rest of the machine).
"""

from __future__ import annotations

import os
import timeit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import Figure, Options
from core.crypto import FieldCipher, field_context, generate_key, key_bytes

NAME = "Encrypt + decrypt, 10 secret fields"
LIMIT = 1.3
FIELDS = tuple(f"secret{index}" for index in range(10))
INTEGRATION_ID = 42
NUMBER = 2_000  # round trips of the whole configuration per timing


def configuration() -> dict[str, str]:
    return {name: os.urandom(30).hex()[:40] for name in FIELDS}


def field_cipher_round_trip(cipher: FieldCipher, values: dict[str, str], contexts: dict[str, bytes]):
    def round_trip() -> None:
        for name, value in values.items():
            context = contexts[name]
            if cipher.decrypt(cipher.encrypt(value, context), context) != value:
                raise AssertionError("FieldCipher did not return the value")

    return round_trip


def bare_round_trip(aead: AESGCM, values: dict[str, str], contexts: dict[str, bytes]):
    def round_trip() -> None:
        for name, value in values.items():
            context = contexts[name]
            nonce = os.urandom(12)
            sealed = aead.encrypt(nonce, value.encode("utf-8"), context)
            if aead.decrypt(nonce, sealed, context).decode("utf-8") != value:
                raise AssertionError("AESGCM did not return the value")

    return round_trip


def best_times(candidates: dict, rounds: int, number: int) -> dict[str, float]:
    """Seconds per call of each candidate: the best of `rounds` timings, the candidates alternating."""
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, call in candidates.items():
            best[name] = min(best[name], timeit.timeit(call, number=number) / number)
    return best


def figures(_target, options: Options) -> list[Figure]:
    key = generate_key()
    values = configuration()
    contexts = {name: field_context(INTEGRATION_ID, name) for name in FIELDS}
    candidates = {
        "FieldCipher": field_cipher_round_trip(FieldCipher([key]), values, contexts),
        "AESGCM": bare_round_trip(AESGCM(key_bytes(key)), values, contexts),
    }
    best_times(candidates, 1, NUMBER // 10)  # warm-up
    best = best_times(candidates, options.repeats, NUMBER)
    measured = f"best {best['FieldCipher'] * 1e6:.1f} µs vs bare AES-GCM {best['AESGCM'] * 1e6:.1f} µs"
    ratio = best["FieldCipher"] / best["AESGCM"]
    return [Figure(NAME, "–", measured, ratio, LIMIT, details={k + "_s": v for k, v in best.items()})]
