"""The Database, API and Webhook providers render from their FieldSpecs alone (ui.forms, as the Integrations
page renders any provider): labels, help, defaults, options and shown_when; what the widgets return passes
the provider's own validation once the required values are typed in."""

from __future__ import annotations

import pytest
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from core import fields
from providers import CATALOG


def form_script(key: str) -> None:
    import streamlit as st

    from providers import CATALOG
    from ui.forms import controlling_fields, render_fields

    provider = CATALOG.get(key)
    controlling = controlling_fields(provider.fields)
    controls = render_fields([f for f in provider.fields if f.name in controlling], {}, "t", {}, {})
    rest = render_fields([f for f in provider.fields if f.name not in controlling], {}, "t", {}, controls)
    st.session_state["config"] = {**rest, **controls}


def rendered(key: str) -> AppTest:
    at = AppTest.from_function(form_script, args=(key,), default_timeout=10)
    at.run()
    assert not at.exception, at.exception
    return at


def widget(at: AppTest, name: str):
    for kind in ("text_input", "text_area", "number_input", "selectbox", "checkbox"):
        for element in getattr(at, kind):
            if element.key == f"t:{name}":
                return element
    raise AssertionError(f"no widget for {name}")


def is_password(element) -> bool:
    return element.proto.type == TextInputProto.PASSWORD


def labels(at: AppTest) -> set[str]:
    found = set()
    for kind in ("text_input", "text_area", "number_input", "selectbox", "checkbox"):
        found |= {element.label.rstrip(" *") for element in getattr(at, kind)}
    return found


def problems(key: str, config: dict) -> dict:
    provider = CATALOG.get(key)
    errors = fields.validate(provider.fields, config)
    return errors or (provider.check(config) if provider.check else {})


@pytest.mark.parametrize(("key", "port"), [("POSTGRESQL", 5432), ("MYSQL", 3306)])
def test_database_form(key, port):
    at = rendered(key)

    assert labels(at) == {"Host", "Port", "Database", "User", "Password", "SSL mode"}
    assert widget(at, "port").value == port
    ssl = widget(at, "sslMode")
    assert (ssl.value, tuple(ssl.options)) == ("prefer", ("disable", "prefer", "require", "verify-full"))
    assert is_password(widget(at, "password"))
    assert widget(at, "host").placeholder == "db.example.com"
    assert "verify-full" in widget(at, "sslMode").help

    assert set(problems(key, at.session_state["config"])) == {"host", "database", "user"}
    widget(at, "host").input("db.internal.example")
    widget(at, "database").input("sales")
    widget(at, "user").input("reporting")
    at.run()
    config = at.session_state["config"]
    assert problems(key, config) == {}
    assert fields.normalise(CATALOG.get(key).fields, config)["port"] == port  # an int again


def test_api_form_follows_the_kind_and_the_auth_type():
    at = rendered("API")
    assert {"Base URL", "API kind", "Path", "Method", "Expected status", "Authentication Type"} <= labels(at)
    assert widget(at, "expectedStatus").value == 200
    assert tuple(widget(at, "method").options) == ("GET", "HEAD")
    assert "Token URL" not in labels(at)  # BEARER by default

    widget(at, "kind").set_value("GRAPHQL")
    widget(at, "authType").set_value("OAUTH2")
    at.run()
    shown = labels(at)
    assert "Method" not in shown and "Expected status" not in shown
    assert {"Client ID", "Client Secret", "Token URL", "Send client credentials in", "Scopes"} <= shown
    assert "Refresh Token" not in shown and not any(label.startswith("Credentials") for label in shown)
    assert is_password(widget(at, "clientSecret")) and not is_password(widget(at, "clientId"))

    widget(at, "baseUrl").input("https://api.example.com")
    widget(at, "tokenUrl").input("https://auth.example.com/token")
    widget(at, "clientId").input("c")
    widget(at, "clientSecret").input("s")
    at.run()
    assert problems("API", at.session_state["config"]) == {}


def test_webhook_form():
    at = rendered("WEBHOOK")
    assert labels(at) == {"Target URL", "Events", "Signing secret"}
    assert widget(at, "events").value == "integration.created, integration.tested"
    secret = widget(at, "secret")
    assert is_password(secret) and "never shown again" in secret.help
    assert secret.value.startswith("whsec_") and len(secret.value) >= 40  # generated for this form, to copy
    assert rendered("WEBHOOK").session_state["config"]["secret"] != secret.value  # a new one per form

    widget(at, "url").input("https://hooks.example.com/console")
    at.run()
    assert problems("WEBHOOK", at.session_state["config"]) == {}
    widget(at, "events").input("integration.created, nope")
    at.run()
    assert "Unknown event nope" in problems("WEBHOOK", at.session_state["config"])["events"]
