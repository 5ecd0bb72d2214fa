"""A piece's status folds its scans the same whatever their order and repetitions."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.track.alerts import AlertRules, evaluate
from consumer.track.scans import ScanReader
from consumer.track.status import PieceScanFacts, fold_scan
from tests.consumer.track.scans import TOPICS, piece_record, scan_values

IMB = "0004069951599001910222082810103"
DELIVERY = {"het": "L", "phase": "Phase 4c - Delivery"}
READER = ScanReader([TOPICS.piece_scans.schema, TOPICS.bundle_scans.schema])


def facts(*records: dict[str, Any], **pipeline: Any) -> list[PieceScanFacts]:
    return [READER(value) for value in scan_values(list(records), **pipeline)]


SCANS = facts(
    piece_record(
        IMB,
        "2026-01-05 08:00:00-05:00",
        "004",
        phase="Phase 0 - Origin Processing Cancellation of Postage",
    ),
    piece_record(IMB, "2026-01-05 21:30:00-05:00", "891", anticipatedDeliveryDate="2026-01-08"),
    piece_record(
        IMB, "2026-01-06 23:10:00-06:00", "918", predictedDeliveryDate="2026-01-07", edocJobId="J1"
    ),
    piece_record(IMB, "2026-01-07 11:05:00-06:00", "517", **DELIVERY),
    piece_record(IMB, "2026-01-07 15:00:00-06:00", "919"),
    # the same instant as the 918, another scan: ties break the same way in any order
    piece_record(IMB, "2026-01-06 23:10:00-06:00", "919"),
)


def folded(scans: list[PieceScanFacts]) -> dict[str, Any] | None:
    status = None
    for scan in scans:
        status = fold_scan(status, scan) or status
    return status


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False), st.lists(st.integers(0, len(SCANS) - 1), max_size=8))
def test_any_order_and_any_repetition_gives_the_same_status(
    rng: random.Random, repeats: list[int]
) -> None:
    reference = folded(SCANS)
    scans = SCANS + [SCANS[i] for i in repeats]
    rng.shuffle(scans)
    assert folded(scans) == reference


def test_the_status_of_a_delivered_piece() -> None:
    status = folded(SCANS)
    assert status is not None
    assert status["tracking_code"] == IMB[:20]
    assert status["scan_count"] == len(SCANS)
    assert status["first_scan"]["event_code"] == "004"
    assert status["last_scan"]["event_code"] == "919"
    assert status["logical_delivery"]["event_code"] == "517"
    assert status["actual_delivery"] is None
    assert status["delivered_at"] == status["logical_delivery"]["scanned_at"]
    assert status["state"] == "DELIVERED"
    assert status["days_in_transit"] == 2  # local dates 2026-01-05 to 2026-01-07
    # the dates of the latest scan that carried any: the 918's prediction
    assert status["predicted_delivery_date"] is not None
    assert status["anticipated_delivery_date"] is None
    assert status["job"]["job_id"] == "J1"
    assert status["last_transit_scan"]["event_code"] == "919"
    assert len(status["scan_ids"]) == len(set(status["scan_ids"])) == len(SCANS)
    assert status["scan_ids"] == sorted(status["scan_ids"])


def test_a_repeated_scan_changes_nothing() -> None:
    status = folded(SCANS[:3])
    assert fold_scan(status, SCANS[1]) is None


def test_an_actual_delivery_scan_and_out_for_delivery() -> None:
    carrier = facts(
        piece_record(IMB, "2026-01-07 10:00:00-05:00", "969", phase="Phase 4c - Delivery")
    )
    status = folded(SCANS[:3] + carrier)
    assert status is not None
    assert status["actual_delivery"]["event_code"] == "969"
    assert status["state"] == "DELIVERED"
    assisted = facts(
        piece_record(IMB, "2026-01-07 09:00:00-05:00", "970", het="L", phase="Phase 4c - Delivery")
    )
    out = folded(SCANS[:3] + assisted)
    assert out is not None and out["state"] == "OUT_FOR_DELIVERY" and out["delivered_at"] is None


def test_the_campaign_of_the_earliest_labelled_scan() -> None:
    early = facts(piece_record(IMB, "2026-01-05 08:00:00-05:00", "004"), campaign="spring")
    late = facts(piece_record(IMB, "2026-01-06 08:00:00-05:00", "918"), campaign="autumn")
    for order in (early + late, late + early):
        status = folded(order)
        assert status is not None and status["campaign"] == "spring"


def test_scan_rules_raise_each_alert_once_whatever_the_order() -> None:
    rules = AlertRules()
    for seed in range(20):
        scans = list(SCANS)
        random.Random(seed).shuffle(scans)
        status: dict[str, Any] | None = None
        raised = []
        for scan in scans:
            status = fold_scan(status, scan)
            if status is None:
                continue
            status, alerts = evaluate(status, rules, 0, wall_clock=False)
            raised += [alert["kind"] for alert in alerts]
        assert sorted(raised) == ["DELIVERED", "SCAN_AFTER_DELIVERY"], seed
