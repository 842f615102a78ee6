"""The database pool admits every check thread of a task consumer at once (a smaller pool made threads
wait 30 s for a connection, then fail their job)."""

from __future__ import annotations

import threading

from sqlalchemy import text


def test_every_check_thread_can_hold_a_connection_at_once(ctx):
    threads = ctx.settings.check_concurrency + 2  # the consumer's threads, its tick and the page
    all_in = threading.Barrier(threads, timeout=20)
    errors: list[BaseException] = []

    def hold():
        try:
            with ctx.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                all_in.wait()  # every thread holds its connection here at the same time
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=hold) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=40)
    assert errors == []
