"""Huey consumers: threads inside an app process (the embedded default) or a `manage.py worker` process.

Every consumer runs Huey's periodic scheduler, which enqueues the engine's tick every ENGINE_TICK_SECONDS;
the tick does its work only in the consumer holding the scheduler lease (core.engine.scheduler), so
exactly one plans however many consumers run.
"""

from __future__ import annotations

import logging

from huey import Huey
from huey.consumer import Consumer, Scheduler

from core.words import count

log = logging.getLogger(__name__)

POLL_AT_MOST = 1.0  # seconds an idle worker thread waits between looks at the queue
STOP_WAIT = 30.0  # seconds a graceful stop waits for checks under way (each is bounded by its deadline)


def _scheduler_every(seconds: int) -> type[Scheduler]:
    """Huey's scheduler enqueues periodic tasks once a minute; the tick may be shorter (demos, tests)."""
    return type("TickScheduler", (Scheduler,), {"periodic_task_seconds": seconds})


class _Consumer(Consumer):
    def __init__(self, huey: Huey, workers: int, tick_seconds: int, periodic: bool = True, **options):
        self.scheduler_class = _scheduler_every(tick_seconds)
        super().__init__(
            huey,
            workers=workers,
            worker_type="thread",
            periodic=periodic,
            max_delay=POLL_AT_MOST,
            scheduler_interval=1,
            shutdown_timeout=STOP_WAIT,
            **options,
        )


class EmbeddedConsumer(_Consumer):
    """Runs inside a server that owns the process's signals (Streamlit's): installs no handlers of its own."""

    def _set_signal_handlers(self) -> None:
        pass


def start_embedded(huey: Huey, workers: int, tick_seconds: int, periodic: bool = True) -> EmbeddedConsumer:
    """Consumer threads in this process; periodic=False runs jobs without taking part in the schedule
    (the CLI's check-all, for as long as it waits)."""
    consumer = EmbeddedConsumer(huey, workers, tick_seconds, periodic)
    consumer.start()
    log.info("task engine: %s in this process", count(workers, "worker thread"))
    return consumer


def stop_embedded(consumer: EmbeddedConsumer) -> None:
    consumer.stop(graceful=True)


def run_worker(huey: Huey, workers: int, tick_seconds: int) -> None:
    """`manage.py worker`: run until SIGINT or SIGTERM (a graceful stop lets checks under way finish)."""
    _Consumer(huey, workers, tick_seconds, graceful_signal="TERM").run()
