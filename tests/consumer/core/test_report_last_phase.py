"""The report's pieces by the mail phase of their last scan, from scans and from statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from consumer.core.report import MAIL_PHASES, CampaignReport

SCHEMAS = Path(__file__).parents[3] / "schemas"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def scan(
    piece: str,
    event_id: str,
    hours: float,
    phase: str | None,
    *,
    delivered: bool = False,
    campaign: str | None = "spring",
    job: str | None = "J1",
) -> dict[str, Any]:
    """A decoded PieceScan value with the fields the report reads."""
    when = T0 + timedelta(hours=hours)
    return {
        "event_id": event_id,
        "campaign": campaign,
        "job": {"job_id": job} if job else None,
        "barcode": {"tracking_code": piece},
        "scan": {
            "scanned_at": when,
            "local_time": when.replace(tzinfo=None).isoformat(),
            "logical_delivery": delivered,
            "mail_phase": phase,
        },
    }


def test_mail_phases_are_the_schemas_in_its_order() -> None:
    schema = json.loads((SCHEMAS / "ivmtr.events.MailPhase.avsc").read_text())
    assert tuple(schema["symbols"]) == MAIL_PHASES


def test_last_phase_from_scans_in_any_order() -> None:
    events = [
        scan("p1", "e1", 0, "PHASE_1_ORIGIN"),
        scan("p1", "e3", 30, "PHASE_4C_DELIVERY", delivered=True),
        scan("p1", "e2", 10, "PHASE_3C_DESTINATION_SEQUENCED_CARRIER"),
        scan("p2", "e4", 5, "PHASE_2C_DESTINATION_PRIMARY"),
        scan("p2", "e5", 1, "PHASE_1_ORIGIN"),
        # Two scans at one instant: the larger event id is the later, as the tracker has it.
        scan("p3", "e7", 8, None),
        scan("p3", "e6", 8, "PHASE_3C_DESTINATION_SEQUENCED_CARRIER"),
        scan("p4", "e8", 2, "SOMETHING_NEW"),
    ]
    for order in (events, events[::-1]):
        report = CampaignReport()
        for event in order:
            report.add(event)
        (row,) = report.rows()
        # Journey order; a phase the code does not know after the known ones; unknown last.
        assert row.last_phases == (
            ("PHASE_2C_DESTINATION_PRIMARY", 1),
            ("PHASE_4C_DELIVERY", 1),
            ("SOMETHING_NEW", 1),
            (None, 1),
        )
        assert sum(count for _, count in row.last_phases) == row.pieces == 4


def test_last_phase_from_statuses() -> None:
    def point(event_id: str, hours: float, phase: str | None) -> dict[str, Any]:
        when = T0 + timedelta(hours=hours)
        return {
            "event_id": event_id,
            "scanned_at": when,
            "local_time": when.replace(tzinfo=None).isoformat(),
            "mail_phase": phase,
        }

    report = CampaignReport()
    for piece, last in (
        ("p1", point("a", 20, "PHASE_4C_DELIVERY")),
        ("p2", point("b", 9, "PHASE_3C_DESTINATION_SEQUENCED_CARRIER")),
        ("p3", point("c", 7, "PHASE_3C_DESTINATION_SEQUENCED_CARRIER")),
    ):
        report.add_status(
            {
                "tracking_code": piece,
                "campaign": "spring",
                "job": {"job_id": "J1"},
                "first_scan": point("z", 0, "PHASE_1_ORIGIN"),
                "last_scan": last,
                "actual_delivery": None,
                "logical_delivery": None,
            }
        )
    (row,) = report.rows()
    assert row.last_phases == (
        ("PHASE_3C_DESTINATION_SEQUENCED_CARRIER", 2),
        ("PHASE_4C_DELIVERY", 1),
    )


def test_last_phase_is_kept_per_campaign_and_job() -> None:
    report = CampaignReport()
    report.add(scan("p1", "e1", 0, "PHASE_1_ORIGIN", campaign="a"))
    report.add(scan("p2", "e2", 0, "PHASE_2_DESTINATION", campaign="b", job=None))
    rows = {(row.campaign, row.job_id): row.last_phases for row in report.rows()}
    assert rows == {
        ("a", "J1"): (("PHASE_1_ORIGIN", 1),),
        ("b", None): (("PHASE_2_DESTINATION", 1),),
    }
