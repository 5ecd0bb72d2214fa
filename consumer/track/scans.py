"""Reading scan events and statuses off their topics, as plain data.

Values are decoded under their writer schema stripped of logical types: the encoding is
the same, and timestamps and dates come back as the integers the status keeps, not as
datetimes built only to be taken apart again. (A reader schema projected down to the
fields the tracker needs was measured slower: fastavro's schema resolution costs more
than building the fields it skips.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consumer.track.status import PieceScanFacts, event_hash, parse_date
from producer import Schema
from producer.wire import SingleObjectDecoder

__all__ = ["ScanReader", "UnreadableValue", "ValueReader"]

_SOURCES = {"ivmtr.events.PieceScan": "piece", "ivmtr.events.BundleScan": "bundle"}


class UnreadableValue(ValueError):
    """A value that is not one of the expected schemas, in neither framing, or truncated."""


class ValueReader:
    """Decodes framed Avro values of known schemas (either framing) as plain data."""

    def __init__(
        self, schemas: Iterable[Schema], registry_ids: Mapping[int, Schema] | None = None
    ) -> None:
        self._decoder = SingleObjectDecoder(schemas, registry_ids, plain=True)

    def read(self, data: bytes) -> tuple[Schema, Any]:
        """The writer schema of ``data`` and its value; UnreadableValue when not ours."""
        try:
            self._decoder.schema_of(data)
        except ValueError as exc:
            raise UnreadableValue("not a value of a known schema") from exc
        try:
            return self._decoder.read(data)
        except (ValueError, TypeError, EOFError, IndexError) as exc:
            raise UnreadableValue(f"undecodable value: {exc}") from exc


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
