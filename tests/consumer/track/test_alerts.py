"""The wall-clock rules: STALLED per campaign, LATE by the delivery date, once each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from consumer.track.alerts import AlertRules, evaluate, late_due, next_change
from tests.consumer.track.scans import piece_record
from tests.consumer.track.test_status import IMB, SCANS, facts, folded

HOUR = 3_600_000_000


def micros(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1_000_000)


def scanned(campaign: str | None = None, **extra: Any) -> dict[str, Any]:
    record = piece_record(IMB, "2026-01-05 08:00:00-05:00", "918", **extra)
    status = folded(facts(record, campaign=campaign))
    assert status is not None
    return status


SCAN_AT = micros("2026-01-05T08:00:00-05:00")


def test_stalled_after_the_campaign_threshold_and_raised_once() -> None:
    rules = AlertRules(stall_hours=72, stall_hours_by_campaign={"fast": 2})
    status = scanned("fast")
    assert evaluate(dict(status), rules, SCAN_AT + HOUR).alerts == []
    status, raised = evaluate(status, rules, SCAN_AT + 3 * HOUR)
    assert [alert["kind"] for alert in raised] == ["STALLED"]
    assert raised[0]["threshold"] == "2 hours without a scan"
    assert raised[0]["scans"] == [status["last_scan"]]
    assert raised[0]["state"] == "STALLED" and status["state"] == "STALLED"
    assert evaluate(status, rules, SCAN_AT + 9 * HOUR).alerts == []  # never twice
    other = scanned("slow")
    assert evaluate(other, rules, SCAN_AT + 3 * HOUR).status["state"] == "IN_TRANSIT"
    assert evaluate(other, rules, SCAN_AT + 73 * HOUR).status["state"] == "STALLED"


def test_late_after_the_local_end_of_the_predicted_date() -> None:
    rules = AlertRules(stall_hours=1000)
    status = scanned(predictedDeliveryDate="2026-01-06", expectedDeliveryDate="2026-01-09")
    end = micros("2026-01-07T00:00:00-05:00")  # the facility's midnight (UTC-5)
    assert late_due(status) == end
    assert next_change(status, rules) == end
    assert evaluate(dict(status), rules, end - 1).alerts == []
    status, raised = evaluate(status, rules, end)
    assert [alert["kind"] for alert in raised] == ["LATE"]
    assert raised[0]["threshold"] == "predicted delivery date 2026-01-06"
    assert status["state"] == "LATE"
    assert next_change(status, rules) == status["last_scan"]["scanned_at"] + 1000 * HOUR


def test_without_a_prediction_the_anticipated_then_the_expected_date() -> None:
    status = scanned(anticipatedDeliveryDate="2026-01-07", expectedDeliveryDate="2026-01-06")
    assert late_due(status) == micros("2026-01-08T00:00:00-05:00")
    only = scanned(expectedDeliveryDate="2026-01-06")
    raised = evaluate(
        only, AlertRules(stall_hours=1000), micros("2026-01-08T00:00:00-05:00")
    ).alerts
    assert raised[0]["threshold"] == "expected delivery date 2026-01-06"
    assert late_due(scanned()) is None


def test_stalled_and_late_both_raised_stalled_wins_the_state() -> None:
    status = scanned(predictedDeliveryDate="2026-01-05")
    status, raised = evaluate(status, AlertRules(stall_hours=1), SCAN_AT + 48 * HOUR)
    assert sorted(alert["kind"] for alert in raised) == ["LATE", "STALLED"]
    assert {alert["state"] for alert in raised} == {"STALLED"}
    assert status["alerts"] == ["STALLED", "LATE"]
    assert next_change(status, AlertRules(stall_hours=1)) is None


def test_a_delivered_piece_is_never_stalled_or_late() -> None:
    status = folded(SCANS)
    assert status is not None
    status, raised = evaluate(status, AlertRules(stall_hours=1), SCAN_AT + 1000 * HOUR)
    assert sorted(alert["kind"] for alert in raised) == ["DELIVERED", "SCAN_AFTER_DELIVERY"]
    assert status["state"] == "DELIVERED"
    assert next_change(status, AlertRules()) is None
    after = next(alert for alert in raised if alert["kind"] == "SCAN_AFTER_DELIVERY")
    assert [scan["event_code"] for scan in after["scans"]] == ["517", "919"]
    assert after["alert_id"] == f"{IMB[:20]}:SCAN_AFTER_DELIVERY"
