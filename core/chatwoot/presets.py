"""Named presets of the chat widget (the seed's "demos"), and the tier gate of the widget.

Presets and the script (core.chatwoot.widget_service) are gated by tier: the chat widget needs STARTER
or higher (core.tiers FEATURE_MIN_TIER "CHAT_WIDGET"), enforced here so the page, the CLI and tests all
meet the same rule.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from core import audit, tiers
from core.audit import Actor
from core.chatwoot.helpdesk import PROVIDER_KEY
from core.chatwoot.widget import WidgetSettings
from core.errors import ConflictError, NotFoundError, ValidationError, conflict
from core.models import Integration, WidgetPreset

MAX_PRESET_NAME = 100
MAX_PRESETS_PER_USER = 100


def check_widget_tier(actor: Actor) -> None:
    """Raise core.tiers.TierLimitError (naming the tier that opens it) unless the actor's tier has the widget."""
    tiers.check_feature("CHAT_WIDGET", tiers.Tier.parse(actor.tier), "The chat widget")


def widget_allowed(actor: Actor) -> bool:
    """Whether the actor's tier opens the chat widget (for showing the page locked, with the reason)."""
    return tiers.allows(tiers.Tier.parse(actor.tier), tiers.FEATURE_MIN_TIER["CHAT_WIDGET"])


def clean_preset_name(name: str | None) -> str:
    """The name trimmed; raises ValidationError({"name": ...}) if empty, too long or with control characters."""
    text = (name or "").strip()
    if not text:
        raise ValidationError({"name": "Give the preset a name."})
    if len(text) > MAX_PRESET_NAME:
        raise ValidationError({"name": f"Keep the preset name under {MAX_PRESET_NAME} characters."})
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for c in text):
        raise ValidationError({"name": "The preset name may not contain control or invisible characters."})
    return text


@dataclass(frozen=True)
class PresetView:
    id: int
    name: str
    settings: WidgetSettings
    integration_id: int | None  # None once its integration was deleted
    inbox_id: int | None
    created_at: datetime
    updated_at: datetime
    version: int = 1  # send it back when replacing the preset: a save over a newer version is refused


def _view(row: WidgetPreset) -> PresetView:
    return PresetView(
        id=row.id,
        name=row.name,
        settings=WidgetSettings.from_sdk(row.settings),
        integration_id=row.integration_id,
        inbox_id=row.inbox_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _conflict(actor: Actor, name: str, updated_at: datetime | None) -> ConflictError:
    # Presets are their owner's alone, so the newer save was the actor's own, in another tab or window.
    return conflict(f"the preset {name} (in another tab or window)", actor.username, updated_at)


class PresetService:
    """Each user's own named widget configurations. Nobody (administrators included) sees another's."""

    def __init__(self, factory: sessionmaker):
        self._factory = factory

    def list(self, actor: Actor) -> list[PresetView]:
        """The actor's presets by name."""
        check_widget_tier(actor)
        with self._factory() as session:
            rows = session.scalars(
                select(WidgetPreset).where(WidgetPreset.owner_id == actor.id).order_by(WidgetPreset.name)
            )
            return [_view(row) for row in rows]

    def get(self, actor: Actor, preset_id: int) -> PresetView:
        check_widget_tier(actor)
        with self._factory() as session:
            return _view(self._load(session, actor, preset_id))

    def save(
        self,
        actor: Actor,
        name: str,
        settings: WidgetSettings,
        integration_id: int | None = None,
        inbox_id: int | None = None,
        expected_version: int | None = None,
    ) -> PresetView:
        """Create the preset, or replace the actor's preset of the same name (upsert by name).

        expected_version is the version of that preset the person saw (0: they saw none of that name); a
        preset saved since is refused with ConflictError, and the UPDATE itself carries "AND version =
        <expected>", so of two concurrent saves only one passes. None replaces whatever is stored.

        Raises TierLimitError (below STARTER), ValidationError ("name", settings attribute names,
        "integration" when the integration is not the actor's own Chatwoot one, "inbox_id").
        """
        check_widget_tier(actor)
        name = clean_preset_name(name)
        settings.validate()
        if inbox_id is not None and (isinstance(inbox_id, bool) or not isinstance(inbox_id, int) or inbox_id < 1):
            raise ValidationError({"inbox_id": "Choose a website inbox."})
        for attempt in range(2):  # a concurrent save of the same new name: the second try updates it
            try:
                with self._factory.begin() as session:
                    if integration_id is not None:
                        self._check_integration(session, actor, integration_id)
                    row = session.scalar(
                        select(WidgetPreset).where(WidgetPreset.owner_id == actor.id, WidgetPreset.name == name)
                    )
                    created = row is None
                    # Refused: a preset saved since the version seen, or one of a name seen as free.
                    # (The seen preset deleted since is no conflict: saving creates it anew.)
                    if expected_version is not None and row is not None and row.version != expected_version:
                        raise _conflict(actor, name, row.updated_at)
                    if row is None:
                        self._check_count(session, actor)
                        row = WidgetPreset(owner_id=actor.id, name=name)
                        session.add(row)
                    row.settings = settings.as_sdk()
                    row.integration_id = integration_id
                    row.inbox_id = inbox_id
                    session.flush()
                    audit.record(
                        session,
                        actor,
                        "widget.preset_save",
                        "success",
                        integration_id,
                        {"preset": name, "created": created},
                    )
                    return _view(row)
            except StaleDataError as exc:
                raise _conflict(actor, name, self._saved_at(actor, name)) from exc
            except IntegrityError:
                if attempt:
                    raise
                if expected_version == 0:  # a preset of this name was created meanwhile
                    raise _conflict(actor, name, self._saved_at(actor, name)) from None
        raise AssertionError("unreachable")

    def _saved_at(self, actor: Actor, name: str) -> datetime | None:
        with self._factory() as session:
            return session.scalar(
                select(WidgetPreset.updated_at).where(WidgetPreset.owner_id == actor.id, WidgetPreset.name == name)
            )

    def delete(self, actor: Actor, preset_id: int) -> None:
        """Delete one of the actor's presets (NotFoundError for anyone else's, exactly like a missing one)."""
        check_widget_tier(actor)
        with self._factory.begin() as session:
            row = self._load(session, actor, preset_id)
            audit.record(session, actor, "widget.preset_delete", "success", row.integration_id, {"preset": row.name})
            session.delete(row)

    @staticmethod
    def _load(session: Session, actor: Actor, preset_id: int) -> WidgetPreset:
        row = session.scalar(
            select(WidgetPreset).where(WidgetPreset.id == preset_id, WidgetPreset.owner_id == actor.id)
        )
        if row is None:
            raise NotFoundError(f"Preset {preset_id} was not found.")
        return row

    @staticmethod
    def _check_integration(session: Session, actor: Actor, integration_id: int) -> None:
        owned = session.scalar(
            select(Integration.id).where(
                Integration.id == integration_id,
                Integration.owner_id == actor.id,
                Integration.provider == PROVIDER_KEY,
            )
        )
        if owned is None:
            raise ValidationError({"integration": "Choose one of your own Chatwoot integrations."})

    @staticmethod
    def _check_count(session: Session, actor: Actor) -> None:
        count = session.scalar(select(func.count(WidgetPreset.id)).where(WidgetPreset.owner_id == actor.id)) or 0
        if count >= MAX_PRESETS_PER_USER:
            raise ValidationError(
                {"name": f"You have {count} presets, the most one person can keep. Delete one you no longer use."}
            )


__all__ = [
    "PresetService",
    "PresetView",
    "check_widget_tier",
    "clean_preset_name",
    "widget_allowed",
]
