"""Fake customer hosts for health checks: one HTTP server per loopback address (127.0.0.1, .2, ...,
127.0.0.250, then 127.0.1.1, ...).

Each answers every request after a set delay with a set status, and counts how many requests it
served at once, so a test or benchmark can prove the per-host cap held. Run in-process for tests, or
as `python -m tests.fakes.slow_hosts N DELAY_MS` (prints its addresses as JSON, then serves; GET
/_stats on any host returns every host's counts, /_overall the counts over every host, /_reset zeroes
them), so a benchmark's servers don't share its GIL.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HostCounter:
    def __init__(self):
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most_at_once = 0
        self.served = 0

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.served += 1


def loopback(index: int) -> str:
    """The address of host `index`: 127.0.0.1 .. 127.0.0.250, then 127.0.1.1 .. (never .0 or .255)."""
    return f"127.0.{index // 250}.{index % 250 + 1}"


class SlowHosts:
    """count servers on 127.0.0.1 .. 127.0.0.<count>, each answering after delay seconds."""

    def __init__(self, count: int, delay: float, status: int = 200):
        self.delay, self.status = delay, status
        self.failing: set[str] = set()  # addresses that answer 401 instead
        self.broken: set[str] = set()  # addresses that answer 503 instead
        self.delays: dict[str, float] = {}  # addresses that answer after another delay than `delay`
        self.overall = HostCounter()  # every host's requests together (the global cap)
        self.servers: list[ThreadingHTTPServer] = []
        self.counters: dict[str, HostCounter] = {}
        for index in range(count):
            address = loopback(index)
            self.counters[address] = HostCounter()
            server = ThreadingHTTPServer((address, 0), self._handler(address))
            server.daemon_threads = True
            server.request_queue_size = 128
            self.servers.append(server)

    def _handler(self, address: str):
        hosts = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/_stats":
                    return self._reply(200, hosts.stats())
                if self.path == "/_overall":
                    overall = hosts.overall
                    return self._reply(200, {"most_at_once": overall.most_at_once, "served": overall.served})
                if self.path == "/_reset":
                    hosts.reset()
                    return self._reply(200, {"ok": True})
                counter = hosts.counters[address]
                counter.enter()
                hosts.overall.enter()
                try:
                    time.sleep(hosts.delays.get(address, hosts.delay))
                finally:
                    hosts.overall.leave()
                    counter.leave()
                status = 401 if address in hosts.failing else 503 if address in hosts.broken else hosts.status
                return self._reply(status, {"ok": status == 200})

            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args):
                pass

        return Handler

    @property
    def urls(self) -> list[str]:
        return [f"http://{s.server_address[0]}:{s.server_address[1]}" for s in self.servers]

    def stats(self) -> dict:
        return {a: {"most_at_once": c.most_at_once, "served": c.served} for a, c in self.counters.items()}

    def reset(self) -> None:
        for counter in [self.overall, *self.counters.values()]:
            with counter._lock:
                counter.most_at_once, counter.served = counter.in_flight, 0

    def start(self, poll_interval: float = 0.05) -> SlowHosts:
        """Serve; poll_interval is how soon stop() is noticed (hundreds of hosts: poll less often)."""
        for server in self.servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def add_crm(ctx, actor, url: str, name: str, token: str):
    """A Custom CRM integration (Bearer token) whose connection test calls `url`/health."""
    config = {
        "name": "Acme CRM",
        "apiEndpoint": url,
        "authType": "BEARER",
        "healthPath": "/health",
        "credentials": json.dumps({"token": token}),
    }
    return ctx.integrations.create(actor, name, "CUSTOM", config)


def main() -> None:
    count, delay_ms = int(sys.argv[1]), float(sys.argv[2])
    hosts = SlowHosts(count, delay_ms / 1000).start(poll_interval=0.05 if count <= 50 else 1.0)
    print(json.dumps(hosts.urls), flush=True)
    try:
        sys.stdin.read()  # serve until the parent closes our stdin
    finally:
        hosts.stop()


if __name__ == "__main__":
    main()
