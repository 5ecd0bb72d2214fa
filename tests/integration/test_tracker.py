"""The tracker against the real broker: statuses and alerts exactly once, through crashes.

Scan events are made by the ingest pipeline from a simulated mailing and written to the
piece-scan topic as the service writes them; trackers run as ``ivmtr-stream track``
processes; statuses and alerts are read back read_committed with the schema files alone.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from consumer.cli import main
from consumer.simulator import MailingSpec, generate_records
from consumer.simulator.generate import parse_scan_datetime
from tests.consumer.track.scans import piece_record, scan_values
from tests.integration.conftest import (
    BOOTSTRAP,
    consume,
    require_broker,
    start_tracker,
    stop_tracker,
    wait_ready,
)

pytestmark = pytest.mark.kafka


async def produce(topic: str, values: list[bytes]) -> None:
    """Scan events onto the scan topic, keyed by tracking code as the service keys them."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, key=_tracking_code(value))
        await producer.flush()
    finally:
        await producer.stop()


def _tracking_code(value: bytes) -> bytes:
    from consumer.track.scans import ScanReader
    from tests.consumer.track.scans import TOPICS

    reader = ScanReader([TOPICS.piece_scans.schema])
    return reader(value).tracking_code.encode()


@dataclass(frozen=True)
class Truth:
    """What a mailing's piece records imply for each piece."""

    scans: int
    first: datetime
    last: datetime
    delivered: datetime | None


def truth_of(records: list[dict[str, Any]]) -> dict[str, Truth]:
    by_piece: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_piece[str(record["imb"])[:20]].append(record)
    truths = {}
    for piece, scans in by_piece.items():
        times = [parse_scan_datetime(str(scan["scanDatetime"])) for scan in scans]
        deliveries = [
            parse_scan_datetime(str(scan["scanDatetime"]))
            for scan in scans
            if scan.get("scanEventCode") == "517"
        ]
        truths[piece] = Truth(len(scans), min(times), max(times), min(deliveries, default=None))
    return truths


def mailing(pieces: int, seed: int) -> list[dict[str, Any]]:
    """The piece records of a simulated mailing (no trays: piece scans only)."""
    return [
        record
        for record in generate_records(MailingSpec(pieces=pieces, seed=seed, trays=False))
        if "imb" in record and "deviceId" not in record
    ]


async def records_of(topic: str, want: int, within_s: float = 60) -> list[dict[str, Any]]:
    """The values of ``topic`` once it holds ``want`` records (or the time is up)."""
    deadline = time.monotonic() + within_s
    values: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        values = [record.value for record in await consume(topic)]
        if len(values) >= want:
            return values
        await asyncio.sleep(0.5)
    return values


async def latest(topic: str, want: int, within_s: float = 90) -> dict[str, dict[str, Any]]:
    """Latest value per key of ``topic`` once it holds ``want`` keys (or the time is up)."""
    deadline = time.monotonic() + within_s
    values: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        values = {record.key: record.value for record in await consume(topic) if record.key}
        if len(values) >= want:
            return values
        await asyncio.sleep(1)
    return values


async def settled_statuses(
    topic: str, truths: dict[str, Truth], within_s: float = 120
) -> dict[str, dict[str, Any]]:
    """The statuses once every piece's scan count is what its records say."""
    deadline = time.monotonic() + within_s
    statuses: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        statuses = {record.key: record.value for record in await consume(topic) if record.key}
        if len(statuses) == len(truths) and all(
            statuses[piece]["scan_count"] == truth.scans for piece, truth in truths.items()
        ):
            return statuses
        await asyncio.sleep(1)
    return statuses


def assert_statuses_match(statuses: dict[str, dict[str, Any]], truths: dict[str, Truth]) -> None:
    assert set(statuses) == set(truths)
    for piece, truth in truths.items():
        status = statuses[piece]
        assert status["scan_count"] == truth.scans, piece
        assert status["first_scan"]["scanned_at"] == truth.first, piece
        assert status["last_scan"]["scanned_at"] == truth.last, piece
        assert status["delivered_at"] == truth.delivered, piece
        assert status["state"] == ("DELIVERED" if truth.delivered else status["state"])
        if truth.delivered is None:
            assert status["state"] in ("IN_TRANSIT", "OUT_FOR_DELIVERY"), piece
            assert status["alerts"] == []
        else:
            assert status["alerts"] == ["DELIVERED"], piece
            assert status["logical_delivery"]["event_code"] == "517"


def new_prefix() -> str:
    return f"it-{uuid.uuid4().hex[:8]}."


async def test_a_mailing_out_of_order_and_repeated_gives_the_statuses_its_scans_imply(
    tmp_path: Path,
) -> None:
    require_broker()
    prefix = new_prefix()
    records = mailing(150, seed=16)
    truths = truth_of(records)
    values = scan_values(records)
    rng = random.Random(16)
    shuffled = values + rng.sample(values, len(values) // 4)  # a quarter of them twice
    rng.shuffle(shuffled)
    tracker = start_tracker(tmp_path, prefix, f"{prefix}tracker")
    try:
        wait_ready(tracker)
        await produce(f"{prefix}piece-scans", shuffled)
        statuses = await settled_statuses(f"{prefix}piece-status", truths)
        assert_statuses_match(statuses, truths)
        delivered = {piece for piece, truth in truths.items() if truth.delivered}
        assert 0 < len(delivered) < len(truths)
        alerts = await consume(f"{prefix}alerts")
        assert Counter(alert.value["alert_id"] for alert in alerts) == Counter(
            f"{piece}:DELIVERED" for piece in delivered
        )
        for alert in alerts:
            assert alert.key == alert.value["tracking_code"]
            assert alert.value["scans"][0]["event_code"] == "517"
        metrics = (await asyncio.to_thread(httpx.get, f"{tracker.url}/metrics")).text
        assert (
            f'ivmtr_tracker_scans_total{{result="repeated"}} {float(len(values) // 4)}' in metrics
        )
        assert f'ivmtr_tracker_alerts_total{{kind="DELIVERED"}} {float(len(delivered))}' in metrics
        assert 'ivmtr_tracker_transactions_total{result="failed"} 0.0' in metrics
        committed = re.search(
            r'^ivmtr_tracker_transactions_total\{result="committed"\} (\S+)$', metrics, re.M
        )
        assert committed is not None and 1 <= float(committed.group(1)) <= len(shuffled)

        # The CLI reads the status topic: one piece, and the campaign report.
        piece = sorted(delivered)[0]
        env = {"IVMTR_TOPIC_PREFIX": prefix, "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP}
        shown = await asyncio.to_thread(
            CliRunner().invoke, main, ["piece-status", piece, "--format", "table"], env=env
        )
        assert shown.exit_code == 0, shown.output
        assert "DELIVERED" in shown.output and piece in shown.output
        missing = await asyncio.to_thread(
            CliRunner().invoke, main, ["piece-status", "0" * 20], env=env
        )
        assert missing.exit_code == 1 and "no status for piece" in missing.output
        report = await asyncio.to_thread(
            CliRunner().invoke, main, ["campaigns", "--format", "json"], env=env
        )
        assert report.exit_code == 0, report.output
        rows = orjson.loads(report.output)
        assert sum(row["pieces"] for row in rows) == len(truths)
        assert sum(row["delivered"] for row in rows) == len(delivered)
    finally:
        stop_tracker(tracker)


async def test_kill_9_mid_stream_and_a_second_tracker_joining_lose_and_double_nothing(
    tmp_path: Path,
) -> None:
    require_broker()
    prefix = new_prefix()
    records = mailing(400, seed=61)
    truths = truth_of(records)
    values = scan_values(records)
    random.Random(61).shuffle(values)
    chunks = [values[i::4] for i in range(4)]
    group = f"{prefix}tracker"
    first = start_tracker(tmp_path, prefix, group)
    second = None
    try:
        wait_ready(first)
        await produce(f"{prefix}piece-scans", chunks[0])
        second = start_tracker(tmp_path, prefix, group)  # joins: the partitions are dealt again
        await produce(f"{prefix}piece-scans", chunks[1])
        await produce(f"{prefix}piece-scans", chunks[2] + chunks[0][:200])  # and some again
        first.process.send_signal(signal.SIGKILL)  # mid-stream: its transactions never end
        first.process.wait()
        await produce(f"{prefix}piece-scans", chunks[3])
        statuses = await settled_statuses(f"{prefix}piece-status", truths, within_s=150)
        assert_statuses_match(statuses, truths)
        alerts = await consume(f"{prefix}alerts")
        delivered = {piece for piece, truth in truths.items() if truth.delivered}
        assert Counter(alert.value["alert_id"] for alert in alerts) == Counter(
            f"{piece}:DELIVERED" for piece in delivered
        )
        # The survivor took the dead tracker's partitions back from the status topic.
        metrics = (await asyncio.to_thread(httpx.get, f"{second.url}/metrics")).text
        restored = re.search(r"^ivmtr_tracker_restored_records_total (\S+)$", metrics, re.M)
        assert restored is not None and float(restored.group(1)) > 0
        assert "ivmtr_tracker_owned_partitions 4.0" in metrics
    finally:
        stop_tracker(first)
        if second is not None:
            stop_tracker(second)


async def test_stalled_late_and_scan_after_delivery_alerts(tmp_path: Path) -> None:
    require_broker()
    prefix = new_prefix()
    stalled, late, rescanned = (
        "0004069951599001910222082810103",
        "0004069951599001910322082810103",
        "0004069951599001910422082810103",
    )
    delivery = {"het": "L", "phase": "Phase 4c - Delivery"}
    now = datetime.now().astimezone()
    recent = now.strftime("%Y-%m-%d %H:%M:%S%z")
    recent = f"{recent[:-2]}:{recent[-2:]}"
    values = [
        *scan_values([piece_record(stalled, "2026-01-05 08:00:00-05:00")], campaign="fast"),
        *scan_values(
            [piece_record(late, recent, predictedDeliveryDate="2026-01-06")], campaign="slow"
        ),
        *scan_values(
            [
                piece_record(rescanned, "2026-01-05 08:00:00-05:00"),
                piece_record(rescanned, "2026-01-06 11:00:00-05:00", "517", **delivery),
                piece_record(rescanned, "2026-01-07 09:00:00-05:00", "919"),
            ]
        ),
    ]
    tracker = start_tracker(
        tmp_path,
        prefix,
        f"{prefix}tracker",
        IVMTR_TRACK_STALL_HOURS_BY_CAMPAIGN='{"fast": 1}',
        IVMTR_TRACK_CHECK_INTERVAL_S="0.5",
    )
    try:
        wait_ready(tracker)
        await produce(f"{prefix}piece-scans", values)
        alerts = await records_of(f"{prefix}alerts", 4)
        kinds = Counter(alert["kind"] for alert in alerts)
        by_id = {alert["alert_id"]: alert for alert in alerts}
        assert set(by_id) == {
            f"{stalled[:20]}:STALLED",
            f"{late[:20]}:LATE",
            f"{rescanned[:20]}:DELIVERED",
            f"{rescanned[:20]}:SCAN_AFTER_DELIVERY",
        }, kinds
        assert by_id[f"{stalled[:20]}:STALLED"]["threshold"] == "1 hours without a scan"
        assert by_id[f"{late[:20]}:LATE"]["threshold"] == "predicted delivery date 2026-01-06"
        after = by_id[f"{rescanned[:20]}:SCAN_AFTER_DELIVERY"]
        assert [scan["event_code"] for scan in after["scans"]] == ["517", "919"]
        statuses = await latest(f"{prefix}piece-status", 3)
        assert statuses[stalled[:20]]["state"] == "STALLED"
        assert statuses[late[:20]]["state"] == "LATE"
        assert statuses[rescanned[:20]]["state"] == "DELIVERED"
        await asyncio.sleep(1.5)  # more checks: nothing is raised twice
        again = await consume(f"{prefix}alerts")
        assert len(again) == 4
    finally:
        stop_tracker(tracker)
