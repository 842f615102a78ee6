"""The one redaction: every secret out of a text, in each form a server may echo it, cut or not.

Every path that keeps or shows text that may hold a secret (test results and so status_message, audit
details, log lines, exception messages) calls ``redact`` (or ``redact_data`` for nested details) and
nothing else does its own replacing. What it removes, for each secret of at least 4 characters:

- the plain value, its URL encodings (``quote`` with and without ``/`` kept, ``quote_plus``) and its
  JSON-escaped forms (``\\uXXXX`` or raw non-ASCII, ``\\/`` for slashes);
- base64, standard or URL-safe, padded or not, of the value alone and of anything that contains it
  (``user:pass`` in a Basic header, a JSON blob): a secret inside base64 shows up as one of three fixed
  runs, one per alignment, and the whole base64 word holding one is replaced;
- a fragment: any run of at least ``MIN_FRAGMENT`` characters that begins or ends a form above where
  the text is cut (a letter or digit that goes on differently is another word: a Salesforce org id is
  the start of its access tokens, and stays), so a message that someone cut (a provider keeps the
  first 300 characters of a server's words, an audit detail the first 500) before it got here leaves
  no usable part of the secret either.

A cut that happens after ``redact`` can only shorten "[redacted]"; one before it leaves at most
``MIN_FRAGMENT - 1`` characters of a secret.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any, overload
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values (a port, "true") would blank out ordinary words
MIN_FRAGMENT = 8  # the shortest part of a cut secret that is still replaced
_BASE64_WORD = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def _text_forms(secret: str) -> set[str]:
    escaped = json.dumps(secret)[1:-1]
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def _base64_cores(secret: str) -> set[str]:
    """What base64 of any text holding the secret must contain: runs per alignment, alphabet and ending."""
    raw = secret.encode("utf-8")
    cores = set()
    for skip in (0, 1, 2):  # the secret starts 0, 2 or 1 bytes before a 3-byte group boundary
        rest = raw[skip:]
        # Whole groups only (something may follow the secret), and up to its end (nothing follows it).
        for part in (rest[: len(rest) - len(rest) % 3], rest):
            if len(part) >= 3:
                for encoded in (base64.b64encode(part).decode("ascii"), base64.urlsafe_b64encode(part).decode("ascii")):
                    cores |= {encoded, encoded.rstrip("=")}
    return cores


def _spans(text: str, form: str) -> list[tuple[int, int]]:
    """Where form, or a cut piece of it (its first or last MIN_FRAGMENT characters onward), stands in text."""
    found = []
    anchor = min(len(form), MIN_FRAGMENT)
    head, tail = form[:anchor], form[-anchor:]
    start = text.find(head)
    while start != -1:
        end = start + anchor
        while end < len(text) and end - start < len(form) and text[end] == form[end - start]:
            end += 1
        if end - start == len(form) or end == len(text) or not text[end].isalnum():
            found.append((start, end))  # whole, or cut here; not a word that only begins the same way
        start = text.find(head, start + 1)
    end = text.find(tail)
    while end != -1:
        stop, begin = end + anchor, end
        while begin > 0 and stop - begin < len(form) and text[begin - 1] == form[len(form) - (stop - begin) - 1]:
            begin -= 1
        if stop - begin == len(form) or begin == 0 or not text[begin - 1].isalnum():
            found.append((begin, stop))
        end = text.find(tail, end + 1)
    return found


def _usable(secrets: Iterable[str | None]) -> list[str]:
    return sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET}, key=len, reverse=True)


class Redactor:
    """The forms of a set of secrets, worked out once for every text of one result or one detail tree.

    Every span _spans finds begins with a form's first MIN_FRAGMENT characters or ends with its last, so a
    text holding none of those anchors holds nothing to replace, and only the forms whose anchors it holds
    are searched: most texts (a "Connected" message, a status code) cost a few substring tests.
    """

    def __init__(self, secrets: Iterable[str | None]):
        self.values = _usable(secrets)
        self._text_forms = [_with_anchors(form) for secret in self.values for form in _text_forms(secret)]
        self._base64_cores = [[_with_anchors(core) for core in _base64_cores(secret)] for secret in self.values]

    def __bool__(self) -> bool:
        return bool(self.values)

    def __call__(self, text: str) -> str:
        """text with every secret, in every form above and every cut piece of one, replaced by [redacted]."""
        if not self.values or not text:
            return text
        spans: list[tuple[int, int]] = []
        for form, head, tail in self._text_forms:
            if head in text or tail in text:
                spans += _spans(text, form)
        for cores in self._base64_cores:
            present = [core for core, head, tail in cores if head in text or tail in text]
            if present:
                for word in _BASE64_WORD.finditer(text):
                    if any(_spans(word.group(), core) for core in present):
                        spans.append(word.span())
        return _replaced(text, spans) if spans else text


def _with_anchors(form: str) -> tuple[str, str, str]:
    anchor = min(len(form), MIN_FRAGMENT)
    return form, form[:anchor], form[-anchor:]


def _replaced(text: str, spans: list[tuple[int, int]]) -> str:
    pieces, last = [], 0
    for start, end in sorted(spans):
        if start < last:  # overlaps the span just replaced: extend it
            last = max(last, end)
            continue
        pieces += [text[last:start], REDACTED]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def redact(text: str, secrets: Iterable[str | None] | Redactor) -> str:
    """text with every secret, in every form above and every cut piece of one, replaced by [redacted]."""
    return (secrets if isinstance(secrets, Redactor) else Redactor(secrets))(text)


@overload
def redact_data(value: dict[str, Any], secrets: Iterable[str | None] | Redactor) -> dict[str, Any]: ...
@overload
def redact_data(value: object, secrets: Iterable[str | None] | Redactor) -> object: ...
def redact_data(value: object, secrets: Iterable[str | None] | Redactor) -> object:
    """A copy of nested details (dicts, lists, scalars) with every string redacted; other objects become
    redacted strings, as they would be when written as JSON."""
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    if not redactor:
        return value
    if isinstance(value, dict):
        return {redactor(str(k)): redact_data(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v, redactor) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redactor(value if isinstance(value, str) else str(value))
