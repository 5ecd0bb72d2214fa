"""Tests for consumer.core.status: the enums say what the schema and the API document say."""

from __future__ import annotations

from consumer.core.status import MessageStatus, ReceiptStatus
from consumer.http.openapi import openapi_document
from producer import load_schema


def _enum_symbols(schema: object, name: str) -> list[str]:
    """The symbols of the named enum anywhere inside a parsed Avro schema."""
    if isinstance(schema, dict):
        if schema.get("type") == "enum" and schema.get("name") == name:
            return list(schema["symbols"])
        found = [_enum_symbols(value, name) for value in schema.values()]
    elif isinstance(schema, list):
        found = [_enum_symbols(value, name) for value in schema]
    else:
        return []
    return next((symbols for symbols in found if symbols), [])


def test_receipt_statuses_are_the_schemas_symbols() -> None:
    parsed = load_schema("ivmtr.events.DeliveryReceipt").parsed
    symbols = _enum_symbols(parsed, "ivmtr.events.ReceiptStatus")
    assert symbols == [status.value for status in ReceiptStatus]


def test_message_statuses_are_what_the_api_documents() -> None:
    document = openapi_document(basic_auth=True)
    text = str(document)
    for status in MessageStatus:
        assert f"'{status.value}'" in text
    assert MessageStatus("SPOOLED") is MessageStatus.SPOOLED and MessageStatus.SPOOLED == "SPOOLED"
