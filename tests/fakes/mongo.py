"""A MongoDB server for the tests, on 127.0.0.1: mockupdb (MongoDB's own wire-protocol server library) with
the answers a connection test asks for, and a real SCRAM-SHA-256 check of the password.

    fake = FakeMongo(users={"reporting": ("secret", READ_ONLY)})
    ... fake.port ...
    fake.close()

- The handshake (``isMaster`` / ``hello``) answers as a primary, or as a replica set member (set_name).
- ``saslStart`` / ``saslContinue``: SCRAM-SHA-256 as RFC 7677 has it (the client's proof is verified
  against the stored password, the server signature sent back), so a wrong password fails with code 18
  AuthenticationFailed, as MongoDB does.
- ``ping``, ``buildInfo`` (version), ``listDatabases`` (refused with code 13 when list_databases is False),
  ``connectionStatus`` (the signed-in user and its privileges, per connection).
- With users, any command but the handshake and authentication needs a signed-in connection (code 13).
- silent=True: accepts connections and never answers anything.
Every command's name is recorded in ``commands`` (so a test can see nothing was written).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

import mockupdb

ITERATIONS = 4096  # pymongo refuses fewer for SCRAM-SHA-256
READ_ONLY = [{"resource": {"db": "sales", "collection": ""}, "actions": ["find", "listCollections"]}]
READ_WRITE = [
    {"resource": {"db": "sales", "collection": ""}, "actions": ["find", "insert", "update", "remove"]},
]
ROOT = [{"resource": {"anyResource": True}, "actions": ["anyAction"]}, {"resource": {"db": ""}, "actions": ["insert"]}]
_HANDSHAKE = ("ismaster", "hello")
_AUTH = ("saslstart", "saslcontinue")


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _fields(message: bytes) -> dict[str, str]:
    return dict(part.split("=", 1) for part in message.decode().split(",") if "=" in part)


class _MockupDB(mockupdb.MockupDB):
    """Listens on the literal 127.0.0.1 (mockupdb binds "localhost"), and stops quietly right after starting:
    mockupdb's accept thread fails with EBADF when stop() closed the socket before the thread first used it."""

    def __init__(self, **options):
        super().__init__(**options)
        self._address = ("127.0.0.1", None)

    def _accept_loop(self):
        try:
            super()._accept_loop()
        except OSError:
            if not self._stopped:
                raise


class FakeMongo:
    def __init__(
        self,
        *,
        users: dict[str, tuple[str, list[dict]]] | None = None,
        version: str = "7.0.14",
        databases: tuple[str, ...] = ("admin", "config", "local", "sales"),
        list_databases: bool = True,
        set_name: str | None = None,
        silent: bool = False,
        ssl: bool = False,
    ):
        self.users = users or {}
        self.version, self.databases, self.list_databases = version, databases, list_databases
        self.set_name = set_name
        self.commands: list[str] = []
        self.passwords_checked: list[str] = []  # user names whose proof was verified (right or wrong)
        self._signed_in: dict[int, str] = {}  # client port -> user
        self._conversations: dict[int, dict] = {}
        self._lock = threading.Lock()
        self.server = _MockupDB(request_timeout=60, ssl=ssl)
        if not silent:
            self.server.autoresponds(self._answer)
        self.port = self.server.run()

    @property
    def seed(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.stop()

    # ----- answers ------------------------------------------------------------------------------

    def _answer(self, request) -> bool:
        name = (request.command_name or "").lower()
        with self._lock:
            self.commands.append(request.command_name or "")
        if name in _HANDSHAKE:
            return request.replies(self._hello(request))
        if name == "saslstart":
            return self._sasl_start(request)
        if name == "saslcontinue":
            return self._sasl_continue(request)
        user = self._signed_in.get(request.client_port)
        if self.users and user is None and name not in ("ping", "buildinfo", "connectionstatus"):
            return request.command_err(code=13, errmsg=f"command {request.command_name} requires authentication")
        if name == "ping":
            return request.ok()
        if name == "buildinfo":
            return request.ok(version=self.version, versionArray=[int(p) for p in self.version.split(".")] + [0])
        if name == "listdatabases":
            if not self.list_databases:
                return request.command_err(
                    code=13, errmsg="not authorized on admin to execute command { listDatabases: 1 }"
                )
            return request.ok(databases=[{"name": db} for db in self.databases])
        if name == "connectionstatus":
            privileges = self.users[user][1] if user else []
            info = {
                "authenticatedUsers": [{"user": user, "db": "admin"}] if user else [],
                "authenticatedUserRoles": [],
                "authenticatedUserPrivileges": privileges,
            }
            return request.ok(authInfo=info)
        return request.command_err(code=59, errmsg=f"no such command: '{request.command_name}'")

    def _hello(self, request) -> dict:
        doc = {"ismaster": True, "isWritablePrimary": True, "minWireVersion": 0, "maxWireVersion": 21}
        if self.set_name:
            doc |= {"setName": self.set_name, "hosts": [self.seed, "169.254.169.254:27017"], "me": self.seed}
        if "saslSupportedMechs" in request.doc:
            doc["saslSupportedMechs"] = ["SCRAM-SHA-256"]
        return doc

    # ----- SCRAM-SHA-256 ------------------------------------------------------------------------

    def _sasl_start(self, request) -> bool:
        if request.doc.get("mechanism") != "SCRAM-SHA-256":
            return request.command_err(code=334, errmsg="Unsupported mechanism")
        client_first = bytes(request.doc["payload"])
        bare = client_first.split(b",", 2)[2]
        fields = _fields(bare)
        user = fields["n"].replace("=2C", ",").replace("=3D", "=")
        salt = secrets.token_bytes(16)
        nonce = fields["r"] + base64.b64encode(secrets.token_bytes(18)).decode()
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={ITERATIONS}".encode()
        conversation = 1 + len(self._conversations)
        self._conversations[conversation] = {"user": user, "salt": salt, "bare": bare, "first": server_first}
        return request.ok(conversationId=conversation, done=False, payload=server_first)

    def _sasl_continue(self, request) -> bool:
        state = self._conversations.pop(request.doc.get("conversationId"), None)
        if state is None:
            return request.command_err(code=17, errmsg="No SASL session state found")
        final = bytes(request.doc["payload"])
        without_proof, _, proof_part = final.rpartition(b",p=")
        user = state["user"]
        self.passwords_checked.append(user)
        known = self.users.get(user)
        auth_message = state["bare"] + b"," + state["first"] + b"," + without_proof
        if known is not None:
            salted = hashlib.pbkdf2_hmac("sha256", known[0].encode(), state["salt"], ITERATIONS)
            client_key = _hmac(salted, b"Client Key")
            signature = _hmac(_h(client_key), auth_message)
            proof = base64.b64decode(proof_part)
            recovered = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
            if hmac.compare_digest(_h(recovered), _h(client_key)):
                self._signed_in[request.client_port] = user
                server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
                payload = b"v=" + base64.b64encode(server_signature)
                return request.ok(conversationId=request.doc["conversationId"], done=True, payload=payload)
        return request.command_err(code=18, errmsg="Authentication failed.")
