"""Counts in the words a person uses: "1 integration", "3 integrations", never a plural hedged in brackets."""

from __future__ import annotations

import re
from collections.abc import Mapping


def count(n: int, singular: str, plural: str | None = None, thousands: bool = True) -> str:
    """n and the noun that agrees with it ("1 check", "2 checks"; plural for irregular nouns)."""
    noun = singular if n == 1 else plural or singular + "s"
    return f"{n:,} {noun}" if thousands else f"{n} {noun}"


def verb(n: int, singular: str, plural: str) -> str:
    """The verb that agrees with n: verb(1, "is", "are") == "is"."""
    return singular if n == 1 else plural


MAX_LINES = 60  # a nested value is flattened into at most this many "label: value" lines
MAX_VALUE = 300  # characters of one value shown

# Labels that do not read well from their key alone.
_LABELS = {"id": "ID", "url": "URL", "api": "API", "ok": "OK", "ssl": "SSL", "tls": "TLS", "http": "HTTP"}


def label(key: object) -> str:
    """A key as a label a person reads: "accountId" and "account_id" -> "Account ID"."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(key)).replace("_", " ").replace("-", " ").strip()
    words = [_LABELS.get(w.lower(), w.lower()) for w in text.split()]
    if not words:
        return str(key)
    first = words[0]
    return " ".join([first if first.isupper() else first.capitalize(), *words[1:]])


def readable(value: object, prefix: str = "") -> list[tuple[str, str]]:
    """A nested mapping as flat (label, value) lines: {"account": {"name": "Acme"}} -> [("Account › name",
    "Acme")]; lists of plain values joined with commas, True/False as Yes/No, at most MAX_LINES lines."""
    lines: list[tuple[str, str]] = []

    def walk(item: object, where: str) -> None:
        if len(lines) >= MAX_LINES:
            return
        if isinstance(item, Mapping):
            if not item:
                lines.append((where or "Value", "none"))
            for key, inner in item.items():
                walk(inner, f"{where} › {_inner(label(key))}" if where else label(key))
            return
        if isinstance(item, list | tuple) and any(isinstance(i, Mapping | list | tuple) for i in item):
            for number, inner in enumerate(item, 1):
                walk(inner, f"{where} {number}" if where else f"Item {number}")
            return
        lines.append((where or "Value", _plain(item)))

    walk(value, prefix)
    return lines[:MAX_LINES]


def _inner(text: str) -> str:
    """A label after "›" starts in lower case, unless it starts with an abbreviation ("ID", "URL")."""
    return text if text.split(" ")[0].isupper() else text[:1].lower() + text[1:]


def _plain(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int | float):
        return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) if value else "none"
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
