"""HTTP answers to refused messages: each domain error's status, and the one JSON body.

Domain errors (``consumer.errors``, ``consumer.feeds``) say what went wrong; which HTTP
status that is, and which headers go with it, is decided here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response

from consumer.errors import (
    IngestError,
    InvalidEnvelope,
    LimitExceeded,
    MalformedMessage,
    NestingTooDeep,
    RequestTimeout,
    Unavailable,
    UnknownFeed,
    UnsupportedEncoding,
    UnsupportedMediaType,
)
from consumer.feeds import Forbidden, TooManyFailures, Unauthorized

__all__ = [
    "HTTP_STATUS",
    "WWW_AUTHENTICATE",
    "json_response",
    "refusal_response",
    "routing_error_response",
    "status_of",
]

WWW_AUTHENTICATE: Final = 'Basic realm="ivmtr-stream", charset="UTF-8"'
"""The challenge sent with every 401 (RFC 7617; credentials are decoded as UTF-8)."""

HTTP_STATUS: Final[Mapping[type[IngestError], HTTPStatus]] = {
    IngestError: HTTPStatus.BAD_REQUEST,
    MalformedMessage: HTTPStatus.BAD_REQUEST,
    InvalidEnvelope: HTTPStatus.BAD_REQUEST,
    # Nesting is a message's shape, not its size: 400 like any other malformed message.
    NestingTooDeep: HTTPStatus.BAD_REQUEST,
    LimitExceeded: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    UnsupportedEncoding: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    RequestTimeout: HTTPStatus.REQUEST_TIMEOUT,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    Forbidden: HTTPStatus.FORBIDDEN,
    TooManyFailures: HTTPStatus.TOO_MANY_REQUESTS,
    UnknownFeed: HTTPStatus.NOT_FOUND,
    Unavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}
"""The status of each error class; a subclass not listed takes its nearest listed base's."""


def status_of(error: IngestError) -> HTTPStatus:
    """The HTTP status ``error`` is answered with."""
    for cls in type(error).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return status
    raise TypeError(f"{type(error).__name__} is not an IngestError")  # pragma: no cover


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status, dict(headers or {}), media_type="application/json")


def refusal_response(error: IngestError, request_id: str, retry_after_s: int) -> Response:
    """The JSON answer of a refused message: a 503 or 429 says when to retry, a 401 how to
    log in."""
    headers = {"x-request-id": request_id}
    if isinstance(error, Unavailable):
        headers["retry-after"] = str(error.retry_after or retry_after_s)
    if isinstance(error, TooManyFailures):
        headers["retry-after"] = str(error.retry_after)
    if isinstance(error, Unauthorized):
        # A 401 without a challenge is not valid HTTP (RFC 9110 15.5.2).
        headers["www-authenticate"] = WWW_AUTHENTICATE
    return json_response({**error.body(), "request_id": request_id}, status_of(error), headers)


ROUTING_ERRORS: Final[Mapping[int, str]] = {
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
}
"""Error codes of the answers Starlette's router gives before any endpoint runs."""


def routing_error_response(
    error: HTTPException, method: str, path: str, request_id: str
) -> Response:
    """The JSON answer to a request no endpoint takes: an unknown path, or a wrong method.

    Starlette answers those in plain text; every answer of this service is the same JSON
    error body, so a client (or IV-MTR's retry logic) never has to parse two shapes.
    """
    code = ROUTING_ERRORS.get(error.status_code, "http_error")
    shown = path if len(path) <= 200 else path[:200] + "…"
    if error.status_code == HTTPStatus.NOT_FOUND:
        detail = (
            f"no endpoint at {shown}; messages are pushed to POST /v1/feeds/{{feed}} "
            "(see /openapi.json)"
        )
    elif error.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = (error.headers or {}).get("allow", "")
        detail = f"{method} is not allowed on {shown}; allowed: {allowed}"
    else:
        detail = str(error.detail)
    headers = {**(error.headers or {}), "x-request-id": request_id}
    return json_response(
        {"error": code, "detail": detail, "request_id": request_id}, error.status_code, headers
    )
