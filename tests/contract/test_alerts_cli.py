"""`manage.py alerts test` as a subprocess: e-mail through aiosmtpd and a Slack webhook through
pytest-httpserver, both on 127.0.0.1; the outcome sentence, the exit status, and no secret in the output."""

from __future__ import annotations

import email
from email import policy

import pytest
from aiosmtpd.controller import Controller

from tests.contract.test_alerts_email import free_port
from tests.unit.test_cli import Cli

SMTP_PASSWORD = "cli-smtp-" + "Pw7Hq3Rt9Vm"
HOOK = "/services/T9/B9/" + "cliSlackToken77889900"
SECRET = "whsec_cli-" + "Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op"


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("alerts-cli"))
    assert cli("db", "upgrade").returncode == 0
    return cli


@pytest.fixture
def inbox():
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, box
    finally:
        controller.stop()


def test_an_email_test_alert_arrives_and_the_sentence_is_printed(cli, inbox):
    port, box = inbox
    smtp = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "SMTP_FROM": "bot@console.example",
    }
    done = cli("alerts", "test", "--channel", "email", "--to", "ops@example.com", **smtp)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Sent a test alert to ops@example.com."
    [mail] = box.messages
    assert (mail["To"], mail["Subject"]) == ("ops@example.com", "Test alert from the Integrations Console")


def test_a_refused_smtp_login_exits_1_with_a_sentence_and_no_password(cli, inbox):
    port, _ = inbox
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none"}
    env |= {"SMTP_USERNAME": "bot", "SMTP_PASSWORD": SMTP_PASSWORD}  # this server offers no AUTH at all
    failed = cli("alerts", "test", "--channel", "email", **env)
    assert failed.returncode == 1
    assert failed.stderr.startswith("The test alert was not delivered: The mail server 127.0.0.1")
    assert SMTP_PASSWORD not in failed.stdout + failed.stderr


def test_a_failing_slack_webhook_read_from_stdin_exits_1_without_its_url(cli, httpserver):
    httpserver.expect_request(HOOK, method="POST").respond_with_data("no_service", status=404)
    failed = cli("alerts", "test", "--channel", "slack", "--to", "-", stdin=httpserver.url_for(HOOK) + "\n")
    assert failed.returncode == 1
    assert "refused the alert (404" in failed.stderr and "no_service" in failed.stderr
    assert "cliSlackToken" not in failed.stdout + failed.stderr
    assert len(httpserver.log) == 1


def test_a_signed_webhook_test_takes_its_secret_from_stdin(cli, httpserver):
    httpserver.expect_request("/hooks/cli", method="POST").respond_with_data("ok")
    done = cli(
        "alerts", "test", "--channel", "webhook", "--to", httpserver.url_for("/hooks/cli"), "--secret-stdin",
        stdin=SECRET + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [(request, _)] = httpserver.log
    assert request.headers["X-Console-Event"] == "alert.test" and request.headers["X-Console-Signature"]
    assert SECRET not in done.stdout + done.stderr

    missing = cli("alerts", "test", "--channel", "webhook", "--to", httpserver.url_for("/hooks/cli"))
    assert missing.returncode == 2 and "--secret-stdin" in missing.stderr
    no_url = cli("alerts", "test", "--channel", "slack")
    assert no_url.returncode == 2 and "--to -" in no_url.stderr
