"""AppTest helpers: the app runs against the test database with the test key."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_COOKIE_KEY, TEST_KEY

HOME = str(Path(__file__).resolve().parents[2] / "Home.py")


@pytest.fixture
def app_env(monkeypatch, database_url, ctx):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INTEGRATION_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.setenv("COOKIE_KEY", TEST_COOKIE_KEY)
    monkeypatch.setenv("HTTP_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("HTTP_READ_TIMEOUT", "2")
    monkeypatch.setenv("HTTP_MAX_RETRIES", "0")
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


def texts(at: AppTest) -> str:
    """Everything the page shows as text, for assertions about what a person reads."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "success",
        "error",
        "warning",
        "exception",
    ):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    return "\n".join(parts)
