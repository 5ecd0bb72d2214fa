"""``serve --workers N``: several processes on one port, against the real broker.

Each worker is a replica of its own, sharing the delivery slots through the slot group, so
every push must still publish exactly once, however the kernel spreads the connections, and
through the death of a worker under load (the supervisor starts another; IV-MTR retries
what it was answering).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.conftest import (
    Service,
    consume,
    require_broker,
    start_service,
    stop_service,
)
from tests.integration.test_delivery import event_ids, expected_ids, mailing, push_until_answered

pytestmark = pytest.mark.kafka


def workers_of(service: Service) -> set[int]:
    """The worker processes of a ``serve --workers`` parent (not multiprocessing's helper)."""
    pid = service.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        int(child)
        for child in children
        if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text(errors="replace")
    }


def slots_dealt_among(service: Service, members: int) -> bool:
    """Whether every one of ``members`` processes logged its share of a deal among them."""
    lines = [orjson.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    deals = [
        line
        for line in lines
        if line.get("event") == "delivery slots assigned" and line.get("members") == members
    ]
    return len(deals) >= members


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Service]:
    require_broker()
    service = start_service(tmp_path, f"it-{uuid.uuid4().hex[:8]}.", IVMTR_WORKERS="2")
    try:
        # Ready means one worker answered; wait until the group dealt the slots to both.
        deadline = time.monotonic() + 60
        while not slots_dealt_among(service, 2):
            assert time.monotonic() < deadline, service.logs()[-2000:]
            time.sleep(0.1)
        yield service
    finally:
        stop_service(service)


async def replicas_that_wrote(service: Service, group: str) -> Counter[str]:
    """Final receipts of a message group, by the replica that wrote them."""
    records = await consume(service.topic("deliveries"))
    return Counter(
        str(r.value["replica"])
        for r in records
        if r.value["msg_grp_id"] == group and r.value["status"] == "PUBLISHED"
    )


async def push_all(
    service: Service, messages: list[dict[str, object]], connections: int
) -> list[httpx.Response]:
    """Every message pushed once, ``connections`` at a time, each on its own connection."""
    pending = iter(messages)
    answers: list[httpx.Response] = []

    async def sender() -> None:
        # One client per sender: its own connections, so the kernel hands them to workers.
        async with httpx.AsyncClient(timeout=60) as client:
            for message in pending:
                url = f"{service.url}/v1/feeds/demo"
                answers.append(await push_until_answered(client, url, orjson.dumps(message)))

    await asyncio.gather(*(sender() for _ in range(connections)))
    return answers


async def test_workers_share_the_port_and_publish_each_message_once(two_workers: Service) -> None:
    service = two_workers
    assert len(workers_of(service)) == 2
    messages = mailing(200, 40, seed=31)
    group = str(messages[0]["msgGrpId"])
    first = await push_all(service, messages, connections=8)
    again = await push_all(service, messages, connections=8)
    assert {a.status_code for a in first + again} == {200}
    assert Counter(a.json()["duplicate"] for a in first + again) == {
        False: len(messages),
        True: len(messages),
    }
    ids = await event_ids(service, group)
    assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
    # The workers published, each as a replica of its own (replica id and process id),
    # the messages of the delivery slots the group dealt it: both, whichever worker the
    # kernel handed the connections to (messages of the other's slots were forwarded).
    writers = await replicas_that_wrote(service, group)
    assert sum(writers.values()) == len(messages)
    assert {int(replica.rsplit("-", 1)[1]) for replica in writers} == workers_of(service)


async def test_kill_9_of_a_worker_under_load_loses_and_doubles_nothing(
    two_workers: Service,
) -> None:
    service = two_workers
    before = workers_of(service)
    messages = mailing(400, 40, seed=32)
    group = str(messages[0]["msgGrpId"])
    pushing = asyncio.create_task(push_all(service, messages, connections=6))
    # Kill one worker once some messages are in: it is answering others at that moment.
    for _ in range(1200):
        if service.logs().count('"event":"message published"') >= 5 or pushing.done():
            break
        await asyncio.sleep(0.05)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    answers = await pushing
    assert {a.status_code for a in answers} == {200}
    ids = await event_ids(service, group)
    assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
    # The supervisor started a worker in the dead one's place.
    deadline = asyncio.get_running_loop().time() + 30
    while len(workers_of(service) - {victim}) < 2:
        assert asyncio.get_running_loop().time() < deadline, workers_of(service)
        await asyncio.sleep(0.2)
