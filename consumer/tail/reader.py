"""Reading the topics back (the ``tail`` command): decoded records, filters, two formats.

Every topic decodes the same way: values are Avro single-object encoded, so the schema comes
from the value's fingerprint, never from the topic name; scans, dead letters and delivery
receipts all go through one `SingleObjectDecoder`. A value that is not ours is still shown,
with the reason it could not be decoded.

Filtering and formatting are pure functions of a `TailedRecord`, tested without Kafka; only
`tail_topic` talks to the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from producer import Schema, SingleObjectDecoder, Topic

__all__ = [
    "KINDS",
    "TailError",
    "TailFilter",
    "TailedRecord",
    "UnknownTopic",
    "json_line",
    "resolve_topic",
    "short_phase",
    "table_header",
    "table_row",
    "tail_topic",
]

# Schema full name -> the short kind shown in tables.
KINDS: dict[str, str] = {
    "ivmtr.events.PieceScan": "piece",
    "ivmtr.events.BundleScan": "bundle",
    "ivmtr.events.HandlingUnitScan": "handling_unit",
    "ivmtr.events.ContainerScan": "container",
    "ivmtr.events.DeadLetter": "dead",
    "ivmtr.events.DeliveryReceipt": "receipt",
    "ivmtr.events.PieceStatus": "status",
    "ivmtr.events.PieceAlert": "alert",
}
_SCANS = frozenset({"piece", "bundle", "handling_unit", "container"})
_SCHEMA_HEADER = "ivmtr.schema"


class TailError(Exception):
    """The topic cannot be read: no broker, or no such topic."""


class UnknownTopic(TailError, ValueError):  # ValueError: what tail_topic raised before
    """The topic does not exist."""


@dataclass(frozen=True, slots=True)
class TailedRecord:
    """One Kafka record, decoded (``value`` is None and ``error`` says why when it could not be)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: Any
    schema: str | None = None  # full name of the value's schema
    error: str | None = None

    @property
    def kind(self) -> str:
        """A record kind (piece, bundle, handling_unit, container), dead, receipt, or "?" for a
        value that is not ours."""
        name = self.schema or self.headers.get(_SCHEMA_HEADER)
        return KINDS.get(name or "", "?")

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready view of the record (datetimes are left to the JSON encoder)."""
        view: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "headers": self.headers,
            "value": self.value,
        }
        if self.error is not None:
            view["error"] = self.error
        return view


# ---------------------------------------------------------------------------------------------
# Topic names


def resolve_topic(name: str, topics: Iterable[Topic], prefix: str) -> str:
    """`name` as given when it is one of ours, else with `prefix` when that is; else unchanged.

    So ``piece-scans`` means ``<prefix>piece-scans``, and a topic of another prefix can still be
    named in full.
    """
    names = {topic.name for topic in topics}
    if name not in names and f"{prefix}{name}" in names:
        return f"{prefix}{name}"
    return name


# ---------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class TailFilter:
    """Which records to show; every given criterion must hold.

    * imb: an IMb's digits (20 to 31); matches the event's IMb, or any IMb with the same
      20-digit tracking code (so a tracking code alone finds every scan of the piece).
    * mid: the mailer ID of the barcode (pieces, bundles) or of the tray/container label.
    * feed: the feed the message was pushed to.
    * group: the msgGrpId of the message.

    Dead letters are matched on the raw record's fields; receipts have no IMb or MID, so an
    imb or mid criterion leaves them out.
    """

    imb: str | None = None
    mid: str | None = None
    feed: str | None = None
    group: str | None = None

    def __call__(self, record: TailedRecord) -> bool:
        return self.matches(record)

    def matches(self, record: TailedRecord) -> bool:
        if self.imb is not None and not _imb_matches(self.imb, record):
            return False
        if self.mid is not None and self.mid not in _mids(record):
            return False
        if self.feed is not None and _coordinate(record, "feed") != self.feed:
            return False
        return self.group is None or _coordinate(record, "msg_grp_id") == self.group


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _raw(record: TailedRecord) -> dict[str, Any]:
    """A dead letter's record as it was pushed, or {} when it was not a JSON object."""
    if record.kind != "dead" or not isinstance(record.value, Mapping):
        return {}
    try:
        raw = orjson.loads(record.value.get("raw") or "null")
    except orjson.JSONDecodeError:
        return {}
    return raw if isinstance(raw, dict) else {}


def _imbs(record: TailedRecord) -> tuple[str | None, str | None]:
    """The record's IMb digits and 20-digit tracking code, as far as it has them."""
    value = record.value if isinstance(record.value, Mapping) else {}
    if record.kind in ("piece", "bundle"):
        barcode = value.get("barcode") or {}
        return value.get("imb"), barcode.get("tracking_code")
    raw = _raw(record)
    imb = raw.get("imb")
    if not isinstance(imb, str):
        return None, None
    tracking = raw.get("imbTrackingCode")
    digits = _digits(imb)
    return digits, tracking if isinstance(tracking, str) else digits[:20] or None


def _imb_matches(wanted: str, record: TailedRecord) -> bool:
    wanted = _digits(wanted)
    imb, tracking = _imbs(record)
    if not wanted:
        return False
    return wanted == imb or (tracking is not None and wanted[:20] == tracking)


def _mids(record: TailedRecord) -> set[str]:
    value = record.value if isinstance(record.value, Mapping) else {}
    if record.kind in ("piece", "bundle"):
        found = [(value.get("barcode") or {}).get("mailer_id")]
    elif record.kind in ("handling_unit", "container"):
        found = [value.get("mailer_id")]
    else:
        raw = _raw(record)
        found = [raw.get(name) for name in ("imbMid", "imtbMid", "imcbMid")]
    return {str(mid) for mid in found if mid}


def _coordinate(record: TailedRecord, name: str) -> str | None:
    """The feed or msgGrpId of the message a record came from: value first, then headers."""
    value = record.value if isinstance(record.value, Mapping) else {}
    found = (value.get("provenance") or {}).get(name) if record.kind != "receipt" else None
    if found is None:
        found = value.get(name) if record.kind == "receipt" else None
    if found is None:
        found = record.headers.get(f"ivmtr.{name}")
    return found if isinstance(found, str) else None


# ---------------------------------------------------------------------------------------------
# Formats


def json_line(record: TailedRecord) -> bytes:
    """One JSON object, newline-terminated; datetimes as ISO 8601 strings."""
    return orjson.dumps(record.as_json(), default=str) + b"\n"


_COLUMNS = (  # title, width
    ("TIME (UTC)", 19),
    ("KIND", 13),
    ("KEY", 28),
    ("OP", 3),
    ("HET", 3),
    ("FACILITY", 34),
    ("PHASE", 5),
    ("EVENT", 8),
)
_PHASE_WORDS = {"MISCELLANEOUS": "misc", "FOREIGN": "frgn"}


def table_header() -> str:
    """The column titles of `table_row`."""
    return _join(_cell(title, width) for title, width in _COLUMNS)


def table_row(record: TailedRecord) -> str:
    """One aligned line: when, what, key, then what happened to it.

    Scans show opcode, handling event type, facility, mail phase and event id; dead letters
    their reasons; receipts their status and counts.
    """
    value = record.value if isinstance(record.value, Mapping) else {}
    kind = record.kind
    widths = [width for _, width in _COLUMNS]
    key = _cell(record.key or "-", widths[2], cut=False)  # a long key shifts the line instead
    if record.error is not None:
        return _join([_cell("-", widths[0]), _cell(kind, widths[1]), key], record.error)
    if kind in _SCANS:
        scan = value.get("scan") or {}
        facility = _facility(scan.get("facility") or {}, bool(scan.get("logical_delivery")))
        return _join(
            [
                _cell(_time(scan.get("scanned_at")), widths[0]),
                _cell(kind, widths[1]),
                key,
                _cell(scan.get("event_code") or "-", widths[3]),
                _cell(scan.get("handling_event_type") or "-", widths[4]),
                _cell(facility, widths[5]),
                _cell(short_phase(scan.get("mail_phase")), widths[6]),
                _cell(str(value.get("event_id") or "-")[: widths[7]], widths[7]),
            ]
        )
    head = [_cell(_time(_when(kind, value)), widths[0]), _cell(kind, widths[1]), key]
    if kind == "dead":
        return _join(head, "reasons: " + _reasons(value.get("reasons") or ()))
    if kind == "receipt":
        return _join(head, _receipt(value))
    if kind == "status":
        last = value.get("last_scan") or {}
        return _join(
            [_cell(_time(last.get("scanned_at")), widths[0]), _cell(kind, widths[1]), key],
            f"{value.get('state')} scans {value.get('scan_count')} last "
            f"{last.get('event_code') or '-'} {_facility(last.get('facility') or {}, False)}",
        )
    if kind == "alert":
        return _join(
            [_cell(_time(value.get("raised_at")), widths[0]), _cell(kind, widths[1]), key],
            f"{value.get('kind')}: {value.get('rule')}"
            + (f" ({value['threshold']})" if value.get("threshold") else ""),
        )
    return _join(head, orjson.dumps(value, default=str).decode()[:120])


def short_phase(phase: object) -> str:
    """PHASE_3C_DESTINATION_SEQUENCED_CARRIER -> "3c"; PARS stays PARS; none -> "-"."""
    if not isinstance(phase, str) or not phase:
        return "-"
    if phase.startswith("PHASE_"):
        return phase.split("_")[1].lower()
    return _PHASE_WORDS.get(phase, phase[:5])


def _join(cells: Iterable[str], rest: str = "") -> str:
    return (" ".join(cells) + (" " + rest if rest else "")).rstrip()


def _cell(text: str, width: int, *, cut: bool = True) -> str:
    """`text` padded to `width`, cut with an ellipsis when longer (unless `cut` is False)."""
    if cut and len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width)


def _time(instant: object) -> str:
    if isinstance(instant, datetime):
        return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "-"


def _when(kind: str, value: Mapping[str, Any]) -> object:
    if kind == "receipt":
        return value.get("written_at")
    return (value.get("provenance") or {}).get("received_at")


def _facility(facility: Mapping[str, Any], logical: bool) -> str:
    if logical and not facility.get("name"):
        return f"delivery ZIP {facility.get('zip') or '?'}"
    name = facility.get("name") or ""
    place = " ".join(p for p in (facility.get("city"), facility.get("state")) if p)
    return ", ".join(p for p in (name, place) if p) or "-"


def _reasons(reasons: Iterable[Mapping[str, Any]]) -> str:
    parts = [
        f"{reason.get('field')}: {reason.get('problem')}"
        if reason.get("field")
        else str(reason.get("problem"))
        for reason in reasons
    ]
    return "; ".join(parts) or "-"


def _receipt(value: Mapping[str, Any]) -> str:
    status = str(value.get("status") or "?")
    if value.get("kind") == "GROUP":
        got = len(value.get("messages_received") or ())
        where = f"messages {got}/{value.get('tot_msg_cnt') if value.get('tot_msg_cnt') else '?'}"
    else:
        where = f"message {value.get('msg_ser_nbr')}/{value.get('tot_msg_cnt') or '?'}"
    published = value.get("published") or {}
    topics = " ".join(f"{topic.rsplit('.', 1)[-1]}={n}" for topic, n in sorted(published.items()))
    counts = (
        f"records {value.get('records_received', 0)} rejected {value.get('records_rejected', 0)}"
    )
    problems = "; ".join(value.get("problems") or ())
    return " ".join(p for p in (status, where, counts, topics, problems and f"({problems})") if p)


# ---------------------------------------------------------------------------------------------
# Kafka


async def tail_topic(
    bootstrap_servers: str,
    topic: str,
    topics: Iterable[Topic],
    *,
    partitions: Iterable[int] | None = None,
    from_beginning: bool = False,
    follow: bool = False,
    max_records: int | None = None,
    where: Callable[[TailedRecord], bool] | None = None,
    idle_timeout_s: float = 5.0,
    registry_ids: Mapping[int, Schema] | None = None,
) -> AsyncIterator[TailedRecord]:
    """Committed records of `topic` that satisfy `where`, from the start or the end.

    Without `follow` it stops once it has caught up with the end offsets seen when it started
    (or after `idle_timeout_s` with nothing to read, should a position never reach them); with
    `follow` it runs until cancelled. `max_records` counts the records yielded; `partitions`
    limits the read to those partitions of the topic.
    """
    decoder = SingleObjectDecoder((t.schema for t in topics), registry_ids)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        isolation_level="read_committed",  # never show events of aborted transactions
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()  # start() leaves its client open when bootstrapping fails
        raise TailError(f"cannot reach Kafka at {bootstrap_servers}: {exc}") from exc
    try:
        metadata = await consumer._client.fetch_all_metadata()
        existing = sorted(metadata.partitions_for_topic(topic) or ())
        if not existing:
            raise UnknownTopic(f"topic {topic!r} does not exist")
        wanted = existing if partitions is None else [p for p in existing if p in set(partitions)]
        tps = [TopicPartition(topic, p) for p in wanted]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        end = await consumer.end_offsets(tps)
        seen = 0
        idle = 0.0
        while True:
            if not follow and await _caught_up(consumer, end):
                return
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if batch:
                idle = 0.0
            elif not follow:
                idle += 0.5
                if idle >= idle_timeout_s:
                    return
            for tp, records in batch.items():
                for record in records:
                    tailed = _decode(decoder, tp, record)
                    if where is not None and not where(tailed):
                        continue
                    yield tailed
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        return
    finally:
        await asyncio.wait_for(consumer.stop(), 10)


def _decode(decoder: SingleObjectDecoder, tp: TopicPartition, record: Any) -> TailedRecord:
    headers = {name: value.decode(errors="replace") for name, value in record.headers}
    schema: str | None = None
    value: Any = None
    error: str | None = None
    try:
        schema = decoder.schema_of(record.value).name
        value = decoder(record.value)
    except (ValueError, TypeError, EOFError) as exc:  # not one of ours, or truncated
        error = f"undecodable: {exc}"
    return TailedRecord(
        topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key is not None else None,
        headers=headers,
        value=value,
        schema=schema,
        error=error,
    )


async def _caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True
