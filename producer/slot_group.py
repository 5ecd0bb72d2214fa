"""Delivery slots shared out by Kafka's consumer-group protocol.

Every process of a service (workers on one host, replicas on many) joins one consumer
group on the deliveries topic, whose partitions are the delivery slots. The group
coordinator, not our code, decides when the slots are dealt again: on a join, a leave, a
crash (the session timeout) or a new partition. Our assignor only decides how, on the
member the coordinator elected leader:

- each member's metadata carries its internal address (where other members forward it
  messages of its slots) and the slots it holds now;
- ``assign_slots`` keeps every member's slots up to its fair share (sticky: a rebalance
  moves only the slots it must, so it fences as few producers as it can), then deals the
  rest to the members below their share;
- every member's assignment carries the whole slot -> address map, so each process knows
  where to forward a message it does not own.

aiokafka's group protocol is eager: at every rebalance each member gives up all its
slots first (``on_revoked``: the publisher lets the transactions it has open finish),
then gets its new share (``on_assigned``: the publisher starts producers for the slots it
did not hold, which fences their previous owner). Messages arriving in between wait for
the new assignment, bounded by the Kafka timeout.

The group consumer fetches nothing: its partitions are paused, and it polls only to show
the coordinator that it is alive. The delivery log reads the receipts on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from producer.errors import KafkaUnavailable
from producer.kafka import kafka_errors

__all__ = ["SlotAssignor", "SlotGroup", "SlotMember", "assign_slots"]

log = structlog.get_logger()

_ASSIGNOR_NAME = "ivmtr-slots-v1"


@dataclass(frozen=True)
class SlotMember:
    """What a member tells the group leader: where it takes forwarded messages, and the
    slots it holds now."""

    address: str
    owned: tuple[int, ...] = ()

    def encode(self) -> bytes:
        """The member's metadata user data."""
        return orjson.dumps({"address": self.address, "owned": list(self.owned)})

    @classmethod
    def decode(cls, data: bytes | None) -> SlotMember:
        """A member's metadata user data; a member that sent none has no address."""
        if not data:
            return cls("")
        value = orjson.loads(data)
        return cls(str(value.get("address", "")), tuple(int(s) for s in value.get("owned", ())))


def assign_slots(slots: int, members: Mapping[str, SlotMember]) -> dict[str, list[int]]:
    """Deal ``slots`` delivery slots among ``members`` (member id -> metadata).

    Balanced (shares differ by at most one) and sticky: a member keeps the slots it held,
    up to its share, and only the rest move. Deterministic for the same input, whichever
    member leads.
    """
    if not members:
        return {}
    # Members holding more slots now get the larger shares, so that fewer slots move.
    order = sorted(members, key=lambda m: (-len(members[m].owned), m))
    base, extra = divmod(slots, len(order))
    share = {member: base + (1 if i < extra else 0) for i, member in enumerate(order)}
    dealt: dict[str, list[int]] = {member: [] for member in order}
    taken: set[int] = set()
    for member in order:
        for slot in members[member].owned:
            if len(dealt[member]) == share[member]:
                break
            if 0 <= slot < slots and slot not in taken:
                dealt[member].append(slot)
                taken.add(slot)
    free = iter(slot for slot in range(slots) if slot not in taken)
    for member in order:
        while len(dealt[member]) < share[member]:
            dealt[member].append(next(free))
    return {member: sorted(held) for member, held in dealt.items()}


class SlotAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """aiokafka's assignor seam for the slot group: an instance per process, holding this
    member's address and slots, and the slot -> address map of the last assignment."""

    name = _ASSIGNOR_NAME
    version = 0

    def __init__(self, address: str) -> None:
        self.address = address
        self.owned: tuple[int, ...] = ()
        self.owners: dict[int, str] = {}

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(
            self.version, sorted(topics), SlotMember(self.address, self.owned).encode()
        )

    def assign(
        self, cluster: Any, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = {topic for metadata in members.values() for topic in metadata.subscription}
        # One topic: the deliveries topic.
        (topic,) = topics
        partitions = cluster.partitions_for_topic(topic) or set()
        decoded = {member: SlotMember.decode(m.user_data) for member, m in members.items()}
        dealt = assign_slots(len(partitions), decoded)
        owners = {
            str(slot): decoded[member].address for member, held in dealt.items() for slot in held
        }
        user_data = orjson.dumps({"owners": owners})
        return {
            member: ConsumerProtocolMemberAssignment(self.version, [(topic, held)], user_data)
            for member, held in dealt.items()
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        value = orjson.loads(assignment.user_data) if assignment.user_data else {}
        self.owners = {int(slot): address for slot, address in value.get("owners", {}).items()}
        self.owned = tuple(sorted(tp.partition for tp in assignment.partitions()))


Slots = frozenset[int]


class SlotGroup:
    """This process's membership of the slot group: which slots it owns, who owns the rest.

    ``on_revoked()`` is awaited before every rebalance, ``on_assigned(slots)`` after it
    with the slots now this process's; both run inside the group protocol, so the
    coordinator waits for them (bounded by ``rebalance_timeout_ms``).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        address: str,
        *,
        on_assigned: Callable[[Slots], Awaitable[None]],
        on_revoked: Callable[[], Awaitable[None]],
        session_timeout_ms: int = 6000,
        heartbeat_interval_ms: int = 1000,
        rebalance_timeout_ms: int = 60000,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self.assignor = SlotAssignor(address)
        self.rebalances = 0
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._settled = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            partition_assignment_strategy=(self.assignor,),
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            # Polling is how the member shows it is alive; nothing is ever fetched.
            max_poll_interval_ms=max(rebalance_timeout_ms, 60000),
        )
        self._polling: asyncio.Task[None] | None = None

    def owner(self, slot: int) -> str | None:
        """The internal address of the slot's owner; None while a rebalance is under way."""
        if not self._settled.is_set():
            return None
        return self.assignor.owners.get(slot)

    async def settled(self, timeout_s: float) -> None:
        """Wait until the slots are dealt (KafkaUnavailable after ``timeout_s``)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._settled.wait()
        except TimeoutError as exc:
            raise KafkaUnavailable(
                f"delivery slots not dealt within {timeout_s} s (group {self.group_id})"
            ) from exc

    async def start(self, timeout_s: float) -> None:
        """Join the group and wait for the first assignment."""
        with kafka_errors():
            await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Listener(self))
        self._polling = asyncio.create_task(self._poll(), name="slot-group")
        try:
            await self.settled(timeout_s)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Leave the group (the others get this process's slots at once); idempotent."""
        task, self._polling = self._polling, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._consumer.stop()
        self._settled.clear()

    async def _poll(self) -> None:
        while True:
            try:
                await self._consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the coordinator retries; keep showing we are alive
                log.warning("slot group poll failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(0.5)

    async def _revoked(self) -> None:
        self._settled.clear()
        await self._on_revoked()

    async def _assigned(self, assigned: Iterable[TopicPartition]) -> None:
        # Nothing is fetched: the delivery log follows the partitions on its own.
        partitions = list(assigned)
        self._consumer.pause(*partitions)
        slots = frozenset(tp.partition for tp in partitions)
        self.rebalances += 1
        try:
            await self._on_assigned(slots)
        except Exception as exc:
            # The slots are ours whatever failed: a slot whose producer did not start
            # gets one when it is next used.
            log.error("taking delivery slots failed", error=str(exc) or type(exc).__name__)
        self._settled.set()
        log.info(
            "delivery slots assigned",
            group=self.group_id,
            slots=sorted(slots),
            members=len(set(self.assignor.owners.values())),
        )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, group: SlotGroup) -> None:
        self._group = group

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._group._revoked()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._group._assigned(assigned)
