"""Scan events as the ingest pipeline makes them, framed as on the scan topics."""

from __future__ import annotations

from typing import Any

import orjson

from consumer.core.pipeline import MessagePipeline, ScanEvent
from consumer.service import record_shapes
from producer import TopicTable

TOPICS = TopicTable.build("t.")
_SHAPES = record_shapes()


def piece_record(
    imb: str,
    when: str,
    opcode: str = "918",
    *,
    het: str = "A",
    phase: str = "Phase 3c - Destination Sequenced Carrier Sortation",
    **extra: Any,
) -> dict[str, Any]:
    """A piece record as IV-MTR pushes it (a 517 gets its ZIP and no facility)."""
    record: dict[str, Any] = {
        "imb": imb,
        "handlingEventType": het,
        "scanDatetime": when,
        "scanEventCode": opcode,
        "mailPhase": phase,
        "scanFacilityZip": imb[20:25] if opcode == "517" else "22116",
    }
    if opcode != "517":
        record.update(scanFacilityName="MERRIFIELD", scanFacilityCity="Merrifield")
        record.update(scanFacilityState="VA", scanLocaleKey="X27222")
    record.update(extra)
    return record


def scan_values(records: list[dict[str, Any]], **pipeline: Any) -> list[bytes]:
    """Each record through the ingest pipeline, as its value on the piece-scan topic."""
    run = MessagePipeline(
        feed="pieces", received_at_ms=1_700_000_000_000, shapes=_SHAPES, **pipeline
    )
    body = orjson.dumps({"msgGrpId": "G1", "msgSerNbr": 1, "totMsgCnt": 1, "events": records})
    outcomes = [*run.feed(body), *run.finish()]
    values = []
    for outcome in outcomes:
        assert isinstance(outcome, ScanEvent), outcome
        values.append(TOPICS.piece_scans.message(outcome.key, outcome.value).value)
    return values
