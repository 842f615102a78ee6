"""A fake PostgreSQL server on 127.0.0.1 for what the local server cannot show: a password check (it trusts
127.0.0.1) and a pg_hba refusal of an unencrypted connection."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

SSL_REQUEST, GSS_REQUEST = 80877103, 80877104


class FakePostgres:
    """Speaks just enough of the PostgreSQL protocol: refuse SSL, take the startup packet, then either ask
    for a cleartext password and reject it (28P01), or reject the unencrypted connection (pg_hba)."""

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.startups: list[dict[str, str]] = []
        self.passwords: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self):
        self._server.close()

    def _serve(self):
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, ConnectionError):
                self._handle(conn)

    @staticmethod
    def _read(conn, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    @staticmethod
    def _error(code: str, message: str) -> bytes:
        fields = b"".join(
            k + v.encode() + b"\0" for k, v in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
        )
        body = fields + b"\0"
        return b"E" + struct.pack("!i", len(body) + 4) + body

    def _handle(self, conn):
        while True:
            length, code = struct.unpack("!ii", self._read(conn, 8))
            if code in (SSL_REQUEST, GSS_REQUEST):
                conn.sendall(b"N")
                continue
            parts = self._read(conn, length - 8).split(b"\0")
            self.startups.append({k.decode(): v.decode() for k, v in zip(parts[0::2], parts[1::2], strict=False) if k})
            break
        user, db = self.startups[-1].get("user"), self.startups[-1].get("database")
        if self.behaviour == "ssl_required":
            message = f'no pg_hba.conf entry for host "127.0.0.1", user "{user}", database "{db}", no encryption'
            conn.sendall(self._error("28000", message))
            return
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        tag, length = struct.unpack("!ci", self._read(conn, 5))
        assert tag == b"p"
        self.passwords.append(self._read(conn, length - 4).rstrip(b"\0").decode())
        conn.sendall(self._error("28P01", f'password authentication failed for user "{user}"'))
