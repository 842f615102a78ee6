"""AppTest helpers: the app runs against the test database with the test key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tests.conftest import LOOPBACK_ALLOW, TEST_COOKIE_KEY, TEST_KEY
from ui.text import WORD_JOINER

HOME = str(Path(__file__).resolve().parents[2] / "Home.py")


@pytest.fixture
def app_env(monkeypatch, database_url, ctx):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INTEGRATION_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.setenv("COOKIE_KEY", TEST_COOKIE_KEY)
    monkeypatch.setenv("HTTP_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("HTTP_READ_TIMEOUT", "2")
    monkeypatch.setenv("HTTP_MAX_RETRIES", "0")
    monkeypatch.setenv("OUTBOUND_ALLOW", ",".join(LOOPBACK_ALLOW))  # the fakes listen on 127.0.0.1
    monkeypatch.setenv("ENGINE_QUEUE_PATH", ctx.settings.engine_queue_path)  # the test's own queue
    return ctx


def new_app() -> AppTest:
    return AppTest.from_file(HOME, default_timeout=30)


def sign_in(username: str, password: str) -> AppTest:
    at = new_app()
    at.run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    button(at, "Sign in").click()
    at.run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return matches[0]


def text_input(at: AppTest, label: str):
    matches = [t for t in at.text_input if t.label.rstrip(" *") == label]
    assert matches, f"no text input {label!r}; inputs: {[t.label for t in at.text_input]}"
    return matches[0]


def read(markdown: str) -> str:
    """What a person reads of Markdown written by ui.text.esc: its backslash escapes and word joiners gone."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(markdown)).replace(WORD_JOINER, "")


def texts(at: AppTest) -> str:
    """Everything the page shows as text, for assertions about what a person reads."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "text",
        "info",
        "success",
        "error",
        "warning",
        "exception",
    ):
        parts += [read(getattr(e, "value", "")) for e in getattr(at, kind)]
    parts += [read(e.proto.text) for e in at.get("progress")]  # a progress bar's line
    return "\n".join(parts)


# ----- Chatwoot pages: a fake Chatwoot and integrations pointing at it ------------------------------------

ADMIN_TOKEN = "cw-app-admin-token-" + "A1b2C3d4"
AGENT_TOKEN = "cw-app-agent-token-" + "Z9y8X7w6"
PLATFORM_TOKEN = "cw-app-platform-token-" + "P1q2R3s4"


@pytest.fixture(autouse=True)
def fresh_streamlit_caches():
    """st.cache_data and st.cache_resource live as long as the process: one test's Chatwoot reads and app
    context must not reach the next."""
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()
    # Each test's settings (its own queue path) make a new app context: releasing them returns their
    # connections (ui.state._release), else a PostgreSQL run ran out of connections after ~100 tests.
    st.cache_resource.clear()


@pytest.fixture
def fake_chatwoot():
    """Account 1 "Acme Support" (no Chatwoot seat limit) with Ada (administrator, ADMIN_TOKEN) and Andy
    (agent, AGENT_TOKEN); website inboxes "Website" (Andy works in it) and "Shop", an e-mail inbox
    "Support mail"; a Platform App (PLATFORM_TOKEN) permitted on account 1. ``fake.seed`` holds them."""
    from types import SimpleNamespace

    from tests.fakes.chatwoot import FakeChatwoot

    fake = FakeChatwoot()
    account = fake.add_account("Acme Support")
    ada = fake.add_user("Ada Admin", "ada@acme.test", token=ADMIN_TOKEN)
    andy = fake.add_user("Andy Agent", "andy@acme.test", token=AGENT_TOKEN)
    fake.add_account_user(account.id, ada.id, "administrator")
    fake.add_account_user(account.id, andy.id, "agent")
    website = fake.add_inbox(account.id, "Website", website_url="https://acme.test")
    shop = fake.add_inbox(account.id, "Shop", website_url="https://shop.acme.test")
    mail = fake.add_inbox(account.id, "Support mail", channel_type="Channel::Email")
    fake.add_inbox_member(website.id, andy.id)
    fake.add_platform_app("Provisioner", {account.id}, token=PLATFORM_TOKEN)
    fake.seed = SimpleNamespace(account=account, ada=ada, andy=andy, website=website, shop=shop, mail=mail)
    with fake:
        yield fake
    assert not fake.contract_violations, "\n\n".join(fake.contract_violations)


@pytest.fixture
def chatwoot_integration(app_env, fake_chatwoot):
    """chatwoot_integration(actor, token=ADMIN_TOKEN, platform_token=None, name=...) -> the saved view."""

    def make(actor, token: str = ADMIN_TOKEN, *, platform_token: str | None = None, name: str = "Acme desk"):
        config = {"baseUrl": fake_chatwoot.url, "accountId": str(fake_chatwoot.seed.account.id), "apiKey": token}
        if platform_token:
            config["platformToken"] = platform_token
        return app_env.integrations.create(actor, name, "CHATWOOT", config)

    return make


def open_page(at: AppTest, path: str) -> AppTest:
    at.switch_page(path)
    at.run()
    assert not at.exception, at.exception
    return at


def page_links(at: AppTest) -> list[tuple[str, str]]:
    """(label, url path of the page) of every st.page_link on the page."""
    return [(e.proto.label, e.proto.page) for e in at.get("page_link")]


def select_rows(at: AppTest, *names: str) -> AppTest:
    """Tick the Integrations list's rows of these names (as a click on their boxes does), then run."""
    table = next(d for d in at.dataframe if d.key and d.key.startswith("list_table"))
    shown = list(table.value["Name"])
    at.session_state[table.key] = {"selection": {"rows": [shown.index(n) for n in names], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    return at


def dialogs(at) -> list:
    """The open dialogs' protos, wherever Streamlit put them in the tree."""
    found = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            proto = getattr(child, "proto", None)
            if proto is not None and getattr(child, "type", "") == "dialog":
                found.append(proto.dialog)
            walk(child)

    for root in at._tree.children.values():
        walk(root)
    return found


@pytest.fixture
def deferred(monkeypatch) -> dict:
    """file name -> the callable Streamlit registered for that deferred download (newest run wins)."""
    registered: dict = {}
    original = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        registered[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return registered
