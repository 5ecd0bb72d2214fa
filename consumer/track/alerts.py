"""The alert rules: what a piece's status says, at a given wall-clock instant.

Pure. ``evaluate`` takes a status as ``status.fold_scan`` left it (its state the scans'
own), the rules and the time now, and returns the status with its state and the alerts
it raises. Each kind is raised at most once per piece: the kinds already raised travel
in the status (``alerts``), committed with the alerts themselves.

* DELIVERED: the piece has an actual or logical delivery scan.
* SCAN_AFTER_DELIVERY: a scan that is not a delivery scan came after the delivery.
* STALLED: not delivered, and no scan for longer than the campaign's threshold.
* LATE: not delivered, and the facility-local date is past the delivery date (predicted,
  else anticipated, else expected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from consumer.track.status import Status

__all__ = ["AlertRules", "Evaluation", "evaluate", "next_change"]

_MICROS_PER_HOUR = 3_600_000_000
_MICROS_PER_DAY = 24 * _MICROS_PER_HOUR
_DUE_DATES = (
    ("predicted", "predicted_delivery_date"),
    ("anticipated", "anticipated_delivery_date"),
    ("expected", "expected_delivery_date"),
)


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the wall-clock rules."""

    #: Hours without a scan after which an undelivered piece is STALLED.
    stall_hours: float = 72.0
    #: Campaign -> its own stall threshold in hours.
    stall_hours_by_campaign: Mapping[str, float] = field(default_factory=dict)

    def stall_hours_for(self, campaign: str | None) -> float:
        """The stall threshold of a campaign (the default one for none)."""
        if campaign is not None:
            return self.stall_hours_by_campaign.get(campaign, self.stall_hours)
        return self.stall_hours


class Evaluation(NamedTuple):
    """A status after the rules, and the alerts (``ivmtr.events.PieceAlert`` values) raised."""

    status: Status
    alerts: list[dict[str, Any]]


def _utc_offset_micros(point: Mapping[str, Any]) -> int:
    """Facility-local time minus UTC at a scan, from its local wall time."""
    try:
        local = datetime.fromisoformat(point["local_time"]).replace(tzinfo=UTC)
    except ValueError:
        return 0
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (local - epoch) // timedelta(microseconds=1) - int(point["scanned_at"])


def due_date(status: Mapping[str, Any]) -> tuple[str, int] | None:
    """Which delivery date the piece is due by, and that date (days since 1970-01-01)."""
    for name, key in _DUE_DATES:
        day = status[key]
        if day is not None:
            return name, int(day)
    return None


def stall_due(status: Mapping[str, Any], rules: AlertRules) -> int:
    """The instant (µs) after which the piece is STALLED unless scanned again."""
    hours = rules.stall_hours_for(status["campaign"])
    return int(status["last_scan"]["scanned_at"]) + int(hours * _MICROS_PER_HOUR)


def late_due(status: Mapping[str, Any]) -> int | None:
    """The instant (µs) the piece's facility-local due date ends; None with no due date."""
    due = due_date(status)
    if due is None:
        return None
    return (due[1] + 1) * _MICROS_PER_DAY - _utc_offset_micros(status["last_scan"])


def next_change(status: Mapping[str, Any], rules: AlertRules) -> int | None:
    """The next instant (µs) the wall clock alone can change the status; None for never."""
    if status["delivered_at"] is not None:
        return None
    moments = []
    if status["state"] != "STALLED":
        moments.append(stall_due(status, rules))
    late = late_due(status)
    if late is not None and (
        "LATE" not in status["alerts"] or status["state"] not in ("LATE", "STALLED")
    ):
        moments.append(late)
    return min(moments) if moments else None


def evaluate(
    status: Status, rules: AlertRules, now_micros: int, *, wall_clock: bool = True
) -> Evaluation:
    """The status with its state at ``now_micros`` and the alerts it now raises.

    Without ``wall_clock`` only the rules of the scans themselves apply (DELIVERED,
    SCAN_AFTER_DELIVERY) and an undelivered piece keeps the state its scans imply: that
    is how a scan is tracked the moment it arrives, since IV-MTR does not push scans in
    order and the delivery scan of a piece may be a few records behind. The periodic
    check applies the wall-clock rules. ``status`` is taken over (its ``state`` and
    ``alerts`` are set in place).
    """
    raised: list[dict[str, Any]] = []
    sent = set(status["alerts"])
    delivered_at = status["delivered_at"]
    state = status["state"]
    if delivered_at is not None:
        state = "DELIVERED"
        if "DELIVERED" not in sent:
            first = min(
                (p for p in (status["actual_delivery"], status["logical_delivery"]) if p),
                key=lambda p: (int(p["scanned_at"]), str(p["event_id"])),
            )
            kind = "actual" if first is status["actual_delivery"] else "logical"
            raised.append(
                _alert(
                    status, "DELIVERED", f"first {kind} delivery scan", None, [first], now_micros
                )
            )
        transit = status["last_transit_scan"]
        if (
            "SCAN_AFTER_DELIVERY" not in sent
            and transit is not None
            and int(transit["scanned_at"]) > delivered_at
        ):
            delivery = status["actual_delivery"] or status["logical_delivery"]
            raised.append(
                _alert(
                    status,
                    "SCAN_AFTER_DELIVERY",
                    "a scan that is not a delivery scan after the delivery",
                    f"delivered at {_iso(delivered_at)}",
                    [delivery, transit],
                    now_micros,
                )
            )
    elif wall_clock:
        stalled = now_micros > stall_due(status, rules)
        late = late_due(status)
        is_late = late is not None and now_micros >= late
        if is_late:
            state = "LATE"
        if stalled:
            state = "STALLED"
        status["state"] = state
        if stalled and "STALLED" not in sent:
            hours = rules.stall_hours_for(status["campaign"])
            raised.append(
                _alert(
                    status,
                    "STALLED",
                    "no scan for longer than the campaign's stall threshold",
                    f"{hours:g} hours without a scan",
                    [status["last_scan"]],
                    now_micros,
                )
            )
        if is_late and "LATE" not in sent:
            name, day = due_date(status) or ("", 0)
            raised.append(
                _alert(
                    status,
                    "LATE",
                    "not delivered by the end of its delivery date (facility-local)",
                    f"{name} delivery date {_day(day)}",
                    [status["last_scan"]],
                    now_micros,
                )
            )
    status["state"] = state
    for alert in raised:
        alert["state"] = state
    if raised:
        status["alerts"] = sorted(sent | {alert["kind"] for alert in raised}, key=_KIND_ORDER.index)
    return Evaluation(status, raised)


_KIND_ORDER = ["DELIVERED", "STALLED", "LATE", "SCAN_AFTER_DELIVERY"]


def _alert(
    status: Mapping[str, Any],
    kind: str,
    rule: str,
    threshold: str | None,
    scans: list[Any],
    now_micros: int,
) -> dict[str, Any]:
    code = status["tracking_code"]
    job = status["job"] or {}
    return {
        "alert_id": f"{code}:{kind}",
        "kind": kind,
        "tracking_code": code,
        "imb": status["imb"],
        "mailer_id": status["barcode"]["mailer_id"],
        "campaign": status["campaign"],
        "job_id": job.get("job_id"),
        "rule": rule,
        "threshold": threshold,
        "raised_at": now_micros,
        "state": "IN_TRANSIT",  # the piece's state once evaluated: set by evaluate
        "scans": scans,
    }


def _iso(micros: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)).isoformat()


def _day(days: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(days=days)).date().isoformat()
