"""Natural order of names ("Acme 20" before "Acme 100"), as a stored key so the database sorts and pages by it."""

from __future__ import annotations

import re

KEY_LENGTH = 255
DIGITS = re.compile(r"\d+")
NUMBER_WIDTH = 12  # digit runs are zero-padded to this width; longer runs (rare) keep their own length


def natural_key(name: str) -> str:
    """A case-insensitive key whose plain string order is the natural order of the names: each run of digits
    is compared as a number. Cut to KEY_LENGTH characters (the column's length); ties fall back to the id."""
    folded = (name or "").strip().casefold()
    key = DIGITS.sub(lambda m: m.group().lstrip("0").rjust(NUMBER_WIDTH, "0"), folded)
    return key[:KEY_LENGTH]
