"""The fake Chatwoot's answers: a reply, Chatwoot's JSON error bodies, and a refusal raised from deep in a
handler (shared by tests/fakes/chatwoot.py and tests/fakes/chatwoot_bots.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    forced: bool = False
    routed: bool = True


def _json(status: int, payload: Any) -> _Reply:
    return _Reply(status, json.dumps(payload).encode())


def _error(status: int, message: str) -> _Reply:
    return _json(status, {"error": message})


def _invalid(message: str, *attributes: str) -> _Reply:
    """Chatwoot's answer to a record that fails validation (ActiveRecord::RecordInvalid)."""
    return _json(422, {"message": message, "attributes": list(attributes)})


def _empty_ok() -> _Reply:
    """Rails' `head :ok`."""
    return _Reply(200, b"", None)


class _Refusal(Exception):
    def __init__(self, reply: _Reply):
        self.reply = reply
