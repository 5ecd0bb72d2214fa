"""The campaign and job report: pieces, scan span and deliveries, from piece scan events.

Pure: fed decoded ``PieceScan`` values one by one (``add``), or each piece's latest
``PieceStatus`` (``add_status``), it answers per campaign and eDoc job how many pieces
were seen, the first and last scan, how many pieces were delivered, the share
delivered by each day (by the facility-local date of a piece's first delivery), and how
many pieces stand in each mail phase (the phase of each piece's last scan). From scans,
delivered means a logical delivery event; a status also counts an actual delivery scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["MAIL_PHASES", "TABLE_COLUMNS", "CampaignReport", "ReportRow"]

#: The report's table, as the text report and the HTML page head it (``table_cells``).
TABLE_COLUMNS: tuple[str, ...] = (
    "campaign",
    "job",
    "pieces",
    "first scan (UTC)",
    "last scan (UTC)",
    "delivered",
    "share",
)

#: The ``ivmtr.events.MailPhase`` symbols in the order of the mail's journey (the enum's).
MAIL_PHASES: tuple[str, ...] = (
    "PHASE_0_ORIGIN_CANCELLATION",
    "PHASE_1_ORIGIN",
    "PHASE_1A_ORIGIN_PRIMARY",
    "PHASE_1B_ORIGIN_SECONDARY",
    "PHASE_2_DESTINATION",
    "PHASE_2A_DESTINATION_MMP",
    "PHASE_2B_DESTINATION_SCF",
    "PHASE_2C_DESTINATION_PRIMARY",
    "PHASE_3A_DESTINATION_SECONDARY",
    "PHASE_3B_DESTINATION_BOX",
    "PHASE_3C_DESTINATION_SEQUENCED_CARRIER",
    "PHASE_4C_DELIVERY",
    "PARS",
    "FPARS",
    "MISCELLANEOUS",
    "FOREIGN",
)


# A piece's last scan: its instant and event id (the tracker's order, ties by event id),
# and its mail phase.
_LastScan = tuple[datetime, str, str | None]


@dataclass
class _Group:
    pieces: dict[str, _LastScan] = field(default_factory=dict)  # tracking code -> last scan
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
    #: (mail phase of the piece's last scan, or None when unknown; pieces), phases in the
    #: order of the ``MailPhase`` enum (the mail's journey), unknown last.
    last_phases: tuple[tuple[str | None, int], ...] = ()

    @property
    def delivered_share(self) -> float:
        """Share of the pieces with a logical delivery event."""
        return self.delivered / self.pieces if self.pieces else 0.0

    def table_cells(self) -> tuple[str, ...]:
        """The row as the report's table shows it, one cell per ``TABLE_COLUMNS``."""
        return (
            self.campaign or "-",
            self.job_id or "-",
            str(self.pieces),
            self.first_scan.strftime("%Y-%m-%d %H:%M") if self.first_scan else "-",
            self.last_scan.strftime("%Y-%m-%d %H:%M") if self.last_scan else "-",
            str(self.delivered),
            f"{self.delivered_share:.1%}",
        )

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
        scan = event["scan"]
        when = _instant(scan["scanned_at"])
        last = (when, event["event_id"], scan.get("mail_phase"))
        held = group.pieces.get(piece)
        if held is None or last[:2] > held[:2]:
            group.pieces[piece] = last
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
        last_scan = status["last_scan"]
        first = _instant(status["first_scan"]["scanned_at"])
        last = _instant(last_scan["scanned_at"])
        group.pieces[piece] = (last, last_scan["event_id"], last_scan.get("mail_phase"))
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
                    _by_phase(phase for _, _, phase in group.pieces.values()),
                )
            )
        return sorted(
            rows, key=lambda row: (row.campaign is None, row.campaign or "", row.job_id or "")
        )


def _by_phase(phases: Iterable[str | None]) -> tuple[tuple[str | None, int], ...]:
    counts = Counter(phases)
    return tuple(sorted(counts.items(), key=lambda item: _phase_rank(item[0])))


def _phase_rank(phase: str | None) -> tuple[int, str]:
    # Journey order; a phase this code does not know yet after the known ones, unknown last.
    if phase is None:
        return (len(MAIL_PHASES) + 1, "")
    if phase in MAIL_PHASES:
        return (MAIL_PHASES.index(phase), "")
    return (len(MAIL_PHASES), phase)


def _instant(when: datetime | int) -> datetime:
    # Events straight from enrichment carry microseconds; decoded ones, datetimes.
    if isinstance(when, int):
        return datetime.fromtimestamp(when / 1_000_000, UTC)
    return when
