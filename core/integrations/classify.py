"""Stand-in until the classification branch lands: the class of a check from its result alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from core.results import TestResult


class CheckClass(StrEnum):
    OK = "ok"
    AUTH = "auth"
    PERMISSION = "permission"
    NETWORK = "network"
    TLS = "tls"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    PROVIDER_ERROR = "provider_error"
    CONFIGURATION = "configuration"


@dataclass
class Observed:
    status: int | None = None


@dataclass(frozen=True)
class Classified:
    check_class: CheckClass
    http_status: int | None = None
    code: str | None = None
    needs_reconnect: bool = False


@contextlib.contextmanager
def observe() -> Iterator[Observed]:
    yield Observed()


def classify(result: TestResult, seen: Observed | None) -> Classified:
    if result.success:
        return Classified(CheckClass.OK)
    status = result.details.get("status") if isinstance(result.details.get("status"), int) else None
    if status == 401:
        return Classified(CheckClass.AUTH, status, None, True)
    if status == 403:
        return Classified(CheckClass.PERMISSION, status)
    if status == 429:
        return Classified(CheckClass.RATE_LIMITED, status)
    if status is not None and status >= 500:
        return Classified(CheckClass.PROVIDER_ERROR, status)
    return Classified(CheckClass.NETWORK, status)
