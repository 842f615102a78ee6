"""One run of a contact sync over two open sides: read what changed, pair, create or update, page by page.

Per page, in one transaction: the new and changed identity links and the read position, so a run that
stops anywhere (a crash, a deadline, a refusal) resumes at the first page it had not finished, and every
write it repeats finds its earlier result (by the link table, else by e-mail or phone) instead of
creating a second contact. Nothing is deleted on either side.

In `both` the CRM's changes are read first, then Chatwoot's. A contact changed on both sides since the
last run goes the way of the newer change, by each side's own modified time; a value is never blanked
(a side without a phone keeps the other's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import insert, select, update
from sqlalchemy.orm import sessionmaker

from core.errors import ConsoleError
from core.models import ContactLink, ContactSync, utcnow
from core.sync.contacts import Contact, ContactSide, Fields
from core.sync.errors import SyncSideError

SIDES = ("crm", "chatwoot")
MAX_FAILURES_LISTED = 20
NO_KEY = "no e-mail or phone"


class OutOfTime(ConsoleError):
    """The run's time budget is spent: the rest waits for the next run, from where this one stopped."""

    def __init__(self) -> None:
        super().__init__("The run used its time; the next run carries on from here.")


@dataclass
class SideReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped += count
        self.reasons[reason] = self.reasons.get(reason, 0) + count

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "skippedReasons": dict(self.reasons),
        }


@dataclass
class Report:
    """Counts by the side written to: report.sides["chatwoot"].created are contacts created in Chatwoot."""

    sides: dict[str, SideReport] = field(default_factory=lambda: {s: SideReport() for s in SIDES})
    failures: list[str] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)

    def fail(self, side: str, message: str, count: int = 1) -> None:
        self.sides[side].failed += count
        if len(self.failures) < MAX_FAILURES_LISTED and message not in self.failures:
            self.failures.append(message)

    def as_dict(self) -> dict:
        body: dict = {side: report.as_dict() for side, report in self.sides.items()}
        body["failures"] = list(self.failures)
        if self.preview:
            body["preview"] = list(self.preview)
        return body


@dataclass
class _Write:
    source: Contact
    fields: Fields
    link_id: int | None = None
    target_id: str | None = None  # an update's target


class SyncRunner:
    def __init__(
        self,
        factory: sessionmaker,
        sync_id: int,
        direction: str,
        sides: dict[str, ContactSide],
        deadline: float | None = None,  # time.monotonic() by which to stop between pages
        preview_limit: int | None = None,  # a dry run: plan up to this many changes, write nothing
    ):
        self._factory = factory
        self._sync_id = sync_id
        self._direction = direction
        self._sides = sides
        self._deadline = deadline
        self._preview = preview_limit
        self.report = Report()

    @property
    def dry(self) -> bool:
        return self._preview is not None

    def run(self) -> Report:
        phases = {"crm_to_chatwoot": [("crm", "chatwoot")], "chatwoot_to_crm": [("chatwoot", "crm")]}
        for source, target in phases.get(self._direction, [("crm", "chatwoot"), ("chatwoot", "crm")]):
            self._phase(source, target)
            if self._preview_full():
                break
        return self.report

    def _preview_full(self) -> bool:
        return self._preview is not None and len(self.report.preview) >= self._preview

    # ----- a phase: one source's changes into the other side -----------------------------------------

    def _phase(self, src: str, dst: str) -> None:
        with self._factory() as session:
            sync = session.get(ContactSync, self._sync_id)
            if sync is None:
                return
            cursor = sync.crm_cursor if src == "crm" else sync.chatwoot_cursor
            position = dict((sync.progress or {}).get(src) or {})
        for page in self._sides[src].changed(cursor, position):
            new, changed = self._page(src, dst, page.contacts)
            if self.dry:
                if self._preview_full():
                    return
            else:
                self._commit(src, new, changed, page.position, page.cursor if page.done else None, page.done)
            if self._deadline is not None and time.monotonic() > self._deadline and not page.done:
                raise OutOfTime()

    def _page(self, src: str, dst: str, contacts: list[Contact]) -> tuple[list[dict], list[dict]]:
        report, target = self.report.sides[dst], self._sides[dst]
        keyed = [c for c in contacts if c.key_email or c.key_phone]
        if len(keyed) < len(contacts):
            report.skip(NO_KEY, len(contacts) - len(keyed))
        ids = [c.id for c in keyed]
        src_col = ContactLink.crm_id if src == "crm" else ContactLink.chatwoot_id
        with self._factory() as session:
            links = {
                getattr(link, f"{src}_id"): link
                for link in session.scalars(
                    select(ContactLink).where(ContactLink.sync_id == self._sync_id, src_col.in_(ids))
                )
            }
        unlinked = [c for c in keyed if c.id not in links]
        matches = self._matches(dst, unlinked)
        creates: list[_Write] = []
        updates: list[_Write] = []
        reverse: list[_Write] = []  # first pairings in `both` where the target's copy is newer
        new_links: list[dict] = []
        changed: list[dict] = []
        for contact in keyed:
            link = links.get(contact.id)
            if link is not None:
                if contact.digest == getattr(link, f"{src}_hash"):
                    report.unchanged += 1
                    continue
                target_id = getattr(link, f"{dst}_id")
                current = target.get(target_id) if self._direction == "both" else None
                if current and current.digest != getattr(link, f"{dst}_hash") and current.modified > contact.modified:
                    report.skip(f"changed later in {target.label}")  # that side's phase carries it
                    continue
                updates.append(_Write(contact, self._fields(src, contact), link.id, target_id))
                continue
            match = matches.pop(contact.key_email or "", None) or matches.pop(contact.key_phone or "", None)
            if match is None:
                creates.append(_Write(contact, self._fields(src, contact)))
            elif match.digest == contact.digest:
                report.unchanged += 1
                new_links.append(self._link(src, contact, dst, match))
            elif self._direction == "both" and match.modified > contact.modified:
                reverse.append(_Write(match, self._fields(dst, match), None, contact.id))  # the newer goes back
            else:
                updates.append(_Write(contact, self._fields(src, contact), None, match.id))
        for write in creates + updates + reverse:
            if self.dry and not self._preview_full():
                action = "create" if write.target_id is None else "update"
                where = self._sides[src].label if write in reverse else target.label
                self.report.preview.append({"action": action, "in": where, **_shown(write.source)})
        if self.dry:
            report.created += len(creates)
            report.updated += len(updates)
            self.report.sides[src].updated += len(reverse)
            return [], []
        for write, result in self._write(src, reverse, create=False):
            self.report.sides[src].updated += 1
            new_links.append(self._link(dst, write.source, src, result))
        for write, result in self._write(dst, creates, create=True):
            report.created += 1
            new_links.append(self._link(src, write.source, dst, result))
        for write, result in self._write(dst, updates, create=False):
            report.updated += 1
            values = self._link(src, write.source, dst, result)
            if write.link_id is None:
                new_links.append(values)
            else:
                changed.append({"id": write.link_id, **values})
        return new_links, changed

    def _matches(self, dst: str, unlinked: list[Contact]) -> dict[str, Contact]:
        """The target's contacts with these e-mails or phones, not yet paired with another, by key."""
        if not unlinked:
            return {}
        emails = sorted({c.key_email for c in unlinked if c.key_email})
        phones = sorted({c.key_phone for c in unlinked if c.key_phone and not c.key_email})
        found = self._sides[dst].find(emails, phones)
        dst_col = ContactLink.crm_id if dst == "crm" else ContactLink.chatwoot_id
        with self._factory() as session:
            paired = set(
                session.scalars(
                    select(dst_col).where(ContactLink.sync_id == self._sync_id, dst_col.in_([c.id for c in found]))
                )
            )
        keyed: dict[str, Contact] = {}
        for contact in found:
            if contact.id in paired:
                continue
            for key in (contact.key_email, contact.key_phone):
                if key and key not in keyed:
                    keyed[key] = contact
        return keyed

    def _fields(self, src: str, contact: Contact) -> Fields:
        crm_id = contact.id if src == "crm" else None
        crm_url = self._sides["crm"].link_for(contact.id) if src == "crm" else None
        return Fields(contact.name, contact.key_email, contact.key_phone, crm_id, crm_url)

    def _write(self, dst: str, writes: list[_Write], create: bool):
        """Each write with its result; a refused contact is counted as failed, a refused side ends the run."""
        side = self._sides[dst]
        pending = [writes] if writes else []
        while pending:
            batch = pending.pop(0)
            try:
                if create:
                    results = side.create([w.fields for w in batch])
                else:
                    results = side.update([(w.target_id or "", w.fields) for w in batch])
            except SyncSideError as exc:
                if not getattr(exc, "per_item", False):
                    raise
                if len(batch) > 1:  # find the one refused, writing the rest
                    pending[:0] = [[w] for w in batch]
                    continue
                self.report.fail(dst, str(exc))
                continue
            for write, result in zip(batch, results, strict=False):
                if isinstance(result, SyncSideError):  # refused on its own in a batch the rest went through
                    self.report.fail(dst, str(result))
                else:
                    yield write, result

    @staticmethod
    def _link(src: str, source: Contact, dst: str, target: Contact) -> dict:
        return {
            f"{src}_id": source.id,
            f"{dst}_id": target.id,
            f"{src}_hash": source.digest,
            f"{dst}_hash": target.digest,
            f"{src}_modified": source.modified,
            f"{dst}_modified": target.modified,
            "email": source.key_email or target.key_email,
            "phone": source.key_phone or target.key_phone,
            "updated_at": utcnow(),
        }

    def _commit(
        self, src: str, new: list[dict], changed: list[dict], position: dict, cursor: str | None, done: bool
    ) -> None:
        with self._factory.begin() as session:
            if new:
                session.execute(insert(ContactLink), [{"sync_id": self._sync_id, **v} for v in new])
            if changed:
                session.execute(update(ContactLink), changed)
            sync = session.get(ContactSync, self._sync_id)
            if sync is None:
                return
            progress = dict(sync.progress or {})
            if done:
                progress.pop(src, None)
                if src == "crm":
                    sync.crm_cursor = cursor
                else:
                    sync.chatwoot_cursor = cursor
            else:
                progress[src] = position
            sync.progress = progress


def _shown(contact: Contact) -> dict:
    return {"id": contact.id, "name": contact.name, "email": contact.key_email, "phone": contact.key_phone}


BudgetLeft = Callable[[], float]
