"""TemplateService: the built-in and stored templates, their preview, and their runs on the task engine.

A run is recorded with one row per step (its values without secrets), then handed to the engine's
"template_run" task. The task runs the steps in order, skipping those already done, storing each result;
the first failure stops the run with the service's sentence, and resume() hands it out again from that
step. A step's secret values (the webhook's signing secret) are kept encrypted on the run, bound to it,
only until the run is done; they are never in a result, an export or the audit trail.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.audit import Actor
from core.crypto import FieldCipher
from core.engine.scheduler import claim_marker
from core.errors import ConsoleError, NotFoundError, PermissionDeniedError, ValidationError
from core.models import EngineLease, Template, TemplateRun, TemplateRunStep, User, utcnow
from core.templates.schema import BUILTINS, TemplateStep, TemplateView, check_template, parse_json
from core.templates.steps import STEP_KINDS, Services, StepContext, check_values

log = logging.getLogger(__name__)
RUN_DEADLINE = timedelta(minutes=5)  # a run's job stops starting steps after this (resume continues)
TASK_NAME = "template_run"


@dataclass(frozen=True)
class PreviewStep:
    position: int
    kind: str
    title: str
    description: str
    values: dict[str, Any]  # secrets left out


@dataclass(frozen=True)
class RunStepView:
    position: int
    kind: str
    title: str
    status: str  # pending | done | failed
    result: dict[str, Any]
    message: str | None


@dataclass(frozen=True)
class RunView:
    id: int
    template_name: str
    template_version: int
    status: str  # pending | running | failed | done
    message: str | None
    steps: tuple[RunStepView, ...]

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.status == "done")

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def script(self) -> str | None:
        return next((s.result.get("script") for s in self.steps if s.result.get("script")), None)


def _stored_view(row: Template) -> TemplateView:
    steps = tuple(TemplateStep(s["kind"], s.get("title", ""), dict(s.get("values", {}))) for s in row.steps)
    return TemplateView(f"stored:{row.id}", row.name, row.version, row.description, steps, builtin=False)


def _sealed_context(run_id: int) -> bytes:
    return f"template_runs:{run_id}:sealed".encode()


class TemplateService:
    def __init__(self, factory: sessionmaker, cipher: FieldCipher, services: Services):
        self._factory = factory
        self._cipher = cipher
        self._services = services
        self._enqueue: Callable[[int], object] | None = None
        self.identity = f"templates:{id(self)}"

    def bind(self, add_job: Callable[[str, Callable[[int], None]], Callable[[int], object]]) -> None:
        """Register execute() as the engine's "template_run" task (TaskEngine.add_job)."""
        self._enqueue = add_job(TASK_NAME, self.execute)

    # ----- templates ----------------------------------------------------------------------------------

    def list(self, actor: Actor) -> list[TemplateView]:
        with self._factory() as session:
            stored = [_stored_view(r) for r in session.scalars(select(Template).order_by(Template.name))]
        return [*BUILTINS.values(), *stored]

    def get(self, actor: Actor, key: str) -> TemplateView:
        if key in BUILTINS:
            return BUILTINS[key]
        row_id = self._stored_id(key)
        with self._factory() as session:
            row = session.get(Template, row_id) if row_id else None
            if row is None:
                raise NotFoundError("That template does not exist (any more).")
            return _stored_view(row)

    @staticmethod
    def _stored_id(key: str) -> int | None:
        prefix, _, number = (key or "").partition(":")
        return int(number) if prefix == "stored" and number.isdigit() else None

    def _admin(self, actor: Actor) -> None:
        if not actor.is_admin:
            raise PermissionDeniedError("Only administrators create, change or delete templates.")

    def save(self, actor: Actor, data: Any, key: str | None = None) -> TemplateView:
        """Create a stored template, or replace the one of ``key`` (its version goes up). Administrators only.
        Raises PermissionDeniedError, ValidationError (field paths), NotFoundError."""
        self._admin(actor)
        name, version, description, steps = check_template(data)
        if any(name == b.name for b in BUILTINS.values()):
            raise ValidationError({"name": f"{name} is a built-in template: give yours another name."})
        raw = [{"kind": s.kind, "title": s.title, "values": s.values} for s in steps]
        try:
            with self._factory.begin() as session:
                row_id = self._stored_id(key) if key else None
                row = session.get(Template, row_id) if row_id else None
                if key and row is None:
                    raise NotFoundError("That template does not exist (any more).")
                if row is None:
                    row = Template(name=name, version=version)
                    session.add(row)
                else:
                    row.version = max(version, row.version + 1)
                row.name, row.description, row.steps, row.updated_by = name, description, raw, actor.username
                session.flush()
                audit.record(session, actor, "template.save", "success", details={"template": name})
                return _stored_view(row)
        except IntegrityError:
            raise ValidationError({"name": f"Another template is named {name}: choose another name."}) from None

    def delete(self, actor: Actor, key: str) -> None:
        self._admin(actor)
        row_id = self._stored_id(key)
        with self._factory.begin() as session:
            row = session.get(Template, row_id) if row_id else None
            if row is None:
                raise NotFoundError("Built-in templates cannot be deleted; that template does not exist.")
            audit.record(session, actor, "template.delete", "success", details={"template": row.name})
            session.delete(row)

    def export(self, actor: Actor, key: str) -> str:
        """The template as JSON text (no secret: a template holds none)."""
        return json.dumps(self.get(actor, key).as_json(), indent=2, ensure_ascii=False)

    def import_json(self, actor: Actor, text: str) -> TemplateView:
        """Store the template of ``text`` (replacing a stored one of the same name). Administrators only."""
        self._admin(actor)
        data = parse_json(text)
        with self._factory() as session:
            existing = session.scalar(select(Template.id).where(Template.name == str(data.get("name", "")).strip()))
        return self.save(actor, data, f"stored:{existing}" if existing else None)

    # ----- preview and runs ----------------------------------------------------------------------------

    def preview(self, actor: Actor, key: str, values: list[dict[str, Any]] | None = None) -> list[PreviewStep]:
        """Every step that will run, with the person's values over the template's defaults (secrets left
        out). Raises ValidationError naming "steps[i].field"."""
        steps, _ = self._resolve(self.get(actor, key), values)
        return [
            PreviewStep(i, kind, title, STEP_KINDS[kind].describe(clean), _public(kind, clean))
            for i, (kind, title, clean) in enumerate(steps)
        ]

    def _resolve(self, template: TemplateView, values: list[dict[str, Any]] | None):
        values = values or []
        steps, errors = [], {}
        for position, step in enumerate(template.steps):
            kind = STEP_KINDS.get(step.kind)
            if kind is None:  # a kind removed since the template was stored
                errors[f"steps[{position}].kind"] = f"This console has no step kind {step.kind!r} any more."
                continue
            given = values[position] if position < len(values) and isinstance(values[position], dict) else {}
            clean, problems = check_values(kind, {**step.values, **given}, f"steps[{position}].")
            errors.update(problems)
            steps.append((step.kind, step.title or kind.label, clean))
        if errors:
            raise ValidationError(errors)
        return steps, errors

    def apply(self, actor: Actor, key: str, values: list[dict[str, Any]] | None = None) -> int:
        """Record a run of the template with these values and hand it to the engine; the run's id."""
        template = self.get(actor, key)
        steps, _ = self._resolve(template, values)
        hidden = {str(i): _secrets(kind, clean) for i, (kind, _, clean) in enumerate(steps) if _secrets(kind, clean)}
        with self._factory.begin() as session:
            run = TemplateRun(
                user_id=actor.id,
                template_key=template.key,
                template_name=template.name,
                template_version=template.version,
            )
            session.add(run)
            session.flush()
            if hidden:
                run.sealed = self._cipher.encrypt(json.dumps(hidden), _sealed_context(run.id))
            for position, (kind, title, clean) in enumerate(steps):
                session.add(
                    TemplateRunStep(
                        run_id=run.id, position=position, kind=kind, title=title[:200], values=_public(kind, clean)
                    )
                )
            audit.record(session, actor, "template.run", "success", details={"template": template.name, "run": run.id})
            run_id = run.id
        self._hand_out(run_id)
        return run_id

    def _hand_out(self, run_id: int) -> None:
        if self._enqueue is None:
            return
        try:
            self._enqueue(run_id)
        except Exception as exc:  # the run is recorded; Resume hands it out again
            log.warning("could not hand template run %s to the queue: %s", run_id, type(exc).__name__)
            with self._factory.begin() as session:
                run = session.get(TemplateRun, run_id)
                if run is not None:
                    run.status = "failed"
                    run.message = "The task engine did not take the run. Resume it in a moment."

    def progress(self, actor: Actor, run_id: int) -> RunView:
        with self._factory() as session:
            run = self._own_run(session, actor, run_id)
            rows = session.scalars(
                select(TemplateRunStep).where(TemplateRunStep.run_id == run_id).order_by(TemplateRunStep.position)
            )
            steps = tuple(RunStepView(r.position, r.kind, r.title, r.status, dict(r.result), r.message) for r in rows)
            return RunView(run.id, run.template_name, run.template_version, run.status, run.message, steps)

    def resume(self, actor: Actor, run_id: int, secrets: dict[int, dict[str, str]] | None = None) -> None:
        """Hand a failed run out again: it continues from the step that failed (done steps are skipped).
        ``secrets`` ({position: {field: value}}) gives secret values again, e.g. after a key rotation."""
        with self._factory.begin() as session:
            run = self._own_run(session, actor, run_id)
            if run.status == "done":
                return
            if secrets:
                run.sealed = self._cipher.encrypt(
                    json.dumps({str(k): v for k, v in secrets.items()}), _sealed_context(run.id)
                )
            run.status, run.message, run.finished_at = "pending", None, None
        self._hand_out(run_id)

    def _own_run(self, session: Session, actor: Actor, run_id: int) -> TemplateRun:
        run = session.get(TemplateRun, run_id)
        if run is None or run.user_id != actor.id:
            raise NotFoundError("That template run does not exist, or is not yours.")
        return run

    # ----- the job -------------------------------------------------------------------------------------

    def execute(self, run_id: int) -> None:
        """The engine's template_run task: run the steps not done yet, in order. Safe to run twice: one
        holder at a time (a marker lease), and each step is idempotent and recorded when done."""
        started = time.monotonic()
        if not claim_marker(self._factory, f"template:{run_id}", self.identity, utcnow() + RUN_DEADLINE):
            return  # another worker runs it
        try:
            self._execute(run_id, started)
        finally:
            with self._factory.begin() as session:
                lease = session.get(EngineLease, f"template:{run_id}")
                if lease is not None and lease.holder == self.identity:
                    session.delete(lease)

    def _execute(self, run_id: int, started: float) -> None:
        with self._factory.begin() as session:
            run = session.get(TemplateRun, run_id)
            if run is None or run.status in ("done", "failed"):
                return
            user = session.get(User, run.user_id)
            if user is None or not user.active:
                run.status, run.message = "failed", "The person who started the run can no longer sign in."
                return
            actor = Actor(user.id, user.username, user.role, user.tier)
            run.status = "running"
            sealed = run.sealed
            rows = session.scalars(
                select(TemplateRunStep).where(TemplateRunStep.run_id == run_id).order_by(TemplateRunStep.position)
            ).all()
            steps = [(r.id, r.position, r.kind, dict(r.values), r.status, dict(r.result)) for r in rows]
        hidden: dict[str, dict[str, str]] = {}
        if sealed:
            try:
                hidden = json.loads(self._cipher.decrypt(sealed, _sealed_context(run_id)))
            except Exception:  # a rotated key ring, or a damaged value
                hidden = {}
        context = StepContext(actor, self._services)
        for step_id, position, kind_key, values, status, result in steps:
            kind = STEP_KINDS.get(kind_key)
            if status == "done":
                context.state.update({k: result[k] for k in (kind.produces if kind else ()) if k in result})
                continue
            if time.monotonic() - started > RUN_DEADLINE.total_seconds():
                self._stop(run_id, step_id, "The run took too long and stopped before this step. Resume it.")
                return
            if kind is None:
                self._stop(run_id, step_id, f"This console has no step kind {kind_key!r} any more.")
                return
            merged = {**values, **hidden.get(str(position), {})}
            self._mark_started(step_id)
            try:
                output = kind.run(context, merged)
            except ConsoleError as exc:
                self._stop(run_id, step_id, str(exc))
                return
            except Exception as exc:
                log.exception("template run %s: step %s failed", run_id, position)
                self._stop(run_id, step_id, f"The step failed unexpectedly ({type(exc).__name__}). Resume the run.")
                return
            clean = {k: v for k, v in output.items() if k not in {f.name for f in kind.fields if f.secret}}
            with self._factory.begin() as session:
                row = session.get(TemplateRunStep, step_id)
                if row is not None:
                    row.status, row.result, row.message, row.finished_at = "done", clean, None, utcnow()
            context.state.update({k: output[k] for k in kind.produces if k in output})
        with self._factory.begin() as session:
            run = session.get(TemplateRun, run_id)
            if run is not None:
                run.status, run.message, run.sealed, run.finished_at = "done", None, None, utcnow()

    def _mark_started(self, step_id: int) -> None:
        with self._factory.begin() as session:
            row = session.get(TemplateRunStep, step_id)
            if row is not None:
                row.status, row.started_at, row.message = "pending", utcnow(), None

    def _stop(self, run_id: int, step_id: int, message: str) -> None:
        with self._factory.begin() as session:
            row = session.get(TemplateRunStep, step_id)
            if row is not None:
                row.status, row.message, row.finished_at = "failed", message[:2000], utcnow()
            run = session.get(TemplateRun, run_id)
            if run is not None:
                run.status, run.message, run.finished_at = "failed", message[:2000], utcnow()


def _secret_names(kind: str) -> set[str]:
    return {f.name for f in STEP_KINDS[kind].fields if f.secret}


def _public(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in _secret_names(kind)}


def _secrets(kind: str, values: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in values.items() if k in _secret_names(kind) and v}


__all__ = ["TASK_NAME", "PreviewStep", "RunStepView", "RunView", "TemplateService"]
