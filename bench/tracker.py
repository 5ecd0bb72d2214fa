"""The piece tracker's throughput, CPU and memory, against a plain reader of the same scans.

    .venv/bin/python bench/tracker.py [--quick] [--scans N | --pieces P] [--seed S]
                                      [--results DIR] [--cache DIR] [--keep-topics]

Runs on the local broker (127.0.0.1:9092; ``scripts/kafka start`` is a no-op when it runs).
The broker is shared: the run creates its own topics, ``bench-<run id>.*`` and
``bench-<run id>-empty.*``, and deletes them at the end (``--keep-topics`` keeps them).

1. **Scans.** A simulated mailing (``MailingSpec(pieces=P, trays=False)``, its piece records
   only: 3.6 to 3.8 per piece) goes through the ingest pipeline (``MessagePipeline``, in
   10,000-record messages) and each event is framed as the service frames it on
   ``<prefix>piece-scans`` (single-object Avro, the schema headers). With ``--scans N``
   (default 300,000: a mailing of about 84,000 pieces, 82,800 of them scanned) the mailing
   is sized to give at least N piece records and the last ones in time are left out;
   ``--pieces P`` takes a whole mailing.
   The values are cached under ``.local/bench-cache/`` keyed by their parameters and the
   source of the simulator, pipeline, producer and schemas, so only the first run pays for
   them (~40 s for the default).
2. **Topics.** Every topic the tracker reads or writes is created first, as the service and
   the tracker create them (``topic_specs``, ``track_topic_specs``), with the project's
   default partition count (``IVMTR_TOPIC_PARTITIONS``, 6). The scans are produced onto
   piece-scans keyed by their 20-digit tracking code (the service's key), acks=all,
   untimed; the topic's end offsets are checked to hold them all.
3. **Baseline, before.** A plain aiokafka consumer, read_committed, no group, assigned
   every partition, reads the whole topic and decodes every value with the tracker's own
   ``ScanReader``: the floor cost of reading the scans. Run on the same event loop as the
   tracker (plain asyncio).
4. **Empty tracker.** ``python -m consumer track`` on the empty second prefix (same
   partition count, so it owns as many partitions, with no state): its VmRSS 3 s after
   /readyz first answers 200 is the base the state's memory is measured from.
5. **Tracker.** One ``python -m consumer track`` process (``IVMTR_*`` of the caller's
   environment dropped; its own group, transactional id prefix and port;
   ``IVMTR_TRACK_STALL_HOURS=1000000`` and ``IVMTR_TRACK_CHECK_INTERVAL_S=3600``, as the
   integration test runs it, since the simulated mailing is weeks old; JSON logs). Timed
   from /readyz first answering 200 until the group's committed offsets on piece-scans
   equal the topic's end offsets (polled every 0.2 s with an admin client): scans/s, also
   between 10% and 90% of the scans committed (no start-up, no tail); the tracker's CPU
   seconds (utime + stime from /proc/<pid>/stat) over the same window, per 100,000 scans;
   VmRSS 3 s after it caught up (and VmHWM), and what its /metrics say (pieces, status
   updates, alerts, transactions).
6. **Restarted tracker.** The tracker is stopped (SIGTERM) and another started in the same
   group: it restores the state from the status topic; its restore time and its VmRSS 3 s
   after ready (state restored, nothing to consume) are reported too.
7. **Baseline, after.** The plain reader again; the better of its two runs is the baseline,
   and the ratio is the tracker's scans/s over it.
8. **State, another way.** The status topic read back (read_committed): status records,
   the latest per piece and their average encoded size; and those latest values held in
   ``PartitionStore``s as the tracker holds them, measured with tracemalloc, per 100,000
   pieces.
9. Prints a summary and writes the whole result as JSON to ``--results``
   (``bench/results/``): ``tracker-<UTC timestamp>.json`` and ``tracker-latest.json``.
   The trackers' logs stay in ``.local/bench-runs/tracker-<timestamp>/``, and their
   warnings and errors are counted in the JSON.

Memory per 100,000 pieces = (VmRSS caught up - VmRSS of the empty tracker) / pieces x 1e5.
The machine (2 cores) is shared: the JSON also records the load average and the CPU the
broker, this process and everything else used in the tracker's window.

``--quick`` is a smoke test: 20,000 scans.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import math
import os
import statistics
import struct
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BOOTSTRAP,
    CACHE,
    MB,
    RESULTS,
    RUNS,
    CpuWindow,
    RssSampler,
    cpu_seconds,
    free_port,
    git_state,
    log_findings,
    shown,
    spawn_consumer,
    status_bytes,
)
from consumer import Settings  # noqa: E402
from consumer.core.pipeline import MessagePipeline, ScanEvent  # noqa: E402
from consumer.service import record_shapes, topic_specs  # noqa: E402
from consumer.simulator import MailingSpec, generate_records  # noqa: E402
from consumer.track.alerts import AlertRules  # noqa: E402
from consumer.track.scans import ScanReader, ValueReader  # noqa: E402
from consumer.track.service import track_topic_specs  # noqa: E402
from consumer.track.store import PartitionStore  # noqa: E402
from producer import TopicTable, TrackTopics, ensure_topics  # noqa: E402

CACHE_VERSION = 1
DEFAULT_SCANS = 300_000
QUICK_SCANS = 20_000
MESSAGE_RECORDS = 10_000  # records per simulated IV-MTR message through the pipeline
SCANS_PER_PIECE_GUESS = 3.8  # piece records per piece of a trays=False mailing
PARTITIONS = int(Settings.model_fields["topic_partitions"].default)
STALL_HOURS = "1000000"  # the simulated mailing is weeks old: nothing may be STALLED
CHECK_INTERVAL_S = "3600"  # nor LATE: no wall-clock checks in the window
SETTLE_S = 3.0  # wait before reading VmRSS, for the last batches' garbage to go
POLL_S = 0.2
READY_POLL_S = 0.05
PER = 100_000


# --------------------------------------------------------------------------- /proc, broker


def broker_pid() -> int | None:
    """The local broker's pid from scripts/kafka's pid file ($KAFKA_WORK or .local/kafka)."""
    work = Path(os.environ.get("KAFKA_WORK") or ROOT / ".local" / "kafka")
    try:
        pid = int((work / "kafka.pid").read_text().split()[0])
        cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return None
    return pid


# --------------------------------------------------------------------------- scans


@dataclass
class Scans:
    """Scan events framed as on the piece-scan topic: (key, value) pairs and their headers."""

    pairs: list[tuple[bytes, bytes]]
    headers: list[tuple[str, bytes]]
    pieces: int  # distinct tracking codes
    mailing_pieces: int  # the simulated mailing's size
    meta: dict[str, Any]

    @property
    def value_bytes(self) -> int:
        return sum(len(value) for _, value in self.pairs)


def _source_fingerprint() -> str:
    """What the values depend on: simulator, pipeline, producer (framing) and schemas."""
    digest = hashlib.sha256()
    for pattern in (
        "consumer/simulator/*.py",
        "consumer/core/*.py",
        "consumer/service.py",
        "producer/*.py",
        "schemas/*.avsc",
    ):
        for path in sorted(ROOT.glob(pattern)):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _piece_records(pieces: int, seed: int) -> list[dict[str, Any]]:
    """The piece records of a simulated mailing without trays, in scan time order."""
    return [
        record
        for record in generate_records(MailingSpec(pieces=pieces, seed=seed, trays=False))
        if "imb" in record and "deviceId" not in record
    ]


def _mailing(scans: int | None, pieces: int | None, seed: int) -> tuple[list[dict[str, Any]], int]:
    """The records to send and the size of the mailing they come from."""
    if pieces is not None:
        return _piece_records(pieces, seed), pieces
    assert scans is not None
    size = max(10, math.ceil(scans / SCANS_PER_PIECE_GUESS))
    while True:
        records = _piece_records(size, seed)
        if len(records) >= scans:
            return records[:scans], size  # the latest scans of the mailing left out
        size = math.ceil(size * scans / max(1, len(records)) * 1.02) + 1


def _encode(records: list[dict[str, Any]]) -> tuple[list[tuple[bytes, bytes]], list[Any]]:
    """Records through the ingest pipeline, in IV-MTR-sized messages, framed for the topic."""
    topics = TopicTable.build("bench.")
    shapes = record_shapes()
    pairs: list[tuple[bytes, bytes]] = []
    headers: list[Any] = []
    chunks = [records[i : i + MESSAGE_RECORDS] for i in range(0, len(records), MESSAGE_RECORDS)]
    for number, chunk in enumerate(chunks, 1):
        run = MessagePipeline(feed="pieces", received_at_ms=1_700_000_000_000, shapes=shapes)
        body = orjson.dumps(
            {
                "msgGrpId": "1700000000000BENCHTR",
                "msgSerNbr": number,
                "totMsgCnt": len(chunks),
                "events": chunk,
            }
        )
        for outcome in (*run.feed(body), *run.finish()):
            if not isinstance(outcome, ScanEvent):
                raise SystemExit(f"the pipeline did not make a scan event: {outcome!r}")
            message = topics.piece_scans.message(outcome.key, outcome.value)
            assert message.key is not None and len(message.key) == 20, message.key
            pairs.append((message.key, message.value))
            headers = [[name, value.decode()] for name, value in message.headers]
    return pairs, headers


def _write_pairs(path: Path, pairs: list[tuple[bytes, bytes]]) -> None:
    with path.open("wb") as out:
        for key, value in pairs:
            out.write(struct.pack(">HI", len(key), len(value)))
            out.write(key)
            out.write(value)


def _read_pairs(path: Path) -> list[tuple[bytes, bytes]]:
    data = path.read_bytes()
    pairs = []
    at = 0
    while at < len(data):
        key_len, value_len = struct.unpack_from(">HI", data, at)
        at += 6
        key = data[at : at + key_len]
        at += key_len
        pairs.append((key, data[at : at + value_len]))
        at += value_len
    return pairs


def load_scans(scans: int | None, pieces: int | None, seed: int, cache: Path) -> Scans:
    """The scan values, from the cache or generated (and then cached)."""
    params = {
        "version": CACHE_VERSION,
        "scans": scans,
        "pieces": pieces,
        "seed": seed,
        "message_records": MESSAGE_RECORDS,
        "sources": _source_fingerprint(),
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    size = f"{scans}s" if pieces is None else f"{pieces}p"
    directory = cache / f"tracker-scans-{size}-{key}"
    meta_path = directory / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        pairs = _read_pairs(directory / "scans.bin")
        print(f"scans: {len(pairs):,} from {shown(directory)}", flush=True)
    else:
        started = time.perf_counter()
        records, mailing_pieces = _mailing(scans, pieces, seed)
        pairs, headers = _encode(records)
        del records
        meta = {
            **params,
            "count": len(pairs),
            "mailing_pieces": mailing_pieces,
            "pieces_scanned": len({k for k, _ in pairs}),
            "headers": headers,
        }
        scratch = directory.with_name(directory.name + f".tmp{os.getpid()}")
        scratch.mkdir(parents=True, exist_ok=True)
        _write_pairs(scratch / "scans.bin", pairs)
        (scratch / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        if directory.exists():
            for stale in directory.iterdir():
                stale.unlink()
            directory.rmdir()
        scratch.rename(directory)
        print(
            f"scans: generated {len(pairs):,} ({time.perf_counter() - started:.1f} s, "
            f"cached in {shown(directory)})",
            flush=True,
        )
    if len(pairs) != meta["count"]:
        raise SystemExit(f"{shown(directory)} is damaged: delete it")
    return Scans(
        pairs,
        [(name, value.encode()) for name, value in meta["headers"]],
        meta["pieces_scanned"],
        meta["mailing_pieces"],
        meta,
    )


# --------------------------------------------------------------------------- Kafka


async def create_topics(bootstrap: str, prefix: str, partitions: int) -> list[str]:
    """Every topic the service and the tracker would create for ``prefix``."""
    settings = Settings.model_construct(
        topic_prefix=prefix, kafka_bootstrap_servers=bootstrap, topic_partitions=partitions
    )
    specs = [
        *topic_specs(settings, TopicTable.build(prefix)),
        *track_topic_specs(settings, TrackTopics.build(prefix), partitions),
    ]
    return await ensure_topics(bootstrap, specs)


def tps_of(topic: str, partitions: int) -> list[Any]:
    from aiokafka import TopicPartition

    return [TopicPartition(topic, p) for p in range(partitions)]


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends: dict[Any, int] = await consumer.end_offsets(tps_of(topic, partitions))
        return ends
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, scans: Scans) -> dict[str, Any]:
    """Every scan onto ``topic``, keyed by tracking code, acks=all (untimed for the report)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=4 * MB,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value in scans.pairs:
            pending.append(await producer.send(topic, value, key=key, headers=scans.headers))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return {"seconds": round(time.perf_counter() - started, 2)}


async def read_baseline(bootstrap: str, topic: str, partitions: int, want: int) -> dict[str, Any]:
    """The whole topic read (read_committed, no group) and every value decoded."""
    from aiokafka import AIOKafkaConsumer

    topics = TopicTable.build("bench.")
    reader = ScanReader([topics.piece_scans.schema, topics.bundle_scans.schema])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * MB,  # as the tracker's consumer
    )
    await consumer.start()
    try:
        tps = tps_of(topic, partitions)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        total = sum(ends.values())
        if total != want:
            raise SystemExit(f"{topic} holds {total:,} records, not {want:,}")
        pid = os.getpid()
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        decode_s = 0.0
        count = 0
        deadline = time.monotonic() + max(300.0, want / 500)
        while count < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"baseline reader stuck at {count:,} of {total:,}")
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            mark = time.perf_counter()
            for records in batch.values():
                for record in records:
                    reader(record.value)
                    count += 1
            decode_s += time.perf_counter() - mark
        seconds = time.perf_counter() - started
        used = cpu_seconds(pid) - cpu_before
    finally:
        await consumer.stop()
    return {
        "scans": count,
        "seconds": round(seconds, 3),
        "scans_per_s": round(count / seconds, 1),
        "decode_seconds": round(decode_s, 3),
        "cpu_seconds": round(used, 3),
        "cpu_s_per_100k": round(used / count * PER, 3),
    }


async def committed_sum(admin: Any, group: str, tps: list[Any]) -> int:
    offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    return sum(max(0, meta.offset) for tp, meta in offsets.items() if meta is not None)


async def read_topic(
    bootstrap: str, topic: str, partitions: int
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record of ``topic`` (read_committed): (partition, key, value)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * MB,
    )
    await consumer.start()
    found: list[tuple[int, bytes | None, bytes | None]] = []
    try:
        tps = tps_of(topic, partitions)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # read_committed: the end offsets count transaction markers, so stop at the LSO.
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            remaining = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not remaining:
                break
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=50_000)
            for tp, records in batch.items():
                found.extend((tp.partition, r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return found


async def delete_topics(bootstrap: str, prefixes: Sequence[str]) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if names:
            await admin.delete_topics(names)
        return sorted(names)
    finally:
        await admin.close()


# --------------------------------------------------------------------------- tracker process


@dataclass
class TrackerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    env: dict[str, str]
    started: float  # perf_counter at Popen
    ready_at: float | None = None
    cpu_at_ready: float = 0.0
    window: CpuWindow | None = None  # CPU of everyone, from ready on

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_tracker(
    bootstrap: str, prefix: str, group: str, transactional: str, log_path: Path
) -> TrackerProcess:
    """``python -m consumer track`` with its own group, ids and port; no IVMTR_* of ours."""
    port = free_port()
    settings = {
        "IVMTR_TOPIC_PREFIX": prefix,
        "IVMTR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "IVMTR_TRACK_GROUP_ID": group,
        "IVMTR_TRANSACTIONAL_ID_PREFIX": transactional,
        "IVMTR_TRACK_HOST": "127.0.0.1",
        "IVMTR_TRACK_PORT": str(port),
        "IVMTR_TRACK_STALL_HOURS": STALL_HOURS,
        "IVMTR_TRACK_CHECK_INTERVAL_S": CHECK_INTERVAL_S,
        "IVMTR_LOG_FORMAT": "json",
    }
    process = spawn_consumer("track", settings, log_path)
    return TrackerProcess(
        process, f"http://127.0.0.1:{port}", log_path, settings, time.perf_counter()
    )


def wait_ready(tracker: TrackerProcess, within_s: float = 120) -> float:
    """perf_counter when /readyz first answers 200."""
    deadline = time.monotonic() + within_s
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if tracker.process.poll() is not None:
                raise SystemExit(
                    f"tracker exited with {tracker.process.returncode}:\n"
                    f"{tracker.log_path.read_text()[-4000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{tracker.url}/readyz").status_code == 200:
                    tracker.ready_at = time.perf_counter()
                    tracker.cpu_at_ready = cpu_seconds(tracker.pid)
                    tracker.window = CpuWindow(tracker.pid, broker=broker_pid()).start()
                    return tracker.ready_at
            time.sleep(READY_POLL_S)
    tracker.stop()
    raise SystemExit(f"tracker not ready:\n{tracker.log_path.read_text()[-4000:]}")


def scrape(url: str) -> dict[str, float]:
    """The tracker's metrics: name{labels} -> value (per-partition gauges summed too)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("ivmtr_tracker"):
                continue
            labels = {k: v for k, v in sample.labels.items() if k not in ("partition", "topic")}
            name = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(labels.items()))
            found[name] = found.get(name, 0.0) + sample.value
    return found


def memory(pid: int) -> dict[str, float]:
    return {
        name: round(status_bytes(pid, name) / MB, 2)
        for name in ("VmRSS", "VmHWM", "RssAnon", "RssFile")
    }


async def time_catch_up(
    bootstrap: str,
    tracker: TrackerProcess,
    group: str,
    topic: str,
    partitions: int,
    total: int,
) -> dict[str, Any]:
    """From ready until the group's committed offsets on ``topic`` reach its end offsets."""
    from aiokafka.admin import AIOKafkaAdminClient

    tps = tps_of(topic, partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert tracker.ready_at is not None and tracker.window is not None
        started = tracker.ready_at
        samples: list[tuple[float, int]] = [(0.0, 0)]
        deadline = time.monotonic() + max(600.0, total / 200)
        with RssSampler(tracker.pid, interval=0.5) as rss:
            while True:
                done = await committed_sum(admin, group, tps)
                now = time.perf_counter()
                samples.append((round(now - started, 3), done))
                if done >= total:
                    break
                if tracker.process.poll() is not None:
                    raise SystemExit(
                        f"tracker exited with {tracker.process.returncode} at {done:,} of "
                        f"{total:,}:\n{tracker.log_path.read_text()[-4000:]}"
                    )
                if time.monotonic() > deadline:
                    raise SystemExit(f"tracker stuck at {done:,} of {total:,} committed")
                await asyncio.sleep(POLL_S)
        used = cpu_seconds(tracker.pid) - tracker.cpu_at_ready
        cpu = tracker.window.stop()
    finally:
        await admin.close()
    seconds = now - started

    def when(share: float) -> float:
        return next(t for t, n in samples if n >= share * total)

    t10, t90 = when(0.1), when(0.9)
    return {
        "seconds": round(seconds, 3),
        "scans_per_s": round(total / seconds, 1),
        # None when 10% and 90% were committed by the same transaction round (tiny runs).
        "scans_per_s_10_to_90": round(0.8 * total / (t90 - t10), 1) if t90 > t10 else None,
        "tracker_cpu_seconds": round(used, 3),
        "cpu_seconds": cpu,
        "vmrss_peak_sampled_mb": round(max((r for _, r in rss.samples), default=0) / MB, 1),
        "committed_by_time": [*samples[:: max(1, len(samples) // 60)], samples[-1]],
    }


# --------------------------------------------------------------------------- state, another way


def state_in_memory(
    records: list[tuple[int, bytes | None, bytes | None]], partitions: int
) -> dict[str, Any]:
    """The latest status per piece: encoded sizes, and held in PartitionStores (tracemalloc)."""
    latest: dict[tuple[int, bytes], bytes | None] = {}
    for partition, key, value in records:
        if key is not None:
            latest[(partition, key)] = value
    values = [v for v in latest.values() if v is not None]
    sizes = [len(v) for v in values]
    all_sizes = [len(v) for _, _, v in records if v is not None]
    topics = TrackTopics.build("bench.")
    reader = ValueReader([topics.piece_status.schema])
    rules = AlertRules(stall_hours=float(STALL_HOURS))
    # Copies made outside the measurement: the stores must hold their own bytes, not the
    # consumer's, and the keys are decoded inside as the tracker decodes them.
    items = [
        (partition, key, bytes(bytearray(value)))
        for (partition, key), value in latest.items()
        if value is not None
    ]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    stores = {n: PartitionStore(reader, rules) for n in range(partitions)}
    for partition, key, value in items:
        stores[partition].restore(key.decode(), value)
    held_values = tracemalloc.get_traced_memory()[0] - before
    for store in stores.values():
        store.index()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    pieces = sum(len(s) for s in stores.values())
    watched = sum(s.watched for s in stores.values())
    del items
    # The stores held the values' bytes objects made before tracemalloc started: add them.
    value_objects = sum(sys.getsizeof(v) for v in values)
    total = held + value_objects
    return {
        "status_records": len(records),
        "pieces": pieces,
        "watched_pieces": watched,
        "avg_encoded_status_bytes_latest": round(statistics.fmean(sizes), 1) if sizes else None,
        "avg_encoded_status_bytes_all_records": (
            round(statistics.fmean(all_sizes), 1) if all_sizes else None
        ),
        "store_bytes_keys_and_dicts": held_values,
        "store_bytes_with_index": held,
        "value_objects_bytes": value_objects,
        "store_bytes_total": total,
        "store_bytes_per_piece": round(total / pieces, 1) if pieces else None,
        "store_mb_per_100k_pieces": round(total / pieces * PER / MB, 2) if pieces else None,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--scans", type=int, help=f"piece scans ({DEFAULT_SCANS:,})")
    size.add_argument("--pieces", type=int, help="pieces of the mailing, all their scans")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_SCANS:,} scans")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (1)")
    parser.add_argument(
        "--partitions", type=int, default=PARTITIONS, help=f"scan topic partitions ({PARTITIONS})"
    )
    parser.add_argument("--bootstrap", default=BOOTSTRAP, help=f"Kafka ({BOOTSTRAP})")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--cache", type=Path, default=CACHE, help="scan value cache")
    parser.add_argument("--run-dir", type=Path, help="tracker logs (.local/bench-runs/...)")
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the topics")
    args = parser.parse_args(argv)
    if args.scans is None and args.pieces is None:
        args.scans = QUICK_SCANS if args.quick else DEFAULT_SCANS
    if (args.scans is not None and args.scans < 100) or (
        args.pieces is not None and args.pieces < 20
    ):
        parser.error("--scans must be >= 100, --pieces >= 20")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = uuid.uuid4().hex[:8]
    prefix, empty_prefix = f"bench-{run_id}.", f"bench-{run_id}-empty."
    group = f"bench-{run_id}-tracker"
    work = args.run_dir or RUNS / f"tracker-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    bootstrap = args.bootstrap
    partitions = args.partitions
    scan_topic = f"{prefix}piece-scans"

    if bootstrap == BOOTSTRAP:
        subprocess.run([str(ROOT / "scripts" / "kafka"), "start"], check=True)
    scans = load_scans(args.scans, args.pieces, args.seed, args.cache)
    total = len(scans.pairs)
    result: dict[str, Any] = {
        "started_utc": stamp,
        "command": " ".join([Path(sys.executable).name, "bench/tracker.py", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()},
        "git": git_state(),
        "topic_prefix": prefix,
        "empty_prefix": empty_prefix,
        "partitions": partitions,
        "run_dir": shown(work),
        "scans": {
            "count": total,
            "pieces": scans.pieces,
            "mailing_pieces": scans.mailing_pieces,
            "avg_value_bytes": round(scans.value_bytes / total, 1),
            "seed": args.seed,
        },
    }
    trackers: list[TrackerProcess] = []

    def run_tracker(name: str, on: str, in_group: str, transactional: str) -> TrackerProcess:
        tracker = start_tracker(bootstrap, on, in_group, transactional, work / f"{name}.log")
        trackers.append(tracker)
        return tracker

    try:
        created = asyncio.run(create_topics(bootstrap, prefix, partitions))
        created += asyncio.run(create_topics(bootstrap, empty_prefix, partitions))
        result["topics_created"] = sorted(created)
        print(f"producing {total:,} scans onto {scan_topic} ({partitions} partitions) ...")
        result["produce"] = asyncio.run(produce(bootstrap, scan_topic, scans))
        ends = asyncio.run(end_offsets(bootstrap, scan_topic, partitions))
        if sum(ends.values()) != total:
            raise SystemExit(f"{scan_topic} holds {sum(ends.values()):,} records, not {total:,}")
        result["scans"]["by_partition"] = [ends[tp] for tp in sorted(ends, key=lambda t: t[1])]
        del scans

        print("baseline reader (before) ...", flush=True)
        before = asyncio.run(read_baseline(bootstrap, scan_topic, partitions, total))
        print(f"  {before['scans_per_s']:,.0f} scans/s", flush=True)

        print("empty tracker ...", flush=True)
        empty = run_tracker("empty", empty_prefix, f"{group}-empty", f"bench-{run_id}-empty")
        ready = wait_ready(empty)
        time.sleep(SETTLE_S)
        result["empty_tracker"] = {
            "seconds_to_ready": round(ready - empty.started, 2),
            "memory_mb": memory(empty.pid),
            "metrics": scrape(empty.url),
        }
        result["empty_tracker"]["exit_code"] = empty.stop()
        rss_empty = result["empty_tracker"]["memory_mb"]["VmRSS"]
        print(f"  VmRSS {rss_empty:.1f} MB", flush=True)

        print(f"tracker on {total:,} scans ...", flush=True)
        tracker = run_tracker("tracker", prefix, group, f"bench-{run_id}")
        ready = wait_ready(tracker)
        at_ready = memory(tracker.pid)
        run = asyncio.run(time_catch_up(bootstrap, tracker, group, scan_topic, partitions, total))
        time.sleep(SETTLE_S)
        run["seconds_to_ready"] = round(ready - tracker.started, 2)
        run["memory_mb_at_ready"] = at_ready
        run["memory_mb_caught_up"] = memory(tracker.pid)
        run["metrics"] = scrape(tracker.url)
        run["exit_code"] = tracker.stop()
        result["tracker"] = run
        print(f"  {run['scans_per_s']:,.0f} scans/s in {run['seconds']:.1f} s", flush=True)

        print("restarted tracker (restores the state) ...", flush=True)
        again = run_tracker("restarted", prefix, group, f"bench-{run_id}")
        ready = wait_ready(again)
        time.sleep(SETTLE_S)
        result["restarted_tracker"] = {
            "seconds_to_ready": round(ready - again.started, 2),
            "memory_mb": memory(again.pid),
            "metrics": scrape(again.url),
        }
        result["restarted_tracker"]["exit_code"] = again.stop()

        print("baseline reader (after) ...", flush=True)
        after = asyncio.run(read_baseline(bootstrap, scan_topic, partitions, total))
        print(f"  {after['scans_per_s']:,.0f} scans/s", flush=True)
        result["baseline"] = {
            "before": before,
            "after": after,
            "scans_per_s": max(before["scans_per_s"], after["scans_per_s"]),
        }

        print("reading the status topic back ...", flush=True)
        statuses = asyncio.run(read_topic(bootstrap, f"{prefix}piece-status", partitions))
        alerts = asyncio.run(read_topic(bootstrap, f"{prefix}alerts", partitions))
        result["state"] = state_in_memory(statuses, partitions)
        result["state"]["alert_records"] = len(alerts)
        del statuses, alerts
    finally:
        for tracker in trackers:
            tracker.stop()
        result["tracker_logs"] = {
            t.log_path.stem: {"path": shown(t.log_path), **log_findings(t.log_path)}
            for t in trackers
        }
        if not args.keep_topics:
            try:
                result["deleted_topics"] = asyncio.run(
                    delete_topics(bootstrap, [prefix, empty_prefix])
                )
            except Exception as exc:  # cleanup must not hide the result
                print(f"could not delete the run's topics: {exc}", file=sys.stderr)
    result["machine"]["loadavg_after"] = os.getloadavg()

    run = result["tracker"]
    metrics = run["metrics"]
    pieces = int(metrics.get("ivmtr_tracker_pieces", 0))
    rss_caught_up = run["memory_mb_caught_up"]["VmRSS"]
    rss_restored = result["restarted_tracker"]["memory_mb"]["VmRSS"]
    baseline = result["baseline"]["scans_per_s"]
    state = result["state"]
    summary = {
        "scans": total,
        "pieces": pieces,
        "status_updates": int(metrics.get("ivmtr_tracker_status_updates_total", 0)),
        "alerts": int(sum(v for k, v in metrics.items() if k.startswith("ivmtr_tracker_alerts"))),
        "transactions": int(metrics.get("ivmtr_tracker_transactions_total{result=committed}", 0)),
        "tracker_scans_per_s": run["scans_per_s"],
        "tracker_scans_per_s_10_to_90": run["scans_per_s_10_to_90"],
        "baseline_scans_per_s": baseline,
        "ratio_to_baseline": round(run["scans_per_s"] / baseline, 3),
        "tracker_cpu_s_per_100k_scans": round(run["tracker_cpu_seconds"] / total * PER, 2),
        "baseline_cpu_s_per_100k_scans": min(
            result["baseline"]["before"]["cpu_s_per_100k"],
            result["baseline"]["after"]["cpu_s_per_100k"],
        ),
        "vmrss_empty_mb": rss_empty,
        "vmrss_caught_up_mb": rss_caught_up,
        "vmrss_restored_mb": rss_restored,
        "rss_mb_per_100k_pieces": (
            round((rss_caught_up - rss_empty) / pieces * PER, 1) if pieces else None
        ),
        "rss_mb_per_100k_pieces_restored": (
            round((rss_restored - rss_empty) / pieces * PER, 1) if pieces else None
        ),
        "store_mb_per_100k_pieces_tracemalloc": state["store_mb_per_100k_pieces"],
        "avg_encoded_status_bytes": state["avg_encoded_status_bytes_latest"],
        "restore_seconds": result["restarted_tracker"]["metrics"].get(
            "ivmtr_tracker_restore_seconds_total"
        ),
    }
    result["summary"] = summary

    def line(name: str, value: str) -> None:
        print(f"{name:<46}{value:>24}")

    status_updates, transactions = summary["status_updates"], summary["transactions"]
    print()
    line("scans / pieces (tracker's state)", f"{total:,} / {pieces:,}")
    line("status updates / alerts", f"{status_updates:,} / {summary['alerts']:,}")
    line(
        "transactions (scans per transaction)",
        f"{transactions:,} ({total / max(1, transactions):,.0f})",
    )
    line("tracker", f"{run['scans_per_s']:,.0f} scans/s")
    middle = run["scans_per_s_10_to_90"]
    line("  between 10% and 90% committed", "-" if middle is None else f"{middle:,.0f} scans/s")
    line(
        "baseline reader (before / after)",
        f"{before['scans_per_s']:,.0f} / {after['scans_per_s']:,.0f} scans/s",
    )
    line("tracker / best baseline", f"{summary['ratio_to_baseline']:.3f}")
    line("tracker CPU per 100k scans", f"{summary['tracker_cpu_s_per_100k_scans']:.2f} s")
    line("baseline CPU per 100k scans", f"{summary['baseline_cpu_s_per_100k_scans']:.2f} s")
    cpu = run["cpu_seconds"]
    line(
        "window CPU s: tracker/broker/other",
        f"{cpu['service']:.1f}/{cpu.get('broker', 0):.1f}/{cpu['other_processes']:.1f}",
    )
    line(
        "VmRSS empty / caught up / restored",
        f"{rss_empty:.0f} / {rss_caught_up:.0f} / {rss_restored:.0f} MB",
    )
    line("RSS per 100k pieces (caught up)", f"{summary['rss_mb_per_100k_pieces']} MB")
    line("RSS per 100k pieces (restored)", f"{summary['rss_mb_per_100k_pieces_restored']} MB")
    line(
        "store per 100k pieces (tracemalloc)",
        f"{summary['store_mb_per_100k_pieces_tracemalloc']} MB",
    )
    line("avg encoded status", f"{summary['avg_encoded_status_bytes']} bytes")
    line("restore of the state", f"{summary['restore_seconds'] or 0:.2f} s")
    for name, found in result["tracker_logs"].items():
        notable = found["warnings_and_errors"]
        line(f"{name} log warnings/errors", f"{sum(notable.values()):,}")
        for event, count in notable.items():
            print(f"    {count:>6}  {event}")
    load = result["machine"]
    print(
        f"load average before {load['loadavg_before'][0]:.2f}, after {load['loadavg_after'][0]:.2f}"
    )

    args.results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str) + "\n"
    (args.results / f"tracker-{stamp}.json").write_text(text)
    (args.results / "tracker-latest.json").write_text(text)
    print(f"written to {shown(args.results / f'tracker-{stamp}.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
