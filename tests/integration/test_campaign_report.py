"""Campaigns end to end: rules in the feeds file, events, metrics and the report command.

The report is read both ways (replaying the scans; the tracker's piece-status topic), as
JSON, as the table and as the HTML page (``--html``), and the two sources must agree.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from consumer.cli import main
from consumer.feeds import hash_password
from consumer.simulator import MailingSpec, generate_records, message_group
from tests.consumer.core.test_report_page import find_all, parse, text_of
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


def campaign_feeds_file(directory: Path, password: str) -> Path:
    """A feeds file with feed "letters" (campaign "unassigned") and one campaign rule:
    mailer 902345678's pieces are campaign "spring-9"."""
    feeds = directory / "feeds.toml"
    feeds.write_text(
        f"""
[feeds.letters]
user = "u"
password_hash = "{hash_password(password, n=2**10)}"
campaign = "unassigned"

[[campaigns]]
id = "spring-9"
mailer_ids = ["902345678"]
"""
    )
    return feeds


async def test_campaign_rules_metrics_and_report(tmp_path: Path) -> None:
    require_broker()
    feeds = campaign_feeds_file(tmp_path, "campaign-secret")
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
        scans_page = tmp_path / "from-scans.html"
        result = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["campaigns", "--format", "json", "--source", "scans", "--html", str(scans_page)],
            env={"IVMTR_TOPIC_PREFIX": prefix, "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP},
        )
        assert result.exit_code == 0, result.output
        # stdout is the JSON as without --html; the note about the page goes to stderr.
        assert f"wrote {scans_page}" in result.stderr
        rows = {(row["campaign"], row["job_id"]): row for row in orjson.loads(result.stdout)}
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
            status_page = tmp_path / "from-status.html"
            from_status = await asyncio.to_thread(
                CliRunner().invoke,
                main,
                ["campaigns", "--format", "json", "--html", str(status_page)],
                env={"IVMTR_TOPIC_PREFIX": prefix, "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP},
            )
        finally:
            stop_tracker(tracker)
        assert from_status.exit_code == 0, from_status.output
        status_rows = {(r["campaign"], r["job_id"]): r for r in orjson.loads(from_status.stdout)}
        assert set(status_rows) == set(rows)
        for key, row in rows.items():
            for field in ("pieces", "delivered", "delivered_by_day"):
                assert status_rows[key][field] == row[field], (key, field)

        # The pages: each names its topic, and shows every campaign and job with the JSON's
        # figures; both sources put each piece in the same last mail phase.
        pages = {
            "scans": page_figures(scans_page, f"{prefix}piece-scans"),
            "status": page_figures(status_page, f"{prefix}piece-status"),
        }
        for source, page in pages.items():
            assert set(page) == set(rows), source
            for key, row in rows.items():
                figures = page[key]
                assert figures["table"][2] == str(row["pieces"]), (source, key)
                assert figures["table"][5] == str(row["delivered"]), (source, key)
                assert figures["by_day"] == [
                    [day["date"], f"{day['delivered']:,}", f"{day['share']:.1%}"]
                    for day in row["delivered_by_day"]
                ], (source, key)
                assert sum(count for _, count in figures["phases"]) == row["pieces"]
                if row["delivered"]:
                    assert dict(figures["phases"]).get("PHASE_4C_DELIVERY", 0) > 0
        for key in rows:
            assert pages["scans"][key]["phases"] == pages["status"][key]["phases"], key
    finally:
        stop_service(service)


def page_figures(path: Path, topic: str) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    """Per campaign and job, what a ``campaigns --html`` page shows: its table row, the
    delivered-by-day lines (date, that day, share so far) and the phase bars."""
    root = parse(path.read_text(encoding="utf-8"))
    assert topic in text_of(find_all(root, "header")[0])
    (table,) = [t for t in find_all(root, "table") if t.get("class") == "report"]
    table_rows = [[text_of(td) for td in tr] for tr in find_all(table, "tbody")[0]]
    sections = [s for s in find_all(root, "section") if "group" in s.get("class", "").split()]
    assert len(sections) == len(table_rows)
    figures = {}
    for section, cells in zip(sections, table_rows, strict=True):
        key = (section.get("data-campaign"), section.get("data-job"))
        assert (cells[0], cells[1]) == (key[0] or "-", key[1] or "-")
        by_day = [t for t in find_all(section, "table") if t.get("class") == "by-day"]
        lines = (
            [[text_of(td) for td in tr] for tr in find_all(by_day[0], "tbody")[0]] if by_day else []
        )
        bars = find_all(find_all(section, "svg")[1], "rect")
        figures[key] = {
            "table": cells,
            "by_day": [[line[0], line[1], line[3]] for line in lines],
            "phases": [(bar.get("data-key"), int(bar.get("data-value", -1))) for bar in bars],
        }
    return figures
