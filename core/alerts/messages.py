"""What one alert says: a subject, plain text (never Markdown or HTML) and a JSON-able payload.

Payload ``kind`` is one of KINDS. Links are absolute only when PUBLIC_BASE_URL is set; otherwise the text
holds no link and the payload's ``link`` is None (its ``path`` is always there).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.integrations.health import MEANING, Health

KINDS = ("worsened", "recovered", "incident_opened", "incident_closed", "test")
MAX_NAMES = 20  # integrations named in an incident alert; the rest are counted


@dataclass(frozen=True)
class AlertMessage:
    kind: str
    subject: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    # Stable across the retries of one delivery (X-Console-Delivery, the e-mail's Message-ID), so a
    # receiver can drop a repeat.
    id: str = field(default_factory=lambda: "dlv_" + uuid.uuid4().hex[:24])


def _label(state: str | None) -> str:
    try:
        return Health(state or "unknown").label
    except ValueError:
        return state or "unknown"


def _meaning(state: str | None) -> tuple[str, str]:
    try:
        return MEANING[Health(state or "unknown")]
    except ValueError:
        return ("", "")


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


def integration_path(integration_id: int) -> str:
    return f"/integration?id={int(integration_id)}"


def _link(base_url: str | None, path: str) -> str | None:
    return f"{base_url}{path}" if base_url else None


def change_message(
    *,
    kind: str,
    integration_id: int,
    name: str,
    provider: str,
    old: str | None,
    new: str | None,
    check_message: str,
    when: datetime,
    base_url: str | None,
    message_id: str | None = None,
) -> AlertMessage:
    """An integration worsened (or recovered): its name, the states, what the new one means and what to do."""
    sentence, next_step = _meaning(new)
    path = integration_path(integration_id)
    link = _link(base_url, path)
    if kind == "recovered":
        subject = f"Recovered: {name} ({provider}) is {_label(new).lower()} again"
    else:
        subject = f"{_label(new)}: {name} ({provider})"
    lines = [
        f"{name} ({provider}, integration {integration_id}) changed from {_label(old)} to {_label(new)} "
        f"at {when:%Y-%m-%d %H:%M:%S} UTC.",
        "",
        sentence,
        f"What to do: {next_step}",
    ]
    if check_message:
        lines += ["", f"The last check said: {check_message}"]
    if link:
        lines += ["", f"Open it: {link}"]
    payload = {
        "kind": kind,
        "integration": {"id": integration_id, "name": name, "provider": provider},
        "old": old,
        "new": new,
        "sentence": sentence,
        "next_step": next_step,
        "message": check_message,
        "when": _iso(when),
        "path": path,
        "link": link,
    }
    extra = {"id": message_id} if message_id else {}
    return AlertMessage(kind, subject, "\n".join(lines) + "\n", payload, **extra)


def link_completed_message(
    *,
    integration_id: int,
    name: str,
    provider: str,
    reconnected: bool,
    when: datetime,
    base_url: str | None,
    message_id: str | None = None,
) -> AlertMessage:
    """A customer completed a connect link you own: the integration is connected (or reconnected)."""
    done = "reconnected" if reconnected else "connected"
    path = integration_path(integration_id)
    link = _link(base_url, path)
    lines = [
        f"Your customer {done} {name} ({provider}, integration {integration_id}) through the connect link "
        f"you sent, at {when:%Y-%m-%d %H:%M:%S} UTC.",
        "",
        "The console tested it and checks it on its schedule from now on; nothing is needed from you.",
    ]
    if link:
        lines += ["", f"Open it: {link}"]
    payload = {
        "kind": "link_completed",
        "integration": {"id": integration_id, "name": name, "provider": provider},
        "reconnected": reconnected,
        "when": _iso(when),
        "path": path,
        "link": link,
    }
    extra = {"id": message_id} if message_id else {}
    subject = f"{'Reconnected' if reconnected else 'Connected'} by your customer: {name} ({provider})"
    return AlertMessage("link_completed", subject, "\n".join(lines) + "\n", payload, **extra)


@dataclass(frozen=True)
class IncidentFacts:
    id: int
    key: str
    provider: str | None
    host: str | None
    member_count: int
    first_seen: datetime
    opened_at: datetime
    closed_at: datetime | None = None


def _what(facts: IncidentFacts, provider_name: str | None) -> str:
    if facts.host:
        return f"the host {facts.host}"
    return f"{provider_name or facts.provider} integrations"


def incident_message(
    *,
    kind: str,
    facts: IncidentFacts,
    provider_name: str | None,
    yours: Sequence[tuple[int, str]],
    window_seconds: float,
    base_url: str | None,
    message_id: str | None = None,
) -> AlertMessage:
    """One alert for an outage instead of one per integration: provider (or host), count, first seen, and
    which of the recipient's integrations it covers (never anyone else's names)."""
    what = _what(facts, provider_name)
    shown = [f"- {name} (integration {iid})" for iid, name in list(yours)[:MAX_NAMES]]
    if len(yours) > MAX_NAMES:
        shown.append(f"- and {len(yours) - MAX_NAMES} more")
    path = "/alerts"
    link = _link(base_url, path)
    if kind == "incident_opened":
        subject = f"Incident: {facts.member_count} integrations failing ({what})"
        lines = [
            f"{facts.member_count} integrations ({what}) started failing within {window_seconds:g} seconds, "
            f"first seen at {facts.first_seen:%Y-%m-%d %H:%M:%S} UTC. This looks like an outage of the "
            "service itself, so this is one alert instead of one per integration; alerts about these "
            "integrations wait until it is over.",
            "",
            "What to do: check the service's status page; nothing needs changing in the console unless "
            "it stays like this after the service recovers.",
        ]
    else:
        subject = f"Incident over: {what} recovered"
        closed = facts.closed_at or facts.opened_at
        lines = [
            f"The incident of {what} ({facts.member_count} integrations, first seen at "
            f"{facts.first_seen:%Y-%m-%d %H:%M:%S} UTC) is over at {closed:%Y-%m-%d %H:%M:%S} UTC: its "
            "integrations have recovered. Any that have not get an alert of their own.",
            "",
            "What to do: nothing, unless one of yours still shows a problem.",
        ]
    if shown:
        lines += ["", "Yours among them:", *shown]
    if link:
        lines += ["", f"Open the alerts page: {link}"]
    payload = {
        "kind": kind,
        "incident": {
            "id": facts.id,
            "key": facts.key,
            "provider": facts.provider,
            "host": facts.host,
            "count": facts.member_count,
            "first_seen": _iso(facts.first_seen),
            "opened_at": _iso(facts.opened_at),
            "closed_at": _iso(facts.closed_at) if facts.closed_at else None,
        },
        "integrations": [{"id": iid, "name": name} for iid, name in yours],
        "sentence": lines[0],
        "next_step": lines[2].removeprefix("What to do: "),
        "when": _iso(facts.closed_at or facts.opened_at),
        "path": path,
        "link": link,
    }
    extra = {"id": message_id} if message_id else {}
    return AlertMessage(kind, subject, "\n".join(lines) + "\n", payload, **extra)


def sample_alert(when: datetime, base_url: str | None, who: str) -> AlertMessage:
    """What `Send a test alert` and `manage.py alerts test` send."""
    link = _link(base_url, "/alerts")
    lines = [
        f"This is a test alert from the Integrations Console, sent by {who} at {when:%Y-%m-%d %H:%M:%S} UTC.",
        "",
        "Alerts arrive like this one when an integration's health worsens, once when it recovers, and once "
        "for an outage that affects many integrations at once.",
    ]
    if link:
        lines += ["", f"Manage your alerts: {link}"]
    payload = {
        "kind": "test",
        "integration": None,
        "old": None,
        "new": None,
        "sentence": lines[0],
        "next_step": "Nothing: this only checks that alerts reach you.",
        "when": _iso(when),
        "path": "/alerts",
        "link": link,
    }
    return AlertMessage("test", "Test alert from the Integrations Console", "\n".join(lines) + "\n", payload)
