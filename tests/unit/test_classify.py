"""core.integrations.classify and core.http.observe without servers: the class texts, the rules for results
the console makes itself, and what observe keeps, nests and ignores. The provider tests that meet real
failures are tests/contract/test_classify.py."""

from __future__ import annotations

import threading

import pytest

from core.http import (
    DeadlineExceeded,
    Observed,
    Transport,
    deadline,
    note_database_code,
    note_oauth_error,
    note_response,
    note_transport,
    observe,
    remaining,
)
from core.integrations.classify import CLASS_TEXT, CheckClass, Classified, classify, classify_status
from core.results import TestResult

SECRET = "sk-live-" + "Q7w8E9r0T1y2U3i4"


def failed(error: str | None = None, **details) -> TestResult:
    return TestResult(False, f"The check failed with {SECRET}.", details, error)


# ----- the texts --------------------------------------------------------------------------------------------


def test_every_class_has_a_sentence_and_a_next_step():
    assert set(CLASS_TEXT) == set(CheckClass)
    for check_class in CheckClass:
        classified = Classified(check_class)
        for text in (classified.sentence, classified.next_step):
            assert len(text) > 10 and text[0].isupper() and text.endswith("."), (check_class, text)
            assert "{" not in text and "%" not in text  # fixed text, nothing filled in
    assert len({sentence for sentence, _ in CLASS_TEXT.values()}) == len(CheckClass)  # each says its own


def test_no_sentence_holds_what_the_result_said():
    """The sentence and next step are the class's, never the result's message, error or details."""
    with observe() as seen:
        note_oauth_error("other")
    results = [
        (failed(SECRET, token=SECRET), None),
        (failed(SECRET), seen),
        (TestResult(True, f"Connected with {SECRET}", {"token": SECRET}), seen),
    ]
    for result, observed in results:
        classified = classify(result, observed)
        shown = " ".join([classified.sentence, classified.next_step, repr(classified)])
        assert SECRET not in shown
    for sentence, next_step in CLASS_TEXT.values():
        assert SECRET not in sentence + next_step


# ----- results the console makes itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "check_class"),
    [
        (failed("not available"), CheckClass.CONFIGURATION),
        (failed("unsendable stored value"), CheckClass.CONFIGURATION),
        (failed("The value is not in a known encrypted format."), CheckClass.CONFIGURATION),  # decryption
        (failed("Fix the fields", field_errors={"host": "Enter a host."}), CheckClass.CONFIGURATION),
        (failed("rate_limited", retryAfter=30), CheckClass.RATE_LIMITED),
        (failed("busy"), CheckClass.RATE_LIMITED),
    ],
)
def test_a_result_made_before_any_provider_ran(result, check_class):
    assert classify(result, None) == Classified(check_class)


def test_a_success_is_ok_with_its_status():
    seen = Observed(status=204, host="api.example.com", latest="http", responses=1)
    assert classify(TestResult(True, "Connected"), seen) == Classified(CheckClass.OK, 204)
    assert classify(TestResult(True, "Connected"), None) == Classified(CheckClass.OK)


def test_a_providers_own_field_check_is_configuration():
    assert classify(failed("bad", field_errors={"credentials": "Enter JSON."}), Observed()) == Classified(
        CheckClass.CONFIGURATION
    )


def test_a_failure_with_nothing_observed_is_the_providers():
    assert classify(failed("The CRM test failed unexpectedly (KeyError)."), Observed()) == Classified(
        CheckClass.PROVIDER_ERROR
    )


@pytest.mark.parametrize(
    ("status", "check_class", "reconnect"),
    [
        (401, CheckClass.AUTH, True),
        (403, CheckClass.PERMISSION, False),
        (404, CheckClass.CONFIGURATION, False),
        (400, CheckClass.CONFIGURATION, False),
        (405, CheckClass.CONFIGURATION, False),
        (408, CheckClass.TIMEOUT, False),
        (429, CheckClass.RATE_LIMITED, False),
        (500, CheckClass.PROVIDER_ERROR, False),
        (503, CheckClass.PROVIDER_ERROR, False),
        (200, CheckClass.PROVIDER_ERROR, False),  # answered, but not as the check expects
    ],
)
def test_statuses(status, check_class, reconnect):
    assert classify_status(status) == Classified(check_class, status, needs_reconnect=reconnect)


@pytest.mark.parametrize(
    ("engine", "code", "check_class", "reconnect"),
    [
        ("postgresql", "28P01", CheckClass.AUTH, True),
        ("postgresql", "28000", CheckClass.AUTH, False),
        ("postgresql", "3D000", CheckClass.CONFIGURATION, False),
        ("postgresql", "42501", CheckClass.PERMISSION, False),
        ("postgresql", "08006", CheckClass.NETWORK, False),  # by its class, 08
        ("mysql", "1045", CheckClass.AUTH, True),
        ("mysql", "1044", CheckClass.PERMISSION, False),
        ("mysql", "1049", CheckClass.CONFIGURATION, False),
        ("mysql", "3159", CheckClass.TLS, False),
        ("mysql", "9999", CheckClass.PROVIDER_ERROR, False),
    ],
)
def test_database_codes(engine, code, check_class, reconnect):
    with observe() as seen:
        note_database_code(engine, code)
    assert classify(failed(), seen) == Classified(check_class, None, code, reconnect)


# ----- observe ------------------------------------------------------------------------------------------------


def test_notes_without_an_observer_go_nowhere():
    outside = Observed()
    note_response(500, "https://api.example.com/x")
    note_transport(Transport.TLS)
    note_oauth_error("invalid_grant")
    note_database_code("mysql", "1045")
    assert outside == Observed()
    with observe() as seen:
        pass
    note_response(500, "https://api.example.com/x")  # after the block: not seen
    assert seen == Observed()


def test_the_latest_note_decides():
    with observe() as seen:
        note_response(200, "https://login.example.com/token?code=abc")
        note_transport(Transport.NETWORK)
    assert (seen.status, seen.host, seen.transport, seen.latest) == (
        200,
        "login.example.com",
        Transport.NETWORK,
        "transport",
    )
    assert classify(failed(), seen) == Classified(CheckClass.NETWORK)
    with observe() as later:
        note_transport(Transport.NETWORK)
        note_response(401, "https://api.example.com/me")
    assert classify(failed(), later) == Classified(CheckClass.AUTH, 401, needs_reconnect=True)


def test_an_inner_observe_does_not_take_the_outers_notes():
    with observe() as outer:
        note_response(200, "https://a.example.com/")
        with observe() as inner:
            note_oauth_error("invalid_grant")
        note_response(503, "https://b.example.com/")
    assert (inner.oauth_error, inner.status, inner.latest) == ("invalid_grant", None, "oauth")
    assert (outer.oauth_error, outer.status, outer.host, outer.responses) == ("invalid_grant", 503, "b.example.com", 2)
    assert outer.latest == "http"


def test_another_threads_calls_are_not_this_checks():
    def elsewhere():
        note_response(500, "https://other.example.com/")

    with observe() as seen:
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(5)
    assert not thread.is_alive()
    assert seen == Observed()


def test_a_passed_deadline_is_noted_as_a_timeout():
    with observe() as seen, deadline(0), pytest.raises(DeadlineExceeded):
        remaining()
    assert (seen.transport, seen.latest) == (Transport.TIMEOUT, "transport")
    assert classify(failed(), seen) == Classified(CheckClass.TIMEOUT)


def test_an_oauth_code_decides_with_the_token_endpoints_status():
    with observe() as seen:
        note_response(400, "https://login.example.com/token")
        note_oauth_error("invalid_grant")
    assert classify(failed(), seen) == Classified(CheckClass.AUTH, 400, "invalid_grant", needs_reconnect=True)
