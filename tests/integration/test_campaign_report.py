"""Campaigns end to end: rules in the feeds file, events, metrics and the report command."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from consumer.cli import main
from consumer.feeds import hash_password
from consumer.simulator import MailingSpec, generate_records, message_group
from tests.integration.conftest import (
    BOOTSTRAP,
    message_group_id,
    require_broker,
    start_service,
    start_tracker,
    stop_service,
    stop_tracker,
)
from tests.integration.test_tracker import latest

pytestmark = pytest.mark.kafka


async def test_campaign_rules_metrics_and_report(tmp_path: Path) -> None:
    require_broker()
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        f"""
[feeds.letters]
user = "u"
password_hash = "{hash_password("campaign-secret", n=2**10)}"
campaign = "unassigned"

[[campaigns]]
id = "spring-9"
mailer_ids = ["902345678"]
"""
    )
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    service = start_service(tmp_path, prefix, IVMTR_FEEDS_FILE=str(feeds))
    try:
        records = list(generate_records(MailingSpec(pieces=120, seed=51)))
        messages = message_group(records, message_size=100_000, msg_grp_id=message_group_id())
        async with httpx.AsyncClient(
            base_url=service.url, auth=("u", "campaign-secret"), timeout=60
        ) as client:
            for message in messages:
                answer = await client.post(
                    "/v1/feeds/letters",
                    content=orjson.dumps(message),
                    headers={"content-type": "application/json"},
                )
                assert answer.status_code == 200, answer.text
            metrics = (await client.get("/metrics")).text

        truth: dict[tuple[str, str | None], set[str]] = defaultdict(set)
        delivered: dict[tuple[str, str | None], set[str]] = defaultdict(set)
        scans: dict[str, int] = defaultdict(int)
        for record in records:
            mid = record.get("imtbMid") or record.get("imcbMid")
            imb = str(record.get("imb", ""))
            if mid is None:
                mid = imb[5:14] if imb[5:6] == "9" else imb[5:11]
            campaign = "spring-9" if mid == "902345678" else "unassigned"
            scans[campaign] += 1  # every scan event, trays and containers included
            if "imb" not in record or "deviceId" in record:
                continue
            key = (campaign, str(record.get("edocJobId") or "") or None)
            truth[key].add(imb[:20])
            if record.get("scanEventCode") == "517":
                delivered[key].add(imb[:20])
        for campaign, count in scans.items():
            assert f'ivmtr_campaign_scans_total{{campaign="{campaign}"}} {float(count)}' in metrics

        # The command runs its own event loop: give it a thread of its own.
        result = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["campaigns", "--format", "json", "--source", "scans"],
            env={"IVMTR_TOPIC_PREFIX": prefix, "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP},
        )
        assert result.exit_code == 0, result.output
        rows = {(row["campaign"], row["job_id"]): row for row in orjson.loads(result.output)}
        assert set(rows) == set(truth)
        for key, pieces in truth.items():
            assert rows[key]["pieces"] == len(pieces)
            assert rows[key]["delivered"] == len(delivered[key])
        table = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["campaigns", "--source", "scans"],
            env={"IVMTR_TOPIC_PREFIX": prefix, "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP},
        )
        assert (
            table.exit_code == 0
            and "spring-9" in table.output
            and "delivered by day" in table.output
        )

        # With a tracker, the same report from the piece-status topic, one record per piece.
        tracker = start_tracker(tmp_path, prefix, f"{prefix}tracker")
        try:
            pieces = sum(len(found) for found in truth.values())
            await latest(f"{prefix}piece-status", pieces)
            from_status = await asyncio.to_thread(
                CliRunner().invoke,
                main,
                ["campaigns", "--format", "json"],
                env={"IVMTR_TOPIC_PREFIX": prefix, "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP},
            )
        finally:
            stop_tracker(tracker)
        assert from_status.exit_code == 0, from_status.output
        status_rows = {(r["campaign"], r["job_id"]): r for r in orjson.loads(from_status.output)}
        assert set(status_rows) == set(rows)
        for key, row in rows.items():
            for field in ("pieces", "delivered", "delivered_by_day"):
                assert status_rows[key][field] == row[field], (key, field)
    finally:
        stop_service(service)
