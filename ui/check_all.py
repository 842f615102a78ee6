"""A check-all running in the background of one browser session, so the page stays live and can cancel it.

The job lives in st.session_state (this browser tab's run); the per-integration leases it takes live in
the database, so another process never checks the same integration at the same time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from core.audit import Actor
from core.errors import ConsoleError
from core.integrations.check_all import CheckAll, CheckAllProgress, CheckAllSummary
from core.integrations.checks import CheckAllScope

log = logging.getLogger(__name__)


@dataclass
class CheckJob:
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: CheckAllProgress | None = None
    summary: CheckAllSummary | None = None
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def fraction(self) -> float:
        return self.progress.fraction if self.progress else 0.0

    def text(self) -> str:
        if self.cancel.is_set():
            running = self.progress.running if self.progress else 0
            return f"Cancelling: letting the {running} check(s) already under way finish…"
        if self.progress is None:
            return "Finding the integrations to check…"
        return self.progress.line()


def start(check_all: CheckAll, actor: Actor, scope: CheckAllScope) -> CheckJob:
    job = CheckJob()

    def run() -> None:
        try:
            job.summary = check_all.run(actor, scope, on_progress=_remember(job), cancel=job.cancel)
        except ConsoleError as exc:
            job.error = str(exc)
        except Exception as exc:  # the page must hear about it; the details go to the log only
            log.exception("check-all failed")
            job.error = f"The check-all stopped unexpectedly ({type(exc).__name__}). Try again in a moment."
        finally:
            job.finished.set()

    threading.Thread(target=run, name="check-all", daemon=True).start()
    return job


def _remember(job: CheckJob):
    def on_progress(progress: CheckAllProgress) -> None:
        job.progress = progress

    return on_progress
