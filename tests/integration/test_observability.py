"""What ops sees: JSON log lines, Prometheus metrics and health, from the running service."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.simulator import MailingSpec, generate_records, message_group
from tests.integration.conftest import (
    Service,
    consume,
    free_port,
    message_group_id,
    require_broker,
    start_service,
    start_tracker,
    stop_service,
    stop_tracker,
    wait_ready,
)
from tests.integration.own_broker import OwnBroker, own_broker
from tests.integration.test_campaign_report import campaign_feeds_file
from tests.integration.test_ingest import BAD_PIECE, LDE, PIECE, TRAY, envelope, push

pytestmark = pytest.mark.kafka
__all__ = ["own_broker"]  # a fixture: imported to be used here


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


# --------------------------------------------------------------------------- the README's
# metrics that no other test reads: each against a service of its own, so that the value
# is this test's alone.

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def metric_becomes(
    client: httpx.AsyncClient, name: str, wanted: float, within_s: float = 20, **labels: str
) -> Samples:
    """The scrape in which ``name`` first has the value ``wanted``; fails with the last value
    seen if that does not happen within ``within_s``."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        samples = await scrape(client)
        if value(samples, name, **labels) == wanted:
            return samples
        if asyncio.get_running_loop().time() > deadline:
            seen = samples.get((name, tuple(sorted(labels.items()))))
            raise AssertionError(f"{name}{labels} is {seen}, not {wanted}, after {within_s} s")
        await asyncio.sleep(0.2)


def closed_port() -> str:
    """An address nothing listens on: a Kafka that is away, for the gauges that say so."""
    return f"127.0.0.1:{free_port()}"


async def test_incomplete_message_groups_counts_a_group_until_its_missing_message_comes(
    tmp_path: Path,
) -> None:
    require_broker()
    service = start_service(
        tmp_path,
        f"obs-{uuid.uuid4().hex[:8]}.",
        IVMTR_GROUP_CHECK_INTERVAL_S="0.2",
    )
    try:
        records = list(generate_records(MailingSpec(pieces=30, seed=61)))
        messages = message_group(records, message_size=50, msg_grp_id=message_group_id())
        assert len(messages) >= 3
        missing = messages[1]
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            await metric_becomes(client, "ivmtr_incomplete_message_groups", 0)
            for message in messages:
                if message is not missing:
                    assert (await push(client, orjson.dumps(message))).status_code == 200
            await metric_becomes(client, "ivmtr_incomplete_message_groups", 1)
            assert (await push(client, orjson.dumps(missing))).status_code == 200
            await metric_becomes(client, "ivmtr_incomplete_message_groups", 0)
    finally:
        stop_service(service)


async def test_spool_entries_counts_what_waits_for_kafka_until_it_is_published(
    tmp_path: Path,
) -> None:
    require_broker()  # for the second half, where the spool drains into the shared broker
    prefix = f"obs-{uuid.uuid4().hex[:8]}."
    spool = {"IVMTR_ACK_MODE": "spool", "IVMTR_SPOOL_DIR": str(tmp_path / "spool")}
    messages = [envelope([PIECE], message_group_id()) for _ in range(3)]
    away = start_service(
        tmp_path,
        prefix,
        wait_ready=False,
        IVMTR_KAFKA_BOOTSTRAP_SERVERS=closed_port(),
        IVMTR_KAFKA_TIMEOUT_S="2",
        **spool,
    )
    try:
        async with httpx.AsyncClient(base_url=away.url, timeout=60) as client:
            await metric_becomes(client, "ivmtr_spool_entries", 0)
            for count, message in enumerate(messages, start=1):
                answer = await push(client, orjson.dumps(message))
                assert answer.status_code == 202 and answer.json()["status"] == "SPOOLED"
                await metric_becomes(client, "ivmtr_spool_entries", count)
            # Kafka stays away: the entries stay.
            await asyncio.sleep(1)
            await metric_becomes(client, "ivmtr_spool_entries", len(messages), within_s=0)
    finally:
        stop_service(away)
    # The same spool under a service that reaches Kafka: published, then no entries.
    back = start_service(tmp_path, prefix, wait_ready=False, **spool)
    try:
        async with httpx.AsyncClient(base_url=back.url, timeout=60) as client:
            await metric_becomes(client, "ivmtr_spool_entries", 0, within_s=60)
        for message in messages:
            published = await consume(back.topic("piece-scans"), msg_grp_id=message["msgGrpId"])
            assert len(published) == 1
    finally:
        stop_service(back)


async def test_kafka_errors_counts_pushes_answered_503_kafka_unavailable(
    tmp_path: Path, own_broker: OwnBroker
) -> None:
    # The service needs Kafka to start; then its own broker goes away (never the shared one).
    service = start_service(
        tmp_path,
        f"obs-{uuid.uuid4().hex[:8]}.",
        IVMTR_KAFKA_BOOTSTRAP_SERVERS=own_broker.bootstrap,
        IVMTR_KAFKA_TIMEOUT_S="2",
    )
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            assert (
                await push(client, orjson.dumps(envelope([PIECE], message_group_id())))
            ).status_code == 200
            await asyncio.to_thread(own_broker.stop)
            # Exported at 0 from the start, so that its rate is 0 rather than no data.
            before = await scrape(client)
            assert ("ivmtr_kafka_errors_total", (("error", "kafka_unavailable"),)) in before
            assert value(before, "ivmtr_kafka_errors_total", error="kafka_unavailable") == 0
            for count in (1, 2):
                body = orjson.dumps(envelope([PIECE], message_group_id()))
                answer = await push(client, body)
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "kafka_unavailable"
                after = await scrape(client)
                assert value(after, "ivmtr_kafka_errors_total", error="kafka_unavailable") == count
            # A refusal that is not Kafka's is not counted.
            assert (await push(client, b"[]")).status_code == 400
            after = await scrape(client)
            assert value(after, "ivmtr_kafka_errors_total", error="kafka_unavailable") == 2
    finally:
        stop_service(service)


async def test_campaign_logical_deliveries_counts_the_517_scans_by_campaign(
    tmp_path: Path,
) -> None:
    require_broker()
    feeds = campaign_feeds_file(tmp_path, "obs-secret")
    service = start_service(tmp_path, f"obs-{uuid.uuid4().hex[:8]}.", IVMTR_FEEDS_FILE=str(feeds))
    try:
        records = [*generate_records(MailingSpec(pieces=80, seed=62)), LDE]
        messages = message_group(records, message_size=100_000, msg_grp_id=message_group_id())
        # The truth, from the records: a piece's mailer ID is in its IMb.
        deliveries: Counter[str] = Counter()
        for record in records:
            if record.get("scanEventCode") == "517":
                imb = str(record["imb"])
                mid = imb[5:14] if imb[5] == "9" else imb[5:11]
                deliveries["spring-9" if mid == "902345678" else "unassigned"] += 1
        assert deliveries["spring-9"] and deliveries["unassigned"], deliveries
        async with httpx.AsyncClient(
            base_url=service.url, auth=("u", "obs-secret"), timeout=60
        ) as client:
            for message in messages:
                answer = await push(client, orjson.dumps(message), feed="letters")
                assert answer.status_code == 200, answer.text
            samples = await scrape(client)
        counted = {
            dict(labels)["campaign"]: count
            for (name, labels), count in samples.items()
            if name == "ivmtr_campaign_logical_deliveries_total"
        }
        assert counted == deliveries
    finally:
        stop_service(service)
