"""Tests for consumer.http.errors: each refusal's status, headers and JSON body."""

from __future__ import annotations

import orjson
import pytest

from consumer.errors import (
    IngestError,
    InvalidEnvelope,
    LimitExceeded,
    MalformedMessage,
    NestingTooDeep,
    RecordTooLarge,
    RequestTimeout,
    Unavailable,
    UnknownFeed,
    UnsupportedEncoding,
    UnsupportedMediaType,
)
from consumer.feeds import Forbidden, TooManyFailures, Unauthorized
from consumer.http.admission import Overloaded
from consumer.http.errors import refusal_response, status_of
from consumer.ingest.spool import SpoolFull


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (MalformedMessage("not JSON"), 400),
        (InvalidEnvelope("msgSerNbr", "missing"), 400),
        (NestingTooDeep(16), 400),
        (LimitExceeded("max_body_bytes", 10), 413),
        (RecordTooLarge(1024, index=3), 413),
        (UnsupportedMediaType("text/plain"), 415),
        (UnsupportedEncoding("br"), 415),
        (RequestTimeout("slow", limit="read_timeout_s"), 408),
        (Unauthorized("no credentials"), 401),
        (Forbidden("10.0.0.1 is not allowed"), 403),
        (TooManyFailures("locked out", 42), 429),
        (UnknownFeed("no such feed"), 404),
        (Unavailable("Kafka did not commit"), 503),
        (Overloaded("too many requests", 7), 503),
        (SpoolFull("spool full"), 503),
        (IngestError("anything else"), 400),
    ],
)
def test_each_refusal_has_its_status(error: IngestError, status: int) -> None:
    assert status_of(error) == status
    answer = refusal_response(error, "req-1", retry_after_s=5)
    assert answer.status_code == status
    body = orjson.loads(bytes(answer.body))
    assert body == {**error.body(), "request_id": "req-1"}
    assert body["error"] == error.code and body["detail"] == error.detail
    assert answer.headers["x-request-id"] == "req-1"
    assert ("retry-after" in answer.headers) == (status in (429, 503))
    assert ("www-authenticate" in answer.headers) == (status == 401)


def test_retry_after_is_the_errors_own_or_the_services() -> None:
    assert refusal_response(Overloaded("busy", 7), "r", 5).headers["retry-after"] == "7"
    assert (
        refusal_response(TooManyFailures("locked out", 42), "r", 5).headers["retry-after"] == "42"
    )
    assert refusal_response(Unavailable("down"), "r", 5).headers["retry-after"] == "5"


def test_the_limit_is_named_in_the_body() -> None:
    body = orjson.loads(bytes(refusal_response(NestingTooDeep(16), "r", 5).body))
    assert (body["error"], body["limit"], body["value"]) == ("limit_exceeded", "max_json_depth", 16)
