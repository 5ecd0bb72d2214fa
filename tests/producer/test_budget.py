"""Tests for producer.budget.WaitBudget, and for the publisher's abort within it: every wait
of a request draws on one budget, and an abort the broker does not answer goes on in the
background without holding the answer.

The broker-side proof (a frozen broker, pushes answered 503 within the budget, retries
published once) is tests/integration/test_faults.py's frozen-broker test.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer

from producer import kafka
from producer.budget import WaitBudget
from producer.errors import KafkaUnavailable, PublishTimeout
from producer.kafka import KafkaConfig, TransactionalProducer
from producer.publisher import Publisher
from producer.topics import TopicTable
from tests.producer.test_kafka import AbortDouble, producer_with


async def test_waits_draw_on_one_budget_not_each_on_its_own() -> None:
    budget = WaitBudget(0.5)
    async with budget.waiting("first"):
        await asyncio.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(PublishTimeout, match="second"):
        async with budget.waiting("second"):
            await asyncio.sleep(0.3)
    # The second wait had what the first left: 0.2 s, not 0.5 s.
    assert 0.1 < time.monotonic() - started < 0.3
    assert budget.remaining == 0


async def test_a_spent_budget_refuses_at_once() -> None:
    budget = WaitBudget(0.1)
    with pytest.raises(PublishTimeout):
        async with budget.waiting("a wait"):
            await asyncio.sleep(1)
    started = time.monotonic()
    with pytest.raises(PublishTimeout, match=r"within 0\.1 s"):
        async with budget.waiting("another"):
            await asyncio.sleep(1)
    assert time.monotonic() - started < 0.05


async def test_time_between_waits_is_not_spent() -> None:
    budget = WaitBudget(0.3)
    await asyncio.sleep(0.4)  # reading the client's body, say
    async with budget.waiting("a wait"):
        await asyncio.sleep(0.1)
    assert 0.05 < budget.spent < 0.2


async def test_a_nested_wait_counts_once() -> None:
    budget = WaitBudget(1.0)
    async with budget.waiting("outer"), budget.waiting("inner"):
        await asyncio.sleep(0.2)
    assert 0.15 < budget.spent < 0.3


async def test_wait_for_stops_waiting_but_never_cancels() -> None:
    budget = WaitBudget(0.2)
    release = asyncio.Event()
    task = asyncio.create_task(release.wait())
    assert await budget.wait_for(task) is False
    assert not task.done() and budget.remaining == 0
    release.set()
    await asyncio.wait_for(task, 1)  # it went on
    assert await WaitBudget(0.2).wait_for(asyncio.create_task(asyncio.sleep(0))) is True


async def test_an_abort_the_broker_does_not_answer_goes_on_in_the_background() -> None:
    publisher = Publisher(KafkaConfig(), TopicTable.build("t."))
    double = AbortDouble(None)  # never answers
    producer = producer_with(double)
    budget = WaitBudget(0.3)
    started = time.monotonic()
    await publisher._abort(producer, budget)
    assert time.monotonic() - started < 0.5, "the abort held the answer past the budget"
    assert producer.broken, "its slot must get a new producer, which fences this one"
    assert double.entered.is_set() and not double.cancelled
    aborting = producer.aborting()
    assert not aborting.done()  # still trying, in the background
    aborting.cancel()
    await asyncio.wait({aborting})


async def test_an_abort_that_ends_in_time_leaves_the_producer_usable() -> None:
    publisher = Publisher(KafkaConfig(), TopicTable.build("t."))
    producer = producer_with(AbortDouble(None))
    producer._producer.abort_transaction = _answered  # type: ignore[union-attr, method-assign]
    await publisher._abort(producer, WaitBudget(1.0))
    assert not producer.broken


async def _answered() -> None:
    await asyncio.sleep(0.01)


async def test_a_producer_start_that_aiokafka_asserts_in_is_kafka_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seen right after a frozen broker thawed: aiokafka's start asserts instead of raising a
    # Kafka error. The push must be answered 503 (retry), not 500.
    async def asserting(self: AIOKafkaProducer) -> None:
        raise AssertionError("Did we not perform bootstrap?")

    monkeypatch.setattr(AIOKafkaProducer, "start", asserting)
    producer = TransactionalProducer(KafkaConfig(), "test")
    with pytest.raises(KafkaUnavailable, match="did not start"):
        await producer.start(["t"])
    assert producer.broken
    await asyncio.wait(set(kafka._BACKGROUND))  # the close left to the background
