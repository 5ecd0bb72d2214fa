"""Reading scan events and statuses off their topics, as plain data.

Values are decoded under their writer schema stripped of logical types: the encoding is
the same, and timestamps and dates come back as the integers the status keeps, not as
datetimes built only to be taken apart again. (A reader schema projected down to the
fields the tracker needs was measured slower: fastavro's schema resolution costs more
than building the fields it skips.)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import fastavro

from consumer.track.status import PieceScanFacts, event_hash, parse_date
from producer import Schema
from producer.wire import read_header

__all__ = ["ScanReader", "UnreadableValue", "ValueReader", "plain_schema"]

_SOURCES = {"ivmtr.events.PieceScan": "piece", "ivmtr.events.BundleScan": "bundle"}


class UnreadableValue(ValueError):
    """A value that is not one of the expected schemas, in neither framing, or truncated."""


def plain_schema(writer: Mapping[str, Any]) -> Any:
    """``writer`` (a fastavro-parsed schema) without its logical types, parsed."""
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


class ValueReader:
    """Decodes framed Avro values of known schemas (either framing) as plain data."""

    def __init__(
        self, schemas: Iterable[Schema], registry_ids: Mapping[int, Schema] | None = None
    ) -> None:
        self._by_fingerprint: dict[bytes, tuple[Schema, Any]] = {}
        for schema in schemas:
            self._by_fingerprint[schema.fingerprint] = (schema, plain_schema(schema.parsed))
        self._by_registry_id = {
            registry_id: self._by_fingerprint[schema.fingerprint]
            for registry_id, schema in (registry_ids or {}).items()
            if schema.fingerprint in self._by_fingerprint
        }

    def read(self, data: bytes) -> tuple[Schema, Any]:
        """The writer schema of ``data`` and its value; UnreadableValue when not ours."""
        header = read_header(data)
        found = None
        if header is not None:
            if header.registry_id is not None:
                found = self._by_registry_id.get(header.registry_id)
            elif header.fingerprint is not None:
                found = self._by_fingerprint.get(header.fingerprint)
        if header is None or found is None:
            raise UnreadableValue("not a value of a known schema")
        schema, plain = found
        try:
            value = fastavro.schemaless_reader(
                io.BytesIO(memoryview(data)[header.body_start :]), plain, None
            )
        except (ValueError, TypeError, EOFError, IndexError) as exc:
            raise UnreadableValue(f"undecodable {schema.name}: {exc}") from exc
        return schema, value


class ScanReader:
    """Piece and bundle scan events -> ``PieceScanFacts``."""

    def __init__(
        self, schemas: Iterable[Schema], registry_ids: Mapping[int, Schema] | None = None
    ) -> None:
        self._values = ValueReader(schemas, registry_ids)

    def __call__(self, data: bytes) -> PieceScanFacts:
        """The facts of one scan event; UnreadableValue when it is not a piece or bundle scan."""
        schema, value = self._values.read(data)
        source = _SOURCES.get(schema.name)
        if source is None:
            raise UnreadableValue(f"{schema.name} is not a piece or bundle scan")
        scan = value["scan"]
        record = value["record"] or {}
        dates = (
            parse_date(record.get("anticipatedDeliveryDate")),
            parse_date(record.get("predictedDeliveryDate")),
            parse_date(record.get("expectedDeliveryDate")),
        )
        event_id = value["event_id"]
        point = {
            "event_id": event_id,
            "scanned_at": scan["scanned_at"],
            "local_time": scan["local_time"],
            "event_code": scan["event_code"],
            "handling_event_type": scan["handling_event_type"],
            "mail_phase": scan["mail_phase"],
            "facility": scan["facility"],
            "source": source,
        }
        barcode = value["barcode"]
        return PieceScanFacts(
            tracking_code=barcode["tracking_code"],
            imb=value["imb"],
            barcode=barcode,
            point=point,
            id_hash=event_hash(event_id),
            logical_delivery=bool(scan["logical_delivery"]),
            dates=None if dates == (None, None, None) else dates,
            campaign=value["campaign"],
            job=value["job"],
        )
