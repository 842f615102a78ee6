"""The vocabulary of a contact sync: a contact as either side holds it, identity keys, and what an adapter
(one side of a sync: a CRM's contacts or a Chatwoot account's) provides; and what the sides share: one
request with its 429s waited out (send_waiting_out_limits), a CRM side's state (CrmSide), time parsing.

Identity: the e-mail address, compared case-insensitively, then the phone number in E.164, read by
Google's libphonenumber (the `phonenumbers` package): `+` and the country code, or the region's
international prefix (00, 011 in the US); a national number (030 123456) is read in the region set by
SYNC_PHONE_REGION (set_phone_region, at start-up), and with none set it is not a phone number the sync
can use (better unpaired than paired in the wrong country). A number must be possible for its country
(its length), not known valid: the library's ranges lag new allocations and would drop real numbers. An
extension is dropped: E.164 has none, and Chatwoot's phone field holds E.164 alone.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import phonenumbers
import requests

from core.catalog import TestContext
from core.errors import ConsoleError
from core.http import describe_exception, retry_after_seconds
from core.redaction import redact
from core.sync.errors import SyncSideError

_EXTENSION = re.compile(r"(?i)[,;]?\s*(?:extension|ext[.=]?|x|#)\s*\d{1,7}\s*$")
_LETTER = re.compile(r"[^\W\d_]")
MIN_DIGITS = 7  # fewer is a short code or an extension alone (+683 4002, Niue's, is the shortest real one)
_phone_region = ""  # SYNC_PHONE_REGION: where a national number is read ("" reads only international ones)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_RATE_WAITS = 3  # 429s waited out per request at most
MAX_RATE_WAIT_SECONDS = 30.0  # and each wait at most this long


def normalise_email(value: object) -> str | None:
    text = str(value or "").strip().lower()
    return text if _EMAIL.fullmatch(text) else None


def set_phone_region(region: str) -> None:
    """The country national numbers are read in, from the settings (core.settings checks the code)."""
    global _phone_region
    _phone_region = (region or "").strip().upper()


def normalise_phone(value: object, region: str | None = None) -> str | None:
    """E.164 (+4930123456) or None. ``region`` (ISO 3166, "DE") is where a national number is read; None
    means SYNC_PHONE_REGION's. Separators and an extension are ignored; letters make it no number."""
    text = str(value or "").strip()[:100]
    if not text:
        return None
    return _e164(text, (_phone_region if region is None else region).strip().upper())


@functools.lru_cache(maxsize=65_536)  # a run asks each contact's key many times; parsing takes ~0.1 ms
def _e164(text: str, region: str) -> str | None:
    text = _EXTENSION.sub("", text)
    if not text or _LETTER.search(text):  # "call me", "1-800-FLOWERS": not a number to pair people by
        return None
    if not region and text.startswith("00"):
        text = "+" + text[2:]  # the international prefix of most of the world, without a region to say so
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_possible_number(number) or not MIN_DIGITS <= len(e164) - 1 <= 15:
        return None
    return e164


@dataclass(frozen=True)
class Contact:
    """One contact as a side holds it. `modified` is that side's own modification time (epoch seconds)."""

    id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None
    modified: float = 0.0

    @property
    def key_email(self) -> str | None:
        return normalise_email(self.email)

    @property
    def key_phone(self) -> str | None:
        return normalise_phone(self.phone)

    @property
    def digest(self) -> str:
        """What the sync carries across (name, e-mail, phone), hashed: equal digests mean nothing to carry."""
        text = "\x1f".join((self.name.strip(), self.key_email or "", self.key_phone or ""))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Fields:
    """What to write on the other side: a new contact's fields, or an update's changed ones."""

    name: str = ""
    email: str | None = None
    phone: str | None = None
    crm_id: str | None = None  # written into Chatwoot's custom attributes
    crm_url: str | None = None


@dataclass
class Page:
    """One page of changed contacts, and the position to store once it is done (resume from there)."""

    contacts: list[Contact]
    position: dict = field(default_factory=dict)
    done: bool = False  # the last page of this read: the cursor moves on to `cursor`
    cursor: str | None = None


class RateLimited(ConsoleError):
    """A side kept answering 429 after MAX_RATE_WAITS waits (the sides turn it into their own sentence)."""

    def __init__(self) -> None:
        super().__init__("The service kept rate limiting the sync (429). It carries on at its next run.")


class ContactSide(Protocol):
    """One side of a sync. Every method raises a ConsoleError subclass with a sentence on failure."""

    label: str

    def changed(self, cursor: str | None, position: dict) -> Iterator[Page]:
        """Contacts changed since `cursor`, oldest first where the API can sort, page by page, resuming at
        `position` (a Page's position from an interrupted run, or {})."""
        ...

    def find(self, emails: list[str], phones: list[str]) -> list[Contact]:
        """Contacts with any of these e-mail addresses (lower case) or E.164 phone numbers."""
        ...

    def get(self, contact_id: str) -> Contact | None: ...

    def create(self, items: list[Fields]) -> Sequence[Contact | SyncSideError]:
        """Create these contacts (in order); the created contacts, in the same order. A contact the CRM
        refused on its own (a batch's per-record error) is a SyncSideError in its place (counted failed)."""
        ...

    def update(self, items: list[tuple[str, Fields]]) -> Sequence[Contact | SyncSideError]: ...

    def link_for(self, contact_id: str) -> str | None:
        """An address a person opens to see the contact (the CRM's record), or None."""
        ...


class CrmSide:
    """What every CRM's side keeps: its plain configuration, the context (HTTP session, token cache), the
    run's time left, the CRM records it syncs (contacts or leads), and the tokens it was issued, which with
    the configuration's SECRET_FIELDS are redacted from every sentence it raises."""

    SECRET_FIELDS: tuple[str, ...] = ()
    RECORDS: ClassVar[dict[str, str]] = {}  # crm_object -> the CRM's own name of those records ("leads" -> "Lead")

    def __init__(
        self,
        config: dict,
        context: TestContext,
        budget_left: Callable[[], float] | None = None,
        crm_object: str = "contacts",
    ):
        self._config = config
        self._context = context
        self._budget_left = budget_left
        self._crm_object = crm_object
        self._object_name = self.RECORDS.get(crm_object, "")
        self._issued: list[str] = []

    def _secrets(self) -> list[str]:
        return [*(str(self._config[k]) for k in self.SECRET_FIELDS if self._config.get(k)), *self._issued]


def wait_out_rate_limit(
    send: Callable[[], object],
    is_limited: Callable[[object], float | None],
    budget_left: Callable[[], float] = lambda: MAX_RATE_WAIT_SECONDS * MAX_RATE_WAITS,
    sleep: Callable[[float], None] = time.sleep,
):
    """send() until is_limited(answer) says no (None); at most MAX_RATE_WAITS waits of at most
    MAX_RATE_WAIT_SECONDS each (the server's Retry-After, else 1 s), never past the run's time budget."""
    for attempt in range(MAX_RATE_WAITS + 1):
        answer = send()
        wait = is_limited(answer)
        if wait is None:
            return answer
        wait = min(max(wait, 0.0), MAX_RATE_WAIT_SECONDS)
        if attempt == MAX_RATE_WAITS or wait > budget_left():
            raise RateLimited()
        sleep(wait)
    raise RateLimited()  # pragma: no cover - the loop returns or raises


def epoch_seconds(value: Any) -> float:
    """Epoch seconds from an ISO 8601 time (2026-12-01T10:00:00Z, +05:30 offsets) or epoch seconds; 0 if neither."""
    if value in (None, ""):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def split_name(name: str) -> tuple[str, str]:
    """(first, last) of a full name: the first word, and the rest."""
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def retry_after_429(response: object) -> float | None:
    """A 429's wait: its Retry-After, else one second; None for any other answer."""
    assert isinstance(response, requests.Response)
    return float(retry_after_seconds(response) or 1) if response.status_code == 429 else None


def send_waiting_out_limits(
    label: str,
    session: requests.Session,
    method: str,
    url: str,
    secrets: Callable[[], list[str]],
    budget_left: Callable[[], float] | None = None,
    limited: Callable[[object], float | None] = retry_after_429,
    **kwargs: Any,
) -> requests.Response:
    """One request of a side, its rate limiting waited out (wait_out_rate_limit), every failure a sentence
    naming `label`, no secret in it. The caller reads the answer's status."""

    def send() -> requests.Response:
        try:
            return session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise SyncSideError(redact(describe_exception(exc, label), secrets())) from None

    try:
        if budget_left is not None:
            response = wait_out_rate_limit(send, limited, budget_left)
        else:
            response = wait_out_rate_limit(send, limited)
    except RateLimited:
        raise SyncSideError(
            f"{label} kept rate limiting the sync (429). It carries on from here at its next run."
        ) from None
    assert isinstance(response, requests.Response)
    return response
