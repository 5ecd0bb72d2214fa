"""The campaign and job report: pieces, scan span and deliveries, from piece scan events.

Pure: fed decoded ``PieceScan`` values one by one (``add``), or each piece's latest
``PieceStatus`` (``add_status``), it answers per campaign and eDoc job how many pieces
were seen, the first and last scan, how many pieces were delivered, and the share
delivered by each day (by the facility-local date of a piece's first delivery). From
scans, delivered means a logical delivery event; a status also counts an actual delivery
scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["CampaignReport", "ReportRow"]


@dataclass
class _Group:
    pieces: set[str] = field(default_factory=set)
    first_scan: datetime | None = None
    last_scan: datetime | None = None
    delivered_on: dict[str, str] = field(default_factory=dict)  # tracking code -> local date


@dataclass(frozen=True)
class ReportRow:
    """One campaign and job."""

    campaign: str | None
    job_id: str | None
    pieces: int
    first_scan: datetime | None
    last_scan: datetime | None
    delivered: int
    delivered_by_day: tuple[tuple[str, int, float], ...]  # (date, delivered that day, share so far)

    @property
    def delivered_share(self) -> float:
        """Share of the pieces with a logical delivery event."""
        return self.delivered / self.pieces if self.pieces else 0.0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "campaign": self.campaign,
            "job_id": self.job_id,
            "pieces": self.pieces,
            "first_scan": self.first_scan.isoformat() if self.first_scan else None,
            "last_scan": self.last_scan.isoformat() if self.last_scan else None,
            "delivered": self.delivered,
            "delivered_share": round(self.delivered_share, 4),
            "delivered_by_day": [
                {"date": day, "delivered": count, "share": round(share, 4)}
                for day, count, share in self.delivered_by_day
            ],
        }


class CampaignReport:
    """Accumulates piece scan events; ``rows()`` gives the report."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str | None, str | None], _Group] = {}

    def add(self, event: Mapping[str, Any]) -> None:
        """Take one decoded PieceScan value."""
        job = event.get("job") or {}
        key = (event.get("campaign"), job.get("job_id"))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        piece = event["barcode"]["tracking_code"]
        group.pieces.add(piece)
        scan = event["scan"]
        when = _instant(scan["scanned_at"])
        if group.first_scan is None or when < group.first_scan:
            group.first_scan = when
        if group.last_scan is None or when > group.last_scan:
            group.last_scan = when
        if scan["logical_delivery"]:
            day = scan["local_time"][:10]
            if piece not in group.delivered_on or day < group.delivered_on[piece]:
                group.delivered_on[piece] = day

    def add_status(self, status: Mapping[str, Any]) -> None:
        """Take one piece's decoded PieceStatus (its latest: a piece is added once)."""
        job = status.get("job") or {}
        key = (status.get("campaign"), job.get("job_id"))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        piece = status["tracking_code"]
        group.pieces.add(piece)
        first = _instant(status["first_scan"]["scanned_at"])
        last = _instant(status["last_scan"]["scanned_at"])
        if group.first_scan is None or first < group.first_scan:
            group.first_scan = first
        if group.last_scan is None or last > group.last_scan:
            group.last_scan = last
        deliveries = [
            p for p in (status.get("actual_delivery"), status.get("logical_delivery")) if p
        ]
        if deliveries:
            earliest = min(deliveries, key=lambda point: _instant(point["scanned_at"]))
            group.delivered_on[piece] = earliest["local_time"][:10]

    def rows(self) -> list[ReportRow]:
        """One row per campaign and job, sorted by campaign then job (unassigned last)."""
        rows = []
        for (campaign, job_id), group in self._groups.items():
            per_day = Counter(group.delivered_on.values())
            so_far = 0
            by_day = []
            for day in sorted(per_day):
                so_far += per_day[day]
                by_day.append((day, per_day[day], so_far / len(group.pieces)))
            rows.append(
                ReportRow(
                    campaign,
                    job_id,
                    len(group.pieces),
                    group.first_scan,
                    group.last_scan,
                    len(group.delivered_on),
                    tuple(by_day),
                )
            )
        return sorted(
            rows, key=lambda row: (row.campaign is None, row.campaign or "", row.job_id or "")
        )


def _instant(when: datetime | int) -> datetime:
    # Events straight from enrichment carry microseconds; decoded ones, datetimes.
    if isinstance(when, int):
        return datetime.fromtimestamp(when / 1_000_000, UTC)
    return when
