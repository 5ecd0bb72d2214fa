"""Publisher: the one object the ingest side talks to.

It keeps a small pool of transactional producers. Each pushed message borrows one
for the length of its transaction, so concurrent messages commit independently, and
a message is visible to read_committed subscribers all at once or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType

from producer.errors import KafkaUnavailable, PublishTimeout
from producer.kafka import KafkaConfig, PartitionedBatches, TransactionalProducer
from producer.topics import TopicTable

__all__ = ["Publisher"]


class Publisher:
    """A pool of transactional producers over one topic table."""

    def __init__(
        self,
        config: KafkaConfig,
        topics: TopicTable,
        *,
        transactional_id_prefix: str = "ivmtr-stream",
        pool_size: int = 4,
        acquire_timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.topics = topics
        self._ids = [f"{transactional_id_prefix}-{index}" for index in range(pool_size)]
        self._idle: asyncio.Queue[TransactionalProducer] = asyncio.Queue()
        self._acquire_timeout = acquire_timeout
        self._started = False

    async def start(self) -> None:
        """Start every producer of the pool; raises KafkaUnavailable if the broker is not there."""
        if self._started:
            return
        started: list[TransactionalProducer] = []
        try:
            for transactional_id in self._ids:
                producer = TransactionalProducer(self.config, transactional_id)
                await producer.start(self._topic_names())
                started.append(producer)
        except BaseException:
            for producer in started:
                await producer.stop()
            raise
        for producer in started:
            self._idle.put_nowait(producer)
        self._started = True

    async def stop(self) -> None:
        """Stop the producers that are idle; idempotent. Call after in-flight messages ended."""
        self._started = False
        while not self._idle.empty():
            await self._idle.get_nowait().stop()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _topic_names(self) -> list[str]:
        return [topic.name for topic in self.topics]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PartitionedBatches]:
        """Borrow a producer and run one transaction on it: commit on exit, abort on error."""
        if not self._started:
            raise KafkaUnavailable("publisher is not started")
        try:
            producer = await asyncio.wait_for(self._idle.get(), self._acquire_timeout)
        except TimeoutError as exc:
            raise PublishTimeout("no producer became free in time") from exc
        try:
            async with producer.transaction() as batches:
                yield batches
        finally:
            await self._give_back(producer)

    async def _give_back(self, producer: TransactionalProducer) -> None:
        if producer.broken:
            await producer.stop()
            replacement = TransactionalProducer(self.config, producer.transactional_id)
            try:
                await replacement.start(self._topic_names())
            except Exception:
                # Keep the slot: the next borrower retries the start (see _ensure_started).
                replacement.broken = True
            producer = replacement
        self._idle.put_nowait(producer)
