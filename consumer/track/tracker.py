"""The tracker at the Kafka edge: scans in, statuses and alerts out, exactly once.

A consumer group over the scan topics (read_committed). Partition ``p`` of every scan
topic goes to the same instance (range assignment over topics of equal partition counts),
and so does partition ``p`` of the status topic, which holds the statuses of exactly those
pieces: the key that put a scan on ``p`` puts its piece's status there too.

Per partition the instance owns it keeps a transactional producer whose id names the
group and the partition. Starting it fences any earlier holder of the partition (a
crashed or cut-off instance) and aborts its open transaction, and only then is the
partition's state read back from the status topic and its scans read from the group's
committed offsets. Every batch of scans becomes one transaction on that producer: the
new statuses, the alerts, and the consumer offsets past the batch. Either all of them
commit or none, so after any crash the statuses, alerts and offsets agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from consumer.track.alerts import AlertRules, evaluate
from consumer.track.scans import ScanReader, UnreadableValue, ValueReader
from consumer.track.status import fold_scan
from consumer.track.store import PartitionStore
from producer import KafkaConfig, KafkaMessage, TrackTopics, TransactionalProducer
from producer.errors import Fenced, PublishError

__all__ = ["Tracker", "TrackerConfig", "TrackerError", "TrackerStats"]

log = structlog.get_logger()


class TrackerError(Exception):
    """The tracker cannot run: topics missing or not co-partitioned, Kafka unreachable."""


@dataclass(frozen=True)
class TrackerConfig:
    """What the tracker reads, writes and how."""

    kafka: KafkaConfig
    group_id: str
    scan_topics: tuple[str, ...]
    transactional_id_prefix: str
    rules: AlertRules = field(default_factory=AlertRules)
    check_interval_s: float = 60.0
    max_poll_records: int = 10_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000


@dataclass
class TrackerStats:
    """Counters and gauges for the metrics endpoint."""

    scans: Counter[str] = field(default_factory=Counter)  # applied, repeated, unreadable
    alerts: Counter[str] = field(default_factory=Counter)  # by kind
    status_updates: int = 0
    transactions: Counter[str] = field(default_factory=Counter)  # committed, failed, fenced
    rebalances: int = 0
    restored_records: int = 0
    restore_seconds: float = 0.0


@dataclass
class _Partition:
    """One partition this instance owns: its producer, state and input positions."""

    number: int
    producer: TransactionalProducer
    store: PartitionStore
    next_offsets: dict[str, int] = field(default_factory=dict)  # scan topic -> next offset


class Tracker:
    """Explicit ``start()``, ``run()`` until ``stop()``; ``is_ready`` once partitions are taken."""

    def __init__(
        self,
        config: TrackerConfig,
        topics: TrackTopics,
        scans: ScanReader,
        statuses: ValueReader,
        *,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.config = config
        self.topics = topics
        self.stats = TrackerStats()
        self._scans = scans
        self._statuses = statuses
        self._clock = clock
        self._partitions: dict[int, _Partition] = {}
        self._assigned: set[int] = set()
        self._broken: set[int] = set()
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_check = 0.0
        kafka = config.kafka
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id}-tracker",
            group_id=config.group_id,
            enable_auto_commit=False,  # offsets commit inside the transactions
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self._restorer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id}-tracker-restore",
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, check the topics are co-partitioned, join the group."""
        try:
            await self._restorer.start()
            await self._consumer.start()
            counts = {}
            metadata = await self._restorer._client.fetch_all_metadata()
            for topic in (*self.config.scan_topics, self.topics.piece_status.name):
                partitions = metadata.partitions_for_topic(topic)
                if not partitions:
                    raise TrackerError(f"topic {topic!r} does not exist")
                counts[topic] = len(partitions)
        except KafkaError as exc:
            await self.stop()
            raise TrackerError(
                f"cannot reach Kafka at {self.config.kafka.bootstrap_servers}: {exc}"
            ) from exc
        except BaseException:
            await self.stop()
            raise
        if len(set(counts.values())) != 1:
            await self.stop()
            shown = ", ".join(f"{name} has {n}" for name, n in counts.items())
            raise TrackerError(
                f"the scan topics and the status topic need the same partition count: {shown}"
            )
        self._consumer.subscribe(list(self.config.scan_topics), listener=_Listener(self))

    async def run(self) -> None:
        """Consume, track and publish until ``stop()``."""
        # The first check waits an interval: scans behind at start are tracked first.
        self._next_check = time.monotonic() + self.config.check_interval_s
        while not self._stopping.is_set():
            await self._repair()
            try:
                batch = await self._consumer.getmany(
                    timeout_ms=500, max_records=self.config.max_poll_records
                )
            except KafkaError as exc:
                log.warning("polling scans failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1)
                continue
            async with self._lock:
                by_partition: dict[int, dict[str, list[Any]]] = defaultdict(dict)
                for tp, records in batch.items():
                    if tp.partition in self._partitions:
                        by_partition[tp.partition][tp.topic] = records
                if by_partition:
                    await asyncio.gather(
                        *(
                            self._guarded(self._partitions[number], self._track, records)
                            for number, records in by_partition.items()
                        )
                    )
                if time.monotonic() >= self._next_check:
                    self._next_check = time.monotonic() + self.config.check_interval_s
                    await asyncio.gather(
                        *(
                            self._guarded(partition, self._check)
                            for partition in list(self._partitions.values())
                        )
                    )

    async def stop(self) -> None:
        """Leave the group and close every producer; idempotent."""
        self._stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._consumer.stop(), 15)
        async with self._lock:
            await self._drop(list(self._partitions))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._restorer.stop(), 15)

    # -- what the metrics show ------------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        """Whether the group dealt this instance its partitions and their state is back."""
        return self._ready.is_set()

    @property
    def owned(self) -> list[int]:
        """The partitions this instance tracks now."""
        return sorted(self._partitions)

    def pieces(self) -> dict[int, int]:
        """Pieces held per owned partition."""
        return {number: len(p.store) for number, p in self._partitions.items()}

    def watched(self) -> int:
        """Undelivered pieces the wall clock can still change."""
        return sum(p.store.watched for p in self._partitions.values())

    def lag(self) -> dict[tuple[str, int], int]:
        """Scans not yet tracked per owned scan-topic partition (as of the last fetch)."""
        lags = {}
        for number, partition in self._partitions.items():
            for topic in self.config.scan_topics:
                tp = TopicPartition(topic, number)
                high = self._consumer.highwater(tp)
                if high is not None:
                    lags[(topic, number)] = max(0, high - partition.next_offsets.get(topic, 0))
        return lags

    # -- the work -------------------------------------------------------------------------------

    async def _guarded(self, partition: _Partition, work: Any, *args: Any) -> None:
        """Run one transaction of ``partition``; on failure give the partition up, and take it
        back (fencing, restoring) unless another instance fenced this one out of it."""
        try:
            if await work(partition, *args):
                self.stats.transactions["committed"] += 1
        except Fenced:
            self.stats.transactions["fenced"] += 1
            log.warning(
                "fenced out of a partition: another tracker holds it", partition=partition.number
            )
            await self._drop([partition.number])
        except (PublishError, KafkaError) as exc:
            self.stats.transactions["failed"] += 1
            log.warning(
                "a transaction failed: the partition is taken back from its committed state",
                partition=partition.number,
                error=str(exc) or type(exc).__name__,
            )
            await self._drop([partition.number])
            self._broken.add(partition.number)

    async def _track(self, partition: _Partition, records: dict[str, list[Any]]) -> bool:
        """One transaction: the scans of one partition folded into statuses, the alerts they
        raise, and the offsets past them. False when there was nothing new to commit."""
        store = partition.store
        touched: dict[str, dict[str, Any]] = {}
        offsets: dict[tuple[str, int], int] = {}
        counts: Counter[str] = Counter()
        for topic, batch in records.items():
            skip_below = partition.next_offsets.get(topic, 0)
            for record in batch:
                if record.offset < skip_below:
                    continue
                offsets[(topic, partition.number)] = record.offset + 1
                try:
                    facts = self._scans(record.value)
                except UnreadableValue as exc:
                    counts["unreadable"] += 1
                    log.warning(
                        "a scan event could not be read",
                        topic=topic,
                        offset=record.offset,
                        error=str(exc),
                    )
                    continue
                key = facts.tracking_code
                current = touched.get(key)
                if current is None:
                    current = store.status(key)
                folded = fold_scan(current, facts)
                if folded is None:
                    counts["repeated"] += 1
                    continue
                counts["applied"] += 1
                touched[key] = folded
        if not offsets:
            return False
        now = self._clock()
        messages: list[KafkaMessage] = []
        kinds: Counter[str] = Counter()
        encoded = []
        for key, status in touched.items():
            status, raised = evaluate(status, self.config.rules, now, wall_clock=False)
            message = self.topics.piece_status.message(key, status, partition=partition.number)
            messages.append(message)
            encoded.append((key, message.value, status))
            for alert in raised:
                kinds[alert["kind"]] += 1
                messages.append(self.topics.alerts.message(key, alert))
        await self._commit(partition, messages, offsets)
        for key, value, status in encoded:
            store.put(key, value, status)
        for (topic, _), offset in offsets.items():
            partition.next_offsets[topic] = offset
        self.stats.scans.update(counts)
        self.stats.alerts.update(kinds)
        self.stats.status_updates += len(encoded)
        return True

    async def _check(self, partition: _Partition) -> bool:
        """One transaction: the pieces the wall clock changed since the last check. False when
        it changed none."""
        now = self._clock()
        store = partition.store
        messages: list[KafkaMessage] = []
        encoded = []
        kinds: Counter[str] = Counter()
        for key in store.due(now):
            status = store.status(key)
            assert status is not None
            before = (status["state"], list(status["alerts"]))
            status, raised = evaluate(status, self.config.rules, now)
            if (status["state"], status["alerts"]) == before:
                store.reindex(key, status)
                continue
            message = self.topics.piece_status.message(key, status, partition=partition.number)
            messages.append(message)
            encoded.append((key, message.value, status))
            for alert in raised:
                kinds[alert["kind"]] += 1
                messages.append(self.topics.alerts.message(key, alert))
        if not messages:
            return False
        await self._commit(partition, messages, {})
        for key, value, status in encoded:
            store.put(key, value, status)
        self.stats.alerts.update(kinds)
        self.stats.status_updates += len(encoded)
        return True

    async def _commit(
        self,
        partition: _Partition,
        messages: list[KafkaMessage],
        offsets: dict[tuple[str, int], int],
    ) -> None:
        producer = partition.producer
        async with producer.transaction() as batches:
            await batches.add_many(messages)
            if offsets:
                await producer.send_offsets(offsets, self.config.group_id)

    # -- partitions coming and going --------------------------------------------------------------

    def _transactional_id(self, number: int) -> str:
        return f"{self.config.transactional_id_prefix}-{self.config.group_id}-{number}"

    async def _take(self, numbers: Iterable[int]) -> None:
        """Own partitions: fence their previous holders, restore their state, seek to the
        group's committed offsets."""
        numbers = sorted(set(numbers) - set(self._partitions))
        if not numbers:
            return
        producers = {}
        try:
            for number in numbers:
                producer = TransactionalProducer(self.config.kafka, self._transactional_id(number))
                await producer.start([self.topics.piece_status.name, self.topics.alerts.name])
                producers[number] = producer
            stores = await self._restore(numbers)
            taken = {}
            for number in numbers:
                partition = _Partition(number, producers[number], stores[number])
                for topic in self.config.scan_topics:
                    tp = TopicPartition(topic, number)
                    committed = await self._consumer.committed(tp)
                    if committed is None:
                        await self._consumer.seek_to_beginning(tp)
                        partition.next_offsets[topic] = 0
                    else:
                        self._consumer.seek(tp, committed)
                        partition.next_offsets[topic] = committed
                taken[number] = partition
        except BaseException:
            for producer in producers.values():
                await producer.stop()
            self._broken.update(numbers)
            raise
        self._partitions.update(taken)
        self._broken.difference_update(numbers)
        self._consumer.resume(*self._tps(numbers))

    async def _restore(self, numbers: list[int]) -> dict[int, PartitionStore]:
        """Each partition's statuses, read back from the status topic up to its end."""
        started = time.monotonic()
        topic = self.topics.piece_status.name
        stores = {n: PartitionStore(self._statuses, self.config.rules) for n in numbers}
        tps = [TopicPartition(topic, n) for n in numbers]
        restorer = self._restorer
        restorer.assign(tps)
        await restorer.seek_to_beginning(*tps)
        end = await restorer.end_offsets(tps)
        records = 0
        while True:
            remaining = [tp for tp in tps if await restorer.position(tp) < end[tp]]
            if not remaining:
                break
            batch = await restorer.getmany(*remaining, timeout_ms=1000, max_records=50_000)
            for tp, found in batch.items():
                store = stores[tp.partition]
                for record in found:
                    store.restore(record.key.decode(), record.value)
                    records += 1
        restorer.unsubscribe()
        for store in stores.values():
            store.index()
        took = time.monotonic() - started
        self.stats.restored_records += records
        self.stats.restore_seconds += took
        log.info(
            "partitions restored",
            partitions=numbers,
            records=records,
            pieces=sum(len(s) for s in stores.values()),
            seconds=round(took, 3),
        )
        return stores

    async def _drop(self, numbers: Iterable[int]) -> None:
        """Give partitions up: close their producers, forget their state, stop fetching them."""
        numbers = [n for n in numbers if n in self._partitions]
        for number in numbers:
            partition = self._partitions.pop(number)
            await partition.producer.stop()
        paused = [tp for tp in self._tps(numbers) if tp in self._consumer.assignment()]
        if paused:
            self._consumer.pause(*paused)

    async def _repair(self) -> None:
        """Take back partitions whose transaction failed, once Kafka lets us."""
        if not self._broken:
            return
        async with self._lock:
            numbers = sorted(self._broken & self._assigned)
            self._broken &= self._assigned
            if not numbers:
                return
            try:
                await self._take(numbers)
            except (PublishError, KafkaError, TimeoutError) as exc:
                log.warning(
                    "taking partitions back failed; retrying",
                    partitions=numbers,
                    error=str(exc) or type(exc).__name__,
                )
                await asyncio.sleep(1)

    def _tps(self, numbers: Iterable[int]) -> list[TopicPartition]:
        return [TopicPartition(topic, n) for n in numbers for topic in self.config.scan_topics]

    async def _revoked(self) -> None:
        self._ready.clear()
        async with self._lock:
            await self._drop(list(self._partitions))
            self._assigned.clear()
            self._broken.clear()

    async def _assigned_partitions(self, assigned: Iterable[TopicPartition]) -> None:
        numbers = {tp.partition for tp in assigned}
        self.stats.rebalances += 1
        async with self._lock:
            self._assigned = set(numbers)
            self._consumer.pause(*self._tps(numbers))  # until each is restored and sought
            try:
                await self._take(numbers)
            except (PublishError, KafkaError, TimeoutError) as exc:
                log.warning(
                    "taking partitions failed; retrying",
                    partitions=sorted(numbers),
                    error=str(exc) or type(exc).__name__,
                )
        self._ready.set()
        log.info("tracking partitions", group=self.config.group_id, partitions=sorted(numbers))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._tracker._revoked()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._tracker._assigned_partitions(assigned)
