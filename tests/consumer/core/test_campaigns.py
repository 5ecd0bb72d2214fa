"""Campaign rules and the campaign/job report, against a generated mailing whose truth is known."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.core.campaigns import CampaignRule, assign_campaign
from consumer.core.pipeline import MessagePipeline, ScanEvent
from consumer.core.report import CampaignReport
from consumer.service import record_shapes
from consumer.simulator import MailingSpec, generate_records

SPRING = CampaignRule("spring", mailer_ids=frozenset({"902345678"}))
LOW_SERIALS = CampaignRule(
    "low-serials", mailer_ids=frozenset({"123456"}), serial_ranges=((0, 1999),)
)
BY_JOB = CampaignRule("job-j1", job_ids=frozenset({"J1"}), stids=frozenset({"270"}))


@pytest.mark.parametrize(
    ("fields", "campaign"),
    [
        ({"mailer_id": "902345678", "serial_number": "000001"}, "spring"),
        ({"mailer_id": "123456", "serial_number": "000001999"}, "low-serials"),
        ({"mailer_id": "123456", "serial_number": "000002000"}, None),
        ({"mailer_id": "123456", "serial_number": None}, None),
        ({"mailer_id": "555555", "stid": "270", "job_id": "J1"}, "job-j1"),
        ({"mailer_id": "555555", "stid": "271", "job_id": "J1"}, None),
        ({"mailer_id": "902345678", "stid": "270", "job_id": "J1"}, "spring"),  # first match wins
    ],
)
def test_rules(fields: dict[str, Any], campaign: str | None) -> None:
    assert assign_campaign([SPRING, LOW_SERIALS, BY_JOB], **fields) == campaign


@given(
    ranges=st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(0, 10**6)).map(lambda r: (r[0], r[0] + r[1])),
        min_size=1,
        max_size=5,
    ),
    serial=st.integers(0, 10**9 + 10**6),
)
def test_serial_ranges_are_inclusive_and_numeric(
    ranges: list[tuple[int, int]], serial: int
) -> None:
    rule = CampaignRule("c", serial_ranges=tuple(ranges))
    inside = any(low <= serial <= high for low, high in ranges)
    assert (assign_campaign([rule], mailer_id="x", serial_number=f"{serial:09d}") == "c") is inside


def test_report_matches_a_generated_mailing() -> None:
    records = list(generate_records(MailingSpec(pieces=400, seed=7)))
    rules = [
        SPRING,
        CampaignRule("b-low", mailer_ids=frozenset({"123456"}), serial_ranges=((0, 752_750_300),)),
    ]
    pipeline = MessagePipeline(
        feed="f", received_at_ms=0, shapes=record_shapes(), campaign="fallback", campaigns=rules
    )
    body = orjson.dumps({"msgGrpId": "G", "msgSerNbr": 1, "events": records})
    outcomes = pipeline.feed(body) + pipeline.finish()
    report = CampaignReport()
    for outcome in outcomes:
        assert isinstance(outcome, ScanEvent)
        if outcome.kind.value == "piece":
            report.add(outcome.value)

    # The truth, straight from the generated records.
    truth: dict[tuple[str, str | None], dict[str, Any]] = defaultdict(
        lambda: {"pieces": set(), "times": [], "delivered": {}}
    )
    for record in records:
        if "imb" not in record or "deviceId" in record:
            continue
        imb = str(record["imb"])
        mid = imb[5:14] if imb[5] == "9" else imb[5:11]
        serial = imb[14:20] if imb[5] == "9" else imb[11:20]
        if mid == "902345678":
            campaign = "spring"
        elif mid == "123456" and int(serial) <= 752_750_300:
            campaign = "b-low"
        else:
            campaign = "fallback"
        key = (campaign, str(record.get("edocJobId") or "") or None)
        group = truth[key]
        group["pieces"].add(imb[:20])
        text = str(record["scanDatetime"]).replace(" ", "T", 1)
        group["times"].append(datetime.fromisoformat(text))
        if record.get("scanEventCode") == "517":
            day = text[:10]
            group["delivered"][imb[:20]] = min(day, group["delivered"].get(imb[:20], day))

    rows = {(row.campaign, row.job_id): row for row in report.rows()}
    assert set(rows) == set(truth)
    assert {"spring", "b-low"} <= {campaign for campaign, _ in rows}
    for key, expected in truth.items():
        row = rows[key]
        assert row.pieces == len(expected["pieces"])
        assert row.first_scan == min(expected["times"]) and row.last_scan == max(expected["times"])
        assert row.delivered == len(expected["delivered"])
        days = sorted(set(expected["delivered"].values()))
        assert [day for day, _, _ in row.delivered_by_day] == days
        if days:
            assert row.delivered_by_day[-1][2] == pytest.approx(row.delivered / row.pieces)
