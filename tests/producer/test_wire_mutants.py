"""Tests for producer.wire: reading values back without their logical types (``plain``), and
what a serialiser says of itself.

The tracker reads scans with ``SingleObjectDecoder(..., plain=True)``: timestamps and dates
as the integers they are encoded as. A plain reader must decode exactly what the writer
wrote, whatever the writer schema's shape: named types used twice, named types that
fastavro left as references (parsed with ``named_schemas``), unions, arrays, maps,
enums and fixed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import fastavro
import pytest

from producer.schemas import Schema
from producer.topics import TopicTable, TrackTopics
from producer.wire import (
    AvroSingleObject,
    ConfluentAvro,
    SingleObjectDecoder,
    plain_schema,
)

DATE = {"type": "int", "logicalType": "date"}
MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
ENUM = {"type": "enum", "name": "x.E", "doc": "a doc", "symbols": ["A", "B"]}
FIXED = {"type": "fixed", "name": "x.F", "size": 2}
INNER = {
    "type": "record",
    "name": "x.Inner",
    "fields": [{"name": "at", "type": MILLIS}],
}


def outer(enum: Any, fixed: Any, inner: Any) -> dict[str, Any]:
    """A record using each named type twice: first as given, then by name."""
    return {
        "type": "record",
        "name": "x.T",
        "doc": "every kind of node",
        "fields": [
            {"name": "e", "type": enum},
            {"name": "e2", "type": "x.E"},
            {"name": "f", "type": fixed},
            {"name": "f2", "type": ["null", "x.F"]},
            {"name": "inner", "type": inner},
            {"name": "inner2", "type": ["null", "x.Inner"], "default": None},
            {"name": "when", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "day", "type": DATE},
            {"name": "days", "type": {"type": "array", "items": DATE}},
            {"name": "times", "type": {"type": "map", "values": MILLIS}},
            {"name": "maybe", "type": ["null", DATE]},
            {"name": "n", "type": "long"},
        ],
    }


def inline() -> Schema:
    """Named types defined where first used, as fastavro parses one document."""
    return Schema("x.T", fastavro.parse_schema(outer(ENUM, FIXED, INNER)))


def by_reference() -> Schema:
    """Named types parsed beforehand: fastavro leaves their first use a name."""
    named: dict[str, Any] = {}
    for definition in (ENUM, FIXED, INNER):
        fastavro.parse_schema(definition, named_schemas=named)
    return Schema("x.T", fastavro.parse_schema(outer("x.E", "x.F", "x.Inner"), named_schemas=named))


DAY = datetime(1970, 1, 2, tzinfo=UTC)  # 86 400 s after the epoch
VALUE = {
    "e": "B",
    "e2": "A",
    "f": b"\x01\x02",
    "f2": b"\x03\x04",
    "inner": {"at": DAY},
    "inner2": {"at": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)},
    "when": datetime(1970, 1, 1, 0, 0, 0, 250, tzinfo=UTC),
    "day": date(1970, 1, 11),
    "days": [date(1970, 1, 1), date(1969, 12, 31)],
    "times": {"k": DAY},
    "maybe": date(1970, 2, 1),
    "n": -5,
}
# the same value as encoded: milliseconds, microseconds and days since the epoch
PLAIN = {
    **VALUE,
    "inner": {"at": 86_400_000},
    "inner2": {"at": 1_000},
    "when": 250,
    "day": 10,
    "days": [0, -1],
    "times": {"k": 86_400_000},
    "maybe": 31,
}
# as fastavro reads it with the logical types (naive dates, aware datetimes)
LOGICAL = VALUE


@pytest.mark.parametrize("written", [inline, by_reference], ids=["inline", "by-reference"])
def test_plain_reads_the_integers_that_were_written(written: Any) -> None:
    schema = written()
    single_object = AvroSingleObject(schema)(VALUE)
    confluent = ConfluentAvro(schema, 3)(VALUE)
    assert SingleObjectDecoder([schema], plain=True)(single_object) == PLAIN
    assert SingleObjectDecoder([], {3: schema}, plain=True)(confluent) == PLAIN
    # without plain, the logical types come back
    assert SingleObjectDecoder([schema])(single_object) == LOGICAL
    assert SingleObjectDecoder([], {3: schema})(confluent) == LOGICAL
    assert SingleObjectDecoder([schema], plain=True).read(single_object) == (schema, PLAIN)


@pytest.mark.parametrize("written", [inline, by_reference], ids=["inline", "by-reference"])
def test_a_plain_schema_encodes_the_same_and_has_no_logical_types(written: Any) -> None:
    schema = written()
    plain = plain_schema(schema.parsed)
    canonical = fastavro.schema.to_parsing_canonical_form
    assert canonical(plain) == canonical(inline().parsed)
    assert "logicalType" not in repr(plain)


def test_plain_schema_of_a_schema_as_written() -> None:
    """A document fastavro has not parsed (no named types of its own) works too."""
    plain = plain_schema(outer(ENUM, FIXED, INNER))
    assert fastavro.schema.to_parsing_canonical_form(plain) == inline().canonical_form
    data = AvroSingleObject(inline())(VALUE)
    assert SingleObjectDecoder([inline()], plain=True)(data) == PLAIN


@pytest.mark.parametrize(
    "topic", [*TopicTable.build(), *TrackTopics.build()], ids=lambda topic: topic.name
)
def test_plain_schemas_of_our_topics_encode_the_same(topic: Any) -> None:
    canonical = fastavro.schema.to_parsing_canonical_form
    plain = plain_schema(topic.schema.parsed)
    assert canonical(plain) == topic.schema.canonical_form
    assert "logicalType" not in repr(plain)


def test_serialisers_say_what_they_write() -> None:
    schema = inline()
    confluent = ConfluentAvro(schema, 0x01020304)
    assert (confluent.schema, confluent.schema_id) == (schema, 0x01020304)
    assert confluent.header == b"\x00\x01\x02\x03\x04"
    assert AvroSingleObject(schema).schema is schema
