"""Why a pushed message is refused as a whole, in the domain's terms.

    IngestError                 code
    ├── UnsupportedMediaType    unsupported_media_type
    ├── UnsupportedEncoding     unsupported_content_encoding
    ├── MalformedMessage        malformed_message     (not JSON, not a message's shape)
    ├── InvalidEnvelope         invalid_envelope      (an envelope field missing or wrong)
    ├── LimitExceeded           limit_exceeded        (names the limit in ``limit``)
    │   ├── RecordTooLarge      max_record_bytes
    │   └── NestingTooDeep      max_json_depth
    ├── RequestTimeout          request_timeout       (the body came too slowly)
    ├── UnknownFeed             unknown_feed
    └── Unavailable             kafka_unavailable     (nothing was committed; retry later)

Errors carry no HTTP status: ``consumer.http.errors`` maps each class to the status it
is answered with, as ``{"error": code, "detail": ..., "request_id": ...}``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IngestError",
    "InvalidEnvelope",
    "LimitExceeded",
    "MalformedMessage",
    "NestingTooDeep",
    "RecordTooLarge",
    "RequestTimeout",
    "Unavailable",
    "UnknownFeed",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
]


class IngestError(Exception):
    """A pushed message that is refused as a whole: nothing of it is published."""

    code: str = "bad_request"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def body(self) -> dict[str, Any]:
        """The JSON error body, without the request id."""
        return {"error": self.code, "detail": self.detail, **self.context}


class UnsupportedMediaType(IngestError):
    """The body is not declared as JSON."""

    code = "unsupported_media_type"


class UnsupportedEncoding(IngestError):
    """The body's content coding is neither identity, gzip nor deflate."""

    code = "unsupported_content_encoding"


class MalformedMessage(IngestError):
    """The body is not JSON, or not shaped like an IV-MTR message."""

    code = "malformed_message"


class InvalidEnvelope(IngestError):
    """An envelope member (msgGrpId, msgSerNbr, ...) is missing or wrong."""

    code = "invalid_envelope"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field=field)


class LimitExceeded(IngestError):
    """The message is larger than a configured limit, which ``limit`` names."""

    code = "limit_exceeded"

    def __init__(self, limit: str, value: int, detail: str | None = None, **context: Any) -> None:
        super().__init__(
            detail or f"the message exceeds {limit}={value}", limit=limit, value=value, **context
        )


class RecordTooLarge(LimitExceeded):
    """One record of ``events`` is larger than max_record_bytes."""

    def __init__(self, max_bytes: int, *, index: int) -> None:
        super().__init__(
            "max_record_bytes",
            max_bytes,
            f"record {index} of events is larger than max_record_bytes={max_bytes}",
            index=index,
        )


class NestingTooDeep(LimitExceeded):
    """JSON nested deeper than max_json_depth: a malformed message more than a large one."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(
            "max_json_depth", max_depth, f"JSON nested deeper than max_json_depth={max_depth}"
        )


class RequestTimeout(IngestError):
    """The body did not arrive within read_timeout_s or body_timeout_s."""

    code = "request_timeout"


class UnknownFeed(IngestError):
    """No feed of that name."""

    code = "unknown_feed"


class Unavailable(IngestError):
    """Nothing was committed and the sender should retry, after ``retry_after`` seconds."""

    code = "kafka_unavailable"

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after  # None: the service's IVMTR_RETRY_AFTER_S
