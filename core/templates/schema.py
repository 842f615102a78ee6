"""A template as JSON: its shape, its bounds, and the built-in templates (code, read-only, versioned).

{"name": "...", "version": 1, "description": "...", "steps": [{"kind": "website_inbox", "title": "...",
"values": {"website_url": "https://..."}}]}. Unknown keys and step kinds are refused, every value is
checked by its step kind, and a secret value (a step field of kind "secret") may not be in a template.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationError
from core.templates.steps import STEP_KINDS, check_values

MAX_JSON = 64_000  # characters of a template's JSON
MAX_DEPTH = 6
MAX_STEPS = 20
MAX_NAME = 100
MAX_DESCRIPTION = 1000
TEMPLATE_KEYS = {"name", "version", "description", "steps"}
STEP_KEYS = {"kind", "title", "values"}


@dataclass(frozen=True)
class TemplateStep:
    kind: str
    title: str
    values: dict[str, Any]  # the defaults a person may change


@dataclass(frozen=True)
class TemplateView:
    key: str  # "builtin:<slug>" or "stored:<id>"
    name: str
    version: int
    description: str
    steps: tuple[TemplateStep, ...]
    builtin: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "steps": [{"kind": s.kind, "title": s.title, "values": dict(s.values)} for s in self.steps],
        }


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max([level, *(_depth(v, level + 1) for v in value.values())])
    if isinstance(value, list):
        return max([level, *(_depth(v, level + 1) for v in value)])
    return level


def _name(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if len(text) > MAX_NAME or any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") for c in text):
        return None
    return text


def parse_json(text: str) -> dict[str, Any]:
    """The JSON text of a template, parsed (not yet checked): ValidationError({"json": ...}) if it is not."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError({"json": "Paste or upload the template's JSON."})
    if len(text) > MAX_JSON:
        raise ValidationError({"json": f"A template's JSON must stay within {MAX_JSON:,} characters."})
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValidationError({"json": f"This is not valid JSON{where}."}) from None
    if not isinstance(data, dict):
        raise ValidationError({"json": "A template is a JSON object with a name and its steps."})
    return data


def check_template(data: Any) -> tuple[str, int, str, tuple[TemplateStep, ...]]:
    """(name, version, description, steps) of a template's JSON object, or ValidationError naming each
    field that is wrong ("name", "steps[2].kind", "steps[0].website_url", ...)."""
    if not isinstance(data, dict):
        raise ValidationError({"json": "A template is a JSON object with a name and its steps."})
    if _depth(data) > MAX_DEPTH:
        raise ValidationError({"json": f"A template may nest at most {MAX_DEPTH} levels deep."})
    errors: dict[str, str] = {}
    for key in data:
        if key not in TEMPLATE_KEYS:
            errors[str(key)[:40]] = (
                f"A template has no field {str(key)[:40]!r}: use {', '.join(sorted(TEMPLATE_KEYS))}."
            )
    name = _name(data.get("name"))
    if name is None:
        errors["name"] = f"Give the template a name of at most {MAX_NAME} characters, without control characters."
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 1_000_000:
        errors["version"] = "The version is a whole number from 1."
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        errors["description"] = f"The description is text of at most {MAX_DESCRIPTION} characters."
    raw_steps = data.get("steps")
    steps: list[TemplateStep] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        errors["steps"] = "A template needs a list of one or more steps."
    elif len(raw_steps) > MAX_STEPS:
        errors["steps"] = f"A template has at most {MAX_STEPS} steps."
    else:
        produced: set[str] = set()
        for position, raw in enumerate(raw_steps):
            at = f"steps[{position}]"
            if not isinstance(raw, dict):
                errors[at] = "Each step is a JSON object with a kind and its values."
                continue
            for key in raw:
                if key not in STEP_KEYS:
                    errors[f"{at}.{str(key)[:40]}"] = (
                        f"A step has no field {str(key)[:40]!r}: use kind, title and values."
                    )
            kind_key = raw.get("kind")
            kind = STEP_KINDS.get(kind_key) if isinstance(kind_key, str) else None
            if kind is None:
                errors[f"{at}.kind"] = (
                    f"Unknown step kind {str(raw.get('kind'))[:40]!r}: use one of {', '.join(STEP_KINDS)}."
                )
                continue
            title = raw.get("title", kind.label)
            if not isinstance(title, str) or len(title) > 200:
                errors[f"{at}.title"] = "A step's title is text of at most 200 characters."
                title = kind.label
            values = raw.get("values", {})
            if not isinstance(values, dict):
                errors[f"{at}.values"] = "A step's values are a JSON object."
                continue
            for spec in kind.fields:
                if spec.secret and values.get(spec.name):
                    errors[f"{at}.{spec.name}"] = (
                        f"Leave the {spec.label.lower()} out of the template: the person running it gives it."
                    )
            defaults = {k: v for k, v in values.items() if not any(f.name == k and f.secret for f in kind.fields)}
            clean, problems = check_values(kind, defaults, f"{at}.", partial=True)
            errors.update(problems)
            missing = [need for need in kind.needs if need not in produced]
            if missing:
                errors[f"{at}.kind"] = (
                    f"The step {kind.label} needs an earlier step that gives {', '.join(missing)} "
                    "(a chatwoot step, then a website_inbox step)."
                )
            produced |= set(kind.produces)
            steps.append(
                TemplateStep(kind.key, title.strip() or kind.label, {k: clean.get(k, v) for k, v in defaults.items()})
            )
    if errors:
        raise ValidationError(errors)
    assert name is not None
    return name, version, description, tuple(steps)


def _builtin(slug: str, data: dict[str, Any]) -> TemplateView:
    name, version, description, steps = check_template(data)
    return TemplateView(f"builtin:{slug}", name, version, description, steps, builtin=True)


BUILTINS: dict[str, TemplateView] = {
    view.key: view
    for view in (
        _builtin(
            "live-chat-demo",
            {
                "name": "Live-chat demo",
                "version": 1,
                "description": "A website inbox with the greeting bot attached, and the chat widget script for it.",
                "steps": [
                    {"kind": "chatwoot"},
                    {"kind": "website_inbox", "values": {"website_url": "https://www.example.com"}},
                    {"kind": "greeting_bot"},
                    {"kind": "widget", "values": {"preset_name": "Live-chat demo"}},
                ],
            },
        ),
        _builtin(
            "crm-contacts-into-chatwoot",
            {
                "name": "CRM contacts into Chatwoot",
                "version": 1,
                "description": "A CRM's contacts kept in step with a Chatwoot account (CRM to Chatwoot), run once now.",
                "steps": [{"kind": "chatwoot"}, {"kind": "contact_sync"}],
            },
        ),
        _builtin(
            "alerts-to-a-webhook",
            {
                "name": "Alerts to a webhook",
                "version": 1,
                "description": "Your integrations' alerts sent to a webhook, signed with a secret you give.",
                "steps": [{"kind": "alert_webhook"}],
            },
        ),
    )
}
