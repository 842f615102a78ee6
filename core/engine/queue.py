"""The Huey instance: one queue name for every process of an installation, stored in Redis or SQLite."""

from __future__ import annotations

from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from redis import ConnectionPool

QUEUE_NAME = "integrations-console"  # the default of ENGINE_QUEUE_NAME


def make_huey(redis_url: str | None, queue_path: str, name: str = QUEUE_NAME) -> Huey:
    """RedisHuey when redis_url is given (workers on several machines share it), else SqliteHuey in a file.

    Results are not kept: every task writes what it did to the console's database, where pages read it.
    Times are naive UTC, as everywhere in the console.
    """
    if redis_url:
        # A dead Redis must not hang a page that enqueues: connect and read within a few seconds.
        pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
        return RedisHuey(name, connection_pool=pool, results=False, utc=True)
    Path(queue_path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=queue_path, results=False, utc=True, timeout=5)
