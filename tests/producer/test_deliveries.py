"""Tests for producer.deliveries.

Against the real broker: a restarted publisher knows the receipts committed before, in
either wire format its deliveries topic writes, and only those the retention and the cap
let it keep. In memory: what the log keeps of each receipt answers a re-send as the whole
receipt did and judges groups the same; receipts older than the retention go (when applied
and by the sweep), and past the cap the oldest go first.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from typing import Any

import pytest
from structlog.testing import capture_logs

from consumer.core.groups import judge_group
from producer.admin import TopicSpec, ensure_topics
from producer.deliveries import DeliveryLog, DeliveryLogLimits, group_key, message_key
from producer.kafka import KafkaConfig
from producer.publisher import Publisher
from producer.topics import TopicTable
from producer.wire import SingleObjectDecoder
from tests.integration.conftest import BOOTSTRAP, require_broker


def receipt(status: str) -> dict[str, Any]:
    """A message receipt as consumer.ingest.message writes it."""
    return {
        "kind": "MESSAGE",
        "status": status,
        "feed": "f",
        "msg_grp_id": "G",
        "msg_ser_nbr": 1,
        "tot_msg_cnt": 1,
        "rec_cnt": None,
        "tot_rec_cnt": None,
        "records_received": 3,
        "records_rejected": 0,
        "published": {},
        "content_sha256": None if status == "STARTED" else "0" * 64,
        "messages_received": [],
        "problems": [],
        "replica": "0",
        "written_at": _now_ms(),  # a receipt older than the retention would not be kept
    }


async def publish_receipt(topics: TopicTable, key: str) -> None:
    publisher = Publisher(
        KafkaConfig(bootstrap_servers=BOOTSTRAP), topics, transactional_id_prefix="test"
    )
    async with publisher, publisher.delivery(key, receipt("STARTED")) as delivery:
        assert delivery.prior is None
        published = receipt("PUBLISHED")
        await delivery.add(topics.deliveries.message(key, published, partition=delivery.slot))
        delivery.receipt = published


@pytest.mark.kafka
@pytest.mark.parametrize("registry_ids", [False, True], ids=["single-object", "confluent"])
async def test_a_restarted_publisher_knows_the_receipts_committed_before(
    registry_ids: bool,
) -> None:
    require_broker()
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    # Any id frames the same way; the broker never asks a registry.
    ids = {f"{prefix}deliveries": 41} if registry_ids else None
    topics = TopicTable.build(prefix, registry_ids=ids)
    await ensure_topics(
        BOOTSTRAP,
        [TopicSpec(topic.name, 1) for topic in topics if topic is not topics.deliveries]
        + [TopicSpec(topics.deliveries.name, 2, 1, (("cleanup.policy", "compact"),))],
    )
    key = "msg:G/1"
    await publish_receipt(topics, key)

    async with Publisher(
        KafkaConfig(bootstrap_servers=BOOTSTRAP),
        TopicTable.build(prefix, registry_ids=ids),
        transactional_id_prefix="test",
    ) as restarted:
        known = restarted.log.get(key)
        assert restarted.log.failure is None
    assert known is not None
    assert (known["status"], known["content_sha256"]) == ("PUBLISHED", "0" * 64)


# -- retention and the cap, in memory --------------------------------------------------------

DAY_MS = 86_400_000
NOW_MS = 1_800_000_000_000
TOPICS = TopicTable.build("t.")


class Clock:
    """A clock the test moves (epoch ms)."""

    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def bounded_log(clock: Clock, **limits: Any) -> DeliveryLog:
    """A delivery log never started: receipts go in by ``apply``, as committed ones do."""
    return DeliveryLog("127.0.0.1:1", TOPICS.deliveries, DeliveryLogLimits(**limits), clock=clock)


def message_receipt(
    msg_grp_id: str,
    msg_ser_nbr: int = 1,
    *,
    written_at: int,
    status: str = "PUBLISHED",
    body: bytes = b"",
    tot_msg_cnt: int | None = 1,
    tot_rec_cnt: int | None = None,
    records: int = 3,
    rejected: int = 0,
    published: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A final message receipt as consumer.ingest.message writes it."""
    return {
        "kind": "MESSAGE",
        "status": status,
        "feed": "f",
        "msg_grp_id": msg_grp_id,
        "msg_ser_nbr": msg_ser_nbr,
        "tot_msg_cnt": tot_msg_cnt,
        "rec_cnt": records,
        "tot_rec_cnt": tot_rec_cnt,
        "records_received": records,
        "records_rejected": rejected,
        "published": {"t.piece-scans": records} if published is None else published,
        "content_sha256": hashlib.sha256(
            body or f"{msg_grp_id}/{msg_ser_nbr}".encode()
        ).hexdigest(),
        "messages_received": [],
        "problems": ["a problem"] if rejected else [],
        "replica": "0",
        "written_at": written_at,
    }


def group_receipt(msg_grp_id: str, status: str, *, written_at: int) -> dict[str, Any]:
    """A group receipt as consumer.ingest.group_watch writes it."""
    return {
        **message_receipt(msg_grp_id, written_at=written_at),
        "kind": "GROUP",
        "status": status,
        "msg_ser_nbr": None,
        "rec_cnt": None,
        "content_sha256": None,
        "messages_received": [1],
    }


def put(log: DeliveryLog, receipt: dict[str, Any]) -> None:
    if receipt["kind"] == "GROUP":
        log.apply(group_key(receipt["msg_grp_id"]), receipt)
    else:
        log.apply(message_key(receipt["msg_grp_id"], receipt["msg_ser_nbr"]), receipt)


def test_a_receipt_older_than_the_retention_is_not_kept_when_applied() -> None:
    log = bounded_log(Clock(), retention_days=30)
    put(log, message_receipt("OLD", written_at=NOW_MS - 31 * DAY_MS))
    put(log, message_receipt("RECENT", written_at=NOW_MS - 29 * DAY_MS))
    assert log.get(message_key("OLD", 1)) is None
    assert log.group("OLD") is None
    assert log.get(message_key("RECENT", 1)) is not None
    assert (log.entries, log.expired, log.evicted) == (1, 1, 0)
    assert [group.msg_grp_id for group in log.groups()] == ["RECENT"]


def test_the_sweep_drops_receipts_that_grew_older_than_the_retention() -> None:
    clock = Clock()
    log = bounded_log(clock, retention_days=30)
    put(log, message_receipt("A", written_at=NOW_MS - 29 * DAY_MS))
    put(log, group_receipt("A", "GROUP_COMPLETE", written_at=NOW_MS - 29 * DAY_MS))
    put(log, message_receipt("B", 1, written_at=NOW_MS - 29 * DAY_MS, tot_msg_cnt=2))
    put(log, message_receipt("B", 2, written_at=NOW_MS - DAY_MS, tot_msg_cnt=2))
    put(log, message_receipt("C", written_at=NOW_MS - DAY_MS))
    assert log.sweep() == 0 and log.entries == 4
    clock.now_ms += 2 * DAY_MS
    assert log.sweep() == 2
    # A's message and so A itself, group receipt and all; B's first message, not B.
    assert log.get(message_key("A", 1)) is None and log.get(group_key("A")) is None
    assert log.group("A") is None
    assert log.get(message_key("B", 1)) is None
    group = log.group("B")
    assert group is not None and list(group.messages) == [2]
    assert log.get(message_key("C", 1)) is not None
    assert (log.entries, log.expired) == (2, 2)
    assert sorted(group.msg_grp_id for group in log.groups()) == ["B", "C"]


def test_past_the_cap_the_oldest_are_evicted_and_the_log_says_so() -> None:
    clock = Clock()
    log = bounded_log(clock, max_keys=3)
    with capture_logs() as lines:
        for n in range(1, 6):
            clock.now_ms += 1000
            put(log, message_receipt(f"G{n}", written_at=clock.now_ms))
    assert [log.get(message_key(f"G{n}", 1)) is not None for n in range(1, 6)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert [log.group(f"G{n}") is not None for n in range(1, 6)] == [False, False, True, True, True]
    assert (log.entries, log.evicted, log.expired) == (3, 2, 0)
    # One line at the first eviction, then at most one a minute with the count since.
    (line,) = [entry for entry in lines if entry["event"].startswith("delivery log full")]
    assert line["log_level"] == "info"
    assert (line["evicted"], line["evicted_total"], line["max_keys"]) == (1, 1, 3)
    clock.now_ms += 61_000
    with capture_logs() as lines:
        put(log, message_receipt("G6", written_at=clock.now_ms))
    (line,) = [entry for entry in lines if entry["event"].startswith("delivery log full")]
    assert (line["evicted"], line["evicted_total"]) == (2, 3)
    assert log.get(message_key("G3", 1)) is None and log.entries == 3


def test_a_replaced_receipt_is_one_key_and_is_evicted_once() -> None:
    clock = Clock()
    log = bounded_log(clock, max_keys=2)
    put(log, message_receipt("A", written_at=NOW_MS - 10))
    put(log, message_receipt("A", written_at=NOW_MS - 9, status="CONFLICT", body=b"other"))
    prior = log.get(message_key("A", 1))
    assert prior is not None and prior["status"] == "CONFLICT"
    assert prior["content_sha256"] == hashlib.sha256(b"other").hexdigest()
    assert log.entries == 1
    put(log, message_receipt("B", written_at=NOW_MS - 8))
    assert (log.entries, log.evicted) == (2, 0)
    put(log, message_receipt("C", written_at=NOW_MS - 7))
    assert (log.entries, log.evicted) == (2, 1)
    assert log.get(message_key("A", 1)) is None
    assert log.get(message_key("B", 1)) is not None and log.get(message_key("C", 1)) is not None


def test_a_kept_receipt_answers_a_resend_as_the_whole_receipt_did() -> None:
    log = bounded_log(Clock())
    published = {"t.piece-scans": 7, "t.dead-letters": 1}
    own = message_receipt("OWN", written_at=NOW_MS, records=8, rejected=1, published=published)
    put(log, own)
    # The same from the topic, as a restarted replica reads it (written_at a datetime there).
    decode = SingleObjectDecoder([TOPICS.deliveries.schema])
    read = message_receipt("READ", written_at=NOW_MS, records=8, rejected=1, published=published)
    decoded = decode(TOPICS.deliveries.message(message_key("READ", 1), read).value)
    assert not isinstance(decoded["written_at"], int)
    put(log, decoded)
    for whole in (own, read):
        prior = log.get(message_key(whole["msg_grp_id"], 1))
        assert prior is not None
        # What consumer.ingest.message reads of a prior receipt.
        assert prior["content_sha256"] == whole["content_sha256"]
        assert dict(prior["published"]) == published
        assert prior["status"] == "PUBLISHED" and prior["written_at"] == NOW_MS
        kept = {name: whole[name] for name in prior}
        assert dict(prior) == kept
    # Equal published maps are one shared, read-only map.
    first, second = (log.get(message_key(g, 1)) for g in ("OWN", "READ"))
    assert first is not None and second is not None
    assert first["published"] is second["published"]
    with pytest.raises(TypeError):
        first["published"]["t.piece-scans"] = 0  # type: ignore[index]


def test_groups_are_judged_as_from_the_whole_receipts() -> None:
    clock = Clock()
    log = bounded_log(clock)
    complete = [
        message_receipt("DONE", n, written_at=NOW_MS + n, tot_msg_cnt=3, tot_rec_cnt=10)
        for n in (1, 2, 3)
    ]
    complete[2]["tot_rec_cnt"] = 9  # messages disagree: a problem in the verdict
    incomplete = [
        message_receipt("LATE", n, written_at=NOW_MS + n, tot_msg_cnt=3, records=5_000_000_000)
        for n in (1, 3)
    ]
    for receipt in complete + incomplete:
        put(log, receipt)
    now_ms = NOW_MS + 10_000
    for msg_grp_id, wholes in (("DONE", complete), ("LATE", incomplete)):
        group = log.group(msg_grp_id)
        assert group is not None
        assert group.first_seen_ms == NOW_MS + wholes[0]["msg_ser_nbr"]
        kept = judge_group(
            group.messages,
            group.receipt,
            first_seen_ms=group.first_seen_ms,
            now_ms=now_ms,
            timeout_ms=5_000,
        )
        whole = judge_group(
            {r["msg_ser_nbr"]: r for r in wholes},
            None,
            first_seen_ms=NOW_MS + 1,
            now_ms=now_ms,
            timeout_ms=5_000,
        )
        assert kept is not None and kept == whole
    assert sorted(group.msg_grp_id for group in log.groups()) == ["DONE", "LATE"]
    # A GROUP_COMPLETE receipt takes the group off the watcher's list; the group stays.
    put(log, group_receipt("DONE", "GROUP_COMPLETE", written_at=now_ms))
    assert [group.msg_grp_id for group in log.groups()] == ["LATE"]
    done = log.group("DONE")
    assert done is not None and done.receipt is not None
    assert done.receipt["status"] == "GROUP_COMPLETE"
    assert (
        judge_group(done.messages, done.receipt, first_seen_ms=0, now_ms=now_ms, timeout_ms=0)
        is None
    )
    receipt = log.get(group_key("DONE"))
    assert receipt is not None and receipt["status"] == "GROUP_COMPLETE"
    assert log.counts() == {"PUBLISHED": 5, "GROUP_COMPLETE": 1}


# -- against the broker -------------------------------------------------------------------------


async def deliveries_topic(partitions: int) -> TopicTable:
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    topics = TopicTable.build(prefix)
    await ensure_topics(
        BOOTSTRAP,
        [TopicSpec(topic.name, 1) for topic in topics if topic is not topics.deliveries]
        + [TopicSpec(topics.deliveries.name, partitions, 1, (("cleanup.policy", "compact"),))],
    )
    return topics


@pytest.mark.kafka
async def test_the_log_sweeps_by_itself_while_it_follows_the_topic() -> None:
    require_broker()
    topics = await deliveries_topic(1)
    clock = Clock(_now_ms())
    log = DeliveryLog(
        BOOTSTRAP,
        topics.deliveries,
        DeliveryLogLimits(retention_days=1, sweep_interval_s=0.05),
        clock=clock,
    )
    await log.start(30)
    try:
        put(log, message_receipt("G", written_at=clock.now_ms))
        await asyncio.sleep(0.5)
        assert log.get(message_key("G", 1)) is not None
        clock.now_ms += 2 * DAY_MS
        for _ in range(200):  # the follower wakes every 200 ms at most
            if log.get(message_key("G", 1)) is None:
                break
            await asyncio.sleep(0.05)
        assert (log.entries, log.expired) == (0, 1)
    finally:
        await log.stop()


@pytest.mark.kafka
async def test_a_restarted_publisher_keeps_the_recent_receipts_up_to_the_cap() -> None:
    require_broker()
    topics = await deliveries_topic(1)
    now_ms = _now_ms()
    ages_h = {"OLD": 40 * 24, "R1": 3, "R2": 2, "R3": 1}
    publisher = Publisher(
        KafkaConfig(bootstrap_servers=BOOTSTRAP), topics, transactional_id_prefix="test"
    )
    async with publisher:
        for msg_grp_id, age_h in ages_h.items():
            key = message_key(msg_grp_id, 1)
            final = message_receipt(msg_grp_id, written_at=now_ms - age_h * 3_600_000)
            started = {**final, "status": "STARTED", "content_sha256": None}
            async with publisher.delivery(key, started) as delivery:
                await delivery.add(topics.deliveries.message(key, final, partition=delivery.slot))
                delivery.receipt = final
        # The writer's own log applies what it commits, the retention too.
        assert (publisher.log.entries, publisher.log.expired) == (3, 1)

    with capture_logs() as lines:
        async with Publisher(
            KafkaConfig(bootstrap_servers=BOOTSTRAP),
            TopicTable.build(topics.deliveries.name.removesuffix("deliveries")),
            transactional_id_prefix="test",
            log_limits=DeliveryLogLimits(retention_days=30, max_keys=2),
        ) as restarted:
            known = {g: restarted.log.get(message_key(g, 1)) is not None for g in ages_h}
            counters = (restarted.log.entries, restarted.log.expired, restarted.log.evicted)
    assert known == {"OLD": False, "R1": False, "R2": True, "R3": True}
    assert counters == (2, 1, 1)
    (read,) = [line for line in lines if line["event"] == "delivery log read"]
    assert (read["message_receipts"], read["expired"], read["evicted"]) == (2, 1, 1)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
