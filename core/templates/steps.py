"""The step kinds a template is made of: a registry, one small function per kind calling the existing
services (never re-implementing them).

A kind declares its fields (each with a type, a default and bounds), a one-line description for the
preview, and ``run(context, values) -> result``. ``values`` are checked with check_values first. The
result (a small JSON object, never a secret) is stored with the run; later steps read what earlier ones
produced from ``context.state`` (e.g. "integration_id", "inbox_id"). Every kind must be idempotent: a
re-run after a crash finds what the first run made (ensure_website_inbox finds the inbox, the bot is
created once). To add a kind, write its function and call register(StepKind(...)).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.alerts.channels import url_hint
from core.alerts.subscriptions import ALERT_STATES, DEFAULT_STATES, SubscriptionService
from core.audit import Actor
from core.chatwoot.bots import BotService
from core.chatwoot.helpdesk import EMAIL_TAKEN, HelpdeskError, HelpdeskService
from core.chatwoot.inboxes import InboxService
from core.chatwoot.presets import PresetService
from core.chatwoot.widget import WidgetSettings
from core.chatwoot.widget_service import WidgetService
from core.errors import ValidationError
from core.sync.service import DIRECTIONS, SyncService

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Field:
    """One value of a step. kind: text | url | colour | int | bool | choice | choices | secret."""

    name: str
    label: str
    kind: str = "text"
    default: Any = ""
    max_length: int = 255
    minimum: int = 0
    maximum: int = 100
    options: tuple[str, ...] = ()
    required: bool = False

    @property
    def secret(self) -> bool:
        return self.kind == "secret"


@dataclass
class Services:
    """The services steps call (wired by app_context)."""

    helpdesk: HelpdeskService
    inboxes: InboxService
    bots: BotService
    presets: PresetService
    widget: WidgetService
    subscriptions: SubscriptionService
    syncs: SyncService | None = None


@dataclass
class StepContext:
    actor: Actor
    services: Services
    state: dict[str, Any] = field(default_factory=dict)  # what earlier steps produced


@dataclass(frozen=True)
class StepKind:
    key: str
    label: str
    fields: tuple[Field, ...]
    describe: Callable[[dict[str, Any]], str]
    run: Callable[[StepContext, dict[str, Any]], dict[str, Any]]
    needs: tuple[str, ...] = ()  # state keys an earlier step must produce
    produces: tuple[str, ...] = ()  # state keys its result gives later steps


STEP_KINDS: dict[str, StepKind] = {}


def register(kind: StepKind) -> StepKind:
    STEP_KINDS[kind.key] = kind
    return kind


def check_value(spec: Field, value: Any, partial: bool = False) -> tuple[Any, str | None]:
    """(the clean value, None) or (None, a sentence saying what is wrong)."""
    label = spec.label
    if spec.kind in ("text", "url", "colour", "secret"):
        if value is None:
            value = ""
        if not isinstance(value, str):
            return None, f"{label} must be text."
        value = value.strip()
        if spec.required and not value and spec.kind != "secret" and not partial:
            return None, f"Give the {label.lower()}."
        if len(value) > spec.max_length:
            return None, f"Keep the {label.lower()} within {spec.max_length} characters."
        if spec.kind == "colour" and value and not _COLOUR.fullmatch(value):
            return None, f"Give the {label.lower()} as #RRGGBB, such as #1F93FF."
        if spec.kind == "url" and value and not re.match(r"https?://[^\s/]+", value):
            return None, f"Give the {label.lower()} as an address such as https://www.example.com."
        return value, None
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"{label} must be a whole number."
        if not spec.minimum <= value <= spec.maximum:
            return None, f"{label} must be between {spec.minimum} and {spec.maximum}."
        return value, None
    if spec.kind == "bool":
        if not isinstance(value, bool):
            return None, f"{label} must be true or false."
        return value, None
    if spec.kind == "choice":
        if value not in spec.options:
            return None, f"Choose the {label.lower()} from: {', '.join(spec.options)}."
        return value, None
    if spec.kind == "choices":
        if not isinstance(value, list) or not value or any(v not in spec.options for v in value):
            return None, f"Choose one or more {label.lower()} from: {', '.join(spec.options)}."
        return [o for o in spec.options if o in value], None
    return None, f"{label} has an unknown type."


def defaults_of(kind: StepKind) -> dict[str, Any]:
    return {f.name: (list(f.default) if isinstance(f.default, tuple) else f.default) for f in kind.fields}


def check_values(
    kind: StepKind, values: dict[str, Any], prefix: str = "", partial: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """The step's values over its defaults, checked: (clean values, {field path: message}). ``partial``
    (a template's defaults) lets a required value be left for the person running it."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    known = {f.name for f in kind.fields}
    for name in values:
        if name not in known:
            errors[f"{prefix}{name}"] = f"The step {kind.label} has no value {str(name)[:40]!r}."
    merged = {**defaults_of(kind), **{k: v for k, v in values.items() if k in known}}
    for spec in kind.fields:
        value, problem = check_value(spec, merged[spec.name], partial)
        if problem:
            errors[f"{prefix}{spec.name}"] = problem
        else:
            clean[spec.name] = value
    return clean, errors


def _need(context: StepContext, key: str, what: str) -> Any:
    if key not in context.state:
        raise ValidationError({key: f"This step needs {what} from an earlier step of the template."})
    return context.state[key]


# ----- chatwoot ---------------------------------------------------------------------------------------


def _chatwoot(context: StepContext, values: dict[str, Any]) -> dict[str, Any]:
    integration_id = values["integration_id"]
    if not integration_id:
        raise ValidationError({"integration_id": "Choose one of your Chatwoot integrations."})
    connection = context.services.helpdesk.connection(context.actor, integration_id)
    return {
        "integration_id": connection.integration_id,
        "integration_name": connection.integration_name,
        "summary": f"Uses {connection.integration_name} "
        f"(Chatwoot account {connection.account_name or connection.account_id}).",
    }


register(
    StepKind(
        "chatwoot",
        "Chatwoot integration",
        (Field("integration_id", "Chatwoot integration", "int", 0, minimum=0, maximum=2**31 - 1),),
        lambda v: (
            "Use one of your Chatwoot integrations"
            + (f" (#{v['integration_id']})." if v.get("integration_id") else ".")
        ),
        _chatwoot,
        produces=("integration_id",),
    )
)


# ----- website_inbox ----------------------------------------------------------------------------------


def _website_inbox(context: StepContext, values: dict[str, Any]) -> dict[str, Any]:
    integration_id = _need(context, "integration_id", "a Chatwoot integration")
    inbox, created = context.services.inboxes.ensure_website_inbox(
        context.actor, integration_id, values["website_url"], values["colour"], values["title"], values["tagline"]
    )
    verb = "Created" if created else "Found"
    return {
        "inbox_id": inbox.id,
        "inbox_name": inbox.name,
        "created": created,
        "summary": f"{verb} the website inbox {inbox.name} (#{inbox.id}).",
    }


register(
    StepKind(
        "website_inbox",
        "Website inbox",
        (
            Field("website_url", "Website address", "url", "https://www.example.com", max_length=500, required=True),
            Field("colour", "Widget colour", "colour", "#1F93FF", max_length=7),
            Field("title", "Welcome title", "text", "Hi there"),
            Field("tagline", "Tagline", "text", "We reply within minutes"),
        ),
        lambda v: f"Create (or find) the website inbox for {v['website_url']}, colour {v['colour']}.",
        _website_inbox,
        needs=("integration_id",),
        produces=("inbox_id",),
    )
)


# ----- greeting_bot -----------------------------------------------------------------------------------


def _greeting_bot(context: StepContext, values: dict[str, Any]) -> dict[str, Any]:
    integration_id = _need(context, "integration_id", "a Chatwoot integration")
    inbox_id = _need(context, "inbox_id", "a website inbox")
    bots = context.services.bots
    current = bots.status(context.actor, integration_id).settings
    bots.save_settings(
        context.actor, integration_id, dataclasses.replace(current, welcome_message=values["welcome_message"])
    )
    with context.services.helpdesk.open(context.actor, integration_id) as (connection, client):
        bot_id = bots.attach(context.actor, connection, client, inbox_id)  # created once, then found
    return {"chatwoot_bot_id": bot_id, "summary": f"The greeting bot (#{bot_id}) answers inbox #{inbox_id}."}


register(
    StepKind(
        "greeting_bot",
        "Greeting bot",
        (
            Field(
                "welcome_message",
                "Welcome message",
                "text",
                "Hello! Thanks for reaching out. How can we help you today?",
                max_length=1000,
                required=True,
            ),
        ),
        lambda v: f"Create the greeting bot (once) and attach it to the inbox; it says: {v['welcome_message']}",
        _greeting_bot,
        needs=("integration_id", "inbox_id"),
    )
)


# ----- agents -----------------------------------------------------------------------------------------


def _agents(context: StepContext, values: dict[str, Any]) -> dict[str, Any]:
    integration_id = _need(context, "integration_id", "a Chatwoot integration")
    inbox_id = _need(context, "inbox_id", "a website inbox")
    helpdesk = context.services.helpdesk
    ids: list[int] = []
    for number in range(1, values["count"] + 1):
        name = f"{values['name_prefix']} {number}"
        try:
            ids.append(helpdesk.create_agent(context.actor, integration_id, name, values["role"]).agent.id)
        except HelpdeskError as exc:
            if exc.reason != EMAIL_TAKEN:  # made by an earlier run: use it
                raise
            email = helpdesk.preview_email(context.actor, name)
            ids += [a.id for a in helpdesk.agents(context.actor, integration_id) if a.email.lower() == email]
    members = helpdesk.membership(context.actor, integration_id).get(inbox_id, set())
    result = helpdesk.apply_membership(
        context.actor, integration_id, {inbox_id: members | set(ids)}, only_agents={inbox_id: ids}
    )
    if not result.ok:
        raise HelpdeskError(
            f"{len(result.failed)} of the agents could not be added to inbox #{inbox_id}; run the step again."
        )
    return {"agent_ids": ids, "summary": f"{len(ids)} agents work in inbox #{inbox_id}."}


register(
    StepKind(
        "agents",
        "Agents",
        (
            Field("count", "Number of agents", "int", 1, minimum=1, maximum=10),
            Field("name_prefix", "Agent name", "text", "Demo agent", max_length=200, required=True),
            Field("role", "Role", "choice", "agent", options=("agent", "administrator")),
        ),
        lambda v: f"Create {v['count']} agents named {v['name_prefix']} 1… as {v['role']}, working in the inbox.",
        _agents,
        needs=("integration_id", "inbox_id"),
    )
)


# ----- widget -----------------------------------------------------------------------------------------


def _widget(context: StepContext, values: dict[str, Any]) -> dict[str, Any]:
    integration_id = _need(context, "integration_id", "a Chatwoot integration")
    inbox_id = _need(context, "inbox_id", "a website inbox")
    settings = WidgetSettings(
        position=values["position"],
        type=values["type"],
        launcher_title=values["launcher_title"],
        locale=values["locale"] or "en",
    )
    preset = context.services.presets.save(context.actor, values["preset_name"], settings, integration_id, inbox_id)
    script = context.services.widget.script(context.actor, integration_id, inbox_id, settings)
    return {
        "preset_id": preset.id,
        "script": script.script,
        "summary": f"Saved the widget preset {preset.name} and made the script for inbox #{inbox_id}.",
    }


register(
    StepKind(
        "widget",
        "Chat widget",
        (
            Field("preset_name", "Preset name", "text", "Live-chat demo", max_length=100, required=True),
            Field("position", "Position", "choice", "right", options=("right", "left")),
            Field("type", "Type", "choice", "standard", options=("standard", "expanded_bubble")),
            Field("launcher_title", "Launcher title", "text", "", max_length=100),
            Field("locale", "Language", "text", "en", max_length=10),
        ),
        lambda v: f"Save the widget preset {v['preset_name']} ({v['position']}, {v['type']}) and make its script.",
        _widget,
        needs=("integration_id", "inbox_id"),
    )
)


# ----- alert_webhook ----------------------------------------------------------------------------------


def _alert_webhook(context: StepContext, values: dict[str, Any]) -> dict[str, Any]:
    subscriptions = context.services.subscriptions
    url, states = values["url"], tuple(values["states"])
    hint = url_hint(url)
    same = [
        s
        for s in subscriptions.list(context.actor)
        if s.channel == "webhook" and s.target_hint == hint and tuple(s.states) == states
    ]
    if same:  # an earlier run made it (only the host is known of a stored address: the closest check there is)
        return {"subscription_id": same[0].id, "summary": f"Alerts already go to the webhook at {hint}."}
    created = subscriptions.create(context.actor, "webhook", url, states, secret=values["secret"] or None)
    return {"subscription_id": created.id, "summary": f"Alerts ({', '.join(states)}) now go to {hint}, signed."}


def _describe_webhook(values: dict[str, Any]) -> str:
    where = url_hint(values["url"]) if values["url"] else "the address you give"
    return f"Send alerts ({', '.join(values['states'])}) to the signed webhook at {where}."


register(
    StepKind(
        "alert_webhook",
        "Alerts to a webhook",
        (
            Field("url", "Webhook URL", "url", "", max_length=2000, required=True),
            Field("states", "States", "choices", DEFAULT_STATES, options=ALERT_STATES),
            Field("secret", "Signing secret", "secret", "", max_length=200),
        ),
        _describe_webhook,
        _alert_webhook,
    )
)

__all__ = ["STEP_KINDS", "Field", "Services", "StepContext", "StepKind", "check_values", "defaults_of", "register"]


# ----- contact sync -----------------------------------------------------------------------------------


def _contact_sync(context: StepContext, values: dict[str, Any]) -> dict[str, Any]:
    chatwoot_id = _need(context, "integration_id", "a Chatwoot integration")
    syncs = context.services.syncs
    if syncs is None:
        raise ValidationError({"crm_integration_id": "Contact sync is not available in this console."})
    crm_id = values["crm_integration_id"]
    if not crm_id:
        raise ValidationError({"crm_integration_id": "Choose the CRM integration whose contacts to sync."})
    same = [
        s
        for s in syncs.list(context.actor, chatwoot_id)
        if s.crm_integration_id == crm_id and s.chatwoot_integration_id == chatwoot_id
    ]
    view = same[0] if same else syncs.create(context.actor, crm_id, chatwoot_id, values["direction"])
    if values["run_now"]:
        syncs.request_run(context.actor, view.id)
    done = "Found" if same else "Created"
    started = " and started its first run" if values["run_now"] else ""
    return {
        "sync_id": view.id,
        "summary": f"{done} the contact sync of {view.crm_name} and {view.chatwoot_name} "
        f"({view.direction_label.lower()}){started}.",
    }


register(
    StepKind(
        "contact_sync",
        "Contact sync from a CRM",
        (
            Field("crm_integration_id", "CRM integration", "int", 0, minimum=0, maximum=2**31 - 1),
            Field("direction", "Direction", "choice", "crm_to_chatwoot", options=tuple(DIRECTIONS)),
            Field("run_now", "Run it once now", "bool", True),
        ),
        lambda v: (
            f"Sync contacts ({(DIRECTIONS.get(v['direction']) or str(v['direction'])).lower()}) with the CRM"
            + (f" #{v['crm_integration_id']}" if v.get("crm_integration_id") else "")
            + (", and run it once now." if v.get("run_now") else ".")
        ),
        _contact_sync,
        needs=("integration_id",),
    )
)
