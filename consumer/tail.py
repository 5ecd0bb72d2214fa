"""Reading the topics back: decoded events as plain dicts (the ``tail`` command)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from producer import SingleObjectDecoder, TopicTable

__all__ = ["TailedRecord", "tail_topic"]


@dataclass(frozen=True, slots=True)
class TailedRecord:
    """One Kafka record, decoded."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: Any

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready view of the record."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "headers": self.headers,
            "value": self.value,
        }


async def tail_topic(
    bootstrap_servers: str,
    topic: str,
    topics: TopicTable,
    *,
    from_beginning: bool = False,
    follow: bool = False,
    max_records: int | None = None,
    idle_timeout_s: float = 5.0,
) -> AsyncIterator[TailedRecord]:
    """Committed records of ``topic``: from the start or the end, until caught up (or forever)."""
    decoder = SingleObjectDecoder(t.schema for t in topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            raise ValueError(f"topic {topic!r} does not exist")
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        end = await consumer.end_offsets(partitions)
        seen = 0
        while True:
            if not follow and await _caught_up(consumer, end):
                return
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if not batch and not follow:
                idle_timeout_s -= 0.5
                if idle_timeout_s <= 0:
                    return
            for tp, records in batch.items():
                for record in records:
                    yield TailedRecord(
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        key=record.key.decode() if record.key is not None else None,
                        headers={
                            name: value.decode(errors="replace") for name, value in record.headers
                        },
                        value=decoder(record.value),
                    )
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        return
    finally:
        await asyncio.wait_for(consumer.stop(), 10)


async def _caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True
