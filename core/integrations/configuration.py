"""A configuration's secret lifecycle: validate, merge with what is stored, seal (encrypt), mask, open
(decrypt), and which fields an edit changed.

The integration service calls these; nothing here reads or writes the database.
"""

from __future__ import annotations

import contextlib
import copy
import json

from core import fields
from core.catalog import Provider
from core.crypto import DecryptionError, FieldCipher, field_context, is_encrypted
from core.errors import ValidationError


class Configurations:
    """Checks, seals and opens configurations with one cipher, each secret bound to its integration and field."""

    def __init__(self, cipher: FieldCipher):
        self._cipher = cipher

    def sealed(self, provider: Provider, submitted: dict, stored: dict | None, integration_id: int | None) -> dict:
        """Validate, normalise and encrypt a submitted configuration, merged with what is stored.

        A sensitive field that comes back as the mask or empty keeps its stored ciphertext; one whose
        new value equals the stored plaintext is not re-encrypted. Each secret is bound to the
        integration and field (None: a form that is not saved yet).
        """
        stored = self.upgraded(provider, stored, integration_id)
        return self.seal(provider, self.checked(provider, submitted, stored), stored, integration_id)

    def upgraded(self, provider: Provider, stored: dict | None, integration_id: int | None) -> dict | None:
        """The stored configuration in the provider's current shape (Provider.upgrade), still sealed: each secret
        it moved is encrypted again, bound to its new field. As it is when current, or when a secret does not open
        (the form then asks for it again)."""
        if not stored or provider.upgrade is None:
            return stored
        try:
            plain = self.plain(provider, stored, integration_id)
        except DecryptionError:
            return stored
        current = provider.upgrade(copy.deepcopy(plain))
        if current == plain:
            return stored
        return self.seal(provider, current, stored, integration_id)

    def shown(self, provider: Provider, stored: dict, integration_id: int | None) -> tuple[dict, dict[str, str]]:
        """What an edit form starts from: the configuration in its current shape, masked, and the last-four hint
        of each long enough secret (core.fields.secret_hint). Only masked, and no hints, when a secret does not open."""
        try:
            plain = self.plain(provider, stored, integration_id)
        except DecryptionError:
            return masked(provider, stored), {}
        if provider.upgrade is not None:
            plain = provider.upgrade(plain)
        return masked(provider, plain), fields.secret_hints(provider.fields, plain)

    def checked(self, provider: Provider, submitted: dict, stored: dict | None) -> dict:
        """Validate and normalise (ValidationError otherwise), writing nothing and encrypting nothing.

        Sensitive values are plaintext, except those kept from storage, which are their ciphertext.
        """
        stored = stored or {}
        if provider.normalise is not None:
            submitted = provider.normalise(copy.deepcopy(submitted))
        merged, kept = copy.deepcopy(stored), set()
        for spec in provider.fields:
            value = fields.get_path(submitted, spec.name)
            unchanged_secret = spec.sensitive and (fields.is_blank(value) or value == fields.MASK)
            if unchanged_secret and not fields.is_blank(fields.get_path(stored, spec.name)):
                kept.add(spec.name)
                continue
            fields.set_path(merged, spec.name, None if unchanged_secret else value)
        as_submitted = copy.deepcopy(merged)
        for name in kept:
            fields.delete_path(as_submitted, name)  # stored ciphertext is not input to validate
        errors = fields.validate(provider.fields, as_submitted, keep_secrets=kept)
        if not errors and provider.check:
            errors = {k: v for k, v in provider.check(as_submitted).items() if k not in kept}
        if errors:
            raise ValidationError(errors)
        clean = fields.normalise(provider.fields, merged)
        if provider.prepare:
            clean = provider.prepare(clean)
        for name in fields.sensitive_names(provider.fields):
            value = fields.get_path(clean, name)
            if fields.is_blank(value):
                fields.delete_path(clean, name)
            elif is_encrypted(value) and value != fields.get_path(stored, name):
                # Never accept someone's ciphertext as input: a test would decrypt it and send the
                # plaintext wherever the form points.
                raise ValidationError({name: "Enter the secret itself, not an encrypted value."})
        return clean

    def seal(self, provider: Provider, clean: dict, stored: dict | None, integration_id: int | None) -> dict:
        """Encrypt the checked configuration's secrets, bound to this integration and field."""
        sealed = copy.deepcopy(clean)
        for name in fields.sensitive_names(provider.fields):
            value = fields.get_path(sealed, name)
            if not fields.is_blank(value):
                stored_value = fields.get_path(stored or {}, name)
                fields.set_path(sealed, name, self._seal_value(name, value, stored_value, integration_id))
        return sealed

    def _seal_value(self, name: str, value: str, stored_value: str | None, integration_id: int | None) -> str:
        if value == stored_value and is_encrypted(value):
            return value
        if is_encrypted(value):
            raise ValidationError({name: "Enter the secret itself, not an encrypted value."})
        context = field_context(integration_id, name)
        if is_encrypted(stored_value):
            try:
                if self._cipher.decrypt(stored_value, context) == value:
                    return stored_value
            except DecryptionError:
                pass
        return self._cipher.encrypt(value, context)

    def plain(self, provider: Provider, config: dict, integration_id: int | None) -> dict:
        """A decrypted copy, only ever handed to a connection test or a core service.

        A secret opens only as the field of the integration it was written for (None: an unsaved form).
        """
        plain = copy.deepcopy(config)
        for name in fields.sensitive_names(provider.fields):
            value = fields.get_path(plain, name)
            if isinstance(value, str) and is_encrypted(value):
                fields.set_path(plain, name, self._cipher.decrypt(value, field_context(integration_id, name)))
        return plain


def masked(provider: Provider | None, config: dict) -> dict:
    """The configuration as callers see it: every sensitive value masked (no provider: nothing is known)."""
    return fields.masked(provider.fields if provider else (), config)


def secretless(provider: Provider, config: dict) -> dict:
    """A copy without the provider's sensitive fields."""
    copied = copy.deepcopy(config)
    for name in fields.sensitive_names(provider.fields):
        fields.delete_path(copied, name)
    return copied


def changed_fields(before: dict, after: dict) -> list[str]:
    """The dotted names whose values differ between two configurations, sorted."""
    names = fields.leaf_names(before) | fields.leaf_names(after)
    return sorted(n for n in names if fields.get_path(before, n) != fields.get_path(after, n))


def secret_values(provider: Provider, plain: dict) -> list[str]:
    """Every secret a decrypted configuration holds (and the strings inside a JSON secret), to redact."""
    values = []
    for spec in provider.fields:
        if not spec.sensitive:
            continue
        value = fields.get_path(plain, spec.name)
        if not isinstance(value, str):
            continue
        values.append(value)
        if spec.type == "json":
            with contextlib.suppress(ValueError):
                values += [v for v in _json_strings(json.loads(value))]
    return values


def _json_strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _json_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _json_strings(v)]
    return [node] if isinstance(node, str) else []


MAX_AUDITED_VALUE = 200


def audited_changes(provider: Provider, before: dict, after: dict) -> list[dict]:
    """What an edit changed, for the audit trail: {"field", "old", "new"} for each non-secret field, and
    {"field", "secret": True} alone for a secret (its old and new values are never recorded, not even
    encrypted). Long values are cut to MAX_AUDITED_VALUE characters."""
    secret = fields.sensitive_names(provider.fields)
    changes = []
    for name in changed_fields(before, after):
        if any(name == s or name.startswith(s + ".") for s in secret):
            changes.append({"field": name, "secret": True})
        else:
            old, new = fields.get_path(before, name), fields.get_path(after, name)
            changes.append({"field": name, "old": _audited(old), "new": _audited(new)})
    return changes


def _audited(value):
    if isinstance(value, str) and len(value) > MAX_AUDITED_VALUE:
        return value[:MAX_AUDITED_VALUE] + "…"
    return value
