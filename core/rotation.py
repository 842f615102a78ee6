"""Key rotation: re-encrypt every stored secret under the newest key of the ring.

What is stored encrypted: the sensitive fields of each integration (per its provider's FieldSpecs),
the cached OAuth access tokens, and the key check value. Each value is decrypted with whichever ring
key wrote it and written again as ``enc:v2`` under the newest key, bound to where it is stored.

- Batches: each batch of rows is one transaction, all-or-nothing. An interruption (Ctrl-C, a database
  error) loses at most the batch in flight; running again carries on, because a value that is already
  current (v2 under the newest key, and it opens) is counted and left as it is.
- Nothing is destroyed: a value that does not open is reported (integration id and field name, never
  the value) and left exactly as stored.
- Not an edit: plain UPDATEs, so no integration's version changes and no open edit form conflicts.
- One audit event with the counts.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core import audit, fields
from core.alerts.subscriptions import subscription_context
from core.catalog import Catalog
from core.chatwoot.bot_keys import token_context as bot_token_context
from core.connect.apps import secret_context
from core.crypto import (
    KEY_CHECK_CONTEXT,
    DecryptionError,
    FieldCipher,
    field_context,
    format_of,
    token_context,
)
from core.errors import ConsoleError
from core.keys import KEY_CHECK
from core.models import AlertSubscription, AppMeta, ChatwootBot, Integration, OAuthApp, OAuthToken

DEFAULT_BATCH_SIZE = 100
MAX_AUDITED_FAILURES = 20
KEY_CHECK_FIELD = "key check"
CHANGED_MEANWHILE = "changed while the rotation ran; run `keys rotate` again"
# Text that starts like a ciphertext but does not parse as one: damaged, not a secret typed in clear.
_DAMAGED = re.compile(r"^(enc:|[0-9a-fA-F]{32}:[0-9a-fA-F]{32}:)")


@dataclass(frozen=True)
class Failure:
    """A value that was left as stored. Never holds the value itself."""

    integration_id: int | None  # None: the key check, which belongs to no integration
    field: str
    reason: str

    def describe(self) -> str:
        where = f"integration {self.integration_id}" if self.integration_id is not None else "this installation"
        return f"{where}, {self.field}: {self.reason}"


@dataclass
class _Tally:
    re_encrypted: int = 0
    already_current: int = 0
    from_clear_text: int = 0  # also counted in re_encrypted
    failures: list[Failure] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        self.re_encrypted += other.re_encrypted
        self.already_current += other.already_current
        self.from_clear_text += other.from_clear_text
        self.failures += other.failures


@dataclass
class RotationReport(_Tally):
    key_id: str = ""  # the newest key, which everything is now written with
    ring: tuple[str, ...] = ()
    batches: int = 0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def as_dict(self) -> dict:
        return {
            "key_id": self.key_id,
            "ring": list(self.ring),
            "re_encrypted": self.re_encrypted,
            "already_current": self.already_current,
            "failed": self.failed,
            "encrypted_from_clear_text": self.from_clear_text,
            "batches": self.batches,
            "failures": [
                {"integration_id": f.integration_id, "field": f.field, "reason": f.reason} for f in self.failures
            ],
        }

    def audit_details(self) -> dict:
        details = {k: v for k, v in self.as_dict().items() if k != "failures"}
        details["failures"] = [
            {"integration_id": f.integration_id, "field": f.field} for f in self.failures[:MAX_AUDITED_FAILURES]
        ]
        return details


class RotationInterrupted(ConsoleError):
    """A batch failed and was rolled back; the batches before it are saved. Running again carries on."""

    def __init__(self, message: str, report: RotationReport):
        super().__init__(message)
        self.report = report


class KeyRotation:
    def __init__(self, factory: sessionmaker, cipher: FieldCipher, catalog: Catalog):
        self._factory = factory
        self._cipher = cipher
        self._catalog = catalog

    def run(self, batch_size: int = DEFAULT_BATCH_SIZE) -> RotationReport:
        """Rotate everything; raise RotationInterrupted (with the counts so far) if a batch fails."""
        if batch_size < 1:
            raise ValueError("the batch size must be at least 1")
        report = RotationReport(key_id=self._cipher.current_key_id, ring=self._cipher.key_ids)
        steps = (
            self._integration_batches(batch_size),
            self._token_batches(batch_size),
            self._subscription_batches(batch_size),
            self._oauth_app_batch(),
            self._chatwoot_bot_batch(),
            self._key_check_batch(),
        )
        try:
            for batches in steps:
                for tally in batches:  # each item is a committed batch
                    report.add(tally)
                    report.batches += 1
        except SQLAlchemyError as exc:
            message = (
                f"The database refused batch {report.batches + 1} ({type(exc).__name__}), so that batch was "
                f"rolled back; the {report.batches} batch(es) before it are saved. Run `keys rotate` again."
            )
            self._audit(report, interrupted=message)
            raise RotationInterrupted(message, report) from exc
        self._audit(report)
        return report

    # ----- one value ---------------------------------------------------------------------------

    def _rotated(self, value: object, context: bytes, tally: _Tally, owner: int | None, name: str) -> str | None:
        """The value to store instead, or None to leave it (current, or reported as failed)."""
        fmt = format_of(value)
        if fmt is None:
            if not isinstance(value, str):
                tally.failures.append(Failure(owner, name, "not a text value; re-enter it and save"))
            elif _DAMAGED.match(value):
                tally.failures.append(
                    Failure(owner, name, "not a complete encrypted value (damaged?); re-enter it and save")
                )
            else:  # a secret stored in clear (imported, or written by hand): encrypt it now
                tally.re_encrypted += 1
                tally.from_clear_text += 1
                return self._cipher.encrypt(value, context)
            return None
        kid = self._cipher.key_id_of(value)
        if kid is not None and kid not in self._cipher.key_ids:
            tally.failures.append(Failure(owner, name, f"written with key {kid}, which is not in the ring"))
            return None
        try:
            plaintext = self._cipher.decrypt(value, context)
        except DecryptionError:
            tally.failures.append(Failure(owner, name, _integrity_reason(fmt, kid)))
            return None
        if self._cipher.is_current(value):
            tally.already_current += 1
            return None
        tally.re_encrypted += 1
        return self._cipher.encrypt(plaintext, context)

    # ----- integrations --------------------------------------------------------------------------

    def _secret_names(self, provider_key: str, config: dict) -> list[str]:
        if provider_key in self._catalog:
            return fields.sensitive_names(self._catalog.get(provider_key).fields)
        # A provider no longer in the catalog: whatever parses as ciphertext is one of its secrets.
        return sorted(n for n in fields.leaf_names(config) if format_of(fields.get_path(config, n)))

    def _integration_batches(self, batch_size: int) -> Iterator[_Tally]:
        after = 0
        while True:
            with self._factory.begin() as session:
                ids = list(
                    session.scalars(
                        select(Integration.id).where(Integration.id > after).order_by(Integration.id).limit(batch_size)
                    )
                )
                if not ids:
                    return
                # Lock the batch's rows before reading them, so an edit saved meanwhile is neither lost nor
                # overwritten. SQLite ignores SELECT ... FOR UPDATE and takes its write lock only at the
                # first write, so a no-op UPDATE of the same rows is the lock that works on both databases.
                session.execute(
                    update(Integration)
                    .where(Integration.id.in_(ids))
                    .values(version=Integration.version, updated_at=Integration.updated_at)
                    .execution_options(synchronize_session=False)
                )
                rows = session.execute(
                    select(Integration.id, Integration.provider, Integration.configuration)
                    .where(Integration.id.in_(ids))
                    .order_by(Integration.id)
                )
                tally = _Tally()
                for integration_id, provider_key, config in rows.all():
                    self._rotate_integration(session, integration_id, provider_key, copy.deepcopy(config or {}), tally)
            yield tally  # committed
            after = ids[-1]

    def _rotate_integration(
        self, session: Session, integration_id: int, provider_key: str, config: dict, tally: _Tally
    ) -> None:
        changed = False
        for name in self._secret_names(provider_key, config):
            value = fields.get_path(config, name)
            if fields.is_blank(value):
                continue
            new = self._rotated(value, field_context(integration_id, name), tally, integration_id, name)
            if new is not None:
                fields.set_path(config, name, new)
                changed = True
        if changed:
            # A plain UPDATE: rotation is not an edit, so neither the version nor updated_at moves.
            session.execute(
                update(Integration)
                .where(Integration.id == integration_id)
                .values(configuration=config, updated_at=Integration.updated_at)
                .execution_options(synchronize_session=False)
            )

    # ----- cached access tokens ------------------------------------------------------------------

    def _token_batches(self, batch_size: int) -> Iterator[_Tally]:
        after: tuple[int, str] = (0, "")
        while True:
            with self._factory.begin() as session:
                rows = session.execute(
                    select(OAuthToken.integration_id, OAuthToken.cache_key, OAuthToken.access_token)
                    .where(
                        or_(
                            OAuthToken.integration_id > after[0],
                            and_(OAuthToken.integration_id == after[0], OAuthToken.cache_key > after[1]),
                        )
                    )
                    .order_by(OAuthToken.integration_id, OAuthToken.cache_key)
                    .limit(batch_size)
                ).all()
                if not rows:
                    return
                tally = _Tally()
                for integration_id, cache_key, token in rows:
                    name = f"cached access token {cache_key[:8]}"
                    new = self._rotated(token, token_context(integration_id, cache_key), tally, integration_id, name)
                    if new is None:
                        continue
                    # Written only over the value just read: a token replaced meanwhile is not overwritten.
                    written = session.execute(
                        update(OAuthToken)
                        .where(
                            OAuthToken.integration_id == integration_id,
                            OAuthToken.cache_key == cache_key,
                            OAuthToken.access_token == token,
                        )
                        .values(access_token=new)
                        .execution_options(synchronize_session=False)
                    )
                    if written.rowcount != 1:
                        tally.re_encrypted -= 1
                        tally.failures.append(Failure(integration_id, name, CHANGED_MEANWHILE))
            yield tally
            after = (rows[-1][0], rows[-1][1])

    def _subscription_batches(self, batch_size: int) -> Iterator[_Tally]:
        """Alert subscriptions' Slack or webhook URLs and signing secrets (an e-mail address is stored in clear)."""
        after = 0
        while True:
            with self._factory.begin() as session:
                rows = session.execute(
                    select(
                        AlertSubscription.id,
                        AlertSubscription.user_id,
                        AlertSubscription.target,
                        AlertSubscription.secret,
                    )
                    .where(AlertSubscription.id > after, AlertSubscription.channel != "email")
                    .order_by(AlertSubscription.id)
                    .limit(batch_size)
                ).all()
                if not rows:
                    return
                tally = _Tally()
                for sub_id, user_id, target, secret in rows:
                    values = {}
                    for field, value in (("target", target), ("secret", secret)):
                        if value is None:
                            continue
                        name = f"alert subscription {sub_id} {field}"
                        new = self._rotated(value, subscription_context(sub_id, field), tally, None, name)
                        if new is not None:
                            values[field] = new
                    if not values:
                        continue
                    # Written only over the values just read: a subscription edited meanwhile is not overwritten.
                    column = AlertSubscription.secret
                    same_secret = column.is_(None) if secret is None else column == secret
                    written = session.execute(
                        update(AlertSubscription)
                        .where(
                            AlertSubscription.id == sub_id,
                            AlertSubscription.target == target,
                            same_secret,
                        )
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    )
                    if written.rowcount != 1:
                        tally.re_encrypted -= len(values)
                        tally.failures.append(
                            Failure(None, f"alert subscription {sub_id} of user {user_id}", CHANGED_MEANWHILE)
                        )
            yield tally
            after = rows[-1][0]

    def _oauth_app_batch(self) -> Iterator[_Tally]:
        """The client secrets of the console's OAuth apps (one per provider: one batch)."""
        with self._factory.begin() as session:
            rows = session.execute(
                select(OAuthApp.id, OAuthApp.provider, OAuthApp.client_secret).order_by(OAuthApp.id)
            ).all()
            if not rows:
                return
            tally = _Tally()
            for app_id, provider, secret in rows:
                name = f"OAuth app {provider} client secret"
                new = self._rotated(secret, secret_context(app_id), tally, None, name)
                if new is None:
                    continue
                written = session.execute(
                    update(OAuthApp)
                    .where(OAuthApp.id == app_id, OAuthApp.client_secret == secret)
                    .values(client_secret=new)
                    .execution_options(synchronize_session=False)
                )
                if written.rowcount != 1:
                    tally.re_encrypted -= 1
                    tally.failures.append(Failure(None, name, CHANGED_MEANWHILE))
        yield tally

    def _chatwoot_bot_batch(self) -> Iterator[_Tally]:
        """The access tokens of the Chatwoot greeting bots (one per Chatwoot integration: one batch)."""
        with self._factory.begin() as session:
            rows = session.execute(
                select(ChatwootBot.id, ChatwootBot.integration_id, ChatwootBot.access_token)
                .where(ChatwootBot.access_token.is_not(None))
                .order_by(ChatwootBot.id)
            ).all()
            if not rows:
                return
            tally = _Tally()
            for bot_id, integration_id, token in rows:
                name = f"greeting bot of integration {integration_id}: access token"
                new = self._rotated(token, bot_token_context(bot_id), tally, None, name)
                if new is None:
                    continue
                written = session.execute(
                    update(ChatwootBot)
                    .where(ChatwootBot.id == bot_id, ChatwootBot.access_token == token)
                    .values(access_token=new)
                    .execution_options(synchronize_session=False)
                )
                if written.rowcount != 1:
                    tally.re_encrypted -= 1
                    tally.failures.append(Failure(None, name, CHANGED_MEANWHILE))
        yield tally

    # ----- the key check -------------------------------------------------------------------------

    def _key_check_batch(self) -> Iterator[_Tally]:
        with self._factory.begin() as session:
            value = session.scalar(select(AppMeta.value).where(AppMeta.key == KEY_CHECK))
            if value is None:
                return
            tally = _Tally()
            new = self._rotated(value, KEY_CHECK_CONTEXT, tally, None, KEY_CHECK_FIELD)
            if new is not None:
                written = session.execute(
                    update(AppMeta).where(AppMeta.key == KEY_CHECK, AppMeta.value == value).values(value=new)
                )
                if written.rowcount != 1:
                    tally.re_encrypted -= 1
                    tally.failures.append(Failure(None, KEY_CHECK_FIELD, CHANGED_MEANWHILE))
        yield tally

    # ----- audit -----------------------------------------------------------------------------------

    def _audit(self, report: RotationReport, interrupted: str | None = None) -> None:
        details = report.audit_details()
        if interrupted:
            details["interrupted"] = interrupted
        outcome = "success" if report.failed == 0 and not interrupted else "failure"
        try:
            audit.record_now(self._factory, None, "keys.rotate", outcome, details=details)
        except SQLAlchemyError:
            if not interrupted:
                raise
            # The database is already refusing writes; the interruption itself is what gets reported.


def _integrity_reason(fmt: str, kid: str | None) -> str:
    if fmt == "legacy":
        return (
            "no key in the ring opens it (original iv:tag:ciphertext format): it was altered, or written with "
            "a key that is not in the ring"
        )
    moved = ", copied from another integration or field," if fmt == "v2" else ""
    return f"failed its integrity check under key {kid}: it was altered{moved} or another key has the same id"


__all__ = ["Failure", "KeyRotation", "RotationInterrupted", "RotationReport"]
