"""What ops sees: JSON log lines, Prometheus metrics and health, from the running service."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import (
    Service,
    message_group_id,
    start_service,
    start_tracker,
    stop_service,
    stop_tracker,
    wait_ready,
)
from tests.integration.test_ingest import BAD_PIECE, LDE, PIECE, TRAY, envelope, push

pytestmark = pytest.mark.kafka


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_the_pushes(client: httpx.AsyncClient, service: Service) -> None:
    before = await scrape(client)
    group = message_group_id()
    body = orjson.dumps(envelope([PIECE, LDE, TRAY, BAD_PIECE], group, recCnt=5))
    assert (await push(client, body, feed="obs")).status_code == 200
    assert (await push(client, body, feed="obs")).json()["duplicate"] is True
    assert (await push(client, b"[]", feed="obs")).status_code == 400
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("ivmtr_messages_total", feed="obs", outcome="published") == 1
    assert delta("ivmtr_messages_total", feed="obs", outcome="duplicate") == 1
    assert delta("ivmtr_messages_total", feed="obs", outcome="refused") == 1
    assert delta("ivmtr_refused_messages_total", feed="obs", error="malformed_message") == 1
    assert delta("ivmtr_records_total", feed="obs", kind="piece", outcome="published") == 2
    assert delta("ivmtr_records_total", feed="obs", kind="piece", outcome="rejected") == 1
    assert delta("ivmtr_records_total", feed="obs", kind="handling_unit", outcome="published") == 1
    # PIECE and TRAY took the native fast path; LDE (a ±hhmm offset and a nested member)
    # and the bad record the Python path.
    assert delta("ivmtr_fast_path_records_total", feed="obs") == 2
    assert delta("ivmtr_dead_letters_total", feed="obs", field="scanDatetime") == 1
    assert delta("ivmtr_message_problems_total", feed="obs", problem="rec_cnt_mismatch") == 1
    assert delta("ivmtr_received_bytes_total", feed="obs") == len(body)
    assert delta("ivmtr_request_duration_seconds_count", feed="obs", status="200") == 2
    assert delta("ivmtr_publish_duration_seconds_count") >= 1
    assert value(after, "ivmtr_inflight_requests") == 0
    assert value(after, "ivmtr_kafka_connected") == 1


async def test_one_json_log_line_per_message_with_its_request_id(
    client: httpx.AsyncClient, service: Service
) -> None:
    group = message_group_id()
    body = orjson.dumps(envelope([PIECE, BAD_PIECE], group))
    response = await push(client, body, feed="logs", **{"x-request-id": f"req-{group}"})
    assert response.status_code == 200
    # Split on "\n" only: JSON keeps U+2028 and U+0085 raw, and a fuzzed msgGrpId logged
    # earlier in the session carries them; str.splitlines() would cut its line in two.
    lines = [orjson.loads(line) for line in service.logs().split("\n") if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == f"req-{group}"]
    (published,) = [line for line in mine if line["event"] == "message published"]
    assert published["feed"] == "logs" and published["msg_grp_id"] == group
    assert published["msg_ser_nbr"] == 1 and published["outcome"] == "published"
    assert published["received"] == 2 and published["rejected"] == 1
    assert published["records_by_kind"] == {"piece/published": 1, "piece/rejected": 1}
    assert published["rejected_by_field"] == {"imb": 1, "scanDatetime": 1, "scanEventCode": 1}
    assert published["bytes"] == len(body) and published["duration_s"] > 0
    assert published["level"] == "info" and "timestamp" in published
    # Whole records are never logged at info.
    assert all(
        PIECE["pieceId"] not in orjson.dumps(line).decode()
        for line in lines
        if line["level"] == "info"
    )
    started = next(line for line in lines if line["event"] == "service started")
    assert started["settings"]["kafka_bootstrap_servers"]


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


def logged_lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.split("\n") if line.startswith("{")]


async def test_a_healthy_start_logs_nothing_above_info(tmp_path: Path) -> None:
    """Fresh topics, a push, a tracker: no error lines, and no warnings of ours but one.

    New topics are listed, and described with leaders, before those leaders serve them;
    readers started then were told NotLeaderForPartition, which aiokafka logs at error
    level. ensure_topics now waits until every partition answers. (On a broker that never
    had a consumer group, aiokafka's retried GroupCoordinatorNotAvailable is a warning.)
    """
    prefix = f"start-{uuid.uuid4().hex[:8]}."
    service = start_service(tmp_path, prefix)
    try:
        tracker = start_tracker(tmp_path, prefix, f"{prefix}track")
        try:
            wait_ready(tracker)
            async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
                body = orjson.dumps(envelope([PIECE, TRAY], message_group_id()))
                assert (await push(client, body, feed="start")).status_code == 200
        finally:
            stop_tracker(tracker)
    finally:
        stop_service(service)
    service_lines = logged_lines(service.logs())
    tracker_lines = logged_lines(tracker.log_path.read_text(errors="replace"))
    assert any(line["event"] == "topics created" for line in service_lines)
    assert any(line["event"] == "message published" for line in service_lines)
    lines = service_lines + tracker_lines
    assert [line for line in lines if line["level"] not in ("debug", "info", "warning")] == []
    warnings = [line for line in lines if line["level"] == "warning"]
    assert [
        line
        for line in warnings
        if "insecure development mode" not in str(line["event"]).lower()
        and not str(line.get("logger", "")).startswith("aiokafka")
    ] == []
