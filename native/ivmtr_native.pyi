"""Types of the compiled fast path of ivmtr-stream (see native/src/lib.rs)."""

from collections.abc import Callable

def flat_records(buf: bytes, pos: int, max_record_bytes: int) -> tuple[list[bytes], int, bool]:
    """The flat records from ``buf[pos]`` on: (records, stop position, stopped after a record)."""

def key_hash(data: bytes) -> int:
    """Kafka's murmur2 of a key, masked to 31 bits (the default partitioner's hash)."""

class EncodedRun:
    """Scan events the native encoder took, in record order, held in native memory."""

    def __len__(self) -> int: ...
    def kind_counts(self) -> list[int]:
        """Events per kind index (0 piece, 1 bundle, 2 handling unit, 3 container): 4 ints."""
    def campaign_counts(self) -> dict[str, tuple[int, int]]:
        """campaign -> (events, logical deliveries) over events that have a campaign."""
    def records(self) -> list[tuple[int, str, bytes]]:
        """(kind, key, Avro body) of each event, in order: for callers that do not use
        RecordBatches."""

class MessageContext:
    def encode(self, raw: bytes, index: int) -> tuple[int, str, bytes, bool, str | None] | None:
        """(kind, key, Avro body, logical delivery, campaign), or None for the Python path."""
    def encode_many(
        self, raws: list[bytes], indexes: list[int]
    ) -> list[tuple[int, str, bytes, bool, str | None] | None]:
        """``encode`` of each record, computed without holding the GIL."""
    def encode_run(self, raws: list[bytes], indexes: list[int]) -> tuple[EncodedRun, int]:
        """Encode records from the first on, without holding the GIL, stopping at the first
        record the Python path must take. Returns the run and how many records it took
        (== len(run)); raws[taken] (if any) is the record for the Python path.

        A mailPhase not in the cache is asked of ``normalise_mail_phase`` holding the GIL, as
        ``encode_many`` does, and the run goes on; an exception it raises is raised here (the
        records encoded before it are dropped). ValueError when the lists differ in length.
        """
    def encode_flat(
        self, buf: bytes, pos: int, max_record_bytes: int, first_index: int
    ) -> tuple[EncodedRun, int, bool]:
        """Scan the flat records of ``events`` from ``buf[pos]`` on, as ``flat_records`` does,
        and encode each as ``encode_run`` does (record indexes from ``first_index`` on), in
        one call without the GIL and without a Python object per record.

        Stops at the first record the encoder leaves to the Python path (the returned
        position is that record's start, so the caller's parser takes it), at anything
        ``flat_records`` stops at, at ``]`` or at the buffer's end. Returns (the run, the stop
        position, whether it stopped right after a record rather than where a record should
        start), with ``flat_records``'s conventions. When the very first record is left, the
        run is empty and the position is ``pos`` (after_record False). A mailPhase not in
        the cache is asked of ``normalise_mail_phase`` holding the GIL and the run goes on;
        an exception it raises is raised here.
        """

class RecordBatches:
    """Open Kafka record batches (format v2, uncompressed), one per (topic index, partition).

    Byte for byte what aiokafka's ``DefaultRecordBatchBuilder`` (and so its ``BatchBuilder``)
    writes for the same records and timestamps. A batch is sealed when the next record would
    take it (61-byte header + records) past ``max_batch_bytes`` and it already holds one, as
    aiokafka's pure-Python builder and Kafka's Java producer refuse a record; the first
    record of a batch is always taken, however large. (aiokafka's Cython builder refuses a
    record that would fill its batch exactly to the bound too: only where batches end can
    differ from it.) Not for sharing between threads while a call runs.
    """

    def __init__(self, *, partitions: list[int], max_batch_bytes: int, transactional: bool) -> None:
        """``partitions[t]`` is topic index t's partition count (at least 1). ValueError for a
        count of 0 or a bound beyond an int32."""
    def append(
        self,
        topic: int,
        partition: int,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...],
        timestamp_ms: int,
    ) -> None:
        """One record (the Python path's). Seals the partition's open batch first when the
        record would not fit. ValueError for a topic index or partition out of range."""
    def append_run(
        self,
        run: EncodedRun,
        routes: list[tuple[int, bytes, list[tuple[str, bytes]]]],
        timestamp_ms: int,
    ) -> None:
        """Every event of ``run``, in order, without holding the GIL. ``routes[kind]`` is
        (topic index, value prefix, headers): the record value is prefix + Avro body (the
        prefix is the Avro framing header), the key is the event key's UTF-8, and the
        partition is Kafka's default: (murmur2(key) & 0x7fffffff) % partitions[topic].
        ValueError (nothing appended) for a route's topic out of range or an event whose
        kind has no route."""
    def sealed(self) -> list[tuple[int, int, NativeBatch]]:
        """The batches that filled up since the last call, as (topic index, partition,
        batch), in sealing order; taken out."""
    def drain(self) -> list[tuple[int, int, NativeBatch]]:
        """Every batch holding records: the sealed ones first, then every open one, sealed
        now, by topic index then partition; taken out."""
    def __len__(self) -> int:
        """Records appended and not yet taken out."""

class NativeBatch:
    """One sealed record batch, shaped as the aiokafka BatchBuilder its accumulator drives
    (aiokafka's ``producer.send_batch(batch, topic, partition=p)`` takes it).

    The accumulator calls ``close``, ``closed``, ``record_count``, ``_set_producer_state``
    and ``_build``, and ``append`` when it sends a record to the same partition while this
    batch is the last one queued there.
    """

    def append(
        self, *, timestamp: object, key: object, value: object, headers: object = ...
    ) -> None:
        """Always None: a sealed batch takes no more records (aiokafka then opens its own)."""
    def close(self) -> None:
        """Nothing to do: the batch is sealed."""
    def closed(self) -> bool:
        """Always True."""
    def record_count(self) -> int:
        """Records in the batch."""
    def size(self) -> int:
        """Bytes of the built batch (header + records)."""
    def _set_producer_state(
        self, producer_id: int, producer_epoch: int, base_sequence: int
    ) -> None:
        """The idempotent/transactional producer's state, written into the header by
        ``_build``; until set, aiokafka's BatchBuilder defaults: producer_id -1, producer_epoch
        -1, base_sequence 0. RuntimeError once the batch is built (aiokafka's own builder
        cannot be changed then either)."""
    def _build(self) -> bytes:
        """The batch: the 61-byte v2 header with the producer state set before, and the
        CRC-32C over attributes..end computed without holding the GIL. The first call builds
        it; later calls return the same bytes object."""

class ScanEncoder:
    def __init__(
        self,
        *,
        record_fields: list[list[tuple[str, bool]]],
        handling_event_types: dict[str, tuple[int, str]],
        mail_phases: dict[str, int],
        normalise_mail_phase: Callable[[str], str | None],
        service_types: dict[str, bytes],
        record_states: tuple[int, int],
        logical_delivery_opcode: str,
        max_string_length: int,
    ) -> None: ...
    def message(
        self,
        *,
        source: int,
        feed: str,
        msg_grp_id: str | None,
        msg_ser_nbr: int | None,
        received_at: int,
        kind: int | None,
        campaign: str | None,
        rules: list[tuple[str, list[str], list[tuple[int, int]], list[str], list[str], list[str]]],
    ) -> MessageContext: ...
