"""Avro values on the wire: the two framings we write, and reading either back.

Every value is a header, then the Avro binary body under the writer schema:

    single-object   C3 01 | CRC-64-AVRO fingerprint, 8 bytes little-endian | body
    Confluent       00    | schema registry id, 4 bytes big-endian         | body

Single-object values name their schema by fingerprint, so a subscriber can pick it from
``schemas/`` with no registry. Confluent values name it by the id a schema registry gave
it, which is what registry-aware subscribers (Confluent's ``AvroDeserializer``, Kafka
Connect, ksqlDB, ...) expect. ``read_header`` is the one place either header is parsed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NamedTuple

import fastavro

from producer.avro import compile_encoder
from producer.schemas import Schema

__all__ = [
    "CONFLUENT_MAGIC",
    "SINGLE_OBJECT_MARKER",
    "AvroSingleObject",
    "ConfluentAvro",
    "FramedAvro",
    "SingleObjectDecoder",
    "WireHeader",
    "confluent_schema_id",
    "plain_schema",
    "read_header",
]

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"

_FINGERPRINT_END = len(SINGLE_OBJECT_MARKER) + 8
_SCHEMA_ID_END = len(CONFLUENT_MAGIC) + 4


# -- writing ----------------------------------------------------------------------------------


class FramedAvro:
    """Serialises a mapping under one schema: a fixed header, then the Avro binary body.

    Subclasses say which header; ``encoding`` names the framing in a record's headers.
    """

    encoding: ClassVar[str]
    content_type: ClassVar[str]

    def __init__(self, schema: Schema, header: bytes) -> None:
        self.schema = schema
        self.header = header
        # Compiled once per schema: byte-identical to fastavro's writer, several times faster.
        self._encode = compile_encoder(schema.parsed)

    def __call__(self, value: Mapping[str, Any]) -> bytes:
        return self.header + self._encode(value)

    def frame(self, body: bytes) -> bytes:
        """A value already encoded in Avro binary under this schema, framed."""
        return self.header + body


class AvroSingleObject(FramedAvro):
    """Avro single-object encoding: C3 01, the schema's fingerprint, the body."""

    encoding = "avro-single-object"
    content_type = "application/vnd.apache.avro+binary; encoding=single-object"

    def __init__(self, schema: Schema) -> None:
        super().__init__(schema, SINGLE_OBJECT_MARKER + schema.fingerprint)


class ConfluentAvro(FramedAvro):
    """The Confluent wire format: 00, the schema's registry id, the body."""

    encoding = "confluent-avro"
    content_type = "application/vnd.apache.avro+binary; encoding=confluent"

    def __init__(self, schema: Schema, schema_id: int) -> None:
        if not 0 <= schema_id < 1 << 32:
            raise ValueError(f"schema id {schema_id} does not fit 4 bytes")
        self.schema_id = schema_id
        super().__init__(schema, CONFLUENT_MAGIC + schema_id.to_bytes(4, "big"))


# -- reading ----------------------------------------------------------------------------------


class WireHeader(NamedTuple):
    """What a value's header says of its writer schema, and where its body starts.

    Exactly one of ``registry_id`` (Confluent) and ``fingerprint`` (single-object) is set.
    """

    registry_id: int | None
    fingerprint: bytes | None
    body_start: int


def read_header(data: bytes) -> WireHeader | None:
    """The header of a value in either framing; None when it is in neither."""
    if data[:1] == CONFLUENT_MAGIC and len(data) >= _SCHEMA_ID_END:
        return WireHeader(int.from_bytes(data[1:_SCHEMA_ID_END], "big"), None, _SCHEMA_ID_END)
    if data[:2] == SINGLE_OBJECT_MARKER:
        # A short value keeps what fingerprint it has: it is then one we do not know.
        return WireHeader(None, data[2:_FINGERPRINT_END], _FINGERPRINT_END)
    return None


def confluent_schema_id(data: bytes) -> int:
    """The schema id of a Confluent-framed value; ValueError when it is not one."""
    header = read_header(data)
    if header is None or header.registry_id is None:
        raise ValueError("not Confluent Avro (no 00 magic byte and 4-byte schema id)")
    return header.registry_id


def plain_schema(writer: Mapping[str, Any]) -> Any:
    """``writer`` (a fastavro-parsed schema) without its logical types, parsed: the same
    encoding, read as plain integers instead of datetimes and dates."""
    named: Mapping[str, Any] = writer.get("__named_schemas", {})
    defined: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            if node in named and node not in defined:
                return walk(named[node])
            return node
        if isinstance(node, list):
            return [walk(branch) for branch in node]
        kind = node["type"]
        if kind == "record":
            defined.add(node["name"])
            fields = [{**f, "type": walk(f["type"])} for f in node["fields"]]
            return {"type": "record", "name": node["name"], "fields": fields}
        if kind in ("enum", "fixed"):
            defined.add(node["name"])
            return {k: v for k, v in node.items() if k != "doc"}
        if kind == "array":
            return {"type": "array", "items": walk(node["items"])}
        if kind == "map":
            return {"type": "map", "values": walk(node["values"])}
        return kind  # a primitive, its logical type dropped

    return fastavro.parse_schema(walk(dict(writer)))


class SingleObjectDecoder:
    """Decodes values of any of the given schemas, in either framing.

    Single-object values are matched by fingerprint against ``schemas``; Confluent values
    by id against ``registry_ids``. With ``plain``, logical types are not applied:
    timestamps and dates come back as the integers they are encoded as.
    """

    def __init__(
        self,
        schemas: Iterable[Schema],
        registry_ids: Mapping[int, Schema] | None = None,
        *,
        plain: bool = False,
    ) -> None:
        self._by_fingerprint = {schema.fingerprint: schema for schema in schemas}
        self._by_registry_id = dict(registry_ids or {})
        self._readers: dict[str, Any] = {}
        if plain:
            for schema in (*self._by_fingerprint.values(), *self._by_registry_id.values()):
                self._readers[schema.name] = plain_schema(schema.parsed)

    def _schema_and_body(self, data: bytes) -> tuple[Schema, int]:
        header = read_header(data)
        if header is None:
            raise ValueError("not Avro single-object encoding (no C3 01 marker)")
        if header.registry_id is not None:
            schema = self._by_registry_id.get(header.registry_id)
            if schema is None:
                raise ValueError(f"unknown schema registry id {header.registry_id}")
            return schema, header.body_start
        assert header.fingerprint is not None
        schema = self._by_fingerprint.get(header.fingerprint)
        if schema is None:
            raise ValueError(f"unknown schema fingerprint {header.fingerprint.hex()}")
        return schema, header.body_start

    def schema_of(self, data: bytes) -> Schema:
        """The schema a value was written with; ValueError when it is not one of ours."""
        return self._schema_and_body(data)[0]

    def read(self, data: bytes) -> tuple[Schema, Any]:
        """The writer schema of a value and the value; ValueError when it is not one of
        ours, EOFError (or another error of fastavro's) when it is cut short."""
        schema, body_start = self._schema_and_body(data)
        writer = self._readers.get(schema.name, schema.parsed)
        return schema, fastavro.schemaless_reader(io.BytesIO(data[body_start:]), writer, None)

    def __call__(self, data: bytes) -> Any:
        return self.read(data)[1]
