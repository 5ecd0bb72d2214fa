"""A thin wrapper over aiokafka's transactional producer.

Nothing touches the network before ``start()``. aiokafka's errors are translated into
``producer.errors`` where they are raised, so callers never see aiokafka types.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFenced,
)
from aiokafka.partitioner import murmur2

from producer.errors import Fenced, KafkaUnavailable, PublishError, TransactionAborted
from producer.topics import EncodedEvents, KafkaMessage

__all__ = [
    "KafkaConfig",
    "PartitionedBatches",
    "RecordBatches",
    "TransactionalProducer",
    "kafka_errors",
    "partition_for",
]


#: (topic index, partition, batch) of a record batch ready to send.
SealedBatch = tuple[int, int, Any]


class RecordBatches(Protocol):
    """Open Kafka record batches, one per topic-partition, built without the GIL
    (``ivmtr_native.RecordBatches``: ``native/ivmtr_native.pyi``). Topics are indexes into
    the list of partition counts the batches were made with."""

    def append(
        self,
        topic: int,
        partition: int,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
        timestamp_ms: int,
    ) -> None:
        """One record, at the end of its partition's open batch."""

    def append_run(
        self, run: Any, routes: list[tuple[int, bytes, list[tuple[str, bytes]]]], timestamp_ms: int
    ) -> None:
        """Every event of a native run, each to its key's default partition."""

    def sealed(self) -> list[SealedBatch]:
        """The batches that filled up since the last call; taken out."""

    def drain(self) -> list[SealedBatch]:
        """Every batch holding records, open ones sealed now; taken out."""


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
    #: Builds whole record batches off the GIL (``ivmtr_native.RecordBatches``), e.g. the
    #: compiled one the service hands in; None appends record by record to aiokafka's own
    #: batches. Either writes the same records; compressed batches are always aiokafka's.
    record_batches: Callable[..., RecordBatches] | None = None


# Cleanups left to run on their own (asyncio keeps only weak references to tasks).
_BACKGROUND: set[asyncio.Task[Any]] = set()


def _in_background(cleanup: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """Run ``cleanup`` without waiting for it; it must bound its own time."""
    task = asyncio.create_task(cleanup, name=name)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


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
    """Fills one batch per topic-partition and submits each as it fills.

    Batches are aiokafka's (its batch API costs far less per record than one ``send()``
    each, aiokafka #528) or, given ``record_batches``, built whole without the GIL and
    handed to the same accumulator: the producer still stamps its id, epoch and sequence
    on each when it drains it, and the batch computes its CRC after that.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        partitions: Mapping[str, int],
        key_hash: Callable[[bytes], int] | None = None,
        record_batches: RecordBatches | None = None,
    ) -> None:
        self._producer = producer
        self._partitions = partitions
        self._key_hash = key_hash or _python_key_hash
        self._native = record_batches
        self._topics = list(partitions)  # the native batches' topic indexes
        self._topic_index = {name: index for index, name in enumerate(self._topics)}
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

    def _index(self, topic: str) -> int:
        index = self._topic_index.get(topic)
        if index is None:
            raise PublishError(f"topic {topic!r} is not known to the producer")
        return index

    async def add(self, message: KafkaMessage) -> None:
        """Queue one message; submits its partition's batch when that batch is full."""
        await self.add_many((message,))

    async def add_many(self, messages: Iterable[KafkaMessage | EncodedEvents]) -> None:
        """Queue messages and natively encoded events, in order; awaits only to submit
        batches that filled up."""
        if self._native is not None:
            self._add_native(messages)
            for topic, partition, batch in self._native.sealed():
                await self._send(batch, self._topics[topic], partition)
            return
        open_batches, producer = self._open, self._producer
        for item in messages:
            for message in _expanded(item) if type(item) is EncodedEvents else (item,):
                assert isinstance(message, KafkaMessage)
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

    def _add_native(self, messages: Iterable[KafkaMessage | EncodedEvents]) -> None:
        native = self._native
        assert native is not None
        now_ms = time.time_ns() // 1_000_000
        for item in messages:
            if type(item) is EncodedEvents:
                routes = [
                    (self._index(route.topic), route.prefix, list(route.headers))
                    for route in item.routes
                ]
                native.append_run(item.run, routes, now_ms)
                self.records += len(item.run)
            else:
                assert isinstance(item, KafkaMessage)
                topic, partition = self._slot(item)
                native.append(
                    self._topic_index[topic], partition, item.key, item.value, item.headers, now_ms
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
        await self._send(batch, *slot)

    async def _send(self, batch: Any, topic: str, partition: int) -> None:
        with kafka_errors():
            future = await self._producer.send_batch(batch, topic, partition=partition)
        # Seen here, a failure is also raised by flush(); unseen (an aborted transaction's
        # batches) it would be logged as never retrieved.
        future.add_done_callback(_retrieve)
        self._pending.append(future)

    async def submit(self) -> None:
        """Hand every open batch to the producer now, without waiting for the broker."""
        if self._native is not None:
            for topic, partition, batch in self._native.drain():
                await self._send(batch, self._topics[topic], partition)
        for slot in list(self._open):
            await self._submit(slot)

    async def flush(self) -> None:
        """Submit every open batch and wait until the broker acknowledged all of them."""
        await self.submit()
        with kafka_errors():
            await asyncio.gather(*self._pending)
        self._pending.clear()


def _expanded(events: EncodedEvents) -> Iterator[KafkaMessage]:
    # Natively encoded events, for aiokafka's own batches (compression, or no native batches).
    routes = events.routes
    for kind, key, body in events.run.records():
        route = routes[kind]
        yield KafkaMessage(route.topic, key.encode(), route.prefix + body, route.headers)


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
    fenced, or whose abort failed or did not end in time, is ``broken`` and must be
    replaced: its replacement's start fences it, so nothing it left open can commit.
    """

    def __init__(self, config: KafkaConfig, transactional_id: str) -> None:
        self.config = config
        self.transactional_id = transactional_id
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, int] = {}
        self._aborting: asyncio.Task[None] | None = None
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
            # Not awaited: a start cut short by its caller's deadline must not hold the
            # caller's answer for the close of a producer that never got going.
            _in_background(_close(producer), f"close {self.transactional_id}")
            if isinstance(exc, TimeoutError):
                raise KafkaUnavailable("Kafka did not answer while starting a producer") from exc
            if isinstance(exc, AssertionError):
                # aiokafka asserts where a broker just back from a pause has not told it
                # the coordinator yet ("Did we not perform bootstrap?"): try again later.
                raise KafkaUnavailable(f"the producer did not start: {exc!r}") from exc
            raise
        self._producer = producer

    def partitions(self, topic: str) -> int:
        """Partition count of one of the producer's topics."""
        return self._partitions[topic]

    async def stop(self) -> None:
        """Flush and close, after an abort still going on; idempotent. Bounded, since
        aiokafka can hang with no broker (#1101)."""
        if self._aborting is not None:
            await asyncio.wait({self._aborting})  # bounded by abort's own timeout
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
        return PartitionedBatches(
            producer, self._partitions, self.config.key_hash, self._record_batches()
        )

    def _record_batches(self) -> RecordBatches | None:
        config = self.config
        if config.record_batches is None or config.compression is not None:
            return None
        return config.record_batches(
            partitions=list(self._partitions.values()),
            max_batch_bytes=config.max_batch_bytes,
            transactional=True,
        )

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

    async def send_offsets(self, offsets: Mapping[tuple[str, int], int], group_id: str) -> None:
        """Add consumer offsets (topic, partition) -> next offset to read, of ``group_id``, to
        the open transaction: they commit with it, or not at all (consume-transform-produce)."""
        producer = self._producer
        assert producer is not None
        try:
            with kafka_errors():
                await producer.send_offsets_to_transaction(
                    {
                        TopicPartition(topic, partition): offset
                        for (topic, partition), offset in offsets.items()
                    },
                    group_id,
                )
        except PublishError:
            self.broken = True
            raise

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

    def aborting(self) -> asyncio.Task[None]:
        """The abort of the open transaction, as a task of its own (started on the first
        call): a caller can stop waiting for it without cutting it short."""
        if self._aborting is None or self._aborting.done():
            self._aborting = asyncio.create_task(
                self.abort(), name=f"abort {self.transactional_id}"
            )
        return self._aborting

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


async def _close(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), 5)
