"""The stored key check: detects at start that the configured key cannot open the stored data."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.crypto import KEY_CHECK_CONTEXT, DecryptionError, FieldCipher
from core.errors import KeyMismatchError
from core.models import AppMeta

KEY_CHECK = "key_check"
KEY_CHECK_PLAINTEXT = "integrations-console key check"


def verify_key(factory: sessionmaker, cipher: FieldCipher) -> None:
    """Store a check value on first start; on later starts prove the key still opens it.

    Nothing is ever overwritten when the check fails. Safe when several processes start at once.
    """
    try:
        _verify(factory, cipher)
    except IntegrityError:
        _verify(factory, cipher)  # another process stored the check value first: compare with it


def _verify(factory: sessionmaker, cipher: FieldCipher) -> None:
    with factory.begin() as session:
        meta = session.get(AppMeta, KEY_CHECK)
        if meta is None:
            session.add(AppMeta(key=KEY_CHECK, value=cipher.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT)))
            return
        try:
            ok = cipher.decrypt(meta.value, KEY_CHECK_CONTEXT) == KEY_CHECK_PLAINTEXT
        except DecryptionError:
            ok = False
    if not ok:
        raise KeyMismatchError(
            "The configured encryption key does not open the data already stored in this database (no key "
            "in INTEGRATION_ENCRYPTION_KEYS or INTEGRATION_ENCRYPTION_KEY does). Set the key this database "
            "was created with (check your backups of INTEGRATION_ENCRYPTION_KEY or .secrets/encryption.key); "
            "while rotating, list it after the new key in INTEGRATION_ENCRYPTION_KEYS. Then restart. "
            "Nothing was changed."
        )
