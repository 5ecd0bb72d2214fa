"""Faults with real processes: the broker stopped or frozen mid-stream, the service killed
mid-message, spool mode through a broker outage and a restart, SIGTERM during a push.

Every test checks the same two things a subscriber cares about: every valid record of every
message answered 2xx is in Kafka, and none is there twice (counted by event_id with a
read_committed consumer). A test that stops or freezes the broker runs a broker of its own
(``tests.integration.own_broker``): the shared one on 9092 is never touched.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.conftest import (
    BOOTSTRAP,
    SCHEMA_FILES,
    Service,
    read_to_end,
    require_broker,
    start_service,
    stop_service,
)
from tests.integration.own_broker import OwnBroker, own_broker
from tests.integration.test_delivery import expected_ids, mailing, push_until_answered
from tests.integration.test_workers import slots_dealt_among

pytestmark = pytest.mark.kafka

__all__ = ["own_broker"]  # a fixture: imported to be used here

SCANS = ("piece-scans", "handling-unit-scans", "container-scans", "bundle-scans")


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    yield tmp_path, f"it-{uuid.uuid4().hex[:8]}."


async def committed(
    service: Service, suffix: str, bootstrap: str = BOOTSTRAP
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(headers, decoded value) of every committed record of a topic, read to the high
    watermark: a transaction answered 200 a moment ago may still be having its commit
    markers written, and its records on those partitions must not be missed."""
    read = await read_to_end(service.topic(suffix), until="high_watermark", bootstrap=bootstrap)
    return [
        ({name: raw.decode() for name, raw in item.headers}, SCHEMA_FILES.decode(item.value)[1])
        for _, item in read.records
    ]


async def event_ids(service: Service, group: str, bootstrap: str = BOOTSTRAP) -> Counter[str]:
    """How often each event id of a group is visible to read_committed subscribers."""
    ids: Counter[str] = Counter()
    for suffix in SCANS:
        for headers, value in await committed(service, suffix, bootstrap):
            if headers.get("ivmtr.msg_grp_id") == group:
                ids[value["event_id"]] += 1
    return ids


async def message_receipts(
    service: Service, group: str, bootstrap: str = BOOTSTRAP
) -> Counter[tuple[int, str]]:
    """(msgSerNbr, status) of every committed MESSAGE receipt of a group, counted."""
    return Counter(
        (int(value["msg_ser_nbr"]), str(value["status"]))
        for _, value in await committed(service, "deliveries", bootstrap)
        if value["msg_grp_id"] == group and value["kind"] == "MESSAGE"
    )


async def wait_for_log(service: Service, text: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while text not in service.logs():
        assert time.monotonic() < deadline, f"{text!r} never logged"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_broker_stopped_mid_stream_loses_and_duplicates_nothing(
    workspace: tuple[Path, str], own_broker: OwnBroker, workers: str
) -> None:
    # With two workers the slot group's coordinator goes down with the broker too: the
    # workers find it again when the broker is back, and forward each other messages
    # throughout.
    tmp, prefix = workspace
    messages = mailing(200, 40, seed=21)
    service = start_service(
        tmp,
        prefix,
        IVMTR_KAFKA_BOOTSTRAP_SERVERS=own_broker.bootstrap,
        IVMTR_KAFKA_TIMEOUT_S="4",
        IVMTR_RETRY_AFTER_S="1",
        IVMTR_WORKERS=workers,
    )
    try:
        # Ready means one worker answered: the broker goes down once both hold their slots.
        deadline = time.monotonic() + 60
        while not slots_dealt_among(service, int(workers)):
            assert time.monotonic() < deadline, service.logs()[-2000:]
            await asyncio.sleep(0.1)
        answered: list[httpx.Response] = []
        a_third_answered = asyncio.Event()

        async def sender() -> None:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
                for message in messages:
                    body = orjson.dumps(message)
                    answered.append(
                        await push_until_answered(client, "/v1/feeds/demo", body, attempts=200)
                    )
                    if len(answered) >= len(messages) // 3:
                        a_third_answered.set()

        task = asyncio.create_task(sender())
        await a_third_answered.wait()
        await asyncio.to_thread(own_broker.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(own_broker.start)
        await asyncio.wait_for(task, 240)
        assert [a.status_code for a in answered] == [200] * len(messages)
        ids = await event_ids(service, str(messages[0]["msgGrpId"]), own_broker.bootstrap)
        assert len(ids) == expected_ids(messages)
        assert set(ids.values()) == {1}
    finally:
        stop_service(service)


async def open_transaction_seen(
    service: Service, group: str, bootstrap: str = BOOTSTRAP, within_s: float = 30
) -> None:
    """Wait until the broker holds, uncommitted, the STARTED receipt of a message of ``group``
    and at least one of its events: its transaction is open, with records in it.

    A read_uncommitted consumer sees what a producer sent but did not commit: this is the
    broker's word, not a guess from the service's timing.
    """
    topics = [service.topic(suffix) for suffix in ("deliveries", *SCANS)]
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_uncommitted")
    await reader.start()
    try:
        metadata = await reader._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in metadata.partitions_for_topic(topic) or ()
        ]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        started = events = False
        deadline = time.monotonic() + within_s
        while not (started and events):
            assert time.monotonic() < deadline, (
                f"no open transaction of {group} seen (STARTED {started}, events {events})"
            )
            for tp, records in (await reader.getmany(timeout_ms=300)).items():
                for record in records:
                    headers = {name: raw.decode() for name, raw in record.headers}
                    if tp.topic != service.topic("deliveries"):
                        events |= headers.get("ivmtr.msg_grp_id") == group
                        continue
                    assert record.value is not None
                    _, receipt = SCHEMA_FILES.decode(record.value)
                    started |= receipt["msg_grp_id"] == group and receipt["status"] == "STARTED"
    finally:
        await reader.stop()


async def test_kill_9_mid_message_leaves_nothing_visible_and_the_retry_publishes_once(
    workspace: tuple[Path, str],
) -> None:
    # Kills the service, not the broker: the shared broker serves.
    require_broker()
    tmp, prefix = workspace
    (message,) = mailing(4000, 100_000, seed=22)
    body = orjson.dumps(message)
    group = str(message["msgGrpId"])
    service = start_service(tmp, prefix)
    # The body's second half is held back until the service is killed, so the kill lands
    # mid-message however fast the service takes the first half.
    killed = asyncio.Event()

    async def body_in_two_halves() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        await killed.wait()
        yield body[len(body) // 2 :]

    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            push = asyncio.create_task(
                client.post(
                    "/v1/feeds/demo",
                    content=body_in_two_halves(),
                    headers={"content-type": "application/json"},
                )
            )
            # The kill must land in an open transaction that already holds events.
            await open_transaction_seen(service, group)
            os.kill(service.process.pid, signal.SIGKILL)
            service.process.wait(10)
            killed.set()
            with pytest.raises(httpx.TransportError):
                await push
    finally:
        stop_service(service)
    service = start_service(tmp, prefix)  # takes every slot: the open transaction is aborted
    try:
        # Read to the high watermark, past the abort marker: records of the killed
        # transaction would be counted here if they were ever made visible.
        assert await event_ids(service, group) == Counter()
        assert await message_receipts(service, group) == Counter()
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
            answer = await push_until_answered(client, "/v1/feeds/demo", body)
            assert answer.status_code == 200 and answer.json()["duplicate"] is False
            again = await push_until_answered(client, "/v1/feeds/demo", body)
            assert again.json()["duplicate"] is True
        ids = await event_ids(service, group)
        assert len(ids) == expected_ids([message]) and set(ids.values()) == {1}
        assert await message_receipts(service, group) == Counter(
            {(1, "STARTED"): 1, (1, "PUBLISHED"): 1}
        )
    finally:
        stop_service(service)


async def test_spool_mode_through_a_broker_outage_and_a_restart(
    workspace: tuple[Path, str], own_broker: OwnBroker
) -> None:
    tmp, prefix = workspace
    spool = tmp / "spool"
    settings = {
        "IVMTR_KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap,
        "IVMTR_ACK_MODE": "spool",
        "IVMTR_SPOOL_DIR": str(spool),
        "IVMTR_KAFKA_TIMEOUT_S": "4",
        "IVMTR_RETRY_AFTER_S": "1",
    }
    messages = mailing(120, 50, seed=23)
    service = start_service(tmp, prefix, **settings)
    try:
        await asyncio.to_thread(own_broker.stop)
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            for message in messages:
                answer = await client.post(
                    "/v1/feeds/demo",
                    content=orjson.dumps(message),
                    headers={"content-type": "application/json"},
                )
                assert answer.status_code == 202, answer.text
                assert answer.json()["status"] == "SPOOLED"
            bad = await client.post(
                "/v1/feeds/demo", content=b"[]", headers={"content-type": "application/json"}
            )
            assert bad.status_code == 400
    finally:
        stop_service(service)  # a restart while the broker is still away
    assert len(list(spool.glob("*.msg"))) == len(messages)
    service = start_service(tmp, prefix, wait_ready=False, **settings)
    try:
        await asyncio.to_thread(own_broker.start)
        deadline = time.monotonic() + 120
        while list(spool.glob("*.msg")):
            assert time.monotonic() < deadline, "the spool was not drained"
            await asyncio.sleep(0.3)
        ids = await event_ids(service, str(messages[0]["msgGrpId"]), own_broker.bootstrap)
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
        assert not list((spool / "rejected").iterdir())
    finally:
        stop_service(service)


async def test_sigterm_during_pushes_keeps_everything_answered(workspace: tuple[Path, str]) -> None:
    require_broker()  # signals the service, not the broker: the shared broker serves
    tmp, prefix = workspace
    messages = mailing(150, 30, seed=24)
    service = start_service(tmp, prefix)
    answered: list[dict[str, object]] = []
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            for index, message in enumerate(messages):
                if index == len(messages) // 2:
                    service.process.send_signal(signal.SIGTERM)
                try:
                    answer = await client.post(
                        "/v1/feeds/demo",
                        content=orjson.dumps(message),
                        headers={"content-type": "application/json"},
                    )
                except httpx.TransportError:
                    break
                if answer.status_code == 200:
                    answered.append(message)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert service.process.wait(60) in (0, -signal.SIGTERM)
        assert "service stopped" in service.logs()
    finally:
        stop_service(service)
    assert answered
    service = start_service(tmp, prefix)
    try:
        ids = await event_ids(service, str(messages[0]["msgGrpId"]))
        assert len(ids) >= expected_ids(answered) and set(ids.values()) == {1}
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            for message in answered:
                again = await push_until_answered(client, "/v1/feeds/demo", orjson.dumps(message))
                assert again.json()["duplicate"] is True
    finally:
        stop_service(service)


async def test_without_kafka_pushes_end_in_bounded_time_and_readiness_follows(
    workspace: tuple[Path, str], own_broker: OwnBroker
) -> None:
    tmp, prefix = workspace
    (message,) = mailing(30, 10_000, seed=25)
    service = start_service(
        tmp,
        prefix,
        IVMTR_KAFKA_BOOTSTRAP_SERVERS=own_broker.bootstrap,
        IVMTR_KAFKA_TIMEOUT_S="3",
        IVMTR_RETRY_AFTER_S="2",
    )
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            await asyncio.to_thread(own_broker.stop)
            started = time.monotonic()
            answer = await client.post(
                "/v1/feeds/demo",
                content=orjson.dumps(message),
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
            assert answer.json()["error"] == "kafka_unavailable"
            # One bound for all of the request's waits for Kafka, the abort's included.
            assert time.monotonic() - started < 3 + 2
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.to_thread(own_broker.start)
            deadline = time.monotonic() + 60
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "never ready again"
                await asyncio.sleep(0.5)
            answer = await push_until_answered(client, "/v1/feeds/demo", orjson.dumps(message))
            assert answer.status_code == 200 and answer.json()["duplicate"] is False
        ids = await event_ids(service, str(message["msgGrpId"]), own_broker.bootstrap)
        assert len(ids) == expected_ids([message]) and set(ids.values()) == {1}
    finally:
        stop_service(service)


# The bound under test is IVMTR_KAFKA_TIMEOUT_S, whatever its value: a low one and a freeze
# 3.6 times as long keep the test under a minute and still outlast every wait stacked on
# another (claim, commit, abort), which is what broke the bound. The issue's own figures
# (30 s and a 90 s freeze, ~2.5 min) are these two variables away.
FREEZE_KAFKA_TIMEOUT_S = float(os.environ.get("IVMTR_TEST_FREEZE_KAFKA_TIMEOUT_S", "5"))
FREEZE_S = float(os.environ.get("IVMTR_TEST_FREEZE_S", str(FREEZE_KAFKA_TIMEOUT_S * 3.6)))
# What the answer may take beyond the bound: the HTTP round trip and the body's parsing.
FREEZE_SLACK_S = 3.0


async def test_a_frozen_broker_gets_every_push_answered_503_within_the_kafka_timeout(
    workspace: tuple[Path, str], own_broker: OwnBroker
) -> None:
    tmp, prefix = workspace
    messages = mailing(120, 10, seed=26)[:8]
    assert len(messages) == 8
    group = str(messages[0]["msgGrpId"])
    service = start_service(
        tmp,
        prefix,
        IVMTR_KAFKA_BOOTSTRAP_SERVERS=own_broker.bootstrap,
        IVMTR_KAFKA_TIMEOUT_S=f"{FREEZE_KAFKA_TIMEOUT_S:g}",
        IVMTR_RETRY_AFTER_S="1",
    )
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=FREEZE_S * 4) as client:

            async def timed_push(message: dict[str, object]) -> tuple[httpx.Response, float]:
                started = time.monotonic()
                answer = await client.post(
                    "/v1/feeds/demo",
                    content=orjson.dumps(message),
                    headers={"content-type": "application/json"},
                )
                return answer, time.monotonic() - started

            own_broker.freeze()
            frozen_at = time.monotonic()
            pushes = []
            for message in messages:  # arriving over the first seconds of the freeze
                pushes.append(asyncio.create_task(timed_push(message)))
                await asyncio.sleep(FREEZE_KAFKA_TIMEOUT_S / 10)
            answers = await asyncio.gather(*pushes)
            answered_at = time.monotonic() - frozen_at
            assert answered_at < FREEZE_S, "the freeze ended before every push was answered"
            await asyncio.sleep(FREEZE_S - answered_at)
            own_broker.thaw()

            took = [round(seconds, 1) for _, seconds in answers]
            assert [answer.status_code for answer, _ in answers] == [503] * 8, took
            assert max(took) <= FREEZE_KAFKA_TIMEOUT_S + FREEZE_SLACK_S, took
            for answer, _ in answers:
                assert answer.headers["retry-after"] == "1"
                assert answer.json()["error"] == "kafka_unavailable"

            # After the thaw the same pushes, retried, are new messages (nothing of the
            # 503'd attempts was committed) and publish once.
            for message in messages:
                again = await push_until_answered(
                    client, "/v1/feeds/demo", orjson.dumps(message), attempts=120
                )
                assert again.status_code == 200, again.text
                assert again.json()["duplicate"] is False, again.json()
        bootstrap = own_broker.bootstrap
        ids = await event_ids(service, group, bootstrap)
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
        serials = sorted(int(str(message["msgSerNbr"])) for message in messages)
        # One committed transaction per message: its STARTED and its PUBLISHED receipt.
        assert await message_receipts(service, group, bootstrap) == Counter(
            {(serial, status): 1 for serial in serials for status in ("STARTED", "PUBLISHED")}
        )
    finally:
        stop_service(service)
