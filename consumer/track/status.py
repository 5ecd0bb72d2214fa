"""A piece's status: every scan of it folded into one value, whatever order they came in.

Pure. ``fold_scan`` takes the status so far (the Avro-ready ``ivmtr.events.PieceStatus``
mapping, or None for a piece not seen yet) and one scan, and returns the new status, or
None when the scan was seen before. Each field is an order-free aggregate of the scans
seen (a minimum, a maximum, a set), so any order and any repetition of the same scans
gives the same status; ties on scan time are broken by the values themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any, NamedTuple

__all__ = [
    "DELIVERY_PHASE",
    "LOGICAL_DELIVERY_OPCODE",
    "PieceScanFacts",
    "event_hash",
    "fold_scan",
    "scan_state",
]

LOGICAL_DELIVERY_OPCODE = "517"
DELIVERY_PHASE = "PHASE_4C_DELIVERY"
_ACTUAL = frozenset({"A", "AA"})

Status = dict[str, Any]


class PieceScanFacts(NamedTuple):
    """What the status needs of one scan event (piece scan, or bundle scan of its top piece)."""

    tracking_code: str
    imb: str
    barcode: Mapping[str, Any]
    point: Mapping[str, Any]  # an ivmtr.events.ScanPoint
    id_hash: int
    logical_delivery: bool
    #: (anticipated, predicted, expected) delivery dates as days since 1970-01-01, or None
    #: when the record carried none of them.
    dates: tuple[int | None, int | None, int | None] | None
    campaign: str | None
    job: Mapping[str, Any] | None

    @property
    def scanned_at(self) -> int:
        """Scan instant, microseconds since the epoch (UTC)."""
        return int(self.point["scanned_at"])

    @property
    def actual_delivery(self) -> bool:
        """An actual (or assumed actual) scan in the delivery phase, other than a 517."""
        point = self.point
        return (
            point["mail_phase"] == DELIVERY_PHASE
            and point["handling_event_type"] in _ACTUAL
            and point["event_code"] != LOGICAL_DELIVERY_OPCODE
        )


def event_hash(event_id: str) -> int:
    """A signed 64-bit hash of a scan's event id: what ``scan_ids`` keeps of it."""
    return int.from_bytes(
        hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True
    )


def parse_date(text: object) -> int | None:
    """A ``YYYY-MM-DD`` date as days since 1970-01-01; None when absent or not a date."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10]).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _order(point: Mapping[str, Any]) -> tuple[int, str]:
    return int(point["scanned_at"]), str(point["event_id"])


def _is_delivery(facts: PieceScanFacts) -> bool:
    return facts.logical_delivery or facts.actual_delivery


def _earlier(current: Mapping[str, Any] | None, point: Mapping[str, Any]) -> bool:
    return current is None or _order(point) < _order(current)


def _later(current: Mapping[str, Any] | None, point: Mapping[str, Any]) -> bool:
    return current is None or _order(point) > _order(current)


def _local_day(point: Mapping[str, Any]) -> int | None:
    return parse_date(point["local_time"])


def scan_state(status: Mapping[str, Any]) -> str:
    """The state the scans alone imply: DELIVERED, OUT_FOR_DELIVERY or IN_TRANSIT."""
    if status["delivered_at"] is not None:
        return "DELIVERED"
    if status["last_scan"]["mail_phase"] == DELIVERY_PHASE:
        return "OUT_FOR_DELIVERY"
    return "IN_TRANSIT"


def new_status(facts: PieceScanFacts) -> Status:
    """The status of a piece of which this is the only scan seen (state not yet evaluated)."""
    return {
        "tracking_code": facts.tracking_code,
        "imb": facts.imb,
        "barcode": dict(facts.barcode),
        "state": "IN_TRANSIT",
        "scan_count": 0,
        "first_scan": facts.point,
        "last_scan": facts.point,
        "last_transit_scan": None,
        "delivered_at": None,
        "actual_delivery": None,
        "logical_delivery": None,
        "days_in_transit": None,
        "anticipated_delivery_date": None,
        "predicted_delivery_date": None,
        "expected_delivery_date": None,
        "dates_scanned_at": None,
        "campaign": None,
        "job": None,
        "labels_scanned_at": None,
        "alerts": [],
        "scan_ids": [],
    }


def fold_scan(status: Mapping[str, Any] | None, facts: PieceScanFacts) -> Status | None:
    """The status with one more scan; None when that scan (by event id) was seen before.

    The state is the scans' own (``scan_state``); the wall-clock rules (STALLED, LATE) are
    ``alerts.evaluate``'s to apply.
    """
    if status is None:
        updated = new_status(facts)
    elif facts.id_hash in status["scan_ids"]:
        return None
    else:
        updated = dict(status)
    point = facts.point
    ids = list(updated["scan_ids"])
    ids.append(facts.id_hash)
    ids.sort()
    updated["scan_ids"] = ids
    updated["scan_count"] = len(ids)
    if status is not None and _earlier(updated["first_scan"], point):
        updated["first_scan"] = point
        updated["imb"] = facts.imb
        updated["barcode"] = dict(facts.barcode)
    if status is not None and _later(updated["last_scan"], point):
        updated["last_scan"] = point
    if facts.logical_delivery:
        if _earlier(updated["logical_delivery"], point):
            updated["logical_delivery"] = point
    elif facts.actual_delivery:
        if _earlier(updated["actual_delivery"], point):
            updated["actual_delivery"] = point
    elif _later(updated["last_transit_scan"], point):
        updated["last_transit_scan"] = point
    if facts.dates is not None:
        key = (facts.scanned_at, _date_key(facts.dates))
        held = updated["dates_scanned_at"]
        if held is None or key > (held, _date_key(_dates(updated))):
            updated["dates_scanned_at"] = facts.scanned_at
            (
                updated["anticipated_delivery_date"],
                updated["predicted_delivery_date"],
                updated["expected_delivery_date"],
            ) = facts.dates
    if facts.campaign is not None or facts.job is not None:
        job = dict(facts.job) if facts.job is not None else None
        label = (facts.scanned_at, _label_key(facts.campaign, job))
        held = updated["labels_scanned_at"]
        if held is None or label < (held, _label_key(updated["campaign"], updated["job"])):
            updated["labels_scanned_at"] = facts.scanned_at
            updated["campaign"] = facts.campaign
            updated["job"] = job
    _settle_delivery(updated)
    updated["state"] = scan_state(updated)
    return updated


def _dates(status: Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    return (
        status["anticipated_delivery_date"],
        status["predicted_delivery_date"],
        status["expected_delivery_date"],
    )


def _date_key(dates: tuple[int | None, ...]) -> tuple[int, ...]:
    return tuple(-1 if day is None else day for day in dates)


def _label_key(campaign: str | None, job: Mapping[str, Any] | None) -> tuple[str, ...]:
    job = job or {}
    return (
        campaign or "",
        job.get("job_id") or "",
        job.get("mailing_group_id") or "",
        job.get("submitter_crid") or "",
    )


def _settle_delivery(status: Status) -> None:
    """delivered_at and days_in_transit from the delivery scans and the first scan."""
    deliveries = [p for p in (status["actual_delivery"], status["logical_delivery"]) if p]
    if not deliveries:
        return
    first = min(deliveries, key=_order)
    status["delivered_at"] = int(first["scanned_at"])
    start, end = _local_day(status["first_scan"]), _local_day(first)
    status["days_in_transit"] = None if start is None or end is None else max(0, end - start)
