"""The error root's one policy: status, metric reason, expected or internal, what is sent."""

from __future__ import annotations

import asyncio

import pytest

from contracts.errors import (
    INTERNAL_MESSAGE,
    ClientClosed,
    Conflict,
    DeadlineExceeded,
    ExpectationFailed,
    HeadersTooLarge,
    InvalidInput,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    NotReady,
    Overloaded,
    PayloadTooLarge,
    RegistryError,
    RequestTimeout,
    TooManyConnections,
    UriTooLong,
    classify,
)
from serving.http.errors import error_response


@pytest.mark.parametrize(("error", "status", "reason"), [
    (InvalidInput("inputs[0].shape: bad"), 400, "bad_input"),
    (NotFound("no model x"), 404, "not_found"),
    (MethodNotAllowed("POST"), 405, "method_not_allowed"),
    (Conflict("version 3 exists"), 409, "conflict"),
    (PayloadTooLarge("body: over the limit"), 413, "too_large"),
    (ClientClosed(), 499, "client_closed"),
    (asyncio.CancelledError(), 499, "client_closed"),
    (Overloaded("queue full", retry_after_s=2.5), 503, "queue_full"),
    (NotReady("loading"), 503, "queue_full"),
    (DeadlineExceeded("deadline passed"), 504, "deadline"),
    (MalformedRequest("malformed HTTP request: x"), 400, "malformed"),
    (RequestTimeout("header"), 408, "header_timeout"),
    (RequestTimeout("body"), 408, "body_timeout"),
    (UriTooLong("request target: longer than 8 bytes"), 414, "url"),
    (ExpectationFailed("Expect: only 100-continue is supported"), 417, "expect"),
    (HeadersTooLarge("headers: more than 8"), 431, "headers"),
    (TooManyConnections("too many connections"), 503, "connections"),
])
def test_expected_outcomes_keep_their_status_reason_and_message(error, status, reason):
    kind = classify(error)
    assert (kind.status, kind.reason, kind.expected) == (status, reason, True)
    if not isinstance(error, asyncio.CancelledError):
        assert kind.message == kind.detail == error.message


@pytest.mark.parametrize("error", [RegistryError("manifest of demo/3 is corrupt"), KeyError("secret"),
                                   RuntimeError("boom")])
def test_internal_faults_are_500_with_a_generic_message(error):
    kind = classify(error)
    assert (kind.status, kind.reason, kind.expected, kind.message) == (500, "internal", False, INTERNAL_MESSAGE)
    assert kind.detail == (error.message if isinstance(error, RegistryError) else INTERNAL_MESSAGE)
    status, _, body = error_response(error)
    assert status == 500 and b"corrupt" not in body and b"secret" not in body


def test_headers_come_with_the_error():
    assert dict(error_response(Overloaded("full", retry_after_s=2.5))[1])[b"retry-after"] == b"3"
    assert dict(error_response(Overloaded("full", retry_after_s=0.01))[1])[b"retry-after"] == b"1"
    status, headers, body = error_response(MethodNotAllowed("GET"))
    assert status == 405 and dict(headers)[b"allow"] == b"GET" and body == b'{"error":"method not allowed; use GET"}'
