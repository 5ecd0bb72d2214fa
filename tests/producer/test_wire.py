"""Tests for producer.wire: Avro single-object encoding (Avro 1.11 specification), the
Confluent wire format, and reading either back."""

from __future__ import annotations

import fastavro
import pytest

from producer.errors import SerializationError
from producer.schemas import Schema, load_schema
from producer.topics import TopicTable
from producer.wire import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MARKER,
    AvroSingleObject,
    ConfluentAvro,
    SingleObjectDecoder,
    WireHeader,
    confluent_schema_id,
    read_header,
)

# The 64-bit Rabin fingerprint of the Avro specification ("Schema Fingerprints"), written
# from the spec's Java reference code, independently of fastavro.
_EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    table = []
    for byte in range(256):
        fp = byte
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY if fp & 1 else 0)
        table.append(fp)
    return table


_FP_TABLE = _table()


def rabin(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def header(canonical: str) -> bytes:
    """C3 01, then the fingerprint little-endian (spec: "Single-object encoding")."""
    return b"\xc3\x01" + rabin(canonical.encode()).to_bytes(8, "little")


def schema(definition: object, name: str = "test") -> Schema:
    return Schema(name=name, parsed=fastavro.parse_schema(definition))


INT = schema("int")
LONG = schema("long")
RECORD = schema(
    {
        "type": "record",
        "name": "T",
        "namespace": "x",
        "doc": "docs are not part of the canonical form",
        "fields": [
            {"name": "s", "type": "string"},
            {"name": "n", "type": ["null", "int"], "default": None},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
        ],
    },
    "x.T",
)


def test_rabin_fingerprint_of_int_matches_the_known_value() -> None:
    assert rabin(b'"int"').to_bytes(8, "little").hex() == "8f5c393f1ad57572"
    assert INT.canonical_form == '"int"'
    assert INT.fingerprint.hex() == "8f5c393f1ad57572"


@pytest.mark.parametrize(
    "definition", ["int", "long", "string", "null", "boolean", {"type": "array", "items": "int"}]
)
def test_fingerprints_of_primitive_and_simple_schemas(definition: object) -> None:
    parsed = schema(definition)
    assert parsed.fingerprint == rabin(parsed.canonical_form.encode()).to_bytes(8, "little")


def test_canonical_form_of_a_record() -> None:
    assert RECORD.canonical_form == (
        '{"name":"x.T","type":"record","fields":[{"name":"s","type":"string"},'
        '{"name":"n","type":["null","int"]},'
        '{"name":"e","type":{"name":"x.E","type":"enum","symbols":["A","B"]}}]}'
    )
    assert RECORD.fingerprint == rabin(RECORD.canonical_form.encode()).to_bytes(8, "little")


@pytest.mark.parametrize("topic", list(TopicTable.build()), ids=lambda topic: topic.schema.name)
def test_fingerprints_of_our_schemas(topic: object) -> None:
    loaded = topic.schema  # type: ignore[attr-defined]
    assert loaded.fingerprint == rabin(loaded.canonical_form.encode()).to_bytes(8, "little")


# Avro binary encoding: ints and longs are zig-zag varints; strings are a length then UTF-8;
# a union is the branch index then the value; an enum is the symbol index.
@pytest.mark.parametrize(
    ("parsed", "value", "body"),
    [
        (INT, 0, b"\x00"),
        (INT, -1, b"\x01"),
        (INT, 1, b"\x02"),
        (INT, 5, b"\x0a"),
        (INT, 64, b"\x80\x01"),
        (INT, -65, b"\x81\x01"),
        (INT, 2**31 - 1, b"\xfe\xff\xff\xff\x0f"),
        (INT, -(2**31), b"\xff\xff\xff\xff\x0f"),
        (LONG, 2**63 - 1, b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        (RECORD, {"s": "ab", "n": None, "e": "A"}, b"\x04ab\x00\x00"),
        (RECORD, {"s": "é", "n": 3, "e": "B"}, b"\x04\xc3\xa9\x02\x06\x02"),
        (RECORD, {"s": "", "e": "B"}, b"\x00\x00\x02"),  # n takes its default
    ],
)
def test_exact_bytes(parsed: Schema, value: object, body: bytes) -> None:
    data = AvroSingleObject(parsed)(value)  # type: ignore[arg-type]
    assert data == header(parsed.canonical_form) + body
    assert data[:2] == SINGLE_OBJECT_MARKER == b"\xc3\x01"
    decoded = SingleObjectDecoder([parsed])(data)
    expected = {"n": None, **value} if isinstance(value, dict) else value
    assert decoded == expected


def test_content_type() -> None:
    assert (
        AvroSingleObject(INT).content_type
        == "application/vnd.apache.avro+binary; encoding=single-object"
    )


@pytest.mark.parametrize(
    "value",
    [
        {"s": 1, "e": "A"},
        {"s": "x", "e": "C"},  # not a symbol
        {"e": "A"},  # no value and no default
        {"s": "x", "n": "1", "e": "A"},
        {"s": "x", "n": 2**31, "e": "A"},  # beyond int in a union
        {"s": None, "e": "A"},
        None,
    ],
)
def test_bad_values_raise_serialization_error(value: object) -> None:
    with pytest.raises(SerializationError, match=r"^x\.T: ") as caught:
        AvroSingleObject(RECORD)(value)  # type: ignore[arg-type]
    assert caught.value.retriable is False


@pytest.mark.parametrize(
    ("parsed", "value"),
    [(INT, 2**31), (INT, -(2**31) - 1), (INT, 1.5), (LONG, 2**63), (LONG, -(2**63) - 1)],
)
def test_out_of_range_numbers_raise_serialization_error(parsed: Schema, value: object) -> None:
    with pytest.raises(SerializationError):
        AvroSingleObject(parsed)(value)  # type: ignore[arg-type]


def test_decoder_picks_the_schema_by_fingerprint() -> None:
    decode = SingleObjectDecoder([INT, RECORD])
    record = AvroSingleObject(RECORD)({"s": "x", "n": 1, "e": "B"})
    number = AvroSingleObject(INT)(42)
    assert decode.schema_of(record) is RECORD
    assert decode.schema_of(number) is INT
    assert decode(record) == {"s": "x", "n": 1, "e": "B"}
    assert decode(number) == 42


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01" + bytes(8) + b"\x00", "unknown schema registry id 16777216"),
        (b"", "not Avro single-object encoding (no C3 01 marker)"),
        (
            b"\xc3\x01" + rabin(b'"long"').to_bytes(8, "little") + b"\x00",
            "unknown schema fingerprint b71df49344e154d0",
        ),
        (
            b"\xc3\x01" + rabin(b'"int"').to_bytes(8, "big") + b"\x00",
            "unknown schema fingerprint 7275d51a3f395c8f",
        ),
    ],
)
def test_decoder_refuses_what_is_not_ours(data: bytes, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        SingleObjectDecoder([INT]).schema_of(data)
    assert str(caught.value) == message


# -- the Confluent wire format, and reading either framing back -------------------------------


def test_confluent_header_then_the_same_body() -> None:
    value = {"s": "é", "n": 3, "e": "B"}
    data = ConfluentAvro(RECORD, 0x01020304)(value)
    assert data[:1] == CONFLUENT_MAGIC == b"\x00"
    assert data == b"\x00\x01\x02\x03\x04" + b"\x04\xc3\xa9\x02\x06\x02"
    assert data[5:] == AvroSingleObject(RECORD)(value)[10:]
    assert ConfluentAvro(RECORD, 7).frame(b"body") == b"\x00\x00\x00\x00\x07body"
    assert AvroSingleObject(RECORD).frame(b"body") == header(RECORD.canonical_form) + b"body"
    assert (
        ConfluentAvro(INT, 0).content_type
        == "application/vnd.apache.avro+binary; encoding=confluent"
    )
    assert (AvroSingleObject.encoding, ConfluentAvro.encoding) == (
        "avro-single-object",
        "confluent-avro",
    )


@pytest.mark.parametrize("schema_id", [-1, 1 << 32])
def test_a_confluent_schema_id_fits_4_bytes(schema_id: int) -> None:
    with pytest.raises(ValueError, match="does not fit 4 bytes"):
        ConfluentAvro(INT, schema_id)
    assert ConfluentAvro(INT, (1 << 32) - 1).header == b"\x00\xff\xff\xff\xff"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\x00\x00\x01\x00\x2a", WireHeader(256, None, 5)),
        (b"\x00\x00\x00\x00\x07", WireHeader(7, None, 5)),
        (b"\xc3\x01" + bytes(range(8)) + b"\x02", WireHeader(None, bytes(range(8)), 10)),
        (b"\xc3\x01\x01\x02", WireHeader(None, b"\x01\x02", 10)),  # truncated fingerprint
        (b"\x00\x00\x00\x01", None),  # too short for a schema id
        (b"", None),
        (b"\xc3\x02" + bytes(8), None),
        (b"{}", None),
    ],
)
def test_read_header(data: bytes, expected: WireHeader | None) -> None:
    assert read_header(data) == expected


def test_confluent_schema_id() -> None:
    assert confluent_schema_id(ConfluentAvro(INT, 0x01020304)(1)) == 0x01020304
    for data in (AvroSingleObject(INT)(1), b"\x00\x01", b""):
        with pytest.raises(ValueError, match=r"^not Confluent Avro"):
            confluent_schema_id(data)


def test_decoder_reads_both_framings() -> None:
    decode = SingleObjectDecoder([INT], {9: RECORD, 10: INT})
    value = {"s": "x", "n": None, "e": "A"}
    assert decode.schema_of(ConfluentAvro(RECORD, 9)(value)) is RECORD
    assert decode(ConfluentAvro(RECORD, 9)(value)) == value
    assert decode(ConfluentAvro(INT, 10)(-3)) == -3
    assert decode(AvroSingleObject(INT)(-3)) == -3
    with pytest.raises(ValueError, match=r"^unknown schema fingerprint"):
        decode(AvroSingleObject(RECORD)(value))  # the record is known by registry id only
    with pytest.raises(ValueError, match=r"^unknown schema registry id 11$"):
        decode(ConfluentAvro(INT, 11)(-3))


def test_schema_loaded_from_files() -> None:
    loaded = load_schema("ivmtr.events.DeadLetter")
    assert loaded.name == "ivmtr.events.DeadLetter"
    assert loaded.field_names == ("provenance", "kind", "reasons", "raw")
    value = {
        "provenance": {
            "source": "PUSH",
            "feed": "f",
            "msg_grp_id": "G",
            "msg_ser_nbr": 1,
            "record_index": 0,
            "received_at": 0,
        },
        "kind": None,
        "reasons": [{"field": None, "problem": "p"}],
        "raw": "{}",
    }
    data = AvroSingleObject(loaded)(value)
    assert data[:10] == header(loaded.canonical_form)
