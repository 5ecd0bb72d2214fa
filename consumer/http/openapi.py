"""The OpenAPI description of the HTTP API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from consumer.core.status import MessageStatus

__all__ = ["openapi_document"]

_LONG_MAX = 2**63 - 1

_ERROR = {
    "type": "object",
    "required": ["error", "detail", "request_id"],
    "properties": {
        "error": {
            "type": "string",
            "description": "Machine-readable code, e.g. malformed_message.",
        },
        "detail": {"type": "string", "description": "What is wrong, naming the field or limit."},
        "request_id": {"type": "string"},
        "field": {
            "type": "string",
            "description": "The envelope field at fault (invalid_envelope).",
        },
        "limit": {"type": "string", "description": "The limit exceeded (limit_exceeded)."},
        "value": {"type": "integer", "description": "The limit's value."},
        "offset": {"type": "integer", "description": "Byte offset of a JSON error in the body."},
        "index": {"type": "integer", "description": "Index of the offending record in events."},
    },
}

_SUMMARY = {
    "type": "object",
    "required": [
        "feed",
        "msgGrpId",
        "msgSerNbr",
        "received",
        "published",
        "rejected",
        "duplicate",
        "status",
    ],
    "properties": {
        "feed": {"type": "string"},
        "msgGrpId": {"type": ["string", "null"]},
        "msgSerNbr": {"type": ["integer", "null"]},
        "received": {"type": "integer", "description": "Records in the message."},
        "published": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "Events written per topic (for a duplicate: by the first delivery).",
        },
        "rejected": {"type": "integer", "description": "Records sent to the dead-letter topic."},
        "duplicate": {
            "type": "boolean",
            "description": "Published before with the same content; nothing published now.",
        },
        "status": {"type": "string", "enum": [status.value for status in MessageStatus]},
        "problems": {"type": "array", "items": {"type": "string"}},
    },
}

_MESSAGE = {
    "type": "object",
    "description": "An IV-MTR push message; members in any order.",
    "required": ["msgGrpId", "msgSerNbr", "events"],
    "properties": {
        "msgGrpId": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S"},
        "msgSerNbr": {"type": "integer", "minimum": 1, "maximum": _LONG_MAX},
        "totMsgCnt": {"type": "integer", "minimum": 0, "maximum": _LONG_MAX},
        "recCnt": {"type": "integer", "minimum": 0, "maximum": _LONG_MAX},
        "totRecCnt": {"type": "integer", "minimum": 0, "maximum": _LONG_MAX},
        "events": {
            "type": "array",
            "description": "Piece, bundle, tray or container scan records (ivmtr.records.*).",
            "items": {"type": "object", "additionalProperties": True},
        },
    },
}


def _json(
    schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


def openapi_document(*, basic_auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``basic_auth`` when feeds require credentials."""
    retry_after = {
        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
    }
    push_responses: dict[str, Any] = {
        "200": _json(
            {"$ref": "#/components/schemas/Summary"}, "Committed in Kafka (or a duplicate)."
        ),
        "202": _json({"$ref": "#/components/schemas/Summary"}, "Spooled durably (ack_mode=spool)."),
        "400": _error("Not a message: malformed JSON, wrong shape, invalid envelope or gzip data."),
        "404": _error("No such feed."),
        "408": _error("The body did not arrive in time."),
        "413": _error("A size limit was exceeded (the error names it)."),
        "415": _error("Content-Type or Content-Encoding not supported."),
        "500": _error("Unexpected error; nothing was published."),
        "503": {
            **_error(
                "Kafka unavailable, overloaded, or the password checks busy (auth_busy); "
                "nothing was published."
            ),
            "headers": retry_after,
        },
    }
    if basic_auth:
        push_responses["401"] = _error("Missing or wrong credentials for this feed.")
        push_responses["403"] = _error("The client address is not allowed for this feed.")
        push_responses["429"] = {
            **_error(
                "The client address failed too many password checks (too_many_failures): "
                "refused without a check until Retry-After."
            ),
            "headers": retry_after,
        }
    push: dict[str, Any] = {
        "summary": "Push an IV-MTR message",
        "operationId": "pushMessage",
        "parameters": [
            {
                "name": "feed",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
            },
            {
                "name": "X-Request-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
        },
        "responses": push_responses,
    }
    if basic_auth:
        push["security"] = [{"basic": []}]
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "ivmtr-stream",
            "version": "1",
            "description": "Receives USPS IV-MTR data feed pushes and publishes them to Kafka.",
        },
        "paths": {
            "/v1/feeds/{feed}": {"post": push},
            "/healthz": {
                "get": {
                    "summary": "The process is alive",
                    "responses": {"200": _json(status, "Alive.")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Kafka reachable and topics present",
                    "responses": {
                        "200": _json(status, "Ready."),
                        "503": _json(
                            {**status, "additionalProperties": True}, "Not ready, with the reason."
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
                }
            },
        },
        "components": {"schemas": {"Error": _ERROR, "Summary": _SUMMARY, "Message": _MESSAGE}},
    }
    if basic_auth:
        document["components"]["securitySchemes"] = {"basic": {"type": "http", "scheme": "basic"}}
    return document
