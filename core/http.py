"""The one outbound HTTP session factory: timeouts, bounded retries, plain errors, redaction."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

REDACTED = "[redacted]"
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_SECONDS = 10
MAX_BODY_BYTES = 2 * 1024 * 1024
USER_AGENT = "IntegrationsConsole/1.0"


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_retries: int = 2
    backoff_factor: float = 0.3

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


class _CappedRetry(Retry):
    """Honours Retry-After, but never waits longer than a page can afford."""

    def get_retry_after(self, response):  # noqa: ANN001 - urllib3's signature
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, policy: HttpPolicy):
        self._policy = policy
        retry = _CappedRetry(
            total=policy.max_retries,
            connect=policy.max_retries,
            read=0,  # a read timeout is not retried: it already cost the whole read budget
            status=policy.max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
            backoff_factor=policy.backoff_factor,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        super().__init__(max_retries=retry)

    def send(self, request, **kwargs):  # noqa: ANN001
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._policy.timeout
        return super().send(request, **kwargs)


def make_session(policy: HttpPolicy | None = None) -> requests.Session:
    """Every outbound call goes through a session made here."""
    policy = policy or HttpPolicy()
    session = requests.Session()
    adapter = _TimeoutAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = 5
    session.trust_env = False  # no proxy or .netrc from the environment leaks credentials
    return session


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (and its obvious encodings) in text."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        for form in {secret, requests.utils.quote(secret, safe=""), json.dumps(secret)[1:-1]}:
            text = text.replace(form, REDACTED)
    return text


class OutboundError(Exception):
    """A call failed; the message is a plain sentence with no secret in it."""


def describe_exception(exc: requests.RequestException, service: str) -> str:
    """Map a transport failure to a sentence a person can act on."""
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            f"The secure connection to {service} failed (TLS certificate problem). "
            "Check the address uses the right host name and a valid certificate."
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"{service} did not accept a connection in time. Check the address and that the server is up."
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"{service} accepted the connection but did not answer in time. Try again later."
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return f"{service} redirected too many times. Check the base address."
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return f"The address of {service} is not a valid web address."
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
            return f"The host name of {service} could not be found (DNS). Check the address for typos."
        if "Connection refused" in text:
            return f"{service} refused the connection. Check the address and port, and that the server is running."
        return f"Could not connect to {service}. Check the address and your network."
    return f"The request to {service} failed. Try again, and check the address if it keeps failing."


def read_json(response: requests.Response) -> object | None:
    """The response body as JSON, or None when it is not JSON (an HTML error page, say)."""
    if len(response.content) > MAX_BODY_BYTES:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def retry_after_seconds(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None
