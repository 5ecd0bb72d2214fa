"""One pushed message, from body bytes to outcomes: parse -> validate -> enrich.

``MessagePipeline`` is fed the (decompressed) body chunk by chunk and returns, per
chunk, the events and dead letters that chunk completed. Envelope members may come in
any order; records seen before ``msgGrpId`` and ``msgSerNbr`` are kept aside (in a
spooled temporary file, so memory stays bounded) and processed once both are known.
From then on, the native fast path (when there is one) encodes runs of flat records in
the parser, straight from the body's bytes.
"""

from __future__ import annotations

import json
import re
import struct
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.core.campaigns import CampaignRule
from consumer.core.enrich import Provenance, enrich
from consumer.core.fastpath import EncodedScans, MessageEncoder, ScanFastPath
from consumer.core.parse import EnvelopeField, FlatRecords, Item, MessageParser, RawRecord
from consumer.core.records import RecordKind, RecordShape
from consumer.core.validate import Reason, Rejection, validate_record
from consumer.errors import InvalidEnvelope, LimitExceeded

__all__ = [
    "DeadLetter",
    "EncodedScans",
    "Envelope",
    "Limits",
    "MessagePipeline",
    "Outcome",
    "ScanEvent",
    "envelope_value",
    "outcome_count",
]

_SPILL_IN_MEMORY = 8 << 20
# Records handed to one native call: bounds the copying when Python must take many of them.
_NATIVE_WINDOW = 1024
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Limits:
    """Per-message limits (all settings)."""

    max_record_bytes: int = 1 << 20
    max_events: int = 1_000_000
    max_string_length: int = 4096
    max_json_depth: int = 16


@dataclass
class Envelope:
    """The envelope of a pushed message; counts are None when the message left them out."""

    msg_grp_id: str | None = None
    msg_ser_nbr: int | None = None
    tot_msg_cnt: int | None = None
    rec_cnt: int | None = None
    tot_rec_cnt: int | None = None

    @property
    def coordinates_known(self) -> bool:
        """True once msgGrpId and msgSerNbr arrived: events can be built."""
        return self.msg_grp_id is not None and self.msg_ser_nbr is not None


_COUNTS = {
    "msgSerNbr": "msg_ser_nbr",
    "totMsgCnt": "tot_msg_cnt",
    "recCnt": "rec_cnt",
    "totRecCnt": "tot_rec_cnt",
}


@dataclass(slots=True)
class ScanEvent:
    """An event of the Python path for a scan topic: its kind, Kafka key and Avro value.

    (Events of the native fast path stay in native memory, as ``EncodedScans`` runs.)
    """

    kind: RecordKind
    key: str
    value: dict[str, Any]
    campaign: str | None = None
    logical_delivery: bool = False

    @classmethod
    def of(cls, kind: RecordKind, key: str, value: dict[str, Any]) -> ScanEvent:
        """An event from its Avro value."""
        return cls(kind, key, value, value["campaign"], value["scan"]["logical_delivery"])


@dataclass(slots=True)
class DeadLetter:
    """A rejected record for the dead-letter topic."""

    key: str
    value: dict[str, Any]
    kind: RecordKind | None
    reasons: list[tuple[str | None, str]] = field(default_factory=list)

    @classmethod
    def of(
        cls, key: str, provenance: Provenance, index: int, raw: str, rejection: Rejection
    ) -> DeadLetter:
        """The dead letter of a rejected record, as every path writes it: where the record
        came from, its kind when known, every reason, and the record as received."""
        reasons = [(reason.field, reason.problem) for reason in rejection.reasons]
        return cls(
            key=key,
            value={
                "provenance": provenance.for_record(index),
                "kind": rejection.kind.value if rejection.kind else None,
                "reasons": [{"field": name, "problem": problem} for name, problem in reasons],
                "raw": raw,
            },
            kind=rejection.kind,
            reasons=reasons,
        )


#: What a record (or, natively encoded, a run of records) became, in record order.
Outcome = ScanEvent | DeadLetter | EncodedScans


def outcome_count(outcomes: Sequence[Outcome]) -> int:
    """Records the outcomes stand for (a native run stands for all of its events)."""
    count = 0
    for outcome in outcomes:
        count += 1 if isinstance(outcome, ScanEvent | DeadLetter) else len(outcome)
    return count


_KEY_END = re.compile(rb'"[ \t\r\n]*:')


def repeated_keys(raw: bytes, value: Any) -> list[str]:
    """Keys that appear more than once in one object of a record (orjson keeps the last).

    Counting ``"`` then ``:`` is a cheap upper bound of the keys; only when it exceeds the keys
    parsed (a repeat, or ``":`` inside a string) is the record parsed again to tell.
    """
    colons = len(_KEY_END.findall(raw))
    # A flat record has exactly its own keys; only the rare rest needs a full count.
    if isinstance(value, dict) and colons <= len(value):
        return []
    if colons <= _key_count(value):
        return []
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and key not in repeated:
                repeated.append(key)
            seen.add(key)
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)
    return repeated


def _key_count(value: Any) -> int:
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(child for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            pending.extend(child for child in item if isinstance(child, dict | list))
    return count


def envelope_value(name: str, value: Any) -> Any:
    """An envelope member's value as the message means it (msgGrpId: the string; counts:
    the integer, also when sent as digits or as 79.0); InvalidEnvelope when it is wrong."""
    if name == "msgGrpId":
        if not isinstance(value, str) or not value.strip():
            raise InvalidEnvelope(name, "must be a non-empty string")
        if len(value) > 64:
            raise InvalidEnvelope(name, "is longer than 64 characters")
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # 79.0 is the integer 79 in JSON
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidEnvelope(name, "must be a non-negative integer")
    if name == "msgSerNbr" and value < 1:
        raise InvalidEnvelope(name, "must be 1 or more")
    return value


class MessagePipeline:
    """Parses, validates and enriches one message, chunk by chunk.

    With the native fast path, the records it takes come as runs (``EncodedScans``) that
    stay in native memory; every other record is a ``ScanEvent`` or ``DeadLetter`` of the
    Python path, in its place between them.
    """

    def __init__(
        self,
        *,
        feed: str,
        received_at_ms: int,
        shapes: Mapping[RecordKind, RecordShape],
        kind: RecordKind | None = None,
        campaign: str | None = None,
        campaigns: Sequence[CampaignRule] = (),
        limits: Limits = Limits(),
        fast_path: ScanFastPath | None = None,
        flat_records: FlatRecords | None = None,
    ) -> None:
        self.feed_name = feed
        self.kind = kind
        self.envelope = Envelope()
        self.records = 0
        self._shapes = shapes
        self._campaign = campaign
        self._campaigns = campaigns
        self._received_at_ms = received_at_ms
        self._limits = limits
        self._parser = MessageParser(
            max_record_bytes=limits.max_record_bytes,
            max_depth=limits.max_json_depth,
            flat_records=flat_records,
            pause_for_encoder=fast_path is not None,
        )
        self._provenance: Provenance | None = None
        self._fast_path = fast_path
        self._fast: MessageEncoder | None = None
        self.fast_records = 0
        self._spill: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._events_seen = False

    @property
    def bytes_parsed(self) -> int:
        """Decompressed body bytes fed so far."""
        return self._parser.bytes_parsed

    def feed(self, data: bytes) -> list[Outcome]:
        """Process one chunk of the body; returns the outcomes it completed."""
        try:
            outcomes = self._handle(self._parser.feed(data))
            while self._parser.paused:
                outcomes += self._handle(self._parser.resume())
            return outcomes
        except BaseException:
            self.close()
            raise

    def finish(self) -> list[Outcome]:
        """Process the end of the body. Raises MalformedMessage/InvalidEnvelope if incomplete."""
        try:
            outcomes = self._handle(self._parser.close())
            for name, value in (
                ("msgGrpId", self.envelope.msg_grp_id),
                ("msgSerNbr", self.envelope.msg_ser_nbr),
            ):
                if value is None:
                    raise InvalidEnvelope(name, "is missing")
            if "events" not in self._parser.members:
                raise InvalidEnvelope("events", "is missing")
            return outcomes
        finally:
            self.close()

    def _handle(self, items: list[Item]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        run: list[RawRecord] = []  # records to process together, in order
        for item in items:
            if isinstance(item, RawRecord):
                self._count(1)
                if self._provenance is None:
                    self._keep_aside(item)
                else:
                    run.append(item)
            elif not isinstance(item, EnvelopeField):
                # A run the parser had the encoder take: it stands for its records, in place.
                self._count(len(item))
                outcomes += self._process_run(run)
                run = []
                outcomes.append(item)
                self.fast_records += len(item)
            else:
                outcomes += self._process_run(run)
                run = []
                self._set_envelope(item.name, item.value)
                if self._provenance is None and self.envelope.coordinates_known:
                    self._provenance = Provenance(
                        feed=self.feed_name,
                        msg_grp_id=self.envelope.msg_grp_id,
                        msg_ser_nbr=self.envelope.msg_ser_nbr,
                        received_at_ms=self._received_at_ms,
                        campaign=self._campaign,
                    )
                    if self._fast_path is not None:
                        self._fast = self._fast_path.message(
                            self._provenance, kind=self.kind, rules=self._campaigns
                        )
                        # The parser paused after this member: the records after it are
                        # encoded where it finds them; those kept aside go through
                        # _process_run.
                        self._parser.encode_flat_with(self._fast)
                    outcomes.extend(self._replay())
        outcomes += self._process_run(run)
        return outcomes

    def _count(self, records: int) -> None:
        self.records += records
        if self.records > self._limits.max_events:
            raise LimitExceeded("max_events_per_message", self._limits.max_events)

    def close(self) -> None:
        """Release the records kept aside, if any; call when the message ends either way."""
        spill, self._spill = self._spill, None
        if spill is not None:
            spill.close()

    def _set_envelope(self, name: str, value: Any) -> None:
        if name == "msgGrpId":
            self.envelope.msg_grp_id = envelope_value(name, value)
        elif name in _COUNTS:
            setattr(self.envelope, _COUNTS[name], envelope_value(name, value))
        # Members IV-MTR may add later are ignored rather than refused.

    def _keep_aside(self, item: RawRecord) -> None:
        if self._spill is None:
            # Closed by close(), whichever way the message ends.
            self._spill = tempfile.SpooledTemporaryFile(max_size=_SPILL_IN_MEMORY)  # noqa: SIM115
        self._spill.write(_LENGTH.pack(item.index) + _LENGTH.pack(len(item.raw)) + item.raw)

    def _replay(self) -> list[Outcome]:
        spill, self._spill = self._spill, None
        if spill is None:
            return []
        outcomes: list[Outcome] = []
        with spill:
            spill.seek(0)
            run = []
            while header := spill.read(8):
                index, size = _LENGTH.unpack_from(header), _LENGTH.unpack_from(header, 4)
                run.append(RawRecord(index[0], spill.read(size[0])))
                if len(run) == 1024:
                    outcomes += self._process_run(run)
                    run = []
            outcomes += self._process_run(run)
        return outcomes

    def _process_run(self, run: list[RawRecord]) -> list[Outcome]:
        """Records in order: the native fast path takes what it can, run by run."""
        if not run:
            return []
        fast = self._fast
        if fast is None:
            return [self._process(item) for item in run]
        outcomes: list[Outcome] = []
        raws = [item.raw for item in run]
        indexes = [item.index for item in run]
        start = 0
        while start < len(run):
            end = start + _NATIVE_WINDOW
            encoded, taken = fast.encode_run(raws[start:end], indexes[start:end])
            if taken:
                outcomes.append(encoded)
                self.fast_records += taken
                start += taken
            if start < min(end, len(run)):
                outcomes.append(self._process(run[start]))
                start += 1
        return outcomes

    def _process(self, item: RawRecord) -> ScanEvent | DeadLetter:
        """One record on the Python path."""
        provenance = self._provenance
        assert provenance is not None
        index, raw = item.index, item.raw
        value = item.value
        repeated = repeated_keys(raw, value)
        if repeated:
            # orjson keeps the last value of a repeated key: which one IV-MTR meant is unknown.
            reasons = [Reason(key, "appears more than once in the record") for key in repeated]
            return self._dead_letter(provenance, index, raw, Rejection(None, reasons))
        result = validate_record(
            value, self._shapes, self.kind, max_string_length=self._limits.max_string_length
        )
        if isinstance(result, Rejection):
            return self._dead_letter(provenance, index, raw, result)
        return ScanEvent.of(
            result.kind, result.object_id, enrich(result, provenance, index, self._campaigns)
        )

    def _dead_letter(
        self, provenance: Provenance, index: int, raw: bytes, rejection: Rejection
    ) -> DeadLetter:
        key = f"{provenance.msg_grp_id}/{provenance.msg_ser_nbr}"
        return DeadLetter.of(key, provenance, index, raw.decode(), rejection)
