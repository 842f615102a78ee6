"""The HMAC signing of the console's outgoing webhooks, shared by the webhook provider (providers/webhook.py,
which documents the headers and shows the receiver's verification code) and the signed alert channel
(core/alerts/channels.py): one signature, so one verifier checks both."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 300
MIN_SECRET_LENGTH = 24

HEADER_EVENT = "X-Console-Event"
HEADER_DELIVERY = "X-Console-Delivery"
HEADER_TIMESTAMP = "X-Console-Timestamp"
HEADER_SIGNATURE = "X-Console-Signature"


def generate_secret() -> str:
    """A new signing secret: whsec_ and 43 URL-safe characters (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Console-Signature value: v1= and the hex HMAC-SHA256 of '{timestamp}.{body}'."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def signed_headers(secret: str, event: str, delivery_id: str, timestamp: str, body: bytes) -> dict[str, str]:
    """The headers of one signed delivery of `body` (the exact bytes sent)."""
    return {
        "Content-Type": "application/json",
        HEADER_EVENT: event,
        HEADER_DELIVERY: delivery_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: signature(secret, timestamp, body),
    }
