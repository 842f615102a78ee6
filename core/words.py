"""Counts in the words a person uses: "1 integration", "3 integrations", never a plural hedged in brackets."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None, thousands: bool = True) -> str:
    """n and the noun that agrees with it ("1 check", "2 checks"; plural for irregular nouns)."""
    noun = singular if n == 1 else plural or singular + "s"
    return f"{n:,} {noun}" if thousands else f"{n} {noun}"


def verb(n: int, singular: str, plural: str) -> str:
    """The verb that agrees with n: verb(1, "is", "are") == "is"."""
    return singular if n == 1 else plural
