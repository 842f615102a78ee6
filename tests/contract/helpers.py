"""Helpers the provider contract tests share: what pytest-httpserver received, and how a client signs in."""

from __future__ import annotations

import base64


def requests_to(httpserver, path: str):
    """The requests httpserver received for path, in order."""
    return [request for request, _ in httpserver.log if request.path == path]


def basic(user: str, password: str) -> str:
    """The Authorization header of HTTP Basic authentication."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
