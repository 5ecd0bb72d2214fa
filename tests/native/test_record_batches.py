"""Native Kafka record batches are aiokafka's, byte for byte.

``ivmtr_native.RecordBatches`` builds v2 record batches without the GIL; aiokafka's
accumulator then sends each ``NativeBatch`` as it would its own ``BatchBuilder``. For the
same records and timestamps the bytes must be what aiokafka's ``DefaultRecordBatchBuilder``
writes (its Cython builder, the one aiokafka uses, and its pure-Python one), events must
go to Kafka's default partition of their key, and a ``NativeBatch`` must behave as
aiokafka's ``MessageAccumulator`` expects.

A batch is sealed where aiokafka's pure-Python builder (and Kafka's Java producer) refuses
a record: when it would take the batch past the bound. aiokafka 0.14's Cython builder
refuses one byte earlier (``pos + size >= batch_size``): a record that would fill the
batch exactly to the bound. Only where batches end can differ, never their bytes.
"""

from __future__ import annotations

import asyncio
import inspect
import struct
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder, MessageAccumulator
from aiokafka.producer.transaction_manager import TransactionManager
from aiokafka.record import default_records
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.core.campaigns import CampaignRule
from consumer.core.enrich import Provenance
from consumer.core.fastpath import ScanFastPath
from consumer.ingest.routing import scan_topics
from consumer.service import record_shapes
from consumer.simulator.generate import MailingSpec, generate_records
from producer.topics import TopicTable
from tests.samples import LDE_JSON, PIECE_JSON

NATIVE = pytest.importorskip("ivmtr_native")

Headers = list[tuple[str, bytes]]
#: (key, value, headers, timestamp in ms)
Record = tuple[bytes | None, bytes, Headers, int]
#: (producer id, producer epoch, base sequence), or None for aiokafka's defaults
State = tuple[int, int, int] | None

HEADER = 61
CYTHON = DefaultRecordBatchBuilder
PYTHON = default_records._DefaultRecordBatchBuilderPy
# Times around now, one far earlier (a negative delta), one far later, and 0.
TIMESTAMPS = [
    1_700_000_000_000,
    1_700_000_000_001,
    1_700_000_000_999,
    1_700_000_060_000,
    1_699_999_999_000,
    1_000_000_000_000,
    4_102_444_800_000,
    0,
]


def native_batches(
    records: Sequence[Record],
    *,
    max_bytes: int,
    transactional: bool,
    state: State,
    partitions: int = 1,
    partition: int = 0,
) -> list[bytes]:
    """The native batches of records appended to one partition, built."""
    batches = NATIVE.RecordBatches(
        partitions=[partitions], max_batch_bytes=max_bytes, transactional=transactional
    )
    taken = []
    for key, value, headers, timestamp in records:
        batches.append(0, partition, key, value, headers, timestamp)
        taken += batches.sealed()
    taken += batches.drain()
    assert len(batches) == 0
    built = []
    for topic, at, batch in taken:
        assert (topic, at) == (0, partition)
        if state is not None:
            batch._set_producer_state(*state)
        data = batch._build()
        assert type(data) is bytes
        assert batch.size() == len(data)
        built.append(data)
    return built


def aiokafka_batches(
    builder_class: Any,
    records: Sequence[Record],
    *,
    max_bytes: int,
    transactional: bool,
    state: State,
) -> list[bytes]:
    """What aiokafka's builder gives: a new batch whenever the open one refuses a record."""
    built: list[bytes] = []
    builder = None
    offset = 0

    def finish(builder: Any) -> None:
        if state is not None:
            builder.set_producer_state(*state)
        built.append(bytes(builder.build()))

    for key, value, headers, timestamp in records:
        if builder is not None:
            if builder.append(offset, timestamp, key, value, headers) is not None:
                offset += 1
                continue
            finish(builder)
        builder = builder_class(
            magic=2,
            compression_type=0,
            is_transactional=transactional,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=0,
            batch_size=max_bytes,
        )
        assert builder.append(0, timestamp, key, value, headers) is not None
        offset = 1
    if builder is not None:
        finish(builder)
    return built


def aiokafka_groups(
    builder_class: Any,
    records: Sequence[Record],
    native: Sequence[bytes],
    *,
    transactional: bool,
    state: State,
) -> list[bytes]:
    """aiokafka's builder fed the records of each native batch (no bound)."""
    built = []
    start = 0
    for data in native:
        count = struct.unpack_from(">i", data, HEADER - 4)[0]
        built += aiokafka_batches(
            builder_class,
            records[start : start + count],
            max_bytes=1 << 30,
            transactional=transactional,
            state=state,
        )
        start += count
    assert start == len(records)
    return built


def parsed(data: bytes) -> tuple[DefaultRecordBatch, list[Any]]:
    batch = DefaultRecordBatch(data)
    assert batch.validate_crc()
    return batch, list(batch)


HEADERS = st.lists(
    st.tuples(st.text(max_size=8), st.binary(max_size=24)),
    max_size=5,
)
VALUES = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=60, max_size=3000),
    st.integers(8000, 70_000).map(lambda size: bytes(range(256)) * (size // 256)),
)
RECORDS = st.lists(
    st.tuples(
        st.none() | st.binary(max_size=40),
        VALUES,
        HEADERS,
        st.sampled_from(TIMESTAMPS) | st.integers(0, 2**45),
    ),
    min_size=1,
    max_size=40,
)
STATES = st.none() | st.tuples(
    st.integers(-1, 2**63 - 1), st.integers(-1, 2**15 - 1), st.integers(-1, 2**31 - 1)
)
BOUNDS = st.integers(0, 12_000) | st.sampled_from([16_384, 1 << 20])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS, st.booleans(), STATES, BOUNDS)
def test_batches_are_aiokafkas_bytes(
    records: list[Record], transactional: bool, state: State, max_bytes: int
) -> None:
    native = native_batches(records, max_bytes=max_bytes, transactional=transactional, state=state)
    python = aiokafka_batches(
        PYTHON, records, max_bytes=max_bytes, transactional=transactional, state=state
    )
    assert [len(data) for data in native] == [len(data) for data in python]
    assert native == python
    cython = aiokafka_groups(CYTHON, records, native, transactional=transactional, state=state)
    assert native == cython
    # Every record comes back, in order, with its key, value, headers and timestamp.
    read = []
    for data in native:
        batch, batch_records = parsed(data)
        assert batch.is_transactional is transactional
        assert batch.compression_type == 0 and batch.timestamp_type == 0
        producer = (batch.producer_id, batch.producer_epoch, batch.base_sequence)
        assert producer == (state or (-1, -1, 0))
        assert [record.offset for record in batch_records] == list(range(len(batch_records)))
        assert batch.last_offset_delta == len(batch_records) - 1
        assert batch.first_timestamp == batch_records[0].timestamp
        assert batch.max_timestamp == max(record.timestamp for record in batch_records)
        read += [
            (record.key, record.value, record.headers, record.timestamp) for record in batch_records
        ]
    assert read == [tuple(record) for record in records]


def test_the_header_fields_sit_where_kafka_reads_them() -> None:
    records: list[Record] = [
        (b"k", b"v" * 10, [("h", b"x")], 1_700_000_000_005),
        (None, b"", [], 1_700_000_000_002),
    ]
    (data,) = native_batches(records, max_bytes=1 << 20, transactional=True, state=(4242, 7, 99))
    fields = struct.unpack(">qiibIhiqqqhii", data[:HEADER])
    assert fields[:4] == (0, len(data) - 12, -1, 2)  # base offset, length, leader epoch, magic
    assert fields[5:] == (
        0x10,  # transactional, CreateTime, not compressed
        1,  # last offset delta
        1_700_000_000_005,  # first timestamp
        1_700_000_000_005,  # max timestamp (the second record is earlier)
        4242,
        7,
        99,
        2,  # records
    )
    assert fields[4] == DefaultRecordBatch(data).crc
    parsed(data)  # its CRC validates
    # A flipped bit anywhere after the CRC is caught by it.
    broken = bytearray(data)
    broken[-1] ^= 1
    assert not DefaultRecordBatch(bytes(broken)).validate_crc()


def test_a_batch_fills_exactly_to_the_bound_and_not_a_byte_past_it() -> None:
    records: list[Record] = [
        (f"key{n}".encode(), bytes([n]) * (20 * n), [("n", b"x")] * (n % 3), 1_000 + n)
        for n in range(12)
    ]
    # The size of one batch of the first k records, for every k.
    sizes = [
        len(native_batches(records[:k], max_bytes=1 << 20, transactional=False, state=None)[0])
        for k in range(1, len(records) + 1)
    ]
    for k, size in enumerate(sizes, start=1):
        for bound, batches in ((size, 1), (size - 1, 1 if k == 1 else 2), (size + 1, 1)):
            native = native_batches(records[:k], max_bytes=bound, transactional=False, state=None)
            python = aiokafka_batches(
                PYTHON, records[:k], max_bytes=bound, transactional=False, state=None
            )
            assert native == python
            cython = aiokafka_groups(CYTHON, records[:k], native, transactional=False, state=None)
            assert native == cython
            assert len(native) == batches, (k, bound)
            if batches == 2:
                assert len(native[0]) <= bound
                assert DefaultRecordBatch(native[0]).last_offset_delta == k - 2


class PartitionBatch:
    """aiokafka's ``BatchBuilder`` over the pure-Python record batch builder."""

    def __init__(self, max_bytes: int, transactional: bool) -> None:
        self._builder = PYTHON(2, 0, transactional, -1, -1, 0, max_bytes)
        self.count = 0

    def append(self, key: bytes, value: bytes, headers: Headers, timestamp: int) -> bool:
        if self._builder.append(self.count, timestamp, key, value, headers) is None:
            return False
        self.count += 1
        return True

    def build(self) -> bytes:
        return bytes(self._builder.build())


# Operations on a RecordBatches of two topics (3 and 2 partitions): (topic, partition,
# value size).
OPERATIONS = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 400)), max_size=120
)


@settings(max_examples=150, deadline=None)
@given(OPERATIONS, st.integers(0, 1500), st.booleans())
def test_sealing_and_drain_order(
    operations: list[tuple[int, int, int]], max_bytes: int, transactional: bool
) -> None:
    partitions = [3, 2]
    batches = NATIVE.RecordBatches(
        partitions=partitions, max_batch_bytes=max_bytes, transactional=transactional
    )
    # aiokafka's accumulator, one batch per partition: a refused record closes it.
    open_builders: dict[tuple[int, int], PartitionBatch] = {}
    expected: list[tuple[int, int, int, bytes]] = []
    taken: list[tuple[int, int, int, bytes]] = []
    appended = 0

    def seal(topic: int, partition: int, builder: PartitionBatch) -> None:
        expected.append((topic, partition, builder.count, builder.build()))

    def take(sealed: list[tuple[int, int, Any]]) -> None:
        for topic, partition, batch in sealed:
            taken.append((topic, partition, batch.record_count(), batch._build()))

    for number, (topic, partition, size) in enumerate(operations):
        partition %= partitions[topic]
        key = f"key-{number}".encode()
        value = bytes([number % 256]) * size
        headers = [("n", str(number).encode())] if number % 3 else []
        timestamp = 1_700_000_000_000 + number
        batches.append(topic, partition, key, value, headers, timestamp)
        appended += 1
        tp = (topic, partition)
        builder = open_builders.get(tp)
        if builder is not None:
            if builder.append(key, value, headers, timestamp):
                continue
            seal(topic, partition, builder)
        builder = PartitionBatch(max_bytes, transactional)
        assert builder.append(key, value, headers, timestamp)
        open_builders[tp] = builder
        if number % 7 == 0:
            # Taking sealed batches out now and then changes nothing but what is left.
            take(batches.sealed())
            assert len(batches) == appended - sum(count for _, _, count, _ in taken)
    take(batches.sealed())
    assert taken == expected
    assert len(batches) == sum(builder.count for builder in open_builders.values())
    assert batches.sealed() == []
    # drain: every open batch, by topic then partition.
    for tp in sorted(open_builders):
        seal(*tp, open_builders[tp])
    take(batches.drain())
    assert taken == expected
    assert len(batches) == 0
    assert batches.drain() == []
    assert sum(count for _, _, count, _ in taken) == len(operations)


def test_drain_takes_the_sealed_batches_before_the_open_ones() -> None:
    batches = NATIVE.RecordBatches(partitions=[2, 2], max_batch_bytes=150, transactional=False)
    for topic, partition in [(1, 1), (1, 1), (0, 0), (0, 1), (0, 1), (1, 0)]:
        batches.append(topic, partition, None, b"v" * 60, [], 0)  # two do not fit in one
    assert len(batches) == 6
    order = [
        (topic, partition, batch.record_count()) for topic, partition, batch in batches.drain()
    ]
    assert order == [(1, 1, 1), (0, 1, 1), (0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1)]


def test_bad_topics_partitions_and_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        NATIVE.RecordBatches(partitions=[3, 0], max_batch_bytes=100, transactional=False)
    with pytest.raises(ValueError, match="i32"):
        NATIVE.RecordBatches(partitions=[3], max_batch_bytes=2**31, transactional=False)
    batches = NATIVE.RecordBatches(partitions=[3, 1], max_batch_bytes=100, transactional=False)
    for topic, partition in [(0, 3), (1, 1), (2, 0)]:
        with pytest.raises(ValueError, match="out of range"):
            batches.append(topic, partition, b"k", b"v", [], 0)
    with pytest.raises(TypeError):
        batches.append(0, 0, "text key", b"v", [], 0)
    # Headers as the Python path gives them: a tuple of pairs.
    batches.append(0, 2, b"k", b"v", (("a", b"1"), ("b", b"2")), 0)
    ((_, _, batch),) = batches.drain()
    assert parsed(batch._build())[1][0].headers == [("a", b"1"), ("b", b"2")]


# --- events of a run, routed by kind ---------------------------------------------------

TOPICS = TopicTable.build()
SCHEMAS = {kind: topic.schema for kind, topic in scan_topics(TOPICS).items()}
FAST = ScanFastPath.build(NATIVE, record_shapes(), SCHEMAS, max_string_length=100)
PROVENANCE = Provenance(
    feed="rb", msg_grp_id="G-9", msg_ser_nbr=3, received_at_ms=1_700_000_000_000, campaign="c"
)
RULES = (CampaignRule("by-mailer", mailer_ids=frozenset({"902345678"})),)
KIND_NAMES = [b"piece", b"bundle", b"handling_unit", b"container"]
PARTITIONS = [12, 5, 3, 1]
# The Avro framing header of each kind's topic: magic byte 0, then a schema id.
ROUTES = [
    (kind, b"\x00" + struct.pack(">I", 100 + kind), [("kind", KIND_NAMES[kind]), ("src", b"ivmtr")])
    for kind in range(4)
]


def run_of_a_mailing(pieces: int, seed: int) -> tuple[Any, list[tuple[int, str, bytes]]]:
    spec = MailingSpec(pieces=pieces, seed=seed, bundles=True, flats_share=0.5)
    raws = [orjson.dumps(record) for record in generate_records(spec)]
    raws += [PIECE_JSON, LDE_JSON]
    run, taken = FAST.message(PROVENANCE, kind=None, rules=RULES).encode_run(
        raws, list(range(len(raws)))
    )
    assert taken == len(raws) == len(run)
    assert all(run.kind_counts())  # every kind is there
    return run, run.records()


def test_events_go_to_kafkas_default_partition_of_their_key() -> None:
    run, records = run_of_a_mailing(pieces=120, seed=4)
    batches = NATIVE.RecordBatches(partitions=PARTITIONS, max_batch_bytes=4096, transactional=False)
    timestamp = 1_700_000_000_777
    batches.append_run(run, ROUTES, timestamp)
    assert len(batches) == len(records)
    taken = batches.sealed()
    assert taken  # 4 KiB batches: the pieces' topic fills several
    taken += batches.drain()
    java_default = DefaultPartitioner()
    placed: dict[tuple[int, int], list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for topic, partition, batch in taken:
        data = batch._build()
        assert batch.size() == len(data) and (len(data) <= 4096 or batch.record_count() == 1)
        header, batch_records = parsed(data)
        assert header.first_timestamp == header.max_timestamp == timestamp
        count = PARTITIONS[topic]
        for record in batch_records:
            assert record.key is not None
            assert partition == (murmur2(record.key) & 0x7FFFFFFF) % count
            assert partition == java_default(record.key, list(range(count)), list(range(count)))
            assert partition == NATIVE.key_hash(record.key) % count
            assert record.headers == ROUTES[topic][2]
            assert record.timestamp == timestamp
            placed[topic, partition].append((record.key, record.value))
    # Each partition has its events in run order, the value the route's prefix + body.
    expected: dict[tuple[int, int], list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for kind, key, body in records:
        partition = (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS[kind]
        expected[kind, partition].append((key.encode(), ROUTES[kind][1] + body))
    assert placed == expected
    assert len({partition for _, partition in placed}) > 3  # spread over partitions


def test_a_run_makes_the_batches_its_records_appended_one_by_one_make() -> None:
    run, records = run_of_a_mailing(pieces=60, seed=8)
    for transactional in (False, True):
        whole = NATIVE.RecordBatches(
            partitions=PARTITIONS, max_batch_bytes=2000, transactional=transactional
        )
        one_by_one = NATIVE.RecordBatches(
            partitions=PARTITIONS, max_batch_bytes=2000, transactional=transactional
        )
        whole.append_run(run, ROUTES, 5)
        for kind, key, body in records:
            topic, prefix, headers = ROUTES[kind]
            partition = NATIVE.key_hash(key.encode()) % PARTITIONS[topic]
            one_by_one.append(topic, partition, key.encode(), prefix + body, headers, 5)

        def built(batches: Any) -> list[tuple[int, int, bytes]]:
            taken = batches.sealed() + batches.drain()
            return [(topic, partition, batch._build()) for topic, partition, batch in taken]

        assert built(whole) == built(one_by_one)


def test_a_run_is_appended_whole_or_not_at_all() -> None:
    run, _ = run_of_a_mailing(pieces=5, seed=1)
    batches = NATIVE.RecordBatches(partitions=[2, 2], max_batch_bytes=4096, transactional=False)
    with pytest.raises(ValueError, match="out of range"):
        batches.append_run(run, [(0, b"", []), (1, b"", []), (2, b"", []), (0, b"", [])], 0)
    with pytest.raises(ValueError, match="no route for kind"):
        batches.append_run(run, [(0, b"", []), (1, b"", [])], 0)
    assert len(batches) == 0 and batches.drain() == []


# --- what aiokafka's accumulator does with a NativeBatch -------------------------------


def one_native_batch(records: Sequence[Record], transactional: bool = False) -> Any:
    batches = NATIVE.RecordBatches(
        partitions=[4], max_batch_bytes=1 << 20, transactional=transactional
    )
    for key, value, headers, timestamp in records:
        batches.append(0, 3, key, value, headers, timestamp)
    ((topic, partition, batch),) = batches.drain()
    assert (topic, partition) == (0, 3)
    return batch


RECORDS_10: list[Record] = [
    (f"k{n}".encode(), b"v" * n, [("n", bytes([n]))], 1_700_000_000_000 + n) for n in range(10)
]


def test_a_native_batch_is_closed_and_built_once() -> None:
    batch = one_native_batch(RECORDS_10)
    assert batch.closed() is True
    batch.close()
    assert batch.closed() is True
    assert batch.record_count() == 10
    assert batch.append(timestamp=None, key=b"k", value=b"v") is None
    assert batch.append(timestamp=1, key=None, value=b"v", headers=[("a", b"b")]) is None
    assert batch.record_count() == 10
    size = batch.size()
    batch._set_producer_state(1, 2, 3)
    data = batch._build()
    assert batch._build() is data  # cached: retries send the same bytes
    assert batch.size() == size == len(data)
    assert batch.record_count() == 10
    with pytest.raises(RuntimeError, match="built"):
        batch._set_producer_state(1, 2, 4)
    assert batch._build() is data
    header, records = parsed(data)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (1, 2, 3)
    assert [record.key for record in records] == [key for key, _, _, _ in RECORDS_10]


def test_a_native_batch_is_built_as_aiokafkas_batch_builder() -> None:
    for transactional in (False, True):
        for state in (None, (77, 0, 12)):
            native = one_native_batch(RECORDS_10, transactional)
            builder = aiokafka_batch_builder(1 << 20, transactional)
            for key, value, headers, timestamp in RECORDS_10:
                builder.append(timestamp=timestamp, key=key, value=value, headers=headers)
            if state is not None:
                native._set_producer_state(*state)
                builder._set_producer_state(*state)
            assert native.record_count() == builder.record_count()
            assert native.size() == builder.size()
            assert native._build() == bytes(builder._build())


def aiokafka_batch_builder(batch_size: int, transactional: bool) -> BatchBuilder:
    """aiokafka's own BatchBuilder; 0.12 takes the record format (magic) first."""
    if "magic" in inspect.signature(BatchBuilder).parameters:
        return BatchBuilder(2, batch_size, 0, is_transactional=transactional)
    return BatchBuilder(batch_size, 0, is_transactional=transactional)


class _OneBroker:
    """The cluster metadata the accumulator asks: every partition's leader is broker 0."""

    def leader_for_partition(self, tp: TopicPartition) -> int:
        return 0


async def test_aiokafkas_accumulator_sends_a_native_batch_and_opens_its_own_after() -> None:
    # An idempotent producer: the accumulator sets the producer state as it pops a batch.
    txn = TransactionManager(transactional_id=None, transaction_timeout_ms=60_000)
    txn.set_pid_and_epoch(4242, 7)
    accumulator = MessageAccumulator(_OneBroker(), 16_384, 0, 30, txn_manager=txn)
    if hasattr(accumulator, "set_api_version"):
        accumulator.set_api_version((2, 1))  # aiokafka 0.12 picks the format by version
    tp = TopicPartition("ivmtr.piece", 3)
    native = one_native_batch(RECORDS_10)
    delivered = await accumulator.add_batch(native, tp, timeout=5)

    # Another record for the same partition while the native batch is queued there: the
    # batch refuses it, so aiokafka waits for it to drain and then opens its own.
    send = asyncio.create_task(
        accumulator.add_message(tp, b"late", b"value", timeout=5, timestamp_ms=1_700_000_001_000)
    )
    await asyncio.sleep(0.01)
    assert not send.done()

    nodes, unknown_leaders = accumulator.drain_by_nodes(ignore_nodes=[])
    assert not unknown_leaders
    sent = nodes[0][tp]
    assert sent.record_count == 10
    data = sent.get_data_buffer()
    assert data is native._build()
    header, records = parsed(data)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (4242, 7, 0)
    assert len(records) == 10
    assert txn.sequence_number(tp) == 10

    late = await asyncio.wait_for(send, 5)
    nodes, _ = accumulator.drain_by_nodes(ignore_nodes=[])
    own = nodes[0][tp]
    assert not isinstance(own._builder, type(native))
    header, records = parsed(bytes(own.get_data_buffer()))
    assert header.base_sequence == 10  # continues after the native batch's records
    assert [(record.key, record.value) for record in records] == [(b"late", b"value")]

    sent.done(base_offset=100)
    own.done(base_offset=110)
    assert (await delivered).offset == 100
    assert (await late).offset == 110
