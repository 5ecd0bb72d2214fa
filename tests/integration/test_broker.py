"""The local broker (scripts/kafka) does what the pipeline relies on, with aiokafka.

These tests pin down, against a real Apache Kafka 4.1 broker, that:
* idempotent producers (acks=all) and consumer groups work on a single node;
* aiokafka transactions work: committed records are visible to read_committed
  consumers, aborted ones are not (but are to read_uncommitted), and a
  producer can run further transactions after an abort;
* consume-transform-produce works: consumer offsets committed inside a
  transaction (send_offsets_to_transaction) become visible only on commit.

Needs a running broker: ``scripts/kafka start``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord

pytestmark = pytest.mark.kafka

BOOTSTRAP = os.environ.get("IVMTR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PARTITIONS = 2


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def admin() -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    try:
        await client.start()
    except KafkaConnectionError as exc:
        await client.close()
        pytest.fail(f"no Kafka broker at {BOOTSTRAP} ({exc}); run `scripts/kafka start`")
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def topic(admin: AIOKafkaAdminClient) -> AsyncIterator[str]:
    name = _unique("it-broker")
    resp = await admin.create_topics(
        [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)]
    )
    errors = [(t[0], t[1]) for t in resp.topic_errors if t[1] != 0]
    assert not errors, f"create_topics failed: {errors}"
    try:
        yield name
    finally:
        await admin.delete_topics([name])


async def _drain(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], wait_s: float = 15.0
) -> list[bytes]:
    """Read until the consumer's position reaches the end offset of every partition.

    For read_committed the end offset is the last stable offset, so this stops
    exactly after the last decided transaction.
    """
    end = await consumer.end_offsets(tps)
    out: list[bytes] = []
    deadline = time.monotonic() + wait_s
    while True:
        positions = {tp: await consumer.position(tp) for tp in tps}
        if all(positions[tp] >= end[tp] for tp in tps):
            return out
        assert time.monotonic() < deadline, f"stuck at {positions}, end offsets {end}"
        batches = await consumer.getmany(*tps, timeout_ms=500)
        for records in batches.values():
            out.extend(r.value for r in records)


def _assigned_consumer(isolation_level: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )


async def test_idempotent_produce_and_group_consume(topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = [(f"k{i % 5}".encode(), f"v{i}".encode()) for i in range(50)]
        futures = [await producer.send(topic, value=v, key=k) for k, v in sent]
        metas = await asyncio.gather(*futures)
        assert all(m.offset >= 0 for m in metas)
    finally:
        await producer.stop()

    group = _unique("it-broker-group")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        got: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 20
        while len(got) < len(sent):
            assert time.monotonic() < deadline, f"got only {len(got)}/{len(sent)} records"
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend((r.key, r.value) for r in records)
        # exactly once each (idempotence: no duplicates), and per-key order kept
        assert sorted(got) == sorted(sent)
        for key in {k for k, _ in sent}:
            assert [v for k, v in got if k == key] == [v for k, v in sent if k == key]
        # the offsets topic (RF=1) must accept group commits
        await consumer.commit()
        tps = sorted(consumer.assignment())
        assert sum([await consumer.committed(tp) or 0 for tp in tps]) == len(sent)
    finally:
        await consumer.stop()


async def test_transactions_commit_abort_and_isolation(topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        transactional_id=_unique("it-broker-txn"),
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        # commit, abort, commit: the third proves the producer survives an abort
        # (with KIP-890 the coordinator bumps the epoch on every end of transaction)
        for tag, commit in (("c1", True), ("a1", False), ("c2", True)):
            async with producer.transaction() if commit else _abort_txn(producer):
                for i in range(3):
                    await producer.send(
                        topic, value=f"{tag}-{i}".encode(), partition=i % PARTITIONS
                    )
    finally:
        await producer.stop()

    committed = {f"{t}-{i}".encode() for t in ("c1", "c2") for i in range(3)}
    aborted = {f"a1-{i}".encode() for i in range(3)}
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    for isolation, expected in (
        ("read_committed", committed),
        ("read_uncommitted", committed | aborted),
    ):
        consumer = _assigned_consumer(isolation)
        await consumer.start()
        try:
            consumer.assign(tps)
            values = await _drain(consumer, tps)
        finally:
            await consumer.stop()
        assert sorted(values) == sorted(expected), isolation


async def _eventually_committed(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    for _ in range(100):
        offset: int | None = await consumer.committed(tp)
        if offset is not None:
            return offset
        await asyncio.sleep(0.1)
    return None


class _abort_txn:
    """Like producer.transaction(), but aborts instead of committing."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def __aenter__(self) -> None:
        await self._producer.begin_transaction()

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.abort_transaction()


async def test_consume_transform_produce_offsets_in_transaction(
    admin: AIOKafkaAdminClient, topic: str
) -> None:
    out_topic = _unique("it-broker-out")
    resp = await admin.create_topics([NewTopic(out_topic, num_partitions=1, replication_factor=1)])
    assert all(t[1] == 0 for t in resp.topic_errors), resp.topic_errors
    try:
        await _consume_transform_produce(topic, out_topic)
    finally:
        await admin.delete_topics([out_topic])


async def _consume_transform_produce(in_topic: str, out_topic: str) -> None:
    plain = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks="all")
    await plain.start()
    try:
        for i in range(4):
            await plain.send_and_wait(in_topic, value=f"in-{i}".encode(), partition=0)
    finally:
        await plain.stop()

    group = _unique("it-broker-ctp")
    in_tp = TopicPartition(in_topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, transactional_id=_unique("it-broker-ctp-txn")
    )
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([in_tp])
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 15
        while len(records) < 4:
            assert time.monotonic() < deadline, f"read only {len(records)}/4 input records"
            batch = await consumer.getmany(in_tp, timeout_ms=500)
            records.extend(batch.get(in_tp, []))

        # aborted: neither output nor offsets may become visible
        async with _abort_txn(producer):
            await producer.send(out_topic, value=b"never")
            await producer.send_offsets_to_transaction({in_tp: 2}, group)
        assert await consumer.committed(in_tp) is None

        async with producer.transaction():
            for r in records:
                await producer.send(out_topic, value=r.value.upper())
            await producer.send_offsets_to_transaction({in_tp: records[-1].offset + 1}, group)
        # EndTxn returns once the commit is *decided*; the coordinator writes the
        # markers (which materialise the offsets) asynchronously right after.
        assert await _eventually_committed(consumer, in_tp) == records[-1].offset + 1
    finally:
        await producer.stop()
        await consumer.stop()

    out_tp = TopicPartition(out_topic, 0)
    reader = _assigned_consumer("read_committed")
    await reader.start()
    try:
        reader.assign([out_tp])
        values = await _drain(reader, [out_tp])
    finally:
        await reader.stop()
    assert values == [f"IN-{i}".encode() for i in range(4)]
