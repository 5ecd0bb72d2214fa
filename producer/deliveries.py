"""The delivery log: receipts of pushed messages and message groups, kept in Kafka.

Receipts live in a compacted topic (``<prefix>deliveries``) and are written in the same
transaction as the events they describe, so a committed receipt means committed events.
Every replica reads the whole topic at start and then follows it (read_committed), which
is how a message re-sent after a restart, or to another replica, is recognised.

Receipt keys:  ``msg:<msgGrpId>/<msgSerNbr>`` and ``group:<msgGrpId>``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from producer.errors import KafkaUnavailable
from producer.kafka import kafka_errors
from producer.topics import Topic
from producer.wire import SingleObjectDecoder

__all__ = ["DeliveryLog", "GroupState", "group_key", "message_key"]

Receipt = Mapping[str, Any]


def message_key(msg_grp_id: str, msg_ser_nbr: int) -> str:
    """Receipt key of one message."""
    return f"msg:{msg_grp_id}/{msg_ser_nbr}"


def group_key(msg_grp_id: str) -> str:
    """Receipt key of one message group."""
    return f"group:{msg_grp_id}"


@dataclass
class GroupState:
    """What is known of one message group: its committed message receipts and group receipt."""

    msg_grp_id: str
    messages: dict[int, Receipt] = field(default_factory=dict)
    receipt: Receipt | None = None

    @property
    def first_seen_ms(self) -> int:
        """When the group's first committed message was written (epoch ms)."""
        return min(_millis(r["written_at"]) for r in self.messages.values())


def _millis(value: Any) -> int:
    # The decoder gives aware datetimes for timestamp-millis; local receipts carry ints.
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


class DeliveryLog:
    """An in-memory view of the deliveries topic that follows it."""

    def __init__(self, bootstrap_servers: str, topic: Topic) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        # Both framings: receipts written before a registry was configured stay known.
        registry_ids = {} if topic.registry_id is None else {topic.registry_id: topic.schema}
        self._decode = SingleObjectDecoder([topic.schema], registry_ids)
        self._consumer: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None
        self._receipts: dict[str, Receipt] = {}
        self._groups: dict[str, GroupState] = {}
        self._positions: dict[int, int] = {}
        self._own: dict[int, int] = {}  # per partition: known complete up to, by our own writes
        self._moved = asyncio.Event()
        self.partitions = 0
        self.failure: BaseException | None = None

    async def start(self, timeout_s: float = 60.0) -> None:
        """Read the topic to its end, then keep following it in the background."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            # A replica applies its own receipts as it commits them (``advance``), so fetching
            # each one back at once is waste: a fetch answer, decoded in Python, per receipt
            # was about a third of the CPU of a small message. Fetches wait for 1 MiB or
            # 100 ms, which is how late another replica's receipts may be seen.
            fetch_max_wait_ms=100,
            fetch_min_bytes=1 << 20,
        )
        try:
            with kafka_errors():
                await asyncio.wait_for(consumer.start(), timeout_s)
                metadata = await consumer._client.fetch_all_metadata()
                partitions = sorted(metadata.partitions_for_topic(self.topic.name) or ())
                if not partitions:
                    raise KafkaUnavailable(f"topic {self.topic.name} does not exist")
                tps = [TopicPartition(self.topic.name, p) for p in partitions]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                end = await consumer.end_offsets(tps)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 5)
            raise
        self._consumer = consumer
        self.partitions = len(partitions)
        self._positions = dict.fromkeys(partitions, 0)
        self._follow = asyncio.create_task(self._run(), name="delivery-log")
        for tp, offset in end.items():
            await self.caught_up(tp.partition, offset, timeout_s)

    async def stop(self) -> None:
        """Stop following; idempotent."""
        task, self._follow = self._follow, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        if record.key is not None and record.value is not None:
                            self.apply(record.key.decode(), self._decode(record.value))
                for tp in consumer.assignment():
                    self._positions[tp.partition] = await consumer.position(tp)
                self.failure = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: keep trying, callers time out
                self.failure = exc
                await asyncio.sleep(0.5)
            self._moved.set()
            self._moved = asyncio.Event()

    async def caught_up(self, partition: int, offset: int, timeout_s: float) -> None:
        """Wait until every committed receipt before ``offset`` in ``partition`` is applied."""
        try:
            async with asyncio.timeout(timeout_s):
                while (
                    max(self._positions.get(partition, -1), self._own.get(partition, -1)) < offset
                ):
                    await self._moved.wait()
        except TimeoutError as exc:
            raise KafkaUnavailable(
                f"the delivery log did not reach {partition}@{offset} in time"
            ) from exc

    def advance(self, partition: int, offset: int) -> None:
        """Everything in ``partition`` before ``offset`` is known: we wrote it and applied it.

        Lets the next message on a slot go on without waiting for the follower to read the
        slot holder's own receipts back (the holder is the partition's only writer).
        """
        if offset > self._own.get(partition, -1):
            self._own[partition] = offset

    def apply(self, key: str, receipt: Receipt) -> None:
        """Take one committed receipt into the view."""
        status = receipt["status"]
        if status == "STARTED":
            return  # always followed by the outcome in the same transaction
        self._receipts[key] = receipt
        group = self._groups.get(receipt["msg_grp_id"])
        if group is None:
            group = self._groups[receipt["msg_grp_id"]] = GroupState(receipt["msg_grp_id"])
        if receipt["kind"] == "GROUP":
            group.receipt = receipt
        else:
            group.messages[int(receipt["msg_ser_nbr"])] = receipt

    def get(self, key: str) -> Receipt | None:
        """The latest committed receipt under ``key``."""
        return self._receipts.get(key)

    def groups(self) -> list[GroupState]:
        """Every group with at least one committed message."""
        return [group for group in self._groups.values() if group.messages]

    def group(self, msg_grp_id: str) -> GroupState | None:
        """One group's state."""
        return self._groups.get(msg_grp_id)

    def counts(self) -> dict[str, int]:
        """Receipts known, by status (for metrics)."""
        totals: dict[str, int] = defaultdict(int)
        for receipt in self._receipts.values():
            totals[receipt["status"]] += 1
        return dict(totals)
