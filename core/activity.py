"""Audit events as sentences a person reads: "Tested Acme - HubSpot: connected", "Renamed Acme to Acme EU",
"Check all of 12 integrations: 3 failed". One table, one entry per action the code records (a unit test
walks the code for every recorded action and finds its sentence here); an action recorded by a newer
version of the console than this table reads as its words ("integration.some_thing" -> "Integration: some
thing") rather than as code.

The sentences use only the event's own fields and its details, which never hold a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.integrations.health import Health
from core.tiers import tier_label
from core.words import count, readable

__all__ = ["SENTENCES", "action_label", "details_text", "readable", "sentence"]

MAX_SHOWN = 120  # a message quoted in a sentence is cut here; the Details column has the rest


@dataclass(frozen=True)
class Event:
    """What a sentence is made of: the action's outcome, details, and the names the page resolved."""

    outcome: str
    details: Mapping
    integration: str | None = None  # the integration's name, when the event has one and it still exists
    integration_id: int | None = None
    provider_names: Mapping[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def get(self, key: str, default: object = "") -> object:
        value = self.details.get(key, default)
        return default if value is None else value

    def text(self, key: str, default: str = "") -> str:
        return _short(self.get(key, default))

    @property
    def provider(self) -> str:
        key = str(self.details.get("provider") or "")
        return (self.provider_names or {}).get(key, key)

    @property
    def subject(self) -> str:
        """The integration as a person names it: "Acme - HubSpot", or its number when it is gone."""
        name = self.integration or self.text("name")
        if not name:
            return f"integration #{self.integration_id}" if self.integration_id else "an integration"
        provider = self.provider
        return f"{name} - {provider}" if provider and provider.lower() not in name.lower() else name

    @property
    def why(self) -> str:
        """The reason or message of a failure or refusal, after a colon, or nothing."""
        reason = self.text("message") or self.text("error") or self.text("reason")
        return f": {reason}" if reason else ""


def _short(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _words(key: str) -> str:
    return key.replace("_", " ")


def _fields(names: object) -> str:
    if not isinstance(names, list | tuple) or not names:
        return ""
    return ", ".join(_words(str(n)) for n in names)


def _or_failed(e: Event, done: str, failed: str) -> str:
    """done on success; on a failure or a refusal, what could not be done and why."""
    return done if e.ok else f"{failed}{e.why}"


# ----- integrations ------------------------------------------------------------------------------------


def _tested(e: Event) -> str:
    return f"Tested {e.subject}: connected" if e.ok else f"Tested {e.subject}: failed{e.why}"


def _check_all(e: Event) -> str:
    checked = int(e.get("checked", 0) or 0)  # type: ignore[arg-type]
    failing = int(e.get("failing", 0) or 0)  # type: ignore[arg-type]
    skipped = int(e.get("skipped", 0) or 0)  # type: ignore[arg-type]
    parts = [f"{failing:,} failed" if failing else ("all connected" if checked else "nothing to check")]
    if skipped:
        parts.append(f"{skipped:,} skipped")
    if e.get("cancelled") is True:
        parts.append("cancelled before the end")
    return f"Check all of {count(checked, 'integration')}{_scope(e)}: {', '.join(parts)}"


def _scope(e: Event) -> str:
    """core.engine.runs.scope_text ("everyone, tier PRO_PLUS, provider hubspot") in words."""
    scope = e.get("scope")
    if not isinstance(scope, str) or not scope:
        return ""
    words = []
    for part in (p.strip() for p in scope.split(",")):
        if part == "everyone":
            words.append("everyone's")
        elif part == "own":
            continue  # the default scope: the person's own integrations
        elif part.startswith("tier "):
            words.append(f"{tier_label(part[5:])} tier")
        elif part.startswith("provider "):
            key = part[9:]
            words.append((e.provider_names or {}).get(key, key))
        else:
            words.append(_short(part))
    return f" ({', '.join(words)})" if words else ""


def _edited(e: Event) -> str:
    changes = [c for c in e.get("changes", []) or [] if isinstance(c, dict)]  # type: ignore[union-attr]
    renamed = next((c for c in changes if c.get("field") == "name"), None)
    others = [str(c.get("field", "?")) for c in changes if c is not renamed]
    if not changes:
        others = [str(f) for f in e.get("fields", []) or [] if f != "name"]  # type: ignore[union-attr]
    if renamed and not others:
        return f"Renamed {_short(renamed.get('old', ''))} to {_short(renamed.get('new', ''))}"
    text = f"Edited {e.subject}"
    if renamed:
        text = f"Renamed {_short(renamed.get('old', ''))} to {_short(renamed.get('new', ''))} and edited it"
    return f"{text}: changed {_fields(others)}" if others else text


def _health(e: Event) -> str:
    def label(value: object) -> str:
        try:
            return Health(str(value)).label.lower()
        except ValueError:
            return _words(str(value or "unknown"))

    return f"Health of {e.subject} went from {label(e.get('from'))} to {label(e.get('to'))}"


def _created(e: Event) -> str:
    if e.ok:
        return f"Created {e.subject}"
    what = f"a {e.provider} integration" if e.provider else "an integration"
    return _or_failed(e, "", f"Could not create {what}")


def _refreshed(e: Event) -> str:
    if e.ok:
        return f"Refreshed the access token of {e.subject}"
    again = ", reconnect it" if e.get("needsReconnect") is True else ""
    return f"Could not refresh the access token of {e.subject}{e.why}{again}"


# ----- people, connecting, the rest -------------------------------------------------------------------


def _user(done: Callable[[Event, str], str]) -> Callable[[Event], str]:
    def sentence(e: Event) -> str:
        name = e.text("username") or "a staff member"
        if e.outcome == "denied":
            return f"Refused to change {name}{e.why}"
        return done(e, name)

    return sentence


def _user_update(e: Event, name: str) -> str:
    changed = []
    if "tier" in e.details:
        changed.append(f"tier {tier_label(str(e.details['tier']))}")
    if "role" in e.details:
        changed.append(f"role {e.text('role')}")
    if "active" in e.details:
        changed.append("may sign in" if e.details["active"] else "may not sign in")
    rest = [k for k in e.details if k not in ("username", "tier", "role", "active", "updated_at", "updated_by")]
    changed += [_words(k) for k in rest]
    return f"Changed {name}'s account: {', '.join(changed)}" if changed else f"Saved {name}'s account unchanged"


def _active(e: Event, name: str) -> str:
    return f"{'Reactivated' if e.details.get('active') else 'Deactivated'} {name}'s account"


def _link(e: Event) -> str:
    return f"connect link #{e.text('link')}" if e.get("link") else "a connect link"


def _connect_link_create(e: Event) -> str:
    what = f"reconnect {e.subject}" if e.get("reconnect") is True else f"connect {e.provider or 'a service'}"
    owner = e.text("owner")
    days = e.get("days")
    valid = f", valid {count(int(days), 'day')}" if isinstance(days, int) else ""
    return f"Created {_link(e)} for {owner or 'a customer'} to {what}{valid}"


def _oauth_start(e: Event) -> str:
    if e.get("reconnect") is True:
        return f"Started reconnecting {e.subject} through {e.provider} sign-in"
    via = f" through {_link(e)}" if e.get("link") else ""
    return f"Started connecting {e.provider or 'a service'} through its sign-in{via}"


def _oauth_connect(e: Event) -> str:
    done = "Reconnected" if e.get("reconnect") is True else "Connected"
    if not e.ok:
        return f"Could not save the {e.provider} connection after its sign-in{e.why}"
    tested = " (its first test failed)" if e.details.get("tested") is False else ""
    return f"{done} {e.subject} through {e.provider} sign-in{tested}"


def _oauth_app_save(e: Event) -> str:
    verb = "Registered" if e.get("created") is True else "Updated"
    secret = " with a new client secret" if e.get("secret_changed") is True and e.get("created") is not True else ""
    return f"{verb} the {e.provider} OAuth app{secret}"


def _target(e: Event) -> str:
    target, channel = e.text("target"), e.text("channel")
    return f"{target} ({channel})" if target and channel else target or channel or "a recipient"


def _alert_states(e: Event) -> str:
    states = e.get("states", [])
    if not isinstance(states, list) or not states:
        return ""
    labels = []
    for s in states:
        try:
            labels.append(Health(str(s)).label.lower())
        except ValueError:
            labels.append(_words(str(s)))
    return f" for {', '.join(labels)}"


def _agent(e: Event) -> str:
    name = e.text("name") or e.text("agent")
    return f"the agent {name}" if name else f"agent #{e.text('agent_id')}" if e.get("agent_id") else "an agent"


def _membership(e: Event) -> str:
    agent = _agent(e)
    name = e.text("inbox")
    inbox = f"the inbox {name}" if name else f"inbox #{e.text('inbox_id')}" if e.get("inbox_id") else "an inbox"
    added = e.text("change") in ("add", "added")
    done = f"Added {agent} to {inbox}" if added else f"Removed {agent} from {inbox}"
    return _or_failed(e, done[:1].upper() + done[1:], f"Could not change the access of {agent} to {inbox}")


def _rotate(e: Event) -> str:
    failed = e.get("failed", 0)
    if e.ok:
        return "Re-encrypted the stored secrets with the current key"
    if e.get("interrupted"):
        return f"Re-encrypting the stored secrets stopped before the end: {e.text('interrupted')}"
    return f"Re-encrypted the stored secrets, except {count(int(failed or 0), 'secret')} that could not be read"  # type: ignore[arg-type]


# One entry per recorded action (tests/unit/test_activity.py finds every one the code records).
SENTENCES: dict[str, Callable[[Event], str]] = {
    "integration.test": _tested,
    "integration.check_all": _check_all,
    "integration.create": _created,
    "integration.update": _edited,
    "integration.reconnect": lambda e: (
        f"Entered new credentials for {e.subject}"
        + (f": {_fields(e.get('fields'))}" if _fields(e.get("fields")) else "")
    ),
    "integration.delete": lambda e: f"Deleted {e.subject}",
    "integration.duplicate": lambda e: _or_failed(
        e, f"Made {e.text('name') or 'a copy'}, a copy of {e.subject}", f"Could not copy {e.subject}"
    ),
    "integration.transfer": lambda e: _or_failed(
        e,
        f"Gave {e.subject} to {e.text('to') or 'someone else'}"
        + (f" (it was {e.text('from')}'s)" if e.text("from") else ""),
        f"Could not give {e.subject} to someone else",
    ),
    "integration.pause": lambda e: f"Paused {e.subject}: no scheduled checks until it is resumed",
    "integration.resume": lambda e: f"Resumed {e.subject}: scheduled checks again",
    "integration.activate": lambda e: f"Activated {e.subject}",
    "integration.deactivate": lambda e: f"Deactivated {e.subject}",
    "integration.health_changed": _health,
    "integration.secret_rotated": lambda e: (
        f"Stored the new {_words(e.text('field')) or 'secret'} that the service of {e.subject} issued"
    ),
    "integration.token_refreshed": _refreshed,
    "keys.rotate": _rotate,
    "user.create": lambda e: f"Created the {e.text('role') or 'staff'} account {e.text('username')}",
    "user.update": _user(_user_update),
    "user.set_tier": _user(
        lambda e, n: (
            f"Moved {n} to the {tier_label(str(e.get('tier')))} tier" if e.get("tier") else f"Changed {n}'s tier"
        )
    ),
    "user.set_role": _user(
        lambda e, n: (
            f"Made {n} {'an' if e.text('role')[:1] in 'aeiou' else 'a'} {e.text('role')}"
            if e.text("role")
            else f"Changed the role of {n}"
        )
    ),
    "user.set_active": _user(_active),
    "user.reset_password": _user(lambda e, n: f"Set a new password for {n}"),
    "user.change_password": _user(lambda e, n: f"Changed their own password ({n})"),
    "user.choose_password": _user(lambda e, n: f"Chose their own password after a one-time one ({n})"),
    "user.update_profile": _user(lambda e, n: f"Changed their own name or e-mail ({n})"),
    "oauth.start": _oauth_start,
    "oauth.callback": lambda e: _or_failed(
        e, f"Received the {e.provider} sign-in answer", f"Refused a {e.provider or 'sign-in'} answer".strip()
    ),
    "oauth.exchange": lambda e: _or_failed(
        e,
        f"{e.provider or 'The service'} accepted the sign-in code",
        f"{e.provider or 'The service'} refused the sign-in code",
    ),
    "oauth.connect": _oauth_connect,
    "oauth_app.save": _oauth_app_save,
    "oauth_app.delete": lambda e: f"Removed the {e.provider} OAuth app",
    "connect_link.create": _connect_link_create,
    "connect_link.resend": lambda e: (
        f"Sent a new address for {_link(e)}"
        + (f", valid {count(int(e.details['days']), 'day')}" if isinstance(e.details.get("days"), int) else "")
    ),
    "connect_link.revoke": lambda e: f"Revoked {_link(e)}",
    "connect_link.open": lambda e: _or_failed(e, f"A customer opened {_link(e)}", f"Could not open {_link(e)}"),
    "template.save": lambda e: f"Saved the template {e.text('template')}",
    "template.delete": lambda e: f"Deleted the template {e.text('template')}",
    "template.run": lambda e: (
        f"Ran the template {e.text('template')}" + (f" (run #{e.text('run')})" if e.get("run") else "")
    ),
    "sync.created": lambda e: f"Set up a contact sync of {e.subject} with Chatwoot",
    "sync.deleted": lambda e: (
        f"Removed {'contact sync #' + e.text('sync') if e.get('sync') else 'a contact sync'} of {e.subject}"
    ),
    "alert.subscription_created": lambda e: f"Subscribed {_target(e)} to alerts{_alert_states(e)}",
    "alert.subscription_updated": lambda e: f"Changed the alerts of {_target(e)}{_alert_states(e)}",
    "alert.subscription_deleted": lambda e: f"Stopped the alerts of {_target(e)}",
    "alert.sent": lambda e: f"Sent {_words(e.text('kind')) or 'an'} alert about {e.subject} to {_target(e)}",
    "alert.failed": lambda e: (
        f"Could not send {_words(e.text('kind')) or 'an'} alert about {e.subject} to "
        f"{_target(e)}" + (f" (attempt {e.text('attempt')})" if e.get("attempt") else "") + e.why
    ),
    "alert.test": lambda e: _or_failed(
        e, f"Sent a test alert to {_target(e)}", f"Could not send a test alert to {_target(e)}"
    ),
    "widget.preset_save": lambda e: f"Saved the widget preset {e.text('preset')}",
    "widget.preset_delete": lambda e: f"Deleted the widget preset {e.text('preset')}",
    "chatwoot.inbox_ensure": lambda e: _or_failed(
        e,
        f"Set up the website inbox for {e.text('website_url') or 'a website'} in {e.subject}",
        f"Could not set up a website inbox in {e.subject}",
    ),
    "chatwoot_bot.create": lambda e: _or_failed(
        e, f"Created the greeting bot of {e.subject}", f"Could not create the greeting bot of {e.subject}"
    ),
    "chatwoot_bot.attach": lambda e: _or_failed(
        e,
        f"Attached the greeting bot to inbox {e.text('inbox_id')} of {e.subject}",
        f"Could not attach the greeting bot to inbox {e.text('inbox_id')} of {e.subject}",
    ),
    "chatwoot_bot.settings": lambda e: f"Changed the greeting bot's settings of {e.subject}",
    "chatwoot_bot.self_test": lambda e: (
        f"Tested the greeting bot of {e.subject}: " + ("it answers" if e.ok else f"failed{e.why}")
    ),
    "chatwoot_bot.reply": lambda e: _or_failed(
        e,
        f"The greeting bot replied in conversation {e.text('conversation_id')} of {e.subject}",
        f"The greeting bot could not reply in conversation {e.text('conversation_id')} of {e.subject}",
    ),
    "chatwoot_bot.handoff": lambda e: _or_failed(
        e,
        f"The greeting bot handed conversation {e.text('conversation_id')} of {e.subject} to an agent",
        f"The greeting bot could not hand conversation {e.text('conversation_id')} of {e.subject} to an agent",
    ),
    "helpdesk.agent_create": lambda e: _or_failed(
        e, f"Added {_agent(e)} to {e.subject}", f"Could not add {_agent(e)} to {e.subject}"
    ),
    "helpdesk.agent_delete": lambda e: _or_failed(
        e, f"Removed {_agent(e)} from {e.subject}", f"Could not remove {_agent(e)} from {e.subject}"
    ),
    "helpdesk.membership": _membership,
}


def sentence(
    action: str,
    outcome: str,
    details: Mapping | None = None,
    integration: str | None = None,
    integration_id: int | None = None,
    provider_names: Mapping[str, str] | None = None,
) -> str:
    """The event as one sentence, without a final full stop (it is a row of a table)."""
    event = Event(outcome, details or {}, integration, integration_id, provider_names)
    make = SENTENCES.get(action)
    if make is not None:
        try:
            return " ".join(make(event).split())  # a detail missing from an old record leaves no gap
        except (TypeError, ValueError, AttributeError):  # details of an unexpected shape (an old record)
            pass
    area, _, what = action.partition(".")
    text = f"{_words(area).capitalize()}: {_words(what)}" if what else _words(action).capitalize()
    return text if event.ok else f"{text} ({_words(outcome)}){event.why}"


def action_label(action: str) -> str:
    """The action alone, for a filter's options: "integration.check_all" -> "Check all"."""
    return ACTION_LABELS.get(action) or _words(action.partition(".")[2] or action).capitalize()


ACTION_LABELS = {
    "integration.test": "Test",
    "integration.check_all": "Check all",
    "integration.create": "Create an integration",
    "integration.update": "Edit an integration",
    "integration.reconnect": "New credentials",
    "integration.delete": "Delete an integration",
    "integration.duplicate": "Copy an integration",
    "integration.transfer": "Give an integration to someone else",
    "integration.pause": "Pause",
    "integration.resume": "Resume",
    "integration.health_changed": "Health change",
    "integration.secret_rotated": "Secret issued by the service",
    "integration.token_refreshed": "Token refresh",
    "keys.rotate": "Key rotation",
    "user.create": "Create an account",
    "user.update": "Change an account",
    "user.set_tier": "Change a tier",
    "user.set_role": "Change a role",
    "user.set_active": "Deactivate or reactivate an account",
    "user.reset_password": "Set a password",
    "user.change_password": "Change one's own password",
    "user.choose_password": "Choose a password after a one-time one",
    "user.update_profile": "Change one's own name or e-mail",
    "oauth.start": "Start a sign-in",
    "oauth.callback": "Sign-in answer",
    "oauth.exchange": "Sign-in code exchange",
    "oauth.connect": "Connect through sign-in",
    "oauth_app.save": "Save an OAuth app",
    "oauth_app.delete": "Remove an OAuth app",
    "connect_link.create": "Create a connect link",
    "connect_link.resend": "Resend a connect link",
    "connect_link.revoke": "Revoke a connect link",
    "connect_link.open": "Open a connect link",
    "template.save": "Save a template",
    "template.delete": "Delete a template",
    "template.run": "Run a template",
    "sync.created": "Set up a contact sync",
    "sync.deleted": "Remove a contact sync",
    "alert.subscription_created": "Subscribe to alerts",
    "alert.subscription_updated": "Change alerts",
    "alert.subscription_deleted": "Stop alerts",
    "alert.sent": "Alert sent",
    "alert.failed": "Alert not sent",
    "alert.test": "Test alert",
    "widget.preset_save": "Save a widget preset",
    "widget.preset_delete": "Delete a widget preset",
    "chatwoot.inbox_ensure": "Set up a website inbox",
    "chatwoot_bot.create": "Create the greeting bot",
    "chatwoot_bot.attach": "Attach the greeting bot",
    "chatwoot_bot.settings": "Greeting bot settings",
    "chatwoot_bot.self_test": "Test the greeting bot",
    "chatwoot_bot.reply": "Greeting bot reply",
    "chatwoot_bot.handoff": "Greeting bot handoff",
    "helpdesk.agent_create": "Add an agent",
    "helpdesk.agent_delete": "Remove an agent",
    "helpdesk.membership": "Change an inbox's agents",
}


def details_text(details: Mapping | None, provider_names: Mapping[str, str] | None = None) -> str:
    """An event's details as "Label: value; ..." for the Details column: providers by name, an edit's
    changes as "field: old → new" (a secret only "changed"), nested values flattened."""
    shown = dict(details or {})
    if isinstance(shown.get("provider"), str):
        shown["provider"] = (provider_names or {}).get(shown["provider"], shown["provider"])
    parts = []
    changes = shown.pop("changes", None)
    if isinstance(changes, list):
        shown.pop("fields", None)  # the changes name them
        for change in (c for c in changes if isinstance(c, dict)):
            field = _short(change.get("field", "?"))
            if change.get("secret"):
                parts.append(f"{field}: changed")
            else:
                parts.append(
                    f"{field}: {_short(change.get('old') or '(empty)')} → {_short(change.get('new') or '(empty)')}"
                )
    parts += [f"{key}: {value}" for key, value in readable(shown)] if shown else []
    return "; ".join(parts)
