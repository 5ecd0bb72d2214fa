"""Errors of the ingest side, each with the HTTP status it is answered with.

    IngestError                 status  code
    ├── UnsupportedMediaType    415     unsupported_media_type
    ├── UnsupportedEncoding     415     unsupported_content_encoding
    ├── MalformedMessage        400     malformed_message     (not JSON, not a message's shape)
    ├── InvalidEnvelope         400     invalid_envelope      (an envelope field missing or wrong)
    ├── LimitExceeded           413     limit_exceeded        (names the limit in ``limit``)
    │   └── RecordTooLarge      413     max_record_bytes
    ├── RequestTimeout          408     request_timeout       (the body came too slowly)
    ├── UnknownFeed             404     unknown_feed
    └── Unavailable             503     kafka_unavailable      (nothing was committed; retry later)

Every error is answered as ``{"error": code, "detail": ..., "request_id": ...}`` by the
one handler in ``consumer.http.app``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IngestError",
    "InvalidEnvelope",
    "LimitExceeded",
    "MalformedMessage",
    "RecordTooLarge",
    "RequestTimeout",
    "Unavailable",
    "UnknownFeed",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
]


class IngestError(Exception):
    """A pushed message that is refused as a whole: nothing of it is published."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def body(self) -> dict[str, Any]:
        """The JSON error body, without the request id."""
        return {"error": self.code, "detail": self.detail, **self.context}


class UnsupportedMediaType(IngestError):
    status = 415
    code = "unsupported_media_type"


class UnsupportedEncoding(IngestError):
    status = 415
    code = "unsupported_content_encoding"


class MalformedMessage(IngestError):
    code = "malformed_message"


class InvalidEnvelope(IngestError):
    code = "invalid_envelope"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field=field)


class LimitExceeded(IngestError):
    status = 413
    code = "limit_exceeded"

    def __init__(
        self,
        limit: str,
        value: int,
        detail: str | None = None,
        *,
        status: int = 413,
        **context: Any,
    ) -> None:
        super().__init__(
            detail or f"the message exceeds {limit}={value}", limit=limit, value=value, **context
        )
        self.status = status


class RecordTooLarge(LimitExceeded):
    def __init__(self, max_bytes: int, *, index: int) -> None:
        super().__init__(
            "max_record_bytes",
            max_bytes,
            f"record {index} of events is larger than max_record_bytes={max_bytes}",
            index=index,
        )


class RequestTimeout(IngestError):
    status = 408
    code = "request_timeout"


class UnknownFeed(IngestError):
    status = 404
    code = "unknown_feed"


class Unavailable(IngestError):
    status = 503
    code = "kafka_unavailable"

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after  # None: the service's IVMTR_RETRY_AFTER_S
