"""SyncService: contact syncs between one CRM integration and one Chatwoot integration of the same owner.

Who may: an integration's owner or an administrator (IntegrationService's rules: someone else's integration
is reported as missing). A sync's tier limit and schedule follow its owner's tier (core.tiers:
LIMITS["contact_syncs"], SYNC_INTERVAL_SECONDS). The Chatwoot integration's "Sync contacts" switch
(features.syncContacts) turns every sync into that account on or off: a sync cannot be created into an
account with it off, and a run of one does nothing and reports why.

A run holds the sync's lease ("sync:<id>" in engine_leases), so two workers never run one sync at once;
it is bounded in time (RUN_SECONDS: every outbound call inside that deadline, and it stops between pages
when 80% of it is spent, status "partial", resuming there next time).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core import audit, tiers
from core.audit import Actor
from core.crypto import DecryptionError
from core.engine.scheduler import claim_marker
from core.errors import ConflictError, NotFoundError, ValidationError
from core.http import deadline
from core.integrations.configuration import secret_values
from core.integrations.service import IntegrationService, IntegrationView
from core.models import ContactSync, EngineLease, Integration, SyncRun, User, utcnow
from core.redaction import redact
from core.sync.chatwoot import ChatwootContacts
from core.sync.contacts import ContactSide
from core.sync.errors import SyncSideError
from core.sync.runner import OutOfTime, Report, SyncRunner

DIRECTIONS = {
    "crm_to_chatwoot": "CRM to Chatwoot",
    "chatwoot_to_crm": "Chatwoot to CRM",
    "both": "Both ways",
}
# The CRM records a sync reads and writes; leads only where the CRM has them (its Provider.sync_objects).
CRM_OBJECTS = {"contacts": "Contacts", "leads": "Leads"}
RUN_SECONDS = 600.0
PREVIEW_DEFAULT = 20
PLAN_BATCH = 500
log = logging.getLogger(__name__)


class SyncBusyError(ConflictError):
    pass


@dataclass(frozen=True)
class RunView:
    id: int
    sync_id: int
    trigger: str
    status: str
    message: str
    report: dict
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class SyncView:
    id: int
    crm_integration_id: int
    crm_name: str
    crm_provider: str
    chatwoot_integration_id: int
    chatwoot_name: str
    direction: str
    next_run_at: datetime | None
    last_run: RunView | None
    crm_object: str = "contacts"

    @property
    def direction_label(self) -> str:
        return DIRECTIONS.get(self.direction, self.direction)

    @property
    def crm_object_label(self) -> str:
        return CRM_OBJECTS.get(self.crm_object, self.crm_object)


def _run_view(row: SyncRun) -> RunView:
    return RunView(
        row.id, row.sync_id, row.trigger, row.status, row.message, row.report or {}, row.started_at, row.finished_at
    )


def sync_switch_on(configuration: dict) -> bool:
    """The Chatwoot integration's "Sync contacts" (features.syncContacts; on unless switched off)."""
    features = configuration.get("features")
    return not isinstance(features, dict) or features.get("syncContacts", True) is not False


class SyncService:
    def __init__(self, factory: sessionmaker, integrations: IntegrationService, run_seconds: float = RUN_SECONDS):
        self._factory = factory
        self._integrations = integrations
        self.run_seconds = run_seconds
        self.enqueue: Callable[[int], object] | None = None  # the engine's sync_run (app_context wires it)

    # ----- reading --------------------------------------------------------------------------------

    def _load(self, actor: Actor, sync_id: int) -> ContactSync:
        with self._factory() as session:
            row = session.get(ContactSync, sync_id)
            if row is None or (not actor.is_admin and row.owner_id != actor.id):
                raise NotFoundError(f"Sync {sync_id} was not found.")
            session.expunge(row)
            return row

    def list(self, actor: Actor, integration_id: int | None = None) -> list[SyncView]:
        query = select(ContactSync).order_by(ContactSync.id)
        if not actor.is_admin:
            query = query.where(ContactSync.owner_id == actor.id)
        if integration_id is not None:
            query = query.where(
                (ContactSync.crm_integration_id == integration_id)
                | (ContactSync.chatwoot_integration_id == integration_id)
            )
        with self._factory() as session:
            rows = list(session.scalars(query))
            ids = {r.crm_integration_id for r in rows} | {r.chatwoot_integration_id for r in rows}
            names = dict(session.execute(select(Integration.id, Integration.name).where(Integration.id.in_(ids))).all())
            providers = dict(
                session.execute(select(Integration.id, Integration.provider).where(Integration.id.in_(ids))).all()
            )
            newest = {
                run.sync_id: run
                for run in session.scalars(
                    select(SyncRun).where(
                        SyncRun.id.in_(
                            select(func.max(SyncRun.id))
                            .where(SyncRun.sync_id.in_([r.id for r in rows]))
                            .group_by(SyncRun.sync_id)
                        )
                    )
                )
            }
            return [
                SyncView(
                    r.id,
                    r.crm_integration_id,
                    names.get(r.crm_integration_id, "?"),
                    providers.get(r.crm_integration_id, "?"),
                    r.chatwoot_integration_id,
                    names.get(r.chatwoot_integration_id, "?"),
                    r.direction,
                    r.next_run_at,
                    _run_view(newest[r.id]) if r.id in newest else None,
                    r.crm_object,
                )
                for r in rows
            ]

    def reports(self, actor: Actor, sync_id: int, limit: int = 20) -> list[RunView]:
        self._load(actor, sync_id)
        with self._factory() as session:
            rows = session.scalars(
                select(SyncRun).where(SyncRun.sync_id == sync_id).order_by(SyncRun.id.desc()).limit(limit)
            )
            return [_run_view(r) for r in rows]

    # ----- writing --------------------------------------------------------------------------------

    def crm_choices(self, actor: Actor) -> list[IntegrationView]:
        """The person's own active CRM integrations whose contacts the console can sync."""
        return self._integrations.owned_by(actor, actor.username, self.contact_providers(), active_only=True)

    def partners(self, actor: Actor, view: IntegrationView) -> list[IntegrationView]:
        """The same owner's integrations a sync could pair this one with: a Chatwoot integration's CRMs
        whose contacts sync, a CRM's Chatwoot integrations."""
        providers = self.contact_providers() if view.provider == "CHATWOOT" else ("CHATWOOT",)
        return self._integrations.owned_by(actor, view.owner, providers, leave_out=view.id)

    def contact_providers(self) -> list[str]:
        """The CRMs whose contacts the console can sync (their provider offers a contacts side)."""
        return [p.key for p in self._integrations.catalog if p.contacts is not None]

    def crm_objects(self, provider_key: str) -> tuple[str, ...]:
        """The CRM records a sync with this provider may use: contacts, and leads where the CRM has them."""
        catalog = self._integrations.catalog
        return catalog.get(provider_key).sync_objects if provider_key in catalog else ("contacts",)

    def create(
        self,
        actor: Actor,
        crm_integration_id: int,
        chatwoot_integration_id: int,
        direction: str,
        crm_object: str = "contacts",
    ) -> SyncView:
        if direction not in DIRECTIONS:
            raise ValidationError({"direction": "Choose a direction: " + ", ".join(DIRECTIONS) + "."})
        if crm_object not in CRM_OBJECTS:
            raise ValidationError({"crm_object": "Choose the CRM records: " + ", ".join(CRM_OBJECTS) + "."})
        crm = self._integrations.get(actor, crm_integration_id)  # NotFoundError for someone else's
        chatwoot = self._integrations.get(actor, chatwoot_integration_id)
        catalog = self._integrations.catalog
        provider = catalog.get(crm.provider) if crm.provider in catalog else None
        if provider is None or provider.contacts is None:
            raise ValidationError({"crm": f"{crm.name} is not a CRM whose contacts the console can sync yet."})
        if crm_object not in provider.sync_objects:
            raise ValidationError(
                {
                    "crm_object": f"{provider.name} has no {crm_object} the console can sync: choose "
                    + " or ".join(provider.sync_objects)
                    + "."
                }
            )
        if chatwoot.provider != "CHATWOOT":
            raise ValidationError({"chatwoot": f"{chatwoot.name} is not a Chatwoot integration."})
        if crm.owner != chatwoot.owner:
            raise ValidationError({"chatwoot": "Both integrations of a sync must belong to the same person."})
        if not sync_switch_on(chatwoot.configuration):
            raise ValidationError(
                {
                    "chatwoot": f"Contact sync is switched off for {chatwoot.name}. Turn on Sync contacts in its "
                    "settings first."
                }
            )
        with self._factory.begin() as session:
            owner = session.scalars(select(User).where(User.username == crm.owner).with_for_update()).one()
            tier = tiers.Tier.parse(owner.tier)
            used = session.scalar(select(func.count(ContactSync.id)).where(ContactSync.owner_id == owner.id)) or 0
            tiers.check_limit("contact_syncs", tier, int(used), "contact syncs")
            interval = tiers.SYNC_INTERVAL_SECONDS[tier]
            row = ContactSync(
                owner_id=owner.id,
                crm_integration_id=crm.id,
                chatwoot_integration_id=chatwoot.id,
                direction=direction,
                crm_object=crm_object,
                next_run_at=utcnow() + timedelta(seconds=interval) if interval else None,
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                raise ValidationError(
                    {"chatwoot": f"{crm.name} and {chatwoot.name} are already synced. Change or delete that sync."}
                ) from None
            audit.record(
                session,
                actor,
                "sync.created",
                "success",
                crm.id,
                {"chatwoot": chatwoot.id, "direction": direction, "crmObject": crm_object},
            )
            sync_id = row.id
        return next(v for v in self.list(actor) if v.id == sync_id)

    def delete(self, actor: Actor, sync_id: int) -> None:
        """Removes the sync, its links and reports; no contact on either side is touched."""
        row = self._load(actor, sync_id)
        with self._factory.begin() as session:
            session.execute(delete(ContactSync).where(ContactSync.id == sync_id))
            audit.record(session, actor, "sync.deleted", "success", row.crm_integration_id, {"sync": sync_id})

    # ----- running --------------------------------------------------------------------------------

    def request_run(self, actor: Actor, sync_id: int) -> None:
        """Sync now, on the engine (the page does not wait); without an engine, run here."""
        self._load(actor, sync_id)
        if self.enqueue is None:
            self.run(sync_id, "manual")
        else:
            self.enqueue(sync_id)

    def run_now(self, actor: Actor, sync_id: int, trigger: str = "manual") -> RunView:
        self._load(actor, sync_id)
        view = self.run(sync_id, trigger)
        if view is None:
            raise SyncBusyError(f"Sync {sync_id} is running right now. Wait for it to finish and look at its report.")
        return view

    def dry_run(self, actor: Actor, sync_id: int, limit: int = PREVIEW_DEFAULT) -> Report:
        """The first `limit` changes a run would make, from where the sync stands; nothing is written."""
        row = self._load(actor, sync_id)
        sides, secrets, off = self._open(row)
        if off:
            raise ValidationError({"sync": off})
        runner = SyncRunner(self._factory, row.id, row.direction, sides, preview_limit=max(1, limit))
        try:
            with deadline(self.run_seconds):
                return runner.run()
        except SyncSideError as exc:
            raise ValidationError({"sync": redact(str(exc), secrets)}) from None

    def run(self, sync_id: int, trigger: str) -> RunView | None:
        """One run under the sync's lease; None while another holds it. Never raises for a side's failure:
        the stored report says what happened."""
        holder = f"sync-run:{time.monotonic_ns()}"
        name = f"sync:{sync_id}"
        if not claim_marker(self._factory, name, holder, utcnow() + timedelta(seconds=self.run_seconds + 60)):
            return None
        try:
            return self._run(sync_id, trigger)
        finally:
            with self._factory.begin() as session:
                session.execute(
                    update(EngineLease)
                    .where(EngineLease.name == name, EngineLease.holder == holder)
                    .values(until=None)
                    .execution_options(synchronize_session=False)
                )

    def _run(self, sync_id: int, trigger: str) -> RunView | None:
        with self._factory() as session:
            row = session.get(ContactSync, sync_id)
            if row is None:
                return None
            session.expunge(row)
        with self._factory.begin() as session:
            record = SyncRun(sync_id=sync_id, trigger=trigger, status="running", message="")
            session.add(record)
            session.flush()
            run_id = record.id
        secrets: list[str] = []
        report = Report()
        try:
            sides, secrets, off = self._open(row)
            if off:
                return self._finish(run_id, "off", off, report)
            started = time.monotonic()
            runner = SyncRunner(self._factory, sync_id, row.direction, sides, deadline=started + 0.8 * self.run_seconds)
            report = runner.report
            with deadline(self.run_seconds):
                runner.run()
        except OutOfTime:
            return self._finish(run_id, "partial", "The run used its time; the next run carries on from here.", report)
        except (SyncSideError, ValidationError, NotFoundError) as exc:
            return self._finish(run_id, "failed", redact(str(exc), secrets), report)
        except Exception as exc:  # a crash: what was committed stays, the next run resumes from there
            log.warning("contact sync %s failed: %s", sync_id, type(exc).__name__)
            message = f"The run stopped unexpectedly ({type(exc).__name__}). The next run carries on from here."
            return self._finish(run_id, "failed", message, report)
        return self._finish(run_id, "done", _summary(report), report)

    def _finish(self, run_id: int, status: str, message: str, report: Report) -> RunView:
        with self._factory.begin() as session:
            record = session.get(SyncRun, run_id)
            assert record is not None
            record.status, record.message, record.report = status, message, report.as_dict()
            record.finished_at = utcnow()
            session.flush()
            return _run_view(record)

    def _open(self, row: ContactSync) -> tuple[dict[str, ContactSide], list[str], str | None]:
        """Both sides, opened with their stored credentials; (sides, secrets, why it is off or None)."""
        with self._factory() as session:
            crm = session.get(Integration, row.crm_integration_id)
            chatwoot = session.get(Integration, row.chatwoot_integration_id)
            if crm is None or chatwoot is None:
                raise NotFoundError("An integration of this sync was deleted. Delete the sync.")
            rows = [
                (i.id, i.name, i.provider, i.is_active, copy.deepcopy(i.configuration or {})) for i in (crm, chatwoot)
            ]
        (crm_id, crm_name, crm_key, crm_active, crm_stored), (cw_id, cw_name, _, cw_active, cw_stored) = rows
        if not sync_switch_on(cw_stored):
            return (
                {},
                [],
                f"Contact sync is switched off for {cw_name}: nothing was synced. Turn on Sync contacts there.",
            )
        for name, active in ((crm_name, crm_active), (cw_name, cw_active)):
            if not active:
                return {}, [], f"{name} is paused: nothing was synced. Resume it to sync again."
        integrations = self._integrations
        catalog = integrations._catalog
        try:
            crm_plain = integrations._configurations.plain(catalog.get(crm_key), crm_stored, crm_id)
            cw_plain = integrations._configurations.plain(catalog.get("CHATWOOT"), cw_stored, cw_id)
        except DecryptionError:
            raise ValidationError({"sync": "A stored secret could not be decrypted. Re-enter it and save."}) from None
        secrets = secret_values(catalog.get(crm_key), crm_plain) + secret_values(catalog.get("CHATWOOT"), cw_plain)
        ends = time.monotonic() + self.run_seconds

        def budget_left() -> float:
            return ends - time.monotonic()

        provider = catalog.get(crm_key)
        assert provider.contacts is not None
        crm_http = integrations._http_session()
        context = integrations.stored_context(crm_http, crm_id, crm_stored)
        crm_side = provider.contacts(crm_plain, context, budget_left, crm_object=row.crm_object)
        cw_side = ChatwootContacts(
            cw_plain["baseUrl"],
            cw_plain["apiKey"],
            int(cw_plain["accountId"]),
            integrations._http_session(),
            budget_left,
        )
        return {"crm": crm_side, "chatwoot": cw_side}, secrets, None

    # ----- scheduling -----------------------------------------------------------------------------

    def plan_due(self, now: datetime) -> list[int]:
        """As the one scheduler: syncs due now, each moved on by its owner's tier interval (FREE: never)."""
        with self._factory.begin() as session:
            rows = session.execute(
                select(ContactSync.id, ContactSync.next_run_at, User.tier)
                .join(User, ContactSync.owner_id == User.id)
                .where((ContactSync.next_run_at.is_(None)) | (ContactSync.next_run_at <= now))
                .order_by(ContactSync.next_run_at)
                .limit(PLAN_BATCH)
            ).all()
            due = []
            for sync_id, next_run_at, tier in rows:
                interval = tiers.SYNC_INTERVAL_SECONDS[tiers.Tier.parse(tier)]
                if interval is None:
                    continue
                same = (
                    ContactSync.next_run_at.is_(None) if next_run_at is None else ContactSync.next_run_at == next_run_at
                )
                moved = session.execute(
                    update(ContactSync)
                    .where(ContactSync.id == sync_id, same)
                    .values(next_run_at=now + timedelta(seconds=interval))
                    .execution_options(synchronize_session=False)
                )
                # A sync without a time yet (its owner's tier just gained a schedule) starts an interval on.
                if next_run_at is not None and cast(CursorResult, moved).rowcount == 1:
                    due.append(sync_id)
            return due


def _summary(report: Report) -> str:
    parts = []
    for side, label in (("chatwoot", "Chatwoot"), ("crm", "the CRM")):
        counts = report.sides[side]
        if counts.created or counts.updated or counts.failed:
            parts.append(f"{label}: {counts.created} created, {counts.updated} updated, {counts.failed} failed")
    return ("; ".join(parts) + ".") if parts else "Nothing to change."
