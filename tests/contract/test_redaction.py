"""Redaction in every encoding, before any cut (issue 10, item 4).

A fake API (the generic API provider, GraphQL, Basic auth) on 127.0.0.1 answers with a long error that
echoes the password in one encoding. Whatever the encoding, and although the provider keeps only the
first 200 characters of that error before anything is redacted, neither the stored status_message, nor
the audit rows, nor a log record holds the full form or any piece of it of 8 characters or more.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from urllib.parse import quote, quote_plus

import pytest

from core.redaction import (
    _BASE64_WORD,
    MIN_FRAGMENT,
    Redactor,
    _base64_cores,
    _replaced,
    _spans,
    _text_forms,
    _usable,
    redact,
)

USERNAME = "api-robot"
PASSWORD = "pw-54-characters/long+with=odd~chars-0123456789abcdefgh"  # 55 characters
assert len(PASSWORD) >= 54


def forms(secret: str, user: str = USERNAME) -> dict[str, str]:
    pair = f"{user}:{secret}".encode()
    alone = secret.encode()
    return {
        "plain": secret,
        "base64 of user:pass": base64.b64encode(pair).decode(),
        "base64 of user:pass, unpadded": base64.b64encode(pair).decode().rstrip("="),
        "urlsafe base64 of user:pass": base64.urlsafe_b64encode(pair).decode(),
        "urlsafe base64 of user:pass, unpadded": base64.urlsafe_b64encode(pair).decode().rstrip("="),
        "base64 of the value": base64.b64encode(alone).decode(),
        "base64 of the value, unpadded": base64.b64encode(alone).decode().rstrip("="),
        "urlsafe base64 of the value": base64.urlsafe_b64encode(alone).decode(),
        "urlsafe base64 of the value, unpadded": base64.urlsafe_b64encode(alone).decode().rstrip("="),
        "quote": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "JSON-escaped": json.dumps(secret)[1:-1].replace("/", "\\/"),
    }


FORMS = forms(PASSWORD)


def pieces(form: str) -> set[str]:
    """The form's first and last MIN_FRAGMENT characters: any longer piece of it contains one of them."""
    return {form[:MIN_FRAGMENT], form[-MIN_FRAGMENT:]}


def assert_nowhere(form: str, *texts: str) -> None:
    for text in texts:
        assert form not in text, f"the full form leaked into: {text}"
        for piece in pieces(form):
            assert piece not in text, f"{piece!r}, a piece of the form, leaked into: {text}"


@pytest.fixture
def saved(ctx, admin, httpserver):
    config = {
        "baseUrl": httpserver.url_for("/api"),
        "kind": "GRAPHQL",
        "path": "/graphql",
        "authType": "BASIC",
        "credentials": json.dumps({"username": USERNAME, "password": PASSWORD}),
    }
    return ctx.integrations.create(admin, "Echoing API", "API", config)


@pytest.mark.parametrize("name", list(FORMS))
@pytest.mark.parametrize("where", ["whole", "cut"])
def test_an_echoed_secret_is_redacted_in_every_encoding_before_any_cut(
    name, where, ctx, admin, httpserver, saved, audit_texts, caplog
):
    form = FORMS[name]
    # "cut": the form starts 170 characters in, so the provider's first-200-characters cut keeps only its
    # first 30 characters (the report: 30 of 54 token characters survived). "whole": it fits.
    lead = "x" * (170 - len("Basic ")) if where == "cut" else "denied"
    said = f"{lead} Basic {form} " + "and a long tail of server words " * 20
    httpserver.expect_request("/api/graphql", method="POST").respond_with_json({"errors": [{"message": said}]})
    caplog.set_level(logging.DEBUG)

    result = ctx.integrations.test(admin, saved.id)

    assert not result.success
    assert "answered with an error" in result.message
    view = ctx.integrations.get(admin, saved.id)
    assert view.status == "error"
    texts = [view.status_message or "", json.dumps(result.as_dict()), *audit_texts(), caplog.text]
    texts += [record.getMessage() for record in caplog.records]
    assert_nowhere(form, *texts)
    assert "[redacted]" in view.status_message


def user_part(name: str) -> int:
    """How many leading characters of the form encode only the user name (and so are not secret)."""
    return -(-(len(USERNAME) + 1) // 3) * 4 if "user:pass" in name else 0


@pytest.mark.parametrize("name", list(FORMS))
def test_redact_removes_each_form_and_each_cut_of_it(name):
    form, public = FORMS[name], user_part(name)
    for cut in range(public + MIN_FRAGMENT, len(form) + 1):  # cut at the end, past the user name
        assert_nowhere(form[public:cut], redact(f"said: {form[:cut]}", [PASSWORD]))
    for cut in range(MIN_FRAGMENT, len(form) - public + 1):  # cut at the start
        assert_nowhere(form[-cut:], redact(f"{form[-cut:]} and more", [PASSWORD]))


def test_redact_leaves_ordinary_text_alone():
    text = "Connected: the GraphQL endpoint at http://127.0.0.1:8080/api answered with Query in 12 ms."
    assert redact(text, [PASSWORD, "short"]) == text


def every_form_searched(text: str, secrets: list[str]) -> str:
    """The redaction without Redactor's anchor test: every form and every base64 core searched in text."""
    spans = []
    for secret in _usable(secrets):
        for form in _text_forms(secret):
            spans += _spans(text, form)
        cores = _base64_cores(secret)
        spans += [w.span() for w in _BASE64_WORD.finditer(text) if any(_spans(w.group(), c) for c in cores)]
    return _replaced(text, spans) if spans else text


def test_the_anchor_test_skips_only_texts_that_hold_nothing_to_replace():
    """Random texts of cut forms, base64 of texts that hold a secret, look-alike words and noise: Redactor
    (which searches only the forms whose first or last characters a text holds) redacts them exactly as
    searching every form does."""
    rng = random.Random(1601)
    secrets = [PASSWORD, "token-Äbc/12345678", "sk_live_9f8e7d6c"]
    redactor = Redactor(secrets)
    material = [*FORMS.values(), *forms(secrets[1]).values(), *forms(secrets[2], "me").values()]
    noise = ["Connected", "HTTP 401", " ", ": ", "pw-54-char", "sk_live_", "0123456789", "=", "\\u00c4", "x" * 9]
    for _ in range(600):
        parts = []
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.5:
                form = rng.choice(material)
                start, end = sorted(rng.sample(range(len(form) + 1), 2))
                parts.append(form[start:end])
            elif rng.random() < 0.3:
                parts.append(base64.b64encode(f"{rng.choice(noise)}{rng.choice(secrets)}".encode()).decode())
            else:
                parts.append(rng.choice(noise))
        text = "".join(parts)
        assert redactor(text) == every_form_searched(text, secrets), text
