"""The one outbound HTTP session factory: timeouts, bounded retries, plain errors, redaction."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

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

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, policy: HttpPolicy):
        self._policy = policy
        retry = _CappedRetry(
            total=policy.max_retries,
            connect=policy.max_retries,
            # A read timeout is not retried (it already cost the whole read budget). False, not 0: with 0
            # urllib3 wraps it in MaxRetryError and requests reports a ConnectionError, not a ReadTimeout.
            read=False,
            status=policy.max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
            backoff_factor=policy.backoff_factor,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        super().__init__(max_retries=retry)

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._policy.timeout
        return super().send(request, **kwargs)


# Headers a redirect to another origin keeps. requests drops only Authorization there; a credential in
# any other header (Chatwoot's api_access_token, a CRM's X-API-Key) would be handed to the new host.
_CROSS_ORIGIN_SAFE_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "user-agent", "connection"}
    | {"content-type", "content-length", "transfer-encoding"}
)


class ResponseTooLargeError(requests.RequestException):
    """The answer was larger than any answer we ask for can be."""


class _Session(requests.Session):
    def __init__(self, policy: HttpPolicy):
        super().__init__()
        self._policy = policy

    @property
    def policy(self) -> HttpPolicy:
        """The timeouts this session enforces; non-HTTP clients (databases) use the same ones."""
        return self._policy

    def request(self, method, url, **kwargs):
        # Read the body here, bounded in size and in total time: a server that drips one byte
        # every few seconds never trips the read timeout, and a huge answer must not fill memory.
        kwargs["stream"] = True
        response = super().request(method, url, **kwargs)
        deadline = time.monotonic() + self._policy.connect_timeout + 2 * self._policy.read_timeout
        chunks, size = [], 0
        try:
            while chunk := response.raw.read1(64 * 1024, decode_content=True):  # what has arrived, no more
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ResponseTooLargeError(f"answer larger than {MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise requests.exceptions.ReadTimeout("the answer took too long to arrive")
                chunks.append(chunk)
        finally:
            response.close()
        response._content = b"".join(chunks)
        return response

    def rebuild_auth(self, prepared_request, response):
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in [n for n in prepared_request.headers if n.lower() not in _CROSS_ORIGIN_SAFE_HEADERS]:
                del prepared_request.headers[name]


def make_session(policy: HttpPolicy | None = None) -> requests.Session:
    """Every outbound call goes through a session made here."""
    policy = policy or HttpPolicy()
    session = _Session(policy)
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
    if isinstance(exc, ResponseTooLargeError):
        return f"{service} sent a far larger answer than expected. Check the address points at its API."
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
    try:
        return response.json()
    except ValueError:
        return None


def retry_after_seconds(response: requests.Response) -> int | None:
    """Retry-After in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, round((when - datetime.now(UTC)).total_seconds()))


def wait_phrase(response: requests.Response) -> str:
    """'Wait 30 seconds and try again.', from the server's Retry-After when it gives one."""
    seconds = retry_after_seconds(response)
    if seconds is None:
        return "Wait a minute and try again."
    if seconds <= 1:
        return "Try again in a moment."
    return f"Wait {seconds} seconds and try again."
