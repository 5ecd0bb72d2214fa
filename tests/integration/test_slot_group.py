"""Replicas sharing the delivery slots through Kafka's group protocol, under load.

A replica joining takes its share of the slots from the others; a replica killed loses
its slots to the others once its session times out. Meanwhile messages reach whichever
process owns their slot (forwarded when they arrive elsewhere) and every message is
published exactly once, counted by reading the topics back with read_committed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.conftest import Service, require_broker, start_service, stop_service
from tests.integration.test_delivery import event_ids, expected_ids, mailing, wait_for_owned
from tests.integration.test_workers import replicas_that_wrote

pytestmark = pytest.mark.kafka


@pytest.fixture
def prefix(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    require_broker()
    yield tmp_path, f"it-{uuid.uuid4().hex[:8]}."


class RoundRobin:
    """IV-MTR behind a load balancer: each push to the next live replica, retried on 503,
    429 and network errors (then the next replica) until answered."""

    def __init__(self, replicas: list[Service]) -> None:
        self.replicas = replicas
        self.dead: set[str] = set()
        self.retried: Counter[int | str] = Counter()
        self._turn = itertools.count()

    def next_url(self) -> str:
        live = [r.url for r in self.replicas if r.url not in self.dead]
        return live[next(self._turn) % len(live)]

    async def push(self, client: httpx.AsyncClient, body: bytes) -> httpx.Response:
        for _ in range(120):
            url = self.next_url()
            try:
                answer = await client.post(
                    f"{url}/v1/feeds/demo",
                    content=body,
                    headers={"content-type": "application/json"},
                )
            except httpx.TransportError:
                self.retried["network"] += 1
                await asyncio.sleep(0.2)
                continue
            if answer.status_code not in (429, 503):
                return answer
            self.retried[answer.status_code] += 1
            await asyncio.sleep(0.5)
        raise AssertionError("no answer after 120 attempts")

    async def push_all(self, messages: list[dict[str, object]], connections: int) -> list[int]:
        pending = iter(messages)
        statuses: list[int] = []

        async def sender() -> None:
            async with httpx.AsyncClient(timeout=60) as client:
                for message in pending:
                    statuses.append((await self.push(client, orjson.dumps(message))).status_code)

        await asyncio.gather(*(sender() for _ in range(connections)))
        return statuses


async def wait_for_published(service: Service, count: int, within_s: float = 60) -> None:
    """Return once the service has logged ``count`` published messages; fail at the deadline.

    The tests use this to act *during* a load (a replica joins, one is killed): returning
    silently at the deadline would let them act after the load and pass without testing it.
    """
    deadline = asyncio.get_running_loop().time() + within_s
    while (published := service.logs().count('"event":"message published"')) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{service.url} published {published} of {count} messages")
        await asyncio.sleep(0.05)


async def test_a_replica_joining_under_load_loses_and_doubles_nothing(
    prefix: tuple[Path, str],
) -> None:
    tmp, topic_prefix = prefix
    first = start_service(tmp, topic_prefix)
    balancer = RoundRobin([first])
    messages = mailing(2000, 40, seed=41)
    group = str(messages[0]["msgGrpId"])
    second: Service | None = None
    try:
        pushing = asyncio.create_task(balancer.push_all(messages, connections=6))
        await wait_for_published(first, 5)
        second = start_service(tmp, topic_prefix)  # returns once it is ready
        balancer.replicas.append(second)
        statuses = await pushing
        assert not pushing.exception() and set(statuses) == {200}
        ids = await event_ids(first, group)
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
        await wait_for_owned(first, 8)
        await wait_for_owned(second, 8)
        # The newcomer published the messages of its slots once it had them.
        writers = await replicas_that_wrote(first, group)
        assert sum(writers.values()) == len(messages) and len(writers) == 2
    finally:
        stop_service(first)
        if second is not None:
            stop_service(second)


async def test_kill_9_of_a_replica_under_load_loses_and_doubles_nothing(
    prefix: tuple[Path, str],
) -> None:
    tmp, topic_prefix = prefix
    replicas = [start_service(tmp, topic_prefix), start_service(tmp, topic_prefix)]
    survivor, victim = replicas
    balancer = RoundRobin(replicas)
    messages = mailing(600, 40, seed=42)
    group = str(messages[0]["msgGrpId"])
    try:
        await wait_for_owned(survivor, 8)
        pushing = asyncio.create_task(balancer.push_all(messages, connections=6))
        await wait_for_published(victim, 3)
        os.kill(victim.process.pid, signal.SIGKILL)
        balancer.dead.add(victim.url)
        statuses = await pushing
        assert set(statuses) == {200}
        ids = await event_ids(survivor, group)
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
        # The group gave the dead replica's slots to the survivor (session timeout).
        await wait_for_owned(survivor, 16)
    finally:
        for replica in replicas:
            stop_service(replica)
