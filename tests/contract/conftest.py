"""Contract fixtures: a fake Chatwoot checked against Chatwoot's OpenAPI description, and 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from core.models import AuditEvent
from tests.fakes.chatwoot import FakeChatwoot, User

ADMIN_TOKEN = "cw-admin-token-" + "A1b2C3d4E5f6G7h8"
AGENT_TOKEN = "cw-agent-token-" + "Z9y8X7w6V5u4T3s2"
PLATFORM_TOKEN = "cw-platform-token-" + "P1q2R3s4"


@dataclass(frozen=True)
class ChatwootTokens:
    admin: str = ADMIN_TOKEN
    agent: str = AGENT_TOKEN
    platform: str = PLATFORM_TOKEN

    @property
    def all(self) -> tuple[str, ...]:
        return (self.admin, self.agent, self.platform)


@dataclass(frozen=True)
class ChatwootSeed:
    admin: User
    agent: User
    account_id: int
    account_name: str
    other_account_id: int  # exists, but neither user belongs to it and the Platform App may not touch it


@pytest.fixture
def chatwoot_tokens() -> ChatwootTokens:
    """The access tokens fake_chatwoot is seeded with (test modules here are not a package)."""
    return ChatwootTokens()


@pytest.fixture
def fake_chatwoot():
    """A fresh fake per test: account 1 with an administrator, an agent, a website and an e-mail inbox,
    and a Platform App permitted on account 1 (account 2 exists but is not permitted)."""
    fake = FakeChatwoot()
    account = fake.add_account("Acme Support", seat_limit=5)
    admin = fake.add_user("Ada Admin", "ada@acme.test", token=ADMIN_TOKEN)
    agent = fake.add_user("Andy Agent", "andy@acme.test", token=AGENT_TOKEN)
    fake.add_account_user(account.id, admin.id, "administrator")
    fake.add_account_user(account.id, agent.id, "agent")
    website = fake.add_inbox(account.id, "Website", website_url="https://acme.test")
    fake.add_inbox(account.id, "Support mail", channel_type="Channel::Email")
    fake.add_inbox_member(website.id, agent.id)
    other = fake.add_account("Other Company")
    fake.add_platform_app("Provisioner", {account.id}, token=PLATFORM_TOKEN)
    fake.seed = ChatwootSeed(admin, agent, account.id, account.name, other.id)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    if fake.contract_violations:
        pytest.fail(_violations_text(fake), pytrace=False)


def _violations_text(fake: FakeChatwoot) -> str:
    return "The fake Chatwoot saw contract violations:\n\n" + "\n\n".join(fake.contract_violations)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Fail the test itself (not only its teardown) when the fake saw a contract violation."""
    result = yield
    fake = getattr(item, "funcargs", {}).get("fake_chatwoot")
    if isinstance(fake, FakeChatwoot) and fake.contract_violations:
        violations = _violations_text(fake)
        fake.contract_violations.clear()  # reported once
        pytest.fail(violations, pytrace=False)
    return result


@pytest.fixture(scope="session")
def httpserver_listen_address():
    """pytest-httpserver listens on 127.0.0.1 (its default, localhost, may resolve elsewhere)."""
    return ("127.0.0.1", 0)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def audit_texts(ctx):
    """Every audit event, as text, for checking that no secret was recorded."""

    def read() -> list[str]:
        with ctx.factory() as session:
            rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
            return [json.dumps({"action": r.action, "outcome": r.outcome, "details": r.details}) for r in rows]

    return read


@pytest.fixture
def assert_no_secret():
    """assert_no_secret(secret, *things): the secret appears in none of them (rendered as JSON if not text)."""

    def check(secret: str, *things: object) -> None:
        assert len(secret) >= 8
        for thing in things:
            text = thing if isinstance(thing, str) else json.dumps(thing, default=str)
            assert secret not in text, f"a secret leaked into: {text[:300]}"

    return check


@pytest.fixture
def pro(ctx):
    """Petra, a member on PRO_PLUS: the lowest tier that opens database, API and webhook integrations."""
    return ctx.users.create(
        None, "petra", "Petra Pro", "petra@example.com", "petra-password-1", "member", "PRO_PLUS"
    ).actor()


@pytest.fixture
def unsaved_test(ctx, audit_texts, assert_no_secret):
    """unsaved_test(actor, provider key, config, secrets) -> the result of testing config without saving it.

    None of the secrets may reach the result or the audit trail. Each module's ``run`` fixture wraps it
    with that module's provider, actor and secrets."""

    def test(actor, key: str, config: dict, secrets):
        result = ctx.integrations.test_configuration(actor, key, config)
        for secret in secrets:
            assert_no_secret(secret, result.as_dict(), *audit_texts())
        return result

    return test


@pytest.fixture
def chatwoot_integration(ctx, fake_chatwoot):
    """chatwoot_integration(actor, token=ADMIN_TOKEN, platform_token=None, account_id=None, ...) -> its id.

    Saves a Chatwoot integration of the actor's pointing at fake_chatwoot (account 1 unless told).
    """

    def make(
        actor,
        token: str = ADMIN_TOKEN,
        *,
        platform_token: str | None = None,
        account_id: int | None = None,
        base_url: str | None = None,
        name: str = "Support desk",
    ) -> int:
        config = {
            "baseUrl": base_url or fake_chatwoot.url,
            "accountId": str(account_id or fake_chatwoot.seed.account_id),
            "apiKey": token,
        }
        if platform_token:
            config["platformToken"] = platform_token
        return ctx.integrations.create(actor, name, "CHATWOOT", config).id

    return make
