"""A thin wrapper over aiokafka's transactional producer.

Nothing touches the network before ``start()``. aiokafka's errors are translated into
``producer.errors`` where they are raised, so callers never see aiokafka types.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFenced,
)
from aiokafka.partitioner import murmur2

from producer.errors import Fenced, KafkaUnavailable, PublishError, TransactionAborted
from producer.topics import KafkaMessage

__all__ = [
    "KafkaConfig",
    "PartitionedBatches",
    "TransactionalProducer",
    "kafka_errors",
    "partition_for",
]


@dataclass(frozen=True)
class KafkaConfig:
    """Connection and producer settings (a subset of the service settings)."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "ivmtr-stream"
    linger_ms: int = 0
    max_batch_bytes: int = 512 * 1024
    max_request_bytes: int = 4 * 1024 * 1024
    compression: str | None = None
    request_timeout_ms: int = 30_000
    transaction_timeout_ms: int = 300_000
    #: Kafka's murmur2 of a key masked to 31 bits, e.g. the compiled one the service hands
    #: in; None is aiokafka's, in Python. Either gives the Java client's partitions.
    key_hash: Callable[[bytes], int] | None = None


@contextlib.contextmanager
def kafka_errors() -> Iterator[None]:
    """Translate aiokafka errors into ``producer.errors``."""
    try:
        yield
    except (KafkaConnectionError, KafkaTimeoutError) as exc:
        raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc
    except ProducerFenced as exc:
        raise Fenced(str(exc)) from exc
    except KafkaError as exc:
        raise PublishError(str(exc) or type(exc).__name__) from exc


@lru_cache(maxsize=1 << 16)
def _python_key_hash(key: bytes) -> int:
    # aiokafka's murmur2 is pure Python; scans of one piece repeat their key, so cache.
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for(
    key: bytes | None,
    partitions: int,
    fallback: int = 0,
    key_hash: Callable[[bytes], int] | None = None,
) -> int:
    """The partition the Java client's default partitioner picks for ``key``.

    ``key_hash`` is ``KafkaConfig.key_hash``: None hashes with aiokafka's murmur2.
    """
    if key is None:
        return fallback % partitions
    return (key_hash or _python_key_hash)(key) % partitions


class PartitionedBatches:
    """Fills one aiokafka batch per topic-partition and submits each as it fills.

    The batch API costs far less per record than one ``send()`` each (aiokafka #528).
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        partitions: Mapping[str, int],
        key_hash: Callable[[bytes], int] | None = None,
    ) -> None:
        self._producer = producer
        self._partitions = partitions
        self._key_hash = key_hash or _python_key_hash
        self._open: dict[tuple[str, int], Any] = {}
        self._pending: list[asyncio.Future[Any]] = []
        self._round_robin = 0
        self.records = 0

    def _slot(self, message: KafkaMessage) -> tuple[str, int]:
        count = self._partitions.get(message.topic)
        if count is None:
            raise PublishError(f"topic {message.topic!r} is not known to the producer")
        if message.partition is not None:
            return message.topic, message.partition
        self._round_robin += 1
        return message.topic, partition_for(message.key, count, self._round_robin, self._key_hash)

    async def add(self, message: KafkaMessage) -> None:
        """Queue one message; submits its partition's batch when that batch is full."""
        await self.add_many((message,))

    async def add_many(self, messages: Iterable[KafkaMessage]) -> None:
        """``add`` for many messages; awaits only when a batch fills."""
        open_batches, producer = self._open, self._producer
        for message in messages:
            slot = self._slot(message)
            batch = open_batches.get(slot)
            if batch is None:
                batch = open_batches[slot] = producer.create_batch()
            if not _append(batch, message):
                await self._submit(slot)
                batch = open_batches[slot] = producer.create_batch()
                if not _append(batch, message):
                    raise PublishError(
                        f"a record of {len(message.value)} bytes exceeds the batch size"
                    )
            self.records += 1

    async def send_now(self, message: KafkaMessage) -> int:
        """Send one message on its own and wait for the broker: returns its offset."""
        slot = self._slot(message)
        with kafka_errors():
            future = await self._producer.send(
                slot[0],
                message.value,
                key=message.key,
                partition=slot[1],
                headers=list(message.headers),
            )
            metadata = await future
        self.records += 1
        return int(metadata.offset)

    async def _submit(self, slot: tuple[str, int]) -> None:
        batch = self._open.pop(slot)
        batch.close()
        with kafka_errors():
            future = await self._producer.send_batch(batch, slot[0], partition=slot[1])
        # Seen here, a failure is also raised by flush(); unseen (an aborted transaction's
        # batches) it would be logged as never retrieved.
        future.add_done_callback(_retrieve)
        self._pending.append(future)

    async def submit(self) -> None:
        """Hand every open batch to the producer now, without waiting for the broker."""
        for slot in list(self._open):
            await self._submit(slot)

    async def flush(self) -> None:
        """Submit every open batch and wait until the broker acknowledged all of them."""
        await self.submit()
        with kafka_errors():
            await asyncio.gather(*self._pending)
        self._pending.clear()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _append(batch: Any, message: KafkaMessage) -> bool:
    metadata = batch.append(
        key=message.key, value=message.value, timestamp=None, headers=list(message.headers)
    )
    return metadata is not None


class TransactionalProducer:
    """One aiokafka producer with a transactional id: one open transaction at a time.

    Starting it registers the transactional id with the coordinator, which fences any
    other producer holding that id and aborts its open transaction. A producer that was
    fenced, or whose abort failed, is ``broken`` and must be replaced.
    """

    def __init__(self, config: KafkaConfig, transactional_id: str) -> None:
        self.config = config
        self.transactional_id = transactional_id
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, int] = {}
        self.broken = False

    async def start(self, topics: list[str]) -> None:
        """Connect, register the transactional id (fencing older holders), load topic metadata."""
        config = self.config
        producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap_servers,
            client_id=config.client_id,
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=config.linger_ms,
            max_batch_size=config.max_batch_bytes,
            max_request_size=config.max_request_bytes,
            compression_type=config.compression,
            request_timeout_ms=config.request_timeout_ms,
            transaction_timeout_ms=config.transaction_timeout_ms,
        )
        try:
            with kafka_errors():
                # aiokafka's start can wait forever without a broker (#1101): bound it.
                await asyncio.wait_for(producer.start(), config.request_timeout_ms / 1000)
                for topic in topics:
                    partitions = await producer.partitions_for(topic)
                    self._partitions[topic] = len(partitions)
        except BaseException as exc:
            self.broken = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)
            if isinstance(exc, TimeoutError):
                raise KafkaUnavailable("Kafka did not answer while starting a producer") from exc
            raise
        self._producer = producer

    def partitions(self, topic: str) -> int:
        """Partition count of one of the producer's topics."""
        return self._partitions[topic]

    async def stop(self) -> None:
        """Flush and close; idempotent. Bounded, since aiokafka can hang with no broker (#1101)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self.config.request_timeout_ms / 1000)

    async def begin(self) -> PartitionedBatches:
        """Begin a transaction; its messages go through the returned batches."""
        producer = self._producer
        if producer is None or self.broken:
            raise KafkaUnavailable("producer is not started")
        try:
            with kafka_errors():
                await producer.begin_transaction()
        except BaseException:
            self.broken = True
            raise
        return PartitionedBatches(producer, self._partitions, self.config.key_hash)

    async def commit(self, batches: PartitionedBatches) -> None:
        """Flush the batches and commit: when this returns, the transaction is durable."""
        producer = self._producer
        assert producer is not None
        try:
            await batches.flush()
            with kafka_errors():
                await producer.commit_transaction()
        except PublishError:
            self.broken = True
            raise
        except Exception as exc:
            # aiokafka asserts on state transitions after a fatal error; that is a failed commit.
            self.broken = True
            raise PublishError(f"the transaction failed: {exc!r}") from exc

    async def abort(self) -> None:
        """Abort the open transaction. Marks the producer broken if the abort fails or is
        cancelled; raises nothing but the cancellation of the task that awaits it."""
        producer = self._producer
        if producer is None:
            return
        try:
            await asyncio.wait_for(
                producer.abort_transaction(), self.config.request_timeout_ms / 1000
            )
        except Exception:
            # After a fence or a failed abort the producer's state is unknown: replace it.
            self.broken = True
        except asyncio.CancelledError:
            # Cut short, the transaction may still be open: replace the producer, and let
            # the cancellation reach whoever asked for it.
            self.broken = True
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PartitionedBatches]:
        """Commit on a clean exit, abort on an exception."""
        batches = await self.begin()
        try:
            yield batches
            await self.commit(batches)
        except BaseException as exc:
            await self.abort()
            if isinstance(exc, KafkaError):
                raise TransactionAborted(str(exc) or type(exc).__name__) from exc
            raise
