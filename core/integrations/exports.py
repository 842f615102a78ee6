"""Exports of integrations (CSV, JSON) with every sensitive value masked, and imports that encrypt.

An export is built from IntegrationView, whose configuration the service has already masked, so no
path here ever sees a secret. An import goes through IntegrationService.create, which validates and
encrypts; a masked value in an import is a missing secret, reported for that row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from core import csvsafe
from core.audit import Actor
from core.errors import NotFoundError, StorageError, ValidationError
from core.fields import MAX_JSON_DEPTH, json_too_deep
from core.integrations.service import IntegrationService, IntegrationView
from core.tiers import TierLimitError

MAX_IMPORT_ITEMS = 500
MAX_IMPORT_BYTES = 20 * 1024 * 1024  # an export of MAX_IMPORT_ITEMS integrations is far smaller
# An export nests {"integrations": [{"configuration": {...}}]}: four levels around a configuration,
# whose own nesting a JSON field already keeps within MAX_JSON_DEPTH.
MAX_IMPORT_DEPTH = MAX_JSON_DEPTH + 4
COLUMNS = ("id", "name", "type", "provider", "status", "active", "last_checked", "owner", "configuration")


def _row(view: IntegrationView) -> dict:
    return {
        "id": view.id,
        "name": view.name,
        "type": view.type,
        "provider": view.provider,
        "status": view.status,
        "active": view.is_active,
        "last_checked": view.last_checked_at.isoformat(timespec="seconds") if view.last_checked_at else None,
        "owner": view.owner,
        "configuration": view.configuration,
    }


def export_json(views: list[IntegrationView]) -> str:
    return json.dumps({"integrations": [_row(v) for v in views]}, indent=2, ensure_ascii=False)


def export_csv(views: list[IntegrationView]) -> str:
    """Names and messages come from people and customers' servers: no cell may run as a formula."""
    rows = ({**_row(v), "configuration": json.dumps(v.configuration, sort_keys=True)} for v in views)
    return csvsafe.to_csv(COLUMNS, ([row[c] for c in COLUMNS] for row in rows))


@dataclass
class ImportReport:
    created: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (position in the file, why)


def import_json(service: IntegrationService, actor: Actor, text: str) -> ImportReport:
    """Create each integration of a JSON export (or a list of {name, provider, configuration}).

    The file is refused, with a sentence, when it is over MAX_IMPORT_BYTES or nests deeper than
    MAX_IMPORT_DEPTH: json.loads would otherwise take any size, and raise RecursionError on deep nesting."""
    if len(text) > MAX_IMPORT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_IMPORT_BYTES:
        too_big = f"The file is larger than {MAX_IMPORT_BYTES // 2**20} MB; import fewer integrations at a time."
        raise ValidationError({"file": too_big})
    if json_too_deep(text, MAX_IMPORT_DEPTH):
        too_deep = f"The file nests objects and arrays more than {MAX_IMPORT_DEPTH} levels deep; an export never does."
        raise ValidationError({"file": too_deep})
    try:
        data = json.loads(text)
    except RecursionError as exc:  # unreachable after the depth check; kept so it can never escape
        raise ValidationError({"file": "The file nests objects and arrays too deeply."}) from exc
    except ValueError as exc:
        raise ValidationError({"file": f"The file is not valid JSON ({exc})."}) from exc
    items = data.get("integrations") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValidationError({"file": 'Expected a list of integrations, or {"integrations": [...]}.'})
    if len(items) > MAX_IMPORT_ITEMS:
        raise ValidationError({"file": f"Import at most {MAX_IMPORT_ITEMS} integrations at a time."})
    report = ImportReport()
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("configuration"), dict):
            report.failed.append((position, "Each entry needs a name, a provider and a configuration object."))
            continue
        try:
            view = service.create(
                actor, str(item.get("name") or ""), str(item.get("provider") or ""), item["configuration"]
            )
        except (ValidationError, NotFoundError, TierLimitError, StorageError) as exc:
            report.failed.append((position, str(exc)))
        else:
            report.created.append(view.id)
    return report
