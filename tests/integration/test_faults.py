"""Faults with real processes: the broker stopped mid-stream, the service killed mid-message,
spool mode through a broker outage and a restart, SIGTERM during a push.

Every test checks the same two things a subscriber cares about: every valid record of every
message answered 2xx is in Kafka, and none is there twice (counted by event_id with a
read_committed consumer).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.conftest import ROOT, Service, require_broker, start_service, stop_service
from tests.integration.test_delivery import event_ids, expected_ids, mailing, push_until_answered
from tests.integration.test_workers import slots_dealt_among

pytestmark = pytest.mark.kafka


def broker(action: str) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "kafka"), action], check=True, capture_output=True, timeout=180
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    require_broker()
    try:
        yield tmp_path, f"it-{uuid.uuid4().hex[:8]}."
    finally:
        broker("start")  # whatever happened, leave a broker for the next test


async def wait_for_log(service: Service, text: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while text not in service.logs():
        assert time.monotonic() < deadline, f"{text!r} never logged"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_broker_stopped_mid_stream_loses_and_duplicates_nothing(
    workspace: tuple[Path, str], workers: str
) -> None:
    # With two workers the slot group's coordinator goes down with the broker too: the
    # workers find it again when the broker is back, and forward each other messages
    # throughout.
    tmp, prefix = workspace
    messages = mailing(200, 40, seed=21)
    service = start_service(
        tmp, prefix, IVMTR_KAFKA_TIMEOUT_S="4", IVMTR_RETRY_AFTER_S="1", IVMTR_WORKERS=workers
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
        await asyncio.to_thread(broker, "stop")
        await asyncio.sleep(2)
        await asyncio.to_thread(broker, "start")
        await asyncio.wait_for(task, 240)
        assert [a.status_code for a in answered] == [200] * len(messages)
        ids = await event_ids(service, str(messages[0]["msgGrpId"]))
        assert len(ids) == expected_ids(messages)
        assert set(ids.values()) == {1}
    finally:
        stop_service(service)


async def test_kill_9_mid_message_leaves_nothing_visible_and_the_retry_publishes_once(
    workspace: tuple[Path, str],
) -> None:
    tmp, prefix = workspace
    (message,) = mailing(4000, 100_000, seed=22)
    body = orjson.dumps(message)
    group = str(message["msgGrpId"])
    service = start_service(tmp, prefix, IVMTR_LOG_LEVEL="DEBUG")
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
            await wait_for_log(service, "message transaction open")
            await asyncio.sleep(0.3)  # events of the first half are on their way into Kafka
            os.kill(service.process.pid, signal.SIGKILL)
            service.process.wait(10)
            killed.set()
            with pytest.raises(httpx.TransportError):
                await push
        assert await event_ids(service, group) == {}
    finally:
        stop_service(service)
    service = start_service(tmp, prefix)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
            answer = await push_until_answered(client, "/v1/feeds/demo", body)
            assert answer.status_code == 200 and answer.json()["duplicate"] is False
            again = await push_until_answered(client, "/v1/feeds/demo", body)
            assert again.json()["duplicate"] is True
        ids = await event_ids(service, group)
        assert len(ids) == expected_ids([message]) and set(ids.values()) == {1}
    finally:
        stop_service(service)


async def test_spool_mode_through_a_broker_outage_and_a_restart(
    workspace: tuple[Path, str],
) -> None:
    tmp, prefix = workspace
    spool = tmp / "spool"
    settings = {
        "IVMTR_ACK_MODE": "spool",
        "IVMTR_SPOOL_DIR": str(spool),
        "IVMTR_KAFKA_TIMEOUT_S": "4",
        "IVMTR_RETRY_AFTER_S": "1",
    }
    messages = mailing(120, 50, seed=23)
    service = start_service(tmp, prefix, **settings)
    try:
        await asyncio.to_thread(broker, "stop")
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
        await asyncio.to_thread(broker, "start")
        deadline = time.monotonic() + 120
        while list(spool.glob("*.msg")):
            assert time.monotonic() < deadline, "the spool was not drained"
            await asyncio.sleep(0.3)
        ids = await event_ids(service, str(messages[0]["msgGrpId"]))
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
        assert not list((spool / "rejected").iterdir())
    finally:
        stop_service(service)


async def test_sigterm_during_pushes_keeps_everything_answered(workspace: tuple[Path, str]) -> None:
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
    workspace: tuple[Path, str],
) -> None:
    tmp, prefix = workspace
    (message,) = mailing(30, 10_000, seed=25)
    service = start_service(tmp, prefix, IVMTR_KAFKA_TIMEOUT_S="3", IVMTR_RETRY_AFTER_S="2")
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            await asyncio.to_thread(broker, "stop")
            started = time.monotonic()
            answer = await client.post(
                "/v1/feeds/demo",
                content=orjson.dumps(message),
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
            assert answer.json()["error"] == "kafka_unavailable"
            assert time.monotonic() - started < 3 * 3 + 5  # claim, wait and abort are each bounded
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.to_thread(broker, "start")
            deadline = time.monotonic() + 60
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "never ready again"
                await asyncio.sleep(0.5)
            answer = await push_until_answered(client, "/v1/feeds/demo", orjson.dumps(message))
            assert answer.status_code == 200 and answer.json()["duplicate"] is False
        ids = await event_ids(service, str(message["msgGrpId"]))
        assert len(ids) == expected_ids([message]) and set(ids.values()) == {1}
    finally:
        stop_service(service)
