"""The three ways an alert goes out. Each ``send(target, message)`` returns when the alert was handed over,
or raises DeliveryError with a plain sentence (every secret redacted) and whether trying again may help.

- EmailChannel: SMTP (smtplib) with one total deadline for the whole conversation (SMTP_TIMEOUT), plain,
  STARTTLS or implicit TLS (SMTP_SECURITY), the certificate checked against the host name.
- SlackChannel: ``POST {"text": ...}`` to a Slack-compatible incoming webhook (Slack, Mattermost,
  Rocket.Chat) through the console's outbound session (core.http: address guard, deadline).
- SignedWebhookChannel: the alert's JSON payload, signed exactly as the webhook integration signs its
  deliveries (core.signing; providers/webhook.py documents the headers and shows the verifier).
"""

from __future__ import annotations

import functools
import json
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import requests

from core.alerts.messages import AlertMessage
from core.errors import ConsoleError
from core.http import DeadlineSocket, deadline, describe_exception, hold_tls_to_deadline
from core.redaction import redact
from core.settings import SmtpSettings
from core.signing import signed_headers

CHANNELS = ("email", "slack", "webhook")
CHANNEL_LABELS = {"email": "E-mail", "slack": "Slack webhook", "webhook": "Signed webhook"}
MAX_ANSWER_SHOWN = 120


class DeliveryError(ConsoleError):
    """An alert was not delivered; the message says why and what to do, with no secret in it."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Target:
    """Where one alert goes: an e-mail address or a URL, and for a signed webhook its signing secret."""

    address: str
    secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # a Slack or webhook URL is a credential too
        return "Target(…)"

    @property
    def secrets(self) -> list[str]:
        """What must never show in a message: the secret, a URL and its path (the Slack token is in it)."""
        found = [self.secret] if self.secret else []
        parts = urlsplit(self.address)
        if parts.scheme in ("http", "https"):
            found.append(self.address)
            if len(parts.path) > 1:
                found.append(parts.path)
            if parts.query:
                found.append(parts.query)
        return [s for s in found if s]


def url_hint(url: str) -> str:
    """What may be shown of a URL: its scheme and host (the path or query may hold the credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}" if parts.netloc else "an address"


# ----- e-mail --------------------------------------------------------------------------------------


def _connect(host: str, port: int, timeout: float | None, source: Any) -> socket.socket:
    """A TCP socket held to the current deadline on every read and write (core.http.DeadlineSocket)."""
    error: OSError | None = None
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = DeadlineSocket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if source:
                sock.bind(source)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError("no address to connect to")


class _SMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return _connect(host, port, timeout, self.source_address)


class _SMTPS(smtplib.SMTP_SSL):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.context.wrap_socket(_connect(host, port, timeout, self.source_address), server_hostname=host)


class EmailChannel:
    """E-mail over SMTP. ``tls_context`` replaces the default (system CAs, host name checked), for a
    private CA; it is held to the deadline as well."""

    name = "email"

    def __init__(self, smtp: SmtpSettings, tls_context: ssl.SSLContext | None = None):
        self._smtp = smtp
        self._tls_context = tls_context

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        """Made for the first TLS connection, not with the channel: loading the system's CAs takes a
        noticeable part of every start, and most processes never send a mail."""
        return hold_tls_to_deadline(self._tls_context or ssl.create_default_context())

    def _timeout_sentence(self, where: str) -> str:
        return f"{where} did not answer within {self._smtp.timeout:g} seconds (SMTP_TIMEOUT). It is tried again later."

    def _secrets(self, target: Target) -> list[str]:
        return [s for s in (self._smtp.password, *target.secrets) if s]

    def send(self, target: Target, message: AlertMessage) -> None:
        smtp = self._smtp
        if not smtp.host:
            raise DeliveryError(
                "E-mail alerts cannot be sent: SMTP_HOST is not set. Set SMTP_HOST (and SMTP_PORT, "
                "SMTP_SECURITY, SMTP_FROM, and SMTP_USERNAME/SMTP_PASSWORD if the server needs them), then restart.",
                retryable=False,
            )
        mail = EmailMessage()
        mail["From"] = smtp.from_address
        mail["To"] = target.address
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(idstring=message.id, domain=smtp.from_address.rsplit("@", 1)[-1])
        mail["X-Console-Alert"] = message.kind
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text)
        where = f"The mail server {smtp.host}:{smtp.port}"
        try:
            with deadline(smtp.timeout):
                client: smtplib.SMTP
                if smtp.security == "tls":
                    client = _SMTPS(smtp.host, smtp.port, timeout=smtp.timeout, context=self._tls)
                else:
                    client = _SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
                try:
                    if smtp.security == "starttls":
                        client.starttls(context=self._tls)
                    if smtp.username:
                        client.login(smtp.username, smtp.password or "")
                    client.send_message(mail)
                finally:
                    try:
                        client.quit()
                    except (smtplib.SMTPException, OSError):
                        client.close()
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib reports a read that timed out this way
                raise DeliveryError(self._timeout_sentence(where), retryable=True) from None
            raise DeliveryError(redact(_smtp_sentence(exc, where, target), self._secrets(target)), True) from None
        except smtplib.SMTPException as exc:
            raise DeliveryError(
                redact(_smtp_sentence(exc, where, target), self._secrets(target)), _retryable(exc)
            ) from None
        except ssl.SSLCertVerificationError:
            raise DeliveryError(
                f"{where} presented a certificate that could not be verified for {smtp.host}. Check SMTP_HOST is "
                "the name on its certificate, or use a server with a valid certificate.",
                retryable=False,
            ) from None
        except ssl.SSLError:
            raise DeliveryError(
                f"The secure connection to {where.lower()} failed. Check SMTP_SECURITY (tls for port 465, "
                "starttls for 587) and SMTP_PORT.",
                retryable=False,
            ) from None
        except TimeoutError:
            raise DeliveryError(self._timeout_sentence(where), retryable=True) from None
        except ConnectionRefusedError:
            raise DeliveryError(
                f"{where} refused the connection. Check SMTP_HOST and SMTP_PORT, and that the server is running.",
                retryable=True,
            ) from None
        except socket.gaierror:
            raise DeliveryError(
                f"The host name {smtp.host} (SMTP_HOST) could not be found. Check it for typos.", retryable=True
            ) from None
        except OSError as exc:
            raise DeliveryError(
                redact(
                    f"Could not talk to {where.lower()} ({exc.strerror or type(exc).__name__}). "
                    "It is tried again later.",
                    self._secrets(target),
                ),
                retryable=True,
            ) from None


def _retryable(exc: smtplib.SMTPException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError)


def _words(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:MAX_ANSWER_SHOWN]


def _smtp_sentence(exc: smtplib.SMTPException, where: str, target: Target) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"{where} refused the user name or password ({exc.smtp_code}). Check SMTP_USERNAME and SMTP_PASSWORD."
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return (
            f"{where} does not offer what SMTP_SECURITY or SMTP_USERNAME asks for ({_words(str(exc))}). Use "
            "SMTP_SECURITY=tls for implicit TLS, or ask for a server with STARTTLS and authentication."
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        (code, answer) = next(iter(exc.recipients.values()), (0, b""))
        return f"{where} refused the address {target.address} ({code} {_words(answer)}). Check the address."
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"{where} refused the sender {exc.sender} ({exc.smtp_code} {_words(exc.smtp_error)}). Check SMTP_FROM."
    if isinstance(exc, smtplib.SMTPResponseException):
        later = " It is tried again later." if 400 <= exc.smtp_code < 500 else ""
        return f"{where} refused the alert ({exc.smtp_code} {_words(exc.smtp_error)}).{later}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection before the alert was sent. It is tried again later."
    return f"{where} failed to take the alert ({_words(str(exc))})."


# ----- HTTP: Slack and the signed webhook ----------------------------------------------------------


def _explain_answer(response: requests.Response, where: str) -> tuple[str, bool]:
    status = response.status_code
    answer = _words(response.text or "")
    said = f" and said {answer!r}" if answer else ""
    if 300 <= status < 400:
        return (
            f"{where} redirected the alert ({status}); alerts do not follow redirects. Enter the final address.",
            False,
        )
    if status in (401, 403, 404, 410):
        return (
            f"{where} refused the alert ({status}{said}). The address may have been revoked or mistyped: "
            "check it, or create a new one and update the subscription."
        ), False
    if status == 429:
        return f"{where} is rate limiting alerts ({status}). It is tried again later.", True
    if status >= 500:
        return f"{where} failed to take the alert ({status}{said}). It is tried again later.", True
    return f"{where} answered the alert with status {status}{said}. Check the address.", False


class _HttpChannel:
    name = ""
    service = ""

    def __init__(self, http_session: Callable[[], requests.Session]):
        self._http_session = http_session

    def _post(self, target: Target, body: bytes, headers: dict[str, str]) -> None:
        where = f"The {self.service} at {url_hint(target.address)}"
        parts = urlsplit(target.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryError(f"The {self.service} address is not a web address. Check it.", retryable=False)
        session = self._http_session()
        try:
            response = session.post(target.address, data=body, headers=headers, allow_redirects=False)
        except requests.RequestException as exc:
            transient = isinstance(exc, requests.ConnectionError | requests.Timeout) and not isinstance(
                exc, requests.exceptions.SSLError
            )
            sentence = describe_exception(exc, where)
            if transient:
                sentence += " It is tried again later."
            raise DeliveryError(redact(sentence, target.secrets), retryable=transient) from None
        finally:
            session.close()
        if not 200 <= response.status_code < 300:
            sentence, retryable = _explain_answer(response, where)
            raise DeliveryError(redact(sentence, target.secrets), retryable)


class SlackChannel(_HttpChannel):
    """A Slack-compatible incoming webhook: ``{"text": ...}``; any 2xx is delivered."""

    name = "slack"
    service = "Slack webhook"

    def send(self, target: Target, message: AlertMessage) -> None:
        text = f"*{_slack_escape(message.subject)}*\n{_slack_escape(message.text)}"
        body = json.dumps({"text": text}).encode("utf-8")
        self._post(target, body, {"Content-Type": "application/json"})


def _slack_escape(text: str) -> str:
    """Slack's own escaping: names and messages stay text, never a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SignedWebhookChannel(_HttpChannel):
    """The payload as JSON, signed with the subscription's secret (X-Console-Signature, core.signing);
    the event is ``alert.<kind>`` and X-Console-Delivery stays the same for every retry of one alert."""

    name = "webhook"
    service = "webhook receiver"

    def send(self, target: Target, message: AlertMessage, now: float | None = None) -> None:
        if not target.secret:
            raise DeliveryError("This webhook has no signing secret. Edit the subscription and set one.", False)
        event = f"alert.{message.kind}"
        document: dict[str, Any] = {"id": message.id, "event": event, "subject": message.subject, **message.payload}
        body = json.dumps(document, separators=(",", ":"), sort_keys=True, default=str).encode("utf-8")
        timestamp = str(int(time.time() if now is None else now))
        self._post(target, body, signed_headers(target.secret, event, message.id, timestamp, body))
