"""The greeting bot's secrets: the receiver address, its keyed hash, the bot token's binding, the self-test
signature. Shared by core.chatwoot.bots (staff side) and core.chatwoot.bot_events (the receiver)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from core.crypto import FieldCipher
from core.http import address_problem
from core.paths import BOT_PATH

SECRET_BYTES = 32
MAX_BODY = 128 * 1024  # an agent-bot event is a few kilobytes; more is refused unread
SELF_TEST_WINDOW = 120  # seconds a signed self-test event is accepted


def new_receiver_id() -> str:
    return secrets.token_hex(8)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


_SECRET_INFO = b"chatwoot-bot:receiver-secret"


def secret_hash(cipher: FieldCipher, secret: str) -> str:
    key = cipher.derived_key(_SECRET_INFO)
    return hmac.new(key, secret.encode("utf-8"), hashlib.sha256).hexdigest()


def secret_matches(cipher: FieldCipher, secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` is the one ``stored_hash`` was made of, under any key of the ring (a hash written
    before a rotation keeps working while its key stays in the ring). Constant time per key."""
    matched = False
    for key in cipher.derived_keys(_SECRET_INFO):
        candidate = hmac.new(key, secret.encode("utf-8"), hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(candidate, stored_hash or "")
    return matched


def token_context(bot_id: int) -> bytes:
    """The associated data binding a bot's encrypted access token to its row."""
    return f"chatwoot_bots:{int(bot_id)}:access_token".encode()


def self_test_signature(cipher: FieldCipher, receiver_id: str, nonce: str, at: int) -> str:
    key = cipher.derived_key(b"chatwoot-bot:self-test")
    return hmac.new(key, f"{receiver_id}.{nonce}.{at}".encode(), hashlib.sha256).hexdigest()


def self_test_proof(cipher: FieldCipher, nonce: str) -> str:
    key = cipher.derived_key(b"chatwoot-bot:self-test-proof")
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def receiver_url(public_base_url: str, receiver_id: str, secret: str) -> str:
    return f"{public_base_url.rstrip('/')}{BOT_PATH}{receiver_id}/{secret}"


def receiver_prefix(public_base_url: str, receiver_id: str) -> str:
    """The receiver's address without its secret: what the page shows, and how a bot is recognised."""
    return f"{public_base_url.rstrip('/')}{BOT_PATH}{receiver_id}/"


def _host_problem(host: str) -> str | None:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan", ".home.arpa")):
        return "a name only this machine or its local network knows"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None if "." in host else "a name without a domain, only known on a local network"
    return address_problem(address)


def reachability_problem(public_base_url: str | None, chatwoot_base_url: str) -> str | None:
    """Why Chatwoot's server could not reach the receiver, as a sentence; None when nothing says so.

    Only what the addresses show (no DNS is asked): PUBLIC_BASE_URL unset, or naming this machine or a
    private network while the Chatwoot server is on the public internet."""
    if not public_base_url:
        return (
            "PUBLIC_BASE_URL is not set, so the console has no address Chatwoot could send the bot's events to. "
            "Set PUBLIC_BASE_URL to the console's public address (such as https://console.example.com) and "
            "restart it."
        )
    console_host = urlsplit(public_base_url).hostname or ""
    chatwoot_host = urlsplit(chatwoot_base_url).hostname or ""
    problem = _host_problem(console_host)
    if problem and not _host_problem(chatwoot_host):
        return (
            f"PUBLIC_BASE_URL ({public_base_url}) names {problem}, but the Chatwoot server {chatwoot_host} is on "
            "the public internet and cannot reach it. Set PUBLIC_BASE_URL to an address Chatwoot's server can "
            "reach (a public host name, or a tunnel or proxy to the console)."
        )
    return None
