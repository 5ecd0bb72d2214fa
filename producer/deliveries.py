"""The delivery log: receipts of pushed messages and message groups, kept in Kafka.

Receipts live in a compacted topic (``<prefix>deliveries``) and are written in the same
transaction as the events they describe, so a committed receipt means committed events.
Every replica reads the topic at start and then follows it (read_committed), which is
how a message re-sent after a restart, or to another replica, is recognised.

Receipt keys:  ``msg:<msgGrpId>/<msgSerNbr>`` and ``group:<msgGrpId>``.

What is held in memory is bounded (``DeliveryLogLimits``):

- per message only what deduplication and the group watcher read (``MessageReceipt``:
  the content digest as 32 bytes, the status, the ``published`` counts shared between
  equal receipts, ``written_at``, the counts a group is judged by), and per group its
  messages and the status of its group receipt (``GroupState``);
- a message receipt older than ``retention_days`` is not kept: not when the topic is read
  at start, and a periodic sweep drops receipts that grew that old since. IV-MTR's data is
  available for 30 days after the scan date, so a re-send older than that is not one to
  recognise. A group goes with its last message;
- at most ``max_keys`` message receipts: past that the oldest go first. A message evicted
  and then pushed again is published again as a new one; subscribers de-duplicate scans
  by ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from producer.errors import KafkaUnavailable
from producer.kafka import kafka_errors
from producer.topics import Topic
from producer.wire import SingleObjectDecoder

__all__ = [
    "DeliveryLog",
    "DeliveryLogLimits",
    "GroupState",
    "MessageReceipt",
    "Receipt",
    "group_key",
    "message_key",
]

log = structlog.get_logger()

Receipt = Mapping[str, Any]

_DAY_MS = 86_400_000
_GROUP_COMPLETE = "GROUP_COMPLETE"
# How often the eviction line is logged while the cap keeps evicting.
_EVICTION_LOG_INTERVAL_MS = 60_000
# Distinct ``published`` maps shared at most; past that the table starts again.
_PUBLISHED_TABLE_SIZE = 4096


def message_key(msg_grp_id: str, msg_ser_nbr: int) -> str:
    """Receipt key of one message."""
    return f"msg:{msg_grp_id}/{msg_ser_nbr}"


def group_key(msg_grp_id: str) -> str:
    """Receipt key of one message group."""
    return f"group:{msg_grp_id}"


@dataclass(frozen=True)
class DeliveryLogLimits:
    """How long, and how many, message receipts the delivery log keeps in memory."""

    retention_days: float = 30.0
    max_keys: int = 1_000_000
    sweep_interval_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.retention_days > 0:
            raise ValueError("retention_days must be > 0")
        if self.max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        if not self.sweep_interval_s > 0:
            raise ValueError("sweep_interval_s must be > 0")


# -- the compact receipt ------------------------------------------------------------------------
#
# One bytes object per message holds its numbers: the digest (32 bytes), the status (an index
# into _STATUSES), written_at (ms) and msg_ser_nbr, tot_msg_cnt, tot_rec_cnt, records_received,
# records_rejected, as 4-byte ints when they all fit (96 bytes allocated) and as 8-byte ones
# otherwise (the length tells which). None is the type's smallest value.

_NARROW = struct.Struct("<32sBqiiiii")
_WIDE = struct.Struct("<32sBqqqqqq")
_NARROW_NONE = -(2**31)
_WIDE_NONE = -(2**63)
_NUMBERS = ("msg_ser_nbr", "tot_msg_cnt", "tot_rec_cnt", "records_received", "records_rejected")
_NO_DIGEST = bytes(32)
# The symbols of the schema's ReceiptStatus: a receipt of a later schema is not decoded here.
_STATUSES = ("PUBLISHED", "CONFLICT", "STARTED", "GROUP_COMPLETE", "GROUP_INCOMPLETE")
_STATUS_CODES = {status: code for code, status in enumerate(_STATUSES)}


def _pack(digest: bytes, status: int, written_at: int, numbers: list[int | None]) -> bytes:
    if all(n is None or _NARROW_NONE < n < 2**31 for n in numbers):
        narrow = (_NARROW_NONE if n is None else n for n in numbers)
        return _NARROW.pack(digest, status, written_at, *narrow)
    wide = (_WIDE_NONE if n is None else n for n in numbers)
    return _WIDE.pack(digest, status, written_at, *wide)


def _unpack(blob: bytes) -> tuple[Any, ...]:
    if len(blob) == _NARROW.size:
        values = _NARROW.unpack(blob)
        none = _NARROW_NONE
    else:
        values = _WIDE.unpack(blob)
        none = _WIDE_NONE
    return (*values[:3], *(None if n == none else n for n in values[3:]))


def _millis(value: Any) -> int:
    # The decoder gives aware datetimes for timestamp-millis; local receipts carry ints.
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


class MessageReceipt(Mapping[str, Any]):
    """What the log keeps of one committed message receipt, read as a receipt mapping.

    Only the fields deduplication and the group watcher read: ``kind``, ``status``,
    ``feed``, ``msg_grp_id``, ``msg_ser_nbr``, ``tot_msg_cnt``, ``tot_rec_cnt``,
    ``records_received``, ``records_rejected``, ``published`` (read-only, shared between
    receipts that published the same counts), ``content_sha256`` and ``written_at`` (ms).
    """

    __slots__ = ("_blob", "feed", "group", "published")

    _FIELDS = (
        "kind",
        "status",
        "feed",
        "msg_grp_id",
        *_NUMBERS,
        "published",
        "content_sha256",
        "written_at",
    )

    def __init__(
        self, group: GroupState, blob: bytes, published: Mapping[str, int], feed: str | None
    ) -> None:
        self.group = group
        self._blob = blob
        self.published = published
        self.feed = feed

    @property
    def serial(self) -> int:
        """msg_ser_nbr."""
        return int(_unpack(self._blob)[3])

    @property
    def written_at(self) -> int:
        """When the receipt was written (epoch ms)."""
        return int(_unpack(self._blob)[2])

    @property
    def digest(self) -> bytes | None:
        """SHA-256 of the message's content, as bytes; None when the receipt had none."""
        digest: bytes = _unpack(self._blob)[0]
        return digest

    def __getitem__(self, name: str) -> Any:
        if name == "published":
            return self.published
        if name == "feed":
            return self.feed
        if name == "kind":
            return "MESSAGE"
        if name == "msg_grp_id":
            return self.group.msg_grp_id
        values = _unpack(self._blob)
        if name == "content_sha256":
            return values[0].hex()
        if name == "status":
            return _STATUSES[values[1]]
        if name == "written_at":
            return values[2]
        try:
            return values[3 + _NUMBERS.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._FIELDS)

    def __len__(self) -> int:
        return len(self._FIELDS)

    def __repr__(self) -> str:
        return f"MessageReceipt({dict(self)!r})"


class _OddReceipt(MessageReceipt):
    """A receipt whose content_sha256 is not 64 hex digits (or is None): kept as it was."""

    __slots__ = ("_content_sha256",)

    def __init__(
        self,
        group: GroupState,
        blob: bytes,
        published: Mapping[str, int],
        feed: str | None,
        content_sha256: Any,
    ) -> None:
        super().__init__(group, blob, published, feed)
        self._content_sha256 = content_sha256

    @property
    def digest(self) -> bytes | None:
        return None

    def __getitem__(self, name: str) -> Any:
        if name == "content_sha256":
            return self._content_sha256
        return super().__getitem__(name)


_GROUP_RECEIPTS: dict[str, Receipt] = {}


def _group_receipt(status: str) -> Receipt:
    """What is kept of a group receipt: its status (one shared mapping per status)."""
    name = str(status)
    receipt = _GROUP_RECEIPTS.get(name)
    if receipt is None:
        receipt = _GROUP_RECEIPTS[name] = MappingProxyType({"kind": "GROUP", "status": name})
    return receipt


class GroupState:
    """What is known of one message group: its committed message receipts and group receipt.

    A group of one message (most of them) holds it without a dict.
    """

    __slots__ = ("_messages", "msg_grp_id", "receipt")

    def __init__(self, msg_grp_id: str) -> None:
        self.msg_grp_id = msg_grp_id
        self._messages: MessageReceipt | dict[int, MessageReceipt] | None = None
        self.receipt: Receipt | None = None

    @property
    def messages(self) -> Mapping[int, MessageReceipt]:
        """msgSerNbr -> the message's receipt."""
        held = self._messages
        if held is None:
            return {}
        if isinstance(held, MessageReceipt):
            return {held.serial: held}
        return held

    @property
    def first_seen_ms(self) -> int:
        """When the group's first committed message (still held) was written (epoch ms)."""
        return min(receipt.written_at for receipt in self.messages.values())

    def holds(self, receipt: MessageReceipt) -> bool:
        """Whether ``receipt`` is the one held for its msgSerNbr (not replaced, not dropped)."""
        held = self._messages
        if held is receipt:
            return True
        return isinstance(held, dict) and held.get(receipt.serial) is receipt

    def _put(self, receipt: MessageReceipt) -> MessageReceipt | None:
        """Hold ``receipt``; returns the one it replaced."""
        held = self._messages
        if held is None:
            self._messages = receipt
            return None
        serial = receipt.serial
        if isinstance(held, MessageReceipt):
            other = held.serial
            if other == serial:
                self._messages = receipt
                return held
            self._messages = {other: held, serial: receipt}
            return None
        replaced = held.get(serial)
        held[serial] = receipt
        return replaced

    def _drop(self, receipt: MessageReceipt) -> bool:
        """Drop a held ``receipt``; True when the group holds no message any more."""
        held = self._messages
        if held is receipt:
            self._messages = None
            return True
        assert isinstance(held, dict)
        del held[receipt.serial]
        if len(held) == 1:
            (self._messages,) = held.values()
        return False


class DeliveryLog:
    """An in-memory view of the deliveries topic that follows it, bounded by ``limits``."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: Topic,
        limits: DeliveryLogLimits | None = None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self.limits = limits or DeliveryLogLimits()
        self._retention_ms = int(self.limits.retention_days * _DAY_MS)
        self._clock = clock or _now_ms
        # Both framings: receipts written before a registry was configured stay known.
        registry_ids = {} if topic.registry_id is None else {topic.registry_id: topic.schema}
        self._decode = SingleObjectDecoder([topic.schema], registry_ids)
        self._consumer: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None
        self._groups: dict[str, GroupState] = {}
        # Groups the watcher may still write a receipt for: messages, no GROUP_COMPLETE.
        self._open: dict[str, GroupState] = {}
        # Message receipts in the order they were applied (sorted by written_at once the
        # topic is read): the oldest go first. A replaced receipt stays until it is reached.
        self._order: deque[MessageReceipt] = deque()
        self._held = 0
        self._replaced = 0
        # Group receipts of groups with no message held (their messages are on another
        # partition, not read yet, or gone): dropped after a sweep interval with none.
        self._orphans: set[str] = set()
        self._orphans_older: set[str] = set()
        self._published: dict[tuple[tuple[str, int], ...], Mapping[str, int]] = {}
        self._read = False  # the topic has been read to its end once
        self._next_sweep_ms = 0
        self._evictions_unlogged = 0
        self._eviction_logged_ms: int | None = None
        self.evicted = 0  # message receipts evicted by max_keys
        self.expired = 0  # message receipts dropped for being older than retention_days
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
        self._topic_read()

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
                for tp, records in batch.items():
                    # Below ``advance``'s mark, what the follower has not read yet is our
                    # own, applied when it was committed: applied again, a receipt the cap
                    # evicted meanwhile would come back.
                    own = self._own.get(tp.partition, -1)
                    for record in records:
                        if record.offset < own:
                            continue
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
            if self._read and self._clock() >= self._next_sweep_ms:
                self.sweep()
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

    # -- the view -------------------------------------------------------------------------------

    def apply(self, key: str, receipt: Receipt) -> None:
        """Take one committed receipt into the view (unless it is older than the retention)."""
        status = receipt["status"]
        if status == "STARTED":
            return  # always followed by the outcome in the same transaction
        msg_grp_id = receipt["msg_grp_id"]
        if receipt["kind"] == "GROUP":
            group = self._groups.get(msg_grp_id)
            if group is None:
                group = self._groups[msg_grp_id] = GroupState(msg_grp_id)
                self._orphans.add(msg_grp_id)
            group.receipt = _group_receipt(status)
            if status == _GROUP_COMPLETE:
                self._open.pop(msg_grp_id, None)
            return
        now = self._clock()
        written_at = _millis(receipt["written_at"])
        if now - written_at > self._retention_ms:
            self.expired += 1
            return
        group = self._groups.get(msg_grp_id)
        if group is None:
            group = self._groups[msg_grp_id] = GroupState(msg_grp_id)
        held = self._compact(group, receipt, status, written_at)
        if group._put(held) is None:
            self._held += 1
        else:
            self._replaced += 1
        self._order.append(held)
        if group.receipt is None or group.receipt["status"] != _GROUP_COMPLETE:
            self._open[msg_grp_id] = group
        if self._held > self.limits.max_keys:
            self._evict(now)
        if self._replaced > max(1024, self._held):
            self._order = deque(r for r in self._order if r.group.holds(r))
            self._replaced = 0

    def _compact(
        self, group: GroupState, receipt: Receipt, status: str, written_at: int
    ) -> MessageReceipt:
        numbers = [None if receipt[name] is None else int(receipt[name]) for name in _NUMBERS]
        content = receipt["content_sha256"]
        digest = None
        if isinstance(content, str) and len(content) == 64:
            with contextlib.suppress(ValueError):
                digest = bytes.fromhex(content)
        blob = _pack(digest or _NO_DIGEST, _STATUS_CODES[status], written_at, numbers)
        published = self._shared(receipt["published"])
        feed = receipt["feed"]
        feed = None if feed is None else sys.intern(str(feed))
        if digest is None:
            return _OddReceipt(group, blob, published, feed, content)
        return MessageReceipt(group, blob, published, feed)

    def _shared(self, published: Mapping[str, int]) -> Mapping[str, int]:
        """One read-only mapping per distinct ``published`` map: they repeat."""
        items = tuple(sorted((str(topic), int(count)) for topic, count in published.items()))
        shared = self._published.get(items)
        if shared is None:
            if len(self._published) >= _PUBLISHED_TABLE_SIZE:
                self._published.clear()
            shared = MappingProxyType({sys.intern(topic): count for topic, count in items})
            self._published[items] = shared
        return shared

    def _pop_oldest(self, before_ms: int | None = None) -> MessageReceipt | None:
        """Drop the oldest held message receipt (only if written before ``before_ms``)."""
        order = self._order
        while order:
            oldest = order[0]
            if not oldest.group.holds(oldest):
                order.popleft()
                self._replaced -= 1
                continue
            if before_ms is not None and oldest.written_at >= before_ms:
                return None
            order.popleft()
            group = oldest.group
            self._held -= 1
            if group._drop(oldest):
                if self._groups.get(group.msg_grp_id) is group:
                    del self._groups[group.msg_grp_id]
                self._open.pop(group.msg_grp_id, None)
            return oldest
        return None

    def _evict(self, now: int) -> None:
        while self._held > self.limits.max_keys and self._pop_oldest() is not None:
            self.evicted += 1
            self._evictions_unlogged += 1
        self._log_evictions(now)

    def _log_evictions(self, now: int, *, force: bool = False) -> None:
        if not self._evictions_unlogged:
            return
        last = self._eviction_logged_ms
        if not force and last is not None and now - last < _EVICTION_LOG_INTERVAL_MS:
            return
        oldest = self._oldest_ms()
        log.info(
            "delivery log full: oldest message receipts evicted",
            evicted=self._evictions_unlogged,
            evicted_total=self.evicted,
            max_keys=self.limits.max_keys,
            oldest_kept_age_s=None if oldest is None else round((now - oldest) / 1000, 1),
        )
        self._evictions_unlogged = 0
        self._eviction_logged_ms = now

    def _oldest_ms(self) -> int | None:
        for receipt in self._order:
            if receipt.group.holds(receipt):
                return receipt.written_at
        return None

    def sweep(self) -> int:
        """Drop message receipts older than the retention, and groups left with no message.

        Runs by itself every ``sweep_interval_s`` once the topic is read; returns how many
        message receipts it dropped.
        """
        now = self._clock()
        dropped = 0
        while self._pop_oldest(now - self._retention_ms) is not None:
            dropped += 1
        self.expired += dropped
        # A group receipt arrives before its messages only when they are on a partition not
        # read as far yet: a sweep interval later, one still alone is of a group gone by.
        for msg_grp_id in self._orphans_older:
            group = self._groups.get(msg_grp_id)
            if group is not None and group._messages is None:
                del self._groups[msg_grp_id]
        self._orphans_older, self._orphans = self._orphans, set()
        self._log_evictions(now)
        self._next_sweep_ms = now + int(self.limits.sweep_interval_s * 1000)
        return dropped

    def _topic_read(self) -> None:
        """The topic is read to its end: order by age, drop what is too old or alone."""
        self._order = deque(
            sorted(
                (r for r in self._order if r.group.holds(r)), key=lambda receipt: receipt.written_at
            )
        )
        self._replaced = 0
        self._orphans_older |= self._orphans
        self._orphans = set()
        self.sweep()
        self._log_evictions(self._clock(), force=True)
        self._read = True
        log.info(
            "delivery log read",
            topic=self.topic.name,
            message_receipts=self._held,
            groups=len(self._groups),
            expired=self.expired,
            evicted=self.evicted,
            retention_days=self.limits.retention_days,
            max_keys=self.limits.max_keys,
        )

    def get(self, key: str) -> Receipt | None:
        """The latest committed receipt under ``key`` still held."""
        if key.startswith("msg:"):
            msg_grp_id, _, serial = key[4:].rpartition("/")
            group = self._groups.get(msg_grp_id)
            if group is None or not serial.isdigit():
                return None
            return group.messages.get(int(serial))
        if key.startswith("group:"):
            group = self._groups.get(key[6:])
            return None if group is None else group.receipt
        return None

    @property
    def entries(self) -> int:
        """Message receipts held."""
        return self._held

    def groups(self) -> list[GroupState]:
        """Every group the watcher may still write a receipt for: with at least one
        committed message held and no GROUP_COMPLETE receipt."""
        return list(self._open.values())

    def group(self, msg_grp_id: str) -> GroupState | None:
        """One group's state."""
        return self._groups.get(msg_grp_id)

    def counts(self) -> dict[str, int]:
        """Receipts held, by status (for metrics)."""
        totals: dict[str, int] = defaultdict(int)
        for group in self._groups.values():
            for receipt in group.messages.values():
                totals[receipt["status"]] += 1
            if group.receipt is not None:
                totals[group.receipt["status"]] += 1
        return dict(totals)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
