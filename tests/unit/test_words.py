"""Counts read as a person writes them (core/words.py), and no page says "integration(s)"."""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

from core.words import count, label, readable, verb

ROOT = Path(__file__).resolve().parents[2]


def test_a_count_agrees_with_its_noun():
    assert count(1, "integration") == "1 integration"
    assert count(0, "integration") == "0 integrations"
    assert count(12345, "check") == "12,345 checks"
    assert count(2, "person", "people") == "2 people"
    assert (verb(1, "is", "are"), verb(3, "is", "are")) == ("is", "are")


def _strings(path: Path):
    """(line, text) of every string literal in a Python file (f-strings included)."""
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type == tokenize.STRING:
                yield token.start[0], token.string


def test_no_text_shown_to_people_hedges_a_plural_with_s_in_brackets():
    files = [
        *ROOT.glob("*.py"),  # Home.py, manage.py and the other entry points: the CLI's lines are read too
        *(p for folder in ("app_pages", "ui", "core", "providers") for p in (ROOT / folder).rglob("*.py")),
    ]
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(files)
        for line, text in _strings(path)
        if re.search(r"[a-z]\(s\)", text.replace("http(s)", ""))
    ]
    assert found == []


def test_nested_details_read_as_label_value_lines():
    details = {
        "accountId": 3,
        "account": {"name": "Acme", "features": {"inboxes": True}},
        "inboxes": [{"id": 1, "website_url": "https://acme.test"}, {"id": 2}],
        "scopes": ["contacts", "deals"],
        "limited": False,
        "owner": None,
    }
    assert readable(details) == [
        ("Account ID", "3"),
        ("Account › name", "Acme"),
        ("Account › features › inboxes", "Yes"),
        ("Inboxes 1 › ID", "1"),
        ("Inboxes 1 › website URL", "https://acme.test"),
        ("Inboxes 2 › ID", "2"),
        ("Scopes", "contacts, deals"),
        ("Limited", "No"),
        ("Owner", "none"),
    ]
    assert label("base_url") == "Base URL" and label("lastCheckedAt") == "Last checked at"


def test_readable_is_bounded():
    lines = readable({"many": [{"n": i} for i in range(1000)], "long": "x" * 10_000})
    assert len(lines) == 60
    assert all(len(value) <= 300 for _, value in readable({"long": "x" * 10_000}))
