"""The seam between native record batches and aiokafka's transactional producer, against
the real broker.

``PartitionedBatches`` given ``ivmtr_native.RecordBatches`` hands whole batches to
aiokafka's accumulator, which stamps its producer id, epoch and sequence on each as it
drains it. The broker checks all three (and the CRC computed after them): a batch with a
stale epoch is fenced, a wrong sequence is refused as out of order. So transactions that
commit, one after another on one producer, with aiokafka's own batches mixed in on the
same partition, are what shows the seam holds. ``make test`` runs this file against each
aiokafka version pinned in pyproject.toml (scripts/aiokafka-seam).
"""

from __future__ import annotations

import uuid
from typing import Any

import aiokafka
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from producer.admin import TopicSpec, ensure_topics
from producer.errors import Fenced
from producer.kafka import KafkaConfig, TransactionalProducer
from producer.topics import KafkaMessage
from tests.integration.conftest import BOOTSTRAP, committed_by_partition, require_broker

native = pytest.importorskip("ivmtr_native")
pytestmark = pytest.mark.kafka

PARTITIONS = 3


def config(**overrides: Any) -> KafkaConfig:
    return KafkaConfig(
        bootstrap_servers=BOOTSTRAP,
        request_timeout_ms=15_000,
        max_batch_bytes=4096,  # a few records per batch: many batches, many sequences
        key_hash=native.key_hash,
        record_batches=native.RecordBatches,
        **overrides,
    )


async def new_topic() -> str:
    require_broker()
    name = f"it-seam-{uuid.uuid4().hex[:8]}"
    await ensure_topics(BOOTSTRAP, [TopicSpec(name, partitions=PARTITIONS)])
    return name


def messages(topic: str, count: int, tag: str) -> list[KafkaMessage]:
    return [
        KafkaMessage(
            topic,
            f"piece-{n % 17:05d}".encode(),
            f"{tag}-{n}-".encode() + b"v" * (n % 300),
            (("ivmtr.tag", tag.encode()), ("n", str(n).encode())),
        )
        for n in range(count)
    ]


def expected(sent: list[KafkaMessage]) -> dict[int, list[tuple[bytes | None, bytes, list[Any]]]]:
    by_partition: dict[int, list[tuple[bytes | None, bytes, list[Any]]]] = {
        p: [] for p in range(PARTITIONS)
    }
    for message in sent:
        assert message.key is not None
        partition = (murmur2(message.key) & 0x7FFFFFFF) % PARTITIONS
        by_partition[partition].append((message.key, message.value, list(message.headers)))
    return by_partition


async def test_transactions_of_native_batches_commit_one_after_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = await new_topic()
    # Which builders reach aiokafka's accumulator (watched, not replaced).
    builders: list[str] = []
    send_batch = AIOKafkaProducer.send_batch

    async def watched(self: AIOKafkaProducer, batch: Any, topic: str, **kw: Any) -> Any:
        builders.append(type(batch).__name__)
        return await send_batch(self, batch, topic, **kw)

    monkeypatch.setattr(AIOKafkaProducer, "send_batch", watched)
    producer = TransactionalProducer(config(), f"seam-{uuid.uuid4().hex[:8]}")
    await producer.start([topic])
    sent: list[KafkaMessage] = []
    try:
        for round_number in range(3):  # sequences go on from one transaction to the next
            async with producer.transaction() as batches:
                wave = messages(topic, 120, f"r{round_number}")
                await batches.add_many(wave[:60])
                await batches.submit()  # as a claim is sent: after what came before it
                # aiokafka's own batch, on a partition our batches also use, in between.
                await batches.send_now(wave[60])
                await batches.add_many(wave[61:])
                sent += wave
    finally:
        await producer.stop()
    assert set(builders) == {"NativeBatch"} and len(builders) > 3 * PARTITIONS
    assert await committed_by_partition(topic) == expected(sent)


async def test_an_aborted_native_transaction_stays_invisible_and_the_next_commits() -> None:
    topic = await new_topic()
    producer = TransactionalProducer(config(), f"seam-{uuid.uuid4().hex[:8]}")
    await producer.start([topic])
    kept = messages(topic, 50, "kept")
    try:
        batches = await producer.begin()
        await batches.add_many(messages(topic, 80, "aborted"))
        await batches.submit()
        await producer.abort()
        assert not producer.broken
        async with producer.transaction() as batches:
            await batches.add_many(kept)
    finally:
        await producer.stop()
    assert await committed_by_partition(topic) == expected(kept)


async def test_a_fenced_producer_native_batches_are_refused() -> None:
    topic = await new_topic()
    transactional_id = f"seam-{uuid.uuid4().hex[:8]}"
    old = TransactionalProducer(config(), transactional_id)
    await old.start([topic])
    try:
        batches = await old.begin()
        await batches.add_many(messages(topic, 30, "old"))
        new = TransactionalProducer(config(), transactional_id)  # bumps the epoch
        await new.start([topic])
        try:
            with pytest.raises(Fenced):
                await old.commit(batches)
            async with new.transaction() as fresh:
                await fresh.add_many(messages(topic, 30, "new"))
        finally:
            await new.stop()
    finally:
        await old.stop()
    assert await committed_by_partition(topic) == expected(messages(topic, 30, "new"))


async def test_compression_keeps_aiokafkas_own_batches() -> None:
    topic = await new_topic()
    producer = TransactionalProducer(config(compression="gzip"), f"seam-{uuid.uuid4().hex[:8]}")
    await producer.start([topic])
    try:
        async with producer.transaction() as batches:
            assert batches._native is None
            await batches.add_many(messages(topic, 40, "gz"))
    finally:
        await producer.stop()
    assert await committed_by_partition(topic) == expected(messages(topic, 40, "gz"))


def test_the_aiokafka_version_is_one_the_seam_is_tested_against() -> None:
    # scripts/aiokafka-seam runs this file under each of these; pyproject.toml pins the range.
    assert aiokafka.__version__.rsplit(".", 1)[0] in ("0.12", "0.13", "0.14")
