"""Customer-controlled text on the pages renders as plain text, never as Markdown (issue 10, item 7).

Every string of every element that Streamlit renders as Markdown (bodies, labels, help, progress text,
radio options, toasts, expander and tab labels) must hold none of the hostile name's constructs as
written (tests/unit/test_markdown_text.py proves esc's output has no active Markdown at all)."""

from __future__ import annotations

import json

from google.protobuf.json_format import MessageToDict

from tests.app.conftest import button, open_page, select_rows, sign_in

MARKDOWN_KEYS = {"body", "label", "text", "help"}  # selectbox options and dataframes are plain text


def markdown_strings(at) -> list[str]:
    """Every Markdown-rendered string in the AppTest tree, and each toast."""
    found: list[str] = []

    def collect(value, key: str | None = None, kind: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                collect(v, k, kind)
        elif isinstance(value, list):
            for v in value:
                collect(v, key, kind)
        elif isinstance(value, str) and (key in MARKDOWN_KEYS or (kind == "radio" and key == "options")):
            found.append(value)

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and getattr(node, "type", "") != "text":  # st.text shows its body as plain text
            collect(MessageToDict(proto), kind=getattr(node, "type", ""))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


NAME = "![x](http://127.0.0.1:9/x.png) [link](http://127.0.0.1:9/) https://127.0.0.1:9/ <b>b</b> :red[x] $x$"
# Each is active Markdown as written; esc leaves none of them in the text Streamlit parses.
ACTIVE = ("![x](", "](http", "://127.0.0.1", "<b>", ":red[x]", "$x$", ":material/home:", "<https")


def assert_plain(at, expect_hostile: bool = True) -> None:
    assert not at.exception, at.exception
    strings = markdown_strings(at)
    if expect_hostile:
        assert any("127" in s for s in strings), "the hostile text should be on the page"
    for value in strings:
        assert not [a for a in ACTIVE if a in value], value


def custom_config() -> dict:
    return {
        "name": NAME,  # Custom CRM's messages name the CRM: a hostile error text
        "apiEndpoint": "http://127.0.0.1:9",
        "authType": "BEARER",
        "healthPath": "/",
        "credentials": json.dumps({"token": "custom-token-123"}),
    }


def test_a_hostile_integration_name_and_error_render_as_plain_text(app_env, admin):
    view = app_env.integrations.create(admin, NAME, "CUSTOM", custom_config())
    at = open_page(sign_in("root", "admin-password-1"), "app_pages/integrations.py")
    assert_plain(at, expect_hostile=False)  # in the table only: plain text there
    select_rows(at, NAME)
    assert_plain(at)  # the selected row's panel names it
    button(at, "Test").click()
    at.run()
    assert at.error, "the failed test should be reported"
    assert_plain(at)
    button(at, "Deactivate").click()
    at.run()
    assert at.success  # "Deactivated <name>.": the one message of the action
    assert_plain(at)
    button(at, "Duplicate").click()
    at.run()
    assert_plain(at)  # "Added <name> (copy), a copy of <name>."
    select_rows(at, NAME)  # a new row cleared the selection
    button(at, "Delete").click()
    at.run()
    assert_plain(at)
    assert view.id
    for path in ("app_pages/overview.py", "app_pages/activity.py", "app_pages/statistics.py"):
        assert_plain(open_page(at, path), expect_hostile=False)
