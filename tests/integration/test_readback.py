"""The read-back helpers of the integration tests fail loudly instead of returning a prefix.

"Nothing was published" is checked by reading a topic back; a reader that stopped at its
deadline and returned what it had would let that pass on a slow broker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import (
    BOOTSTRAP,
    EndNotReached,
    committed_by_partition,
    consume_raw,
    drain,
    require_broker,
)

TOPIC = "t"


class Stuck:
    """A reader whose fetches bring nothing: a broker too slow for the deadline."""

    def __init__(self, positions: dict[TopicPartition, int]) -> None:
        self.positions = positions
        self.fetches = 0

    async def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]

    async def getmany(self, *, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        self.fetches += 1
        return {}


class Advancing(Stuck):
    """A reader that fetches one record of each partition behind its end per call."""

    def __init__(self, positions: dict[TopicPartition, int], end: dict[TopicPartition, int]):
        super().__init__(positions)
        self.end = end

    async def getmany(self, *, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        batch = {}
        for tp, position in self.positions.items():
            if position < self.end[tp]:
                batch[tp] = [f"{tp.partition}@{position}"]
                self.positions[tp] = position + 1
        return batch


async def test_a_reader_that_cannot_reach_the_end_raises_naming_the_partitions() -> None:
    behind, done = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    reader = Stuck({behind: 2, done: 5})
    with pytest.raises(EndNotReached) as raised:
        await drain(reader, TOPIC, {behind: 7, done: 5}, within_s=0.5)
    assert "partition 0 at 2 of 7" in str(raised.value)
    assert "partition 1" not in str(raised.value)  # the one that reached its end
    assert reader.fetches >= 1  # it did try, until the deadline


async def test_a_reader_that_reaches_the_end_returns_every_record_in_order() -> None:
    first, second = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    end = {first: 3, second: 1}
    records = await drain(Advancing({first: 0, second: 0}, end), TOPIC, end, within_s=5)
    assert sorted(records) == [(first, "0@0"), (first, "0@1"), (first, "0@2"), (second, "1@0")]
    # An empty topic is at its end at once, even with no time at all.
    assert await drain(Stuck({first: 0}), TOPIC, {first: 0}, within_s=0) == []


@pytest_asyncio.fixture
async def topic_of_five() -> AsyncIterator[str]:
    """A fresh topic of two partitions holding five committed records."""
    require_broker()
    name = f"it-readback-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
        try:
            for n in range(5):
                await producer.send_and_wait(name, f"v{n}".encode(), partition=n % 2)
        finally:
            await producer.stop()
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


@pytest.mark.kafka
async def test_the_helpers_raise_against_a_broker_that_brings_nothing(
    topic_of_five: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sorted(value for _, value in await consume_raw(topic_of_five)) == [
        f"v{n}".encode() for n in range(5)
    ]
    assert sum(map(len, (await committed_by_partition(topic_of_five)).values())) == 5

    async def nothing(self: AIOKafkaConsumer, *partitions: Any, **kwargs: Any) -> dict[Any, Any]:
        return {}

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", nothing)
    with pytest.raises(EndNotReached, match=r"partition 0 at 0 of 3, partition 1 at 0 of 2"):
        await consume_raw(topic_of_five, within_s=1)
    with pytest.raises(EndNotReached, match=r"partition 0 at 0 of 3"):
        await committed_by_partition(topic_of_five, within_s=1)
