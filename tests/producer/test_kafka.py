"""Tests for producer.kafka's TransactionalProducer.abort: a failed abort marks the producer
broken and is not raised; a cancelled one marks it broken and the cancellation goes on.

The first test runs against the real broker; the others put a double of aiokafka's
producer at the one seam abort uses (``abort_transaction``), to hold it still or fail it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from producer.admin import TopicSpec, ensure_topics
from producer.kafka import KafkaConfig, TransactionalProducer
from producer.topics import TopicTable
from tests.integration.conftest import BOOTSTRAP, consume_raw, require_broker

DEAD_LETTER = {
    "provenance": {
        "source": "PUSH",
        "feed": "f",
        "msg_grp_id": "G",
        "msg_ser_nbr": 1,
        "record_index": 0,
        "received_at": 0,
    },
    "kind": None,
    "reasons": [{"field": None, "problem": "p"}],
    "raw": "{}",
}


@pytest.mark.kafka
async def test_a_cancelled_abort_is_not_swallowed_and_its_transaction_stays_invisible() -> None:
    require_broker()
    topic = TopicTable.build(f"it-{uuid.uuid4().hex[:8]}.").dead_letters
    await ensure_topics(BOOTSTRAP, [TopicSpec(topic.name, partitions=1)])
    config = KafkaConfig(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    transactional_id = f"test-abort-{uuid.uuid4().hex[:8]}"
    producer = TransactionalProducer(config, transactional_id)
    await producer.start([topic.name])
    try:
        batches = await producer.begin()
        await batches.add(topic.message("k", DEAD_LETTER))
        await batches.submit()

        aborting = asyncio.create_task(producer.abort())
        await asyncio.sleep(0)  # the task is now waiting on the broker inside abort()
        aborting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await aborting
        assert producer.broken, "a producer whose abort was cut short must be replaced"
    finally:
        await producer.stop()

    # Its replacement takes the transactional id, which ends the open transaction unseen.
    replacement = TransactionalProducer(config, transactional_id)
    await replacement.start([topic.name])
    try:
        async with replacement.transaction() as batches:
            await batches.add(topic.message("after", DEAD_LETTER))
    finally:
        await replacement.stop()
    committed = await consume_raw(topic.name)
    assert [value for _, value in committed] == [topic.message("after", DEAD_LETTER).value]


class AbortDouble:
    """Stands in for aiokafka's producer where abort() calls it."""

    def __init__(self, outcome: BaseException | None) -> None:
        self.outcome = outcome
        self.entered = asyncio.Event()
        self.cancelled = False

    async def abort_transaction(self) -> None:
        self.entered.set()
        if self.outcome is not None:
            raise self.outcome
        try:
            await asyncio.Event().wait()  # a broker that never answers
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def producer_with(double: AbortDouble) -> TransactionalProducer:
    producer = TransactionalProducer(KafkaConfig(request_timeout_ms=60_000), "test")
    producer._producer = double  # type: ignore[assignment]  # the seam under test
    return producer


async def test_cancelling_a_task_blocked_in_abort_cancels_it() -> None:
    double = AbortDouble(None)
    producer = producer_with(double)
    aborting = asyncio.create_task(producer.abort())
    await asyncio.wait_for(double.entered.wait(), 5)
    aborting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(aborting, 5)
    assert double.cancelled
    assert producer.broken


async def test_a_cancelled_abort_inside_a_transaction_propagates() -> None:
    double = AbortDouble(None)
    producer = producer_with(double)
    producer.begin = _begin  # type: ignore[method-assign]

    async def work() -> None:
        async with producer.transaction():
            raise RuntimeError("the caller's failure, which leads to the abort")

    task = asyncio.create_task(work())
    await asyncio.wait_for(double.entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert producer.broken


async def _begin() -> Any:
    return None


@pytest.mark.parametrize(
    "failure", [RuntimeError("assertion in aiokafka"), TimeoutError(), ConnectionError()]
)
async def test_a_failed_abort_marks_the_producer_broken_and_is_not_raised(
    failure: Exception,
) -> None:
    producer = producer_with(AbortDouble(failure))
    await producer.abort()
    assert producer.broken


async def test_abort_without_a_started_producer_does_nothing() -> None:
    producer = TransactionalProducer(KafkaConfig(), "test")
    await producer.abort()
    assert not producer.broken
