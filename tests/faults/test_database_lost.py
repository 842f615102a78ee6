"""A worker that loses its PostgreSQL server backs off, says so, and recovers when the server answers again.

The worker reaches PostgreSQL through a TCP relay of the test's own on 127.0.0.1; cutting the relay closes
every connection and refuses new ones, as a server that went away does (terminating the worker's backends
would not do: the pool's pre-ping replaces a dead connection without the worker noticing). SQLite has no
server to lose: there tests/contract/test_engine.py's in-process test covers the backing off."""

from __future__ import annotations

import contextlib
import re
import socket
import threading

import pytest
from sqlalchemy.engine import make_url

from core.models import utcnow
from tests.conftest import new_queue_path, wait_for
from tests.fakes import slow_hosts
from tests.fakes.slow_hosts import SlowHosts
from tests.faults.conftest import Queue, checked_since, due_now, history, is_postgresql, plans_run_out, worker_env

TOKEN = "bt-faults-" + "D1b2L3o4S5t6"
BACKS_OFF = re.compile(r"the database did not answer \((\w+)\); this worker backs off for (\d+) s")
# When the cut comes between jobs, the first to notice is the scheduler's tick (it tries again next tick).
TICK_WAITS = re.compile(r"the scheduler could not reach the database \((\w+)\); it tries again next tick")


class Relay:
    """127.0.0.1:<port> relayed to a target port; cut() drops every connection and hangs up on new ones,
    open() relays again. The port stays bound throughout: closing it would let another process's
    outgoing connection take it as its local port meanwhile, and it could not be bound again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cut = False
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)
        listener.settimeout(0.1)  # the accept loop looks whether it was closed this often
        self.port = listener.getsockname()[1]
        self._listener: socket.socket | None = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def open(self) -> None:
        self._cut = False

    def cut(self) -> None:
        self._cut = True
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            if self._cut:  # the database "went away": hang up at once
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relay(database_url):
    if not is_postgresql(database_url):
        pytest.skip(
            "needs PostgreSQL (TEST_DATABASE_URL=postgresql://...): a SQLite file has no server to lose; "
            "tests/contract/test_engine.py covers the backing off in-process"
        )
    url = make_url(database_url)
    found = Relay((url.host or "127.0.0.1", url.port or 5432))
    yield found
    found.close()


def test_a_worker_that_loses_the_database_backs_off_says_so_and_recovers(ctx, owner, relay, start_worker, tmp_path):
    hosts = SlowHosts(1, delay=0.05).start()
    try:
        view = slow_hosts.add_crm(ctx, owner, hosts.urls[0], "steady", TOKEN)
        due_now(ctx.factory, [view.id])
        relayed = make_url(ctx.settings.database_url).set(port=relay.port).render_as_string(hide_password=False)
        queue = Queue("sqlite", path=new_queue_path())
        worker = start_worker(worker_env(relayed, queue, tmp_path, CHECK_INTERVAL_SECONDS="1"))
        wait_for(lambda: history(ctx.factory, view.id), 30, what="a first check")

        relay.cut()  # the database server is gone for the worker (the test still reaches it directly)
        said = wait_for(
            lambda: BACKS_OFF.search(worker.text()) or TICK_WAITS.search(worker.text()), 30, what="the worker saying so"
        )
        assert said.group(1) == "OperationalError"
        if said.re is BACKS_OFF:
            assert 2 <= int(said.group(2)) <= 10  # core.engine.tasks.DATABASE_RETRY: seconds, not a busy loop
        assert worker.alive(), worker.tail()

        relay.open()
        restored = utcnow()
        # A check that was under way when the server went holds its lease until the lease expires (minutes;
        # its retry finds the lease taken and leaves it): move the clock past it, as for a killed worker.
        plans_run_out(ctx.factory, [view.id], leases_too=True)
        wait_for(lambda: checked_since(ctx.factory, view.id, restored), 40, what="a check after the database came back")
        assert worker.alive(), worker.tail()
        assert ctx.tasks.heartbeat().holder is not None and f":{worker.pid}:" in (ctx.tasks.heartbeat().holder or "")
    finally:
        hosts.stop()
