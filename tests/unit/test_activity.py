"""core/activity.py: every action the code records reads as a sentence, never as "integration.check_all"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core import activity

ROOT = Path(__file__).resolve().parents[2]
ACTION = re.compile(r"^[a-z_]+\.[a-z_]+$")
RECORDERS = {"record", "record_now", "record_many", "_record", "_test_event"}


def _sources() -> list[Path]:
    return sorted(
        p
        for p in [
            *ROOT.glob("*.py"),
            *(q for d in ("core", "providers", "ui", "app_pages") for q in (ROOT / d).rglob("*.py")),
        ]
        if "migrations" not in p.parts
    )


def _recorded_actions() -> set[str]:
    """Every action string the code hands the audit log: literals passed to audit.record and its kin, and,
    in the namespaces those use ("integration", "user", ...), every other literal of that shape (actions
    chosen by a condition or kept in a constant, such as "integration.pause" or AUDIT_ACTION) of a file that
    records (so the webhook's event names, "integration.created", are not taken for actions)."""
    direct: set[str] = set()
    shaped: set[str] = set()
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        here: set[str] = set()
        records = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ACTION.match(node.value):
                here.add(node.value)
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name in RECORDERS:
                    records = True
                    for arg in node.args:
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and ACTION.match(arg.value):
                            direct.add(arg.value)
        if records:
            shaped |= here
    namespaces = {a.split(".")[0] for a in direct}
    return direct | {a for a in shaped if a.split(".")[0] in namespaces}


def test_the_scan_finds_the_actions_it_must():
    found = _recorded_actions()
    # recorded directly, chosen by a condition, kept in a constant, in a tuple for record_many:
    assert {"integration.test", "integration.pause", "integration.token_refreshed", "integration.check_all"} <= found
    assert {"integration.health_changed", "user.set_tier", "chatwoot_bot.handoff"} <= found
    assert len(found) >= 50


def test_every_recorded_action_has_a_sentence_and_a_label():
    found = _recorded_actions()
    assert sorted(found - set(activity.SENTENCES)) == []
    assert sorted(found - set(activity.ACTION_LABELS)) == []


@pytest.mark.parametrize("action", sorted(activity.SENTENCES))
@pytest.mark.parametrize("outcome", ["success", "failure", "denied"])
def test_a_sentence_never_shows_code(action, outcome):
    for details in ({}, {"message": "It broke.", "provider": "hubspot", "username": "ann", "name": "Acme"}):
        text = activity.sentence(action, outcome, details, "Acme", 7, {"hubspot": "HubSpot"})
        assert text[:1].isupper() and "  " not in text and not text.endswith(" "), text
        assert action not in text and "_" not in text and "None" not in text and "{" not in text, text
        label = activity.action_label(action)
        assert label[0].isupper() and "_" not in label and "." not in label


def test_sentences_read_as_the_issue_asks():
    hubspot = {"hubspot": "HubSpot"}
    assert (
        activity.sentence("integration.test", "success", {"provider": "hubspot"}, "Acme", 3, hubspot)
        == "Tested Acme - HubSpot: connected"
    )
    assert (
        activity.sentence("integration.test", "failure", {"provider": "hubspot", "message": "401"}, "Acme", 3, hubspot)
        == "Tested Acme - HubSpot: failed: 401"
    )
    check_all = {"checked": 12, "connected": 9, "failing": 3, "skipped": 0, "scope": "everyone, tier PRO_PLUS"}
    assert (
        activity.sentence("integration.check_all", "success", check_all)
        == "Check all of 12 integrations (everyone's, Pro Plus tier): 3 failed"
    )
    assert activity.sentence("integration.check_all", "success", {"checked": 1, "failing": 0}) == (
        "Check all of 1 integration: all connected"
    )
    renamed = {"fields": ["name"], "changes": [{"field": "name", "old": "Acme", "new": "Acme EU"}]}
    assert activity.sentence("integration.update", "success", renamed, "Acme EU", 3) == "Renamed Acme to Acme EU"
    edited = {"fields": ["baseUrl", "apiKey"], "changes": [{"field": "baseUrl"}, {"field": "apiKey", "secret": True}]}
    assert (
        activity.sentence("integration.update", "success", edited, "Acme", 3) == "Edited Acme: changed baseUrl, apiKey"
    )
    assert activity.sentence("user.set_tier", "success", {"username": "ann", "tier": "PRO_PLUS"}) == (
        "Moved ann to the Pro Plus tier"
    )
    moved = {"from": "connected", "to": "needs_reconnect"}
    assert activity.sentence("integration.health_changed", "success", moved, "Acme", 3) == (
        "Health of Acme went from connected to needs reconnect"
    )
    # A deleted integration: its name from the details, or its number.
    assert activity.sentence(
        "integration.delete", "success", {"name": "Old", "provider": "hubspot"}, None, 9, hubspot
    ) == ("Deleted Old - HubSpot")
    assert activity.sentence("integration.pause", "success", {}, None, 9).startswith("Paused integration #9")


def test_an_action_of_a_newer_console_reads_as_words():
    assert activity.sentence("integration.some_new_thing", "success", {}) == "Integration: some new thing"
    assert activity.sentence("widget.x", "failure", {"message": "No."}) == "Widget: x (failure): No."
    # details of an unexpected shape fall back to the words, never a traceback
    assert activity.sentence("integration.check_all", "success", {"checked": "many"}) == "Integration: check all"


def test_details_read_as_words():
    edit = {
        "fields": ["name", "apiKey"],
        "changes": [{"field": "name", "old": "Acme", "new": "Acme EU"}, {"field": "apiKey", "secret": True}],
    }
    assert activity.details_text(edit) == "name: Acme → Acme EU; apiKey: changed"
    tested = {"provider": "hubspot", "message": "OK", "limits": {"daily": 10}}
    assert activity.details_text(tested, {"hubspot": "HubSpot"}) == "Provider: HubSpot; Message: OK; Limits › daily: 10"
    assert activity.details_text({}) == ""
