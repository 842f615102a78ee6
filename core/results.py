"""TestResult, what a connection test returns, with its helpers: ProviderFailure and without_secrets; and
RefreshResult, what a provider's token refresh returns (core.integrations.refresh)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.redaction import Redactor, redact_data


@dataclass
class TestResult:
    success: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    __test__ = False  # not a pytest test class

    def as_dict(self) -> dict:
        return {
            "success": self.success,
            "message": self.message,
            "details": self.details,
            "error": self.error,
        }


class ProviderFailure(Exception):
    """Raised inside a provider's test to stop at the first failed step; becomes a failed TestResult."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}


def without_secrets(result: TestResult, secrets: Iterable[str | None]) -> TestResult:
    """The result with every secret (in every form core.redaction knows) replaced, in message, error and
    details: the one way a TestResult is redacted.

    A provider applies it to its own result, because a server's error text can echo what it was sent;
    the integration service redacts again, but a provider does not rely on that.
    """
    redactor = Redactor(secrets)
    if not redactor:
        return result

    def scrub(text):
        return redactor(text) if isinstance(text, str) else text

    details = redact_data(result.details, redactor)
    return TestResult(result.success, scrub(result.message), details, scrub(result.error))


@dataclass(frozen=True)
class RefreshResult:
    """The outcome of refreshing an integration's OAuth access token ahead of its expiry.

    message is a plain sentence without any secret that says what happened and what to do next.
    needs_reconnect: the provider refused the refresh token or the client (invalid_grant, a revoked or
    unknown client), so only a person can repair it, by authorizing again or entering new credentials;
    retrying will not help. error is a short code: the provider's OAuth error ("invalid_grant"), or
    "http_<status>", "timeout", "unreachable", "bad_answer", "busy", "not_found", ...
    """

    ok: bool
    message: str
    expires_at: datetime | None = None  # naive UTC: when the new access token expires (None: not said)
    rotated: bool = False  # the provider issued a new refresh token, handed to TestContext.rotate_secret
    needs_reconnect: bool = False
    error: str | None = None

    def redacted(self, secrets: Iterable[str | None]) -> RefreshResult:
        """This result with every secret (in every form core.redaction knows) replaced in message and error."""
        redactor = Redactor(secrets)
        if not redactor:
            return self
        error = redactor(self.error) if self.error else self.error
        return replace(self, message=redactor(self.message), error=error)
