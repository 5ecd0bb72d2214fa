"""The compiled fast path: one record's raw JSON to the Avro body of its scan event.

``ivmtr_native`` (Rust, in ``native/``; loaded by ``consumer.native`` and handed to
``ScanFastPath.build``) is an exact shortcut of ``validate_record`` +
``enrich`` + the topic's Avro encoder for the common record: flat, valid, a digit IMb, the
IV-MTR time format. Any record it cannot take whole gives None and goes the Python way,
which also writes every dead letter, so reasons are always the Python path's.

The module writes the event schemas' layout by hand (record fields excepted: those it is
given). ``ScanFastPath.build`` therefore refuses when the event schemas are not the layout
it was written for, and the service runs on the Python path, saying why.
"""

from __future__ import annotations

import copy
import hashlib
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import fastavro

from consumer.core.campaigns import CampaignRule
from consumer.core.codes import HANDLING_EVENT_TYPES, LOGICAL_DELIVERY_OPCODE, normalise_mail_phase
from consumer.core.enrich import Provenance, service_type_value
from consumer.core.records import RecordKind, RecordShape
from consumer.core.stid import STID_TABLE
from producer.schemas import Schema

__all__ = [
    "KINDS",
    "EncodedScans",
    "EncoderModule",
    "FastPathUnavailable",
    "MessageEncoder",
    "ScanFastPath",
]

#: The kinds in the native module's numbering.
KINDS = (RecordKind.PIECE, RecordKind.BUNDLE, RecordKind.HANDLING_UNIT, RecordKind.CONTAINER)

#: SHA-256 of each event schema's canonical form with its ``record`` fields left out:
#: the layout ``native/src/lib.rs`` writes. Change both together (tests/consumer/test_fastpath.py).
WRITTEN_FOR = {
    RecordKind.PIECE: "295e0e60f4f42f4912e208a2723a51a25521b8bb129234ea020c7c998062f51d",
    RecordKind.BUNDLE: "724ae0cc53842cc30aa97ae0abd46563dbcffb2528ce9704ca51b2c00d0b94cc",
    RecordKind.HANDLING_UNIT: "c9b90efe315aef83a0776c445db287254332092e0288a32fa2ae7300e7cbfb25",
    RecordKind.CONTAINER: "ead41e49dad7190eead4c14f2fb1196f35da445f82bb0f5aa648248e5754bc68",
}


class FastPathUnavailable(Exception):
    """The schemas are not the layout the native module writes."""


class EncoderModule(Protocol):
    """What the fast path uses of the native module (``consumer.native.NativeModule``)."""

    @property
    def ScanEncoder(self) -> Callable[..., Any]:
        """``ivmtr_native.ScanEncoder``."""


class EncodedScans(Protocol):
    """Scan events the native encoder took, in record order, kept in native memory
    (``ivmtr_native.EncodedRun``): a batch builder reads them there, never as Python objects."""

    def __len__(self) -> int:
        """Events in the run."""

    def kind_counts(self) -> list[int]:
        """Events per kind, indexed as KINDS."""

    def campaign_counts(self) -> dict[str, tuple[int, int]]:
        """Campaign -> (events, logical deliveries), over the events that have one."""

    def records(self) -> list[tuple[int, str, bytes]]:
        """(kind as an index of KINDS, key, Avro body) of each event, as Python objects."""


class MessageEncoder(Protocol):
    """The fast path for the records of one message (``ivmtr_native.MessageContext``)."""

    def encode_run(self, raws: list[bytes], indexes: list[int]) -> tuple[EncodedScans, int]:
        """The records from the first on, up to the first one the Python path must take:
        the run and how many records it took. Works without holding the GIL."""

    def encode_flat(
        self, buf: bytes, pos: int, max_record_bytes: int, first_index: int
    ) -> tuple[EncodedScans, int, bool]:
        """The flat records of ``events`` from ``buf[pos]`` on (as the parser's native
        scanner finds them), encoded straight from the buffer with indexes from
        ``first_index`` on, up to the first record the Python path must take: (the run,
        where it stopped, whether right after a record rather than where one should start).
        A record left to the Python path stops the run at its start (so the parser takes
        it); so does anything the scanner stops at. Works without holding the GIL."""


_I128 = 2**127


def _clamp(bound: int) -> int:
    # The native side compares serial numbers of up to 36 digits (< 2**127) as i128; a
    # bound beyond that range compares the same when clamped to it.
    return max(-_I128, min(bound, _I128 - 1))


def layout_digest(schema: Schema) -> str:
    """SHA-256 of the schema's canonical form without the ``record`` field's own fields."""
    parsed = copy.deepcopy(schema.parsed)
    for field in parsed["fields"]:
        if field["name"] == "record":
            field["type"]["fields"] = []
    canonical = fastavro.schema.to_parsing_canonical_form(parsed)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _named_types(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _named_types(item)
    elif isinstance(node, dict):
        if "name" in node and node.get("type") in ("record", "enum", "fixed"):
            yield node
        for key in ("fields", "type", "items", "values"):
            if key in node:
                yield from _named_types(node[key])


def _symbols(schema: Schema, name: str) -> dict[str, int]:
    for node in _named_types(schema.parsed):
        if node["name"] == name:
            return {symbol: index for index, symbol in enumerate(node["symbols"])}
    raise FastPathUnavailable(f"{schema.name} has no enum {name}")


def _record_fields(kind: RecordKind, schema: Schema) -> list[tuple[str, bool]]:
    record = next(f for f in schema.parsed["fields"] if f["name"] == "record")["type"]
    fields = []
    for field in record["fields"]:
        field_type = field["type"]
        if field_type in (["null", "string"],):
            fields.append((field["name"], False))
        elif field_type in (["null", "int"], ["null", "long"]):
            fields.append((field["name"], True))
        else:
            raise FastPathUnavailable(f"{kind} record field {field['name']} is {field_type}")
    return fields


def _service_type_unions(schema: Schema) -> dict[str, bytes]:
    # The bytes of the event's service_type union per STID, written by fastavro itself.
    union = next(f for f in schema.parsed["fields"] if f["name"] == "service_type")["type"]
    wrapper = fastavro.parse_schema(
        {
            "type": "record",
            "name": "ivmtr.fastpath.ServiceTypeUnion",
            "fields": [{"name": "service_type", "type": union}],
        }
    )
    unions = {}
    for stid, service in STID_TABLE.items():
        out = io.BytesIO()
        fastavro.schemaless_writer(out, wrapper, {"service_type": service_type_value(service)})
        unions[stid] = out.getvalue()
    return unions


class ScanFastPath:
    """The native encoder for a service's record shapes and event schemas."""

    def __init__(self, native: Any, sources: Mapping[str, int]) -> None:
        self._native = native
        self._sources = sources

    @classmethod
    def build(
        cls,
        native: EncoderModule,
        shapes: Mapping[RecordKind, RecordShape],
        event_schemas: Mapping[RecordKind, Schema],
        *,
        max_string_length: int,
    ) -> ScanFastPath:
        """The fast path over ``native``'s encoder; FastPathUnavailable says why there is none."""
        for kind in KINDS:
            digest = layout_digest(event_schemas[kind])
            if digest != WRITTEN_FOR[kind]:
                raise FastPathUnavailable(
                    f"{event_schemas[kind].name} is not the layout the native module writes "
                    f"(layout {digest[:12]})"
                )
            shape_names = tuple(name for name, _ in _record_fields(kind, event_schemas[kind]))
            if shape_names != shapes[kind].field_order:
                raise FastPathUnavailable(f"the {kind} record schema differs from its event's")
        piece = event_schemas[RecordKind.PIECE]
        handling_symbols = _symbols(piece, "ivmtr.events.HandlingEventType")
        record_states = _symbols(piece, "ivmtr.events.RecordState")
        encoder = native.ScanEncoder(
            record_fields=[_record_fields(kind, event_schemas[kind]) for kind in KINDS],
            handling_event_types={
                code: (handling_symbols[code], meaning)
                for code, meaning in HANDLING_EVENT_TYPES.items()
            },
            mail_phases=_symbols(piece, "ivmtr.events.MailPhase"),
            normalise_mail_phase=normalise_mail_phase,
            service_types=_service_type_unions(piece),
            record_states=(record_states["RAW"], record_states["ENRICHED"]),
            logical_delivery_opcode=LOGICAL_DELIVERY_OPCODE,
            max_string_length=max_string_length,
        )
        return cls(encoder, _symbols(piece, "ivmtr.events.Source"))

    def message(
        self,
        provenance: Provenance,
        *,
        kind: RecordKind | None,
        rules: Sequence[CampaignRule] = (),
    ) -> MessageEncoder:
        """The fast path for one message's records."""
        encoder: MessageEncoder = self._native.message(
            source=self._sources[provenance.source],
            feed=provenance.feed,
            msg_grp_id=provenance.msg_grp_id,
            msg_ser_nbr=provenance.msg_ser_nbr,
            received_at=provenance.received_at_ms,
            kind=None if kind is None else KINDS.index(kind),
            campaign=provenance.campaign,
            rules=[
                (
                    rule.campaign,
                    sorted(rule.mailer_ids),
                    [(_clamp(low), _clamp(high)) for low, high in rule.serial_ranges],
                    sorted(rule.stids),
                    sorted(rule.job_ids),
                    sorted(rule.mailing_group_ids),
                )
                for rule in rules
            ],
        )
        return encoder
