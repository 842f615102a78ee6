"""E-mail alerts against a real SMTP server (aiosmtpd) on 127.0.0.1: what arrives, authentication,
refusals and an unreachable server as sentences without the password, and the pipeline's default e-mail."""

from __future__ import annotations

import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from core.alerts.channels import DeliveryError, EmailChannel, Target
from core.alerts.messages import sample_alert
from core.settings import SmtpSettings
from tests.contract.alerts_helpers import Clock, add_integration, audit_rows, change, make_pipeline

pytestmark = pytest.mark.usefixtures("fast_bcrypt")

PASSWORD = "smtp-Password-" + "Qz8Wx2Lk5Np"
USER = "alerts-bot"


class Inbox:
    """The aiosmtpd handler: keeps each message; refuses recipients at refused.example."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []
        self.logins: list[tuple[str, str]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        inbox.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        good = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=good, handled=False)  # the server answers 235 or 535 itself

    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,  # loopback only; TLS is the server's business in production
    )
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


def settings(port: int, **changes) -> SmtpSettings:
    values = dict(host="127.0.0.1", port=port, security="none", from_address="alerts@console.example", timeout=5)
    return SmtpSettings(**(values | changes))


def test_an_alert_arrives_with_its_subject_and_plain_body(smtp_server):
    port, inbox = smtp_server
    message = sample_alert(Clock()(), "https://console.example", "root")
    EmailChannel(settings(port, username=USER, password=PASSWORD)).send(Target("ops@example.com"), message)
    [mail] = inbox.messages
    assert mail["Subject"] == "Test alert from the Integrations Console"
    assert (mail["From"], mail["To"], mail["X-Console-Alert"]) == ("alerts@console.example", "ops@example.com", "test")
    assert mail.get_content_type() == "text/plain"
    body = mail.get_content()
    assert "This is a test alert from the Integrations Console, sent by root" in body
    assert "https://console.example/alerts" in body
    assert inbox.logins == [(USER, PASSWORD)]
    assert PASSWORD not in inbox.envelopes[0].content.decode()


def test_a_wrong_password_is_a_sentence_without_the_password(smtp_server):
    port, _ = smtp_server
    channel = EmailChannel(settings(port, username=USER, password=PASSWORD + "-wrong"))
    with pytest.raises(DeliveryError) as failed:
        channel.send(Target("ops@example.com"), sample_alert(Clock()(), None, "root"))
    assert "refused the user name or password (535)" in failed.value.message
    assert "SMTP_USERNAME and SMTP_PASSWORD" in failed.value.message
    assert not failed.value.retryable
    assert PASSWORD not in failed.value.message


def test_a_refused_recipient_fails_for_good(smtp_server):
    port, inbox = smtp_server
    with pytest.raises(DeliveryError) as failed:
        EmailChannel(settings(port)).send(Target("nobody@refused.example"), sample_alert(Clock()(), None, "root"))
    assert "refused the address nobody@refused.example (550" in failed.value.message
    assert not failed.value.retryable and inbox.messages == []


def test_starttls_the_server_does_not_offer_is_explained(smtp_server):
    port, _ = smtp_server
    with pytest.raises(DeliveryError) as failed:
        EmailChannel(settings(port, security="starttls")).send(
            Target("ops@example.com"), sample_alert(Clock()(), None, "x")
        )
    assert "SMTP_SECURITY" in failed.value.message and not failed.value.retryable


def test_an_unreachable_server_is_retried_later():
    with pytest.raises(DeliveryError) as failed:
        EmailChannel(settings(free_port())).send(Target("ops@example.com"), sample_alert(Clock()(), None, "x"))
    assert "refused the connection" in failed.value.message and failed.value.retryable


def test_no_smtp_host_says_which_setting_is_missing():
    with pytest.raises(DeliveryError) as failed:
        EmailChannel(SmtpSettings()).send(Target("ops@example.com"), sample_alert(Clock()(), None, "x"))
    assert "SMTP_HOST is not set" in failed.value.message and not failed.value.retryable


def test_a_server_that_never_answers_is_cut_off_by_the_total_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection, never says a word
        channel = EmailChannel(settings(silent.getsockname()[1], timeout=1))
        with pytest.raises(DeliveryError) as failed:
            channel.send(Target("ops@example.com"), sample_alert(Clock()(), None, "x"))
    assert "did not answer within 1 seconds (SMTP_TIMEOUT)" in failed.value.message and failed.value.retryable


def test_the_owners_default_alert_goes_by_email_to_their_account_address(ctx, owner, smtp_server):
    port, inbox = smtp_server
    clock = Clock()
    pipeline = make_pipeline(ctx, clock, smtp=settings(port, username=USER, password=PASSWORD))
    iid = add_integration(ctx, owner, "Olga's Pipedrive", provider="PIPEDRIVE")
    change(ctx, iid, "needs_reconnect", clock(), message="Pipedrive refused the credentials (401).")
    [delivery_id] = pipeline.process_changes()
    clock.advance(121)
    assert pipeline.deliver(delivery_id).status == "sent"
    [mail] = inbox.messages
    assert mail["To"] == "olga@example.com"
    assert mail["Subject"] == "Needs reconnect: Olga's Pipedrive (Pipedrive)"
    body = mail.get_content()
    assert "changed from Connected to Needs reconnect" in body
    assert "Reconnect it or enter new credentials, then test again." in body
    assert "Pipedrive refused the credentials (401)." in body
    assert "http" not in body  # PUBLIC_BASE_URL is not set: no link
    for row in audit_rows(ctx, "alert.sent"):
        assert PASSWORD not in str(row.details)
