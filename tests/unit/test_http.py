"""core.http: Retry-After phrases, bounded bodies, and the slow-drip deadline, against local servers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from core.http import HttpPolicy, ResponseTooLargeError, describe_exception, make_session, wait_phrase
from tests.conftest import LOOPBACK_ALLOW


def response_with(headers: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    return response


@pytest.mark.parametrize(
    ("headers", "phrase"),
    [
        ({}, "Wait a minute and try again."),
        ({"Retry-After": "0"}, "Try again in a moment."),
        ({"Retry-After": "1"}, "Try again in a moment."),
        ({"Retry-After": "30"}, "Wait 30 seconds and try again."),
        ({"Retry-After": "soon"}, "Wait a minute and try again."),
    ],
)
def test_wait_phrase(headers, phrase):
    assert wait_phrase(response_with(headers)) == phrase


def test_wait_phrase_reads_an_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    phrase = wait_phrase(response_with({"Retry-After": when}))
    assert phrase.startswith("Wait 1") and phrase.endswith("seconds and try again.")


def test_a_huge_answer_is_refused_without_reading_it_all(httpserver):
    httpserver.expect_request("/big").respond_with_data(b"x" * (3 * 1024 * 1024))
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))
    with pytest.raises(ResponseTooLargeError) as caught:
        session.get(httpserver.url_for("/big"))
    assert "larger answer than expected" in describe_exception(caught.value, "The CRM")


def test_a_slow_drip_answer_ends_within_the_bound(httpserver):
    def drip(_request):
        def body():
            for _ in range(20):
                time.sleep(0.2)
                yield b"x"

        from werkzeug import Response

        return Response(body(), content_type="text/plain")

    httpserver.expect_request("/drip").respond_with_handler(drip)
    session = make_session(
        HttpPolicy(outbound_allow=LOOPBACK_ALLOW, connect_timeout=0.2, read_timeout=0.5, max_retries=0)
    )
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(httpserver.url_for("/drip"))
    assert time.monotonic() - started < 2.5  # each byte came within the read timeout; the total did not


def test_compressed_answers_are_decoded(httpserver):
    import gzip

    httpserver.expect_request("/gz").respond_with_data(
        gzip.compress(b'{"ok": true}'), headers={"Content-Encoding": "gzip"}, content_type="application/json"
    )
    session = make_session(HttpPolicy(outbound_allow=LOOPBACK_ALLOW, max_retries=0))
    assert session.get(httpserver.url_for("/gz")).json() == {"ok": True}
