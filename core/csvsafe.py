"""CSV text that a spreadsheet opens as data, never as formulas.

A cell that starts with = + - @ (or a tab or carriage return) is run as a formula by Excel, LibreOffice
and Google Sheets ("CSV injection"). Integration names and, above all, status messages (written by the
customer's server) are not ours to trust, so every text cell is neutralised with a leading apostrophe.
Numbers, dates and booleans are written as they are: a negative number is a number, not a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """The value as a CSV cell: text that a spreadsheet would evaluate gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text with a header row; every cell goes through safe_cell."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


__all__ = ["FORMULA_STARTS", "safe_cell", "to_csv"]
