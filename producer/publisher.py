"""Publisher: one Kafka transaction per pushed message, exactly once across replicas.

A message's key (``msg:<msgGrpId>/<msgSerNbr>``) picks a *delivery slot*: a partition of
the deliveries topic and the transactional id ``<prefix>-slot-<n>``, the same on every
replica. Publishing a message:

1. takes the slot in this process (one transaction per slot at a time);
2. begins a transaction and writes a STARTED receipt to the slot's partition. If another
   replica used the slot since, the write fails as fenced; the producer is replaced,
   which fences the other replica's producer in turn and aborts whatever it had open;
3. waits until the delivery log has applied every receipt before that STARTED record.
   Only the slot's holder writes to that partition, so this is every committed receipt
   of the message: ``prior`` says whether it was published before;
4. lets the caller stream the events and the final receipt into the transaction, and
   commits (or aborts) it.

So two replicas that receive the same message at the same moment serialise on its slot:
one commits, the other either sees that receipt (a duplicate) or is fenced (503, and the
sender's retry is then a duplicate).

Every wait of one delivery (the slot, a producer's start, the claim, batches, the commit,
the abort) draws on one ``WaitBudget``: PublishTimeout once it is spent, whichever wait
spent it. An abort that does not end within what is left goes on in the background and
marks the slot's producer broken, so the next transaction on the slot starts a new one:
its start fences the old producer and aborts what it had open before anything else on the
slot can commit.

Given an ``address`` (where this process takes forwarded messages), the publisher shares
the slots with the service's other processes through Kafka's group protocol
(``producer.slot_group``): it starts producers only for the slots the group deals it, and
``delivery`` raises ``SlotElsewhere`` (naming the owner) for the others, so that processes
do not take slots from each other under load. Without one it takes every slot (one
process, or a tool such as backfill).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from producer.budget import WaitBudget
from producer.deliveries import DeliveryLog, DeliveryLogLimits, Receipt
from producer.errors import Fenced, KafkaUnavailable, PublishError, SlotElsewhere
from producer.kafka import KafkaConfig, PartitionedBatches, TransactionalProducer, partition_for
from producer.slot_group import SlotGroup
from producer.topics import EncodedEvents, KafkaMessage, Topic, TopicTable

__all__ = ["Delivery", "Publisher", "SlotStats"]

_CLAIM_ATTEMPTS = 5
# After a transaction ends, its coordinator still writes the markers for a few ms; a
# transaction begun on the same id meanwhile is refused (CONCURRENT_TRANSACTIONS) and
# aiokafka retries only after a fixed 20 ms. Measured on the local broker: begun at once,
# 50 of 60 paid those 20 ms; 4 ms later, none did (bench/message_cost.py shows the effect).
_SETTLE_S = 0.005


@dataclass
class Delivery:
    """One open transaction for one key: add messages, then the publisher commits it."""

    key: str
    slot: int
    prior: Receipt | None
    batches: PartitionedBatches
    budget: WaitBudget
    discard: bool = False  # set to abort without an error (e.g. a duplicate)
    receipt: Receipt | None = None

    async def add(self, message: KafkaMessage) -> None:
        """Queue one message of the transaction (within the delivery's budget)."""
        async with self.budget.waiting("batches to be taken"):
            await self.batches.add(message)

    async def add_many(self, messages: Iterable[KafkaMessage | EncodedEvents]) -> None:
        """Queue messages (and natively encoded events) of the transaction, in order
        (within the delivery's budget: a full batch waits for the producer to take it)."""
        async with self.budget.waiting("batches to be taken"):
            await self.batches.add_many(messages)


@dataclass
class SlotStats:
    """What happened to this process's delivery slots since it started (for metrics).

    ``takeovers``: producers started for a slot, each fencing whoever held it before, by
    why (``start``: the slots taken at start-up; ``assigned``: slots the group dealt this
    process at a later rebalance; ``replaced``: a producer of ours was fenced by another
    process, or failed, and the slot was taken back). ``fenced``: transactions of
    ours that another replica's takeover ended. ``aborted``: transactions aborted, by why
    (``duplicate``: a re-sent message; ``failed``: anything else, a fencing included).
    """

    takeovers: dict[str, int] = field(
        default_factory=lambda: {"start": 0, "assigned": 0, "replaced": 0}
    )
    fenced: int = 0
    aborted: dict[str, int] = field(default_factory=lambda: {"duplicate": 0, "failed": 0})


class Publisher:
    """Delivery slots over one topic table, and the delivery log that dedups with them."""

    def __init__(
        self,
        config: KafkaConfig,
        topics: TopicTable,
        *,
        transactional_id_prefix: str = "ivmtr-stream",
        timeout_s: float = 30.0,
        extra_topics: Sequence[Topic] = (),
        log_limits: DeliveryLogLimits | None = None,
        address: str | None = None,
    ) -> None:
        self.config = config
        self.topics = topics
        # Every topic a transaction may write to: the table's and feeds' overrides.
        self._topic_names = [topic.name for topic in topics] + [t.name for t in extra_topics]
        self.log = DeliveryLog(config.bootstrap_servers, topics.deliveries, log_limits)
        self._prefix = transactional_id_prefix
        self._timeout_s = timeout_s
        self._producers: dict[int, TransactionalProducer] = {}
        self._retiring: set[asyncio.Task[None]] = set()  # broken producers being stopped
        self._locks: dict[int, asyncio.Lock] = {}
        self._ended_at: dict[int, float] = {}  # per slot: when its last transaction ended
        self._started = False
        self.address = address
        self._group: SlotGroup | None = None
        self._owned: frozenset[int] = frozenset()
        self.stats = SlotStats()

    @property
    def owned_slots(self) -> int:
        """Slots this process owns and holds a producer for that was not fenced out."""
        return sum(
            1
            for slot, producer in self._producers.items()
            if slot in self._owned and not producer.broken
        )

    @property
    def rebalances(self) -> int:
        """Times the slot group dealt the slots (0 without a group)."""
        return 0 if self._group is None else self._group.rebalances

    def owns(self, key: str) -> bool:
        """Whether this process owns ``key``'s slot now."""
        return self.slot_of(key) in self._owned

    def budget(self) -> WaitBudget:
        """A fresh budget of the configured time, for one request's waits."""
        return WaitBudget(self._timeout_s)

    async def owner_of(self, key: str, budget: WaitBudget | None = None) -> str | None:
        """Where ``key``'s slot is: None when here, else the owner's internal address
        ("" when it gave none). Waits while the slots are being dealt (within ``budget``:
        pass the request's, to bound this wait and its delivery's together)."""
        if self._group is None:
            return None
        slot = self.slot_of(key)
        budget = budget or self.budget()
        async with budget.waiting("the delivery slots to be dealt"):
            await self._group.settled(self._timeout_s)
        if slot in self._owned:
            return None
        return self._group.owner(slot) or ""

    @property
    def slots(self) -> int:
        """Number of delivery slots (partitions of the deliveries topic)."""
        return self.log.partitions

    async def start(self) -> None:
        """Read the delivery log, then take every slot: aborts what a crashed process left open."""
        if self._started:
            return
        await self.log.start(self._timeout_s * 2)
        self._locks = {slot: asyncio.Lock() for slot in range(self.slots)}
        try:
            if self.address is None:
                await self._take(frozenset(range(self.slots)))
            else:
                deliveries = self.log.topic.name
                self._group = SlotGroup(
                    self.config.bootstrap_servers,
                    deliveries,
                    f"{self._prefix}-{deliveries}-slots",
                    self.address,
                    on_assigned=self._take,
                    on_revoked=self._drain,
                    rebalance_timeout_ms=int(self._timeout_s * 2000),
                )
                await self._group.start(self._timeout_s * 2)
        except BaseException:
            await self.stop()
            raise
        self._started = True

    async def _take(self, slots: frozenset[int]) -> None:
        """Own ``slots`` from now on: start a producer for each slot new to this process
        (which fences its previous owner), stop those of the slots it lost."""
        lost = [slot for slot in self._producers if slot not in slots]
        await asyncio.gather(*(self._producers.pop(slot).stop() for slot in lost))
        reason = "assigned" if self._started else "start"
        new = [slot for slot in slots if slot not in self._producers]
        self._owned = slots
        results = await asyncio.gather(
            *(self._producer(slot, reason) for slot in new), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _drain(self) -> None:
        """Give up every slot for a rebalance: new transactions wait, open ones end."""
        self._owned = frozenset()
        for lock in self._locks.values():
            await lock.acquire()
        for lock in self._locks.values():
            lock.release()

    async def stop(self) -> None:
        """Stop producers and the log; idempotent. Call after in-flight messages ended."""
        self._started = False
        group, self._group = self._group, None
        if group is not None:
            await group.stop()  # leaves the group: the others get the slots at once
        self._owned = frozenset()
        producers, self._producers = self._producers, {}
        await asyncio.gather(*(producer.stop() for producer in producers.values()), *self._retiring)
        await self.log.stop()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def slot_of(self, key: str) -> int:
        """The delivery slot of a receipt key."""
        return partition_for(key.encode(), self.slots, key_hash=self.config.key_hash)

    async def _producer(self, slot: int, reason: str = "replaced") -> TransactionalProducer:
        producer = self._producers.get(slot)
        if producer is not None and not producer.broken:
            return producer
        if producer is not None:
            # Stopped in the background (after an abort it may still be waiting for): the
            # new producer's start fences it anyway, and the request has no time to spare.
            retiring = asyncio.create_task(producer.stop(), name=f"retire slot {slot}")
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
        # Scoped by the deliveries topic: services on other topic prefixes never fence these.
        producer = TransactionalProducer(
            self.config, f"{self._prefix}-{self.log.topic.name}-{slot}"
        )
        self._producers[slot] = producer
        await producer.start(self._topic_names)
        self.stats.takeovers[reason] += 1
        return producer

    async def _hold(self, slot: int, budget: WaitBudget) -> asyncio.Lock:
        """The slot's lock, held, once the slot is this process's (else SlotElsewhere)."""
        lock = self._locks[slot]
        async with budget.waiting(f"delivery slot {slot}"):
            while True:
                if self._group is not None:
                    await self._group.settled(self._timeout_s)
                    if slot not in self._owned:
                        raise SlotElsewhere(slot, self._group.owner(slot) or "")
                await lock.acquire()
                # A rebalance may have taken the slot while we waited for it.
                if slot in self._owned:
                    return lock
                lock.release()
        raise AssertionError("unreachable")

    async def _abort(self, producer: TransactionalProducer, budget: WaitBudget) -> None:
        """Abort ``producer``'s transaction, waiting for it at most what ``budget`` has left.

        An abort that does not end in time (the broker is away) goes on in the background,
        and the producer is marked broken: the next transaction on the slot replaces it,
        and the replacement's start fences it, aborting what it left open.
        """
        try:
            ended = await budget.wait_for(producer.aborting())
        except BaseException:
            producer.broken = True
            raise
        if not ended:
            producer.broken = True

    @contextlib.asynccontextmanager
    async def delivery(
        self,
        key: str,
        started: Mapping[str, Any],
        first: Sequence[KafkaMessage | EncodedEvents] = (),
        *,
        budget: WaitBudget | None = None,
    ) -> AsyncIterator[Delivery]:
        """Open the transaction of ``key``; commit on a clean exit unless discarded, else abort.

        ``started`` is the STARTED receipt written first. ``first`` are messages of the
        transaction already at hand: they go to Kafka with the STARTED receipt, in one
        round of requests, instead of after it. The caller adds the final receipt under
        the same key (``Delivery.receipt`` keeps it for the local view). Every wait for
        Kafka, the caller's through the ``Delivery`` included, draws on ``budget`` (a fresh
        one of the configured time by default): PublishTimeout once it is spent.
        """
        if not self._started:
            raise KafkaUnavailable("publisher is not started")
        budget = budget or self.budget()
        slot = self.slot_of(key)
        lock = await self._hold(slot, budget)
        try:
            await self._settle(slot)
            producer, batches, claimed_at = await self._claim(slot, key, started, first, budget)
            try:
                prior = self.log.get(key)
                delivery = Delivery(key, slot, prior, batches, budget)
                yield delivery
                if delivery.discard:
                    self.stats.aborted["duplicate"] += 1
                    await self._abort(producer, budget)
                    # The slot's partition holds STARTED, then the abort marker (written
                    # now, or by the fencing that replaces a producer whose abort hung).
                    self.log.advance(slot, claimed_at + 2)
                    return
                # A commit cut short may still reach the broker: the message is then
                # published though the answer was 503, and its retry is a duplicate.
                async with budget.waiting("the commit"):
                    await producer.commit(batches)
                if delivery.receipt is not None:
                    self.log.apply(key, delivery.receipt)
                    # STARTED, the receipt and the commit marker: all ours, all applied.
                    self.log.advance(slot, claimed_at + 3)
            except BaseException as exc:
                self._ended_badly(exc)
                await self._abort(producer, budget)
                raise
        finally:
            self._ended_at[slot] = asyncio.get_running_loop().time()
            lock.release()

    @contextlib.asynccontextmanager
    async def transaction(self, key: str) -> AsyncIterator[PartitionedBatches]:
        """A plain transaction on ``key``'s slot, with no receipt and no duplicate check.

        For data whose idempotence is the subscriber's (events keep their ``event_id``).
        A Fenced error means another replica took the slot: the caller may retry.
        """
        if not self._started:
            raise KafkaUnavailable("publisher is not started")
        budget = self.budget()
        slot = self.slot_of(key)
        lock = await self._hold(slot, budget)
        try:
            await self._settle(slot)
            async with budget.waiting("a producer"):
                producer = await self._producer(slot)
                batches = await producer.begin()
            try:
                yield batches
                async with budget.waiting("the commit"):
                    await producer.commit(batches)
            except BaseException as exc:
                self._ended_badly(exc)
                await self._abort(producer, budget)
                if isinstance(exc, PublishError):
                    producer.broken = True
                raise
        finally:
            self._ended_at[slot] = asyncio.get_running_loop().time()
            lock.release()

    def _ended_badly(self, exc: BaseException) -> None:
        self.stats.aborted["failed"] += 1
        if isinstance(exc, Fenced):
            self.stats.fenced += 1

    async def _settle(self, slot: int) -> None:
        """Give the slot's last transaction the few ms its coordinator needs to close it."""
        ended_at = self._ended_at.get(slot)
        if ended_at is not None:
            wait = ended_at + _SETTLE_S - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _claim(
        self,
        slot: int,
        key: str,
        started: Mapping[str, Any],
        first: Sequence[KafkaMessage | EncodedEvents],
        budget: WaitBudget,
    ) -> tuple[TransactionalProducer, PartitionedBatches, int]:
        claim = self.topics.deliveries.message(key, started, partition=slot)
        for attempt in range(_CLAIM_ATTEMPTS):
            producer: TransactionalProducer | None = None
            began = False
            try:
                async with budget.waiting(f"the claim of slot {slot}"):
                    producer = await self._producer(slot)
                    batches = await producer.begin()
                    began = True
                    # Handed over before the claim, so that the producer adds all their
                    # partitions to the transaction and sends them with it, in one go.
                    await batches.add_many(first)
                    await batches.submit()
                    offset = await batches.send_now(claim)
                    await self.log.caught_up(slot, offset, self._timeout_s)
                return producer, batches, offset
            except BaseException as exc:
                if producer is not None and began:
                    self._ended_badly(exc)
                    await self._abort(producer, budget)  # outside the wait that failed
                if isinstance(exc, PublishError) and producer is not None:
                    # Fenced, failed or timed out: the slot's producer is replaced next time.
                    producer.broken = True
                if not isinstance(exc, Fenced) or attempt == _CLAIM_ATTEMPTS - 1:
                    raise
            # Another replica took the slot: take it back after a short, random pause so
            # that two replicas do not keep fencing each other in lockstep.
            async with budget.waiting(f"slot {slot} to be taken back"):
                await asyncio.sleep(random.uniform(0.02, 0.2) * (attempt + 1))
        raise AssertionError("unreachable")
