"""Counts read as a person writes them (core/words.py), and no page says "integration(s)"."""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

from core.words import count, verb

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
        ROOT / "Home.py",
        *(p for folder in ("app_pages", "ui", "core", "providers") for p in (ROOT / folder).rglob("*.py")),
    ]
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(files)
        for line, text in _strings(path)
        if re.search(r"[a-z]\(s\)", text.replace("http(s)", ""))
    ]
    assert found == []
