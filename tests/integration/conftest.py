"""Fixtures for tests against the real broker and the real service process.

The service runs as it does in production (``python -m consumer serve``, uvicorn) in a
subprocess with its own topic prefix, so test sessions never see each other's data.
Topics are read back the way a subscriber would: a read_committed consumer and a plain
fastavro reader over the files in ``schemas/``.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import fastavro
import fastavro.schema
import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ.get("IVMTR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
SCHEMAS = ROOT / "schemas"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_broker() -> None:
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.fail(f"no Kafka broker at {BOOTSTRAP}: run `scripts/kafka start` (make test does)")


@dataclass
class Service:
    """A running service process."""

    url: str
    prefix: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    def logs(self) -> str:
        """The complete lines logged so far (a line being written is left for later)."""
        text = self.log_path.read_text(errors="replace")
        return text[: text.rfind("\n") + 1]


def wait_until_answering(
    process: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    what: str,
    *,
    within_s: float = 60,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Wait until GET ``url`` answers 200; kill ``process`` and fail with its log if it
    exits first or does not answer within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{what} did not become ready:\n{log_path.read_text()}")


def start_service(
    tmp: Path,
    prefix: str,
    *,
    wait_ready: bool = True,
    scheme: str = "http",
    ca: str | None = None,
    **env: str,
) -> Service:
    """Start ``ivmtr-stream serve`` and wait until /readyz answers 200 (or /healthz)."""
    port = free_port()
    log_path = tmp / f"service-{port}.log"
    environment = {
        **os.environ,
        "IVMTR_PORT": str(port),
        "IVMTR_TOPIC_PREFIX": prefix,
        "IVMTR_REPLICA_ID": uuid.uuid4().hex[:8],
        "IVMTR_LOG_FORMAT": "json",
        "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        # Tests of other things than authentication push without credentials;
        # tests/integration/test_security.py runs the service with a feeds file.
        **({} if "IVMTR_FEEDS_FILE" in env else {"IVMTR_INSECURE_DEV_MODE": "true"}),
        **env,
    }
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "consumer", "serve"],
            cwd=ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"{scheme}://127.0.0.1:{port}"
    probe = "/readyz" if wait_ready else "/healthz"
    verify = ssl.create_default_context(cafile=ca) if ca else True
    wait_until_answering(process, f"{url}{probe}", log_path, "service", verify=verify)
    return Service(url, prefix, process, log_path)


def stop_service(service: Service) -> None:
    service.process.terminate()
    try:
        service.process.wait(30)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    require_broker()
    running = start_service(tmp_path_factory.mktemp("service"), f"it-{uuid.uuid4().hex[:8]}.")
    try:
        yield running
    finally:
        stop_service(running)


@pytest_asyncio.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=120) as http:
        yield http


class SchemaFiles:
    """A subscriber's decoder: single-object encoding, schemas from ``schemas/`` only."""

    def __init__(self) -> None:
        self.by_fingerprint: dict[bytes, tuple[str, Any]] = {}
        for path in SCHEMAS.glob("ivmtr.events.*.avsc"):
            parsed = fastavro.schema.load_schema(str(path))
            if parsed.get("type") != "record":
                continue
            canonical = fastavro.schema.to_parsing_canonical_form(parsed)
            fingerprint = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
            self.by_fingerprint[fingerprint] = (path.stem, parsed)

    def decode(self, data: bytes) -> tuple[str, Any]:
        assert data[:2] == b"\xc3\x01", "not Avro single-object encoding"
        name, parsed = self.by_fingerprint[data[2:10]]
        return name, fastavro.schemaless_reader(io.BytesIO(data[10:]), parsed, None)


SCHEMA_FILES = SchemaFiles()


@dataclass
class Consumed:
    """One record read back from Kafka."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    schema: str
    value: dict[str, Any]


class EndNotReached(AssertionError):
    """A read-back did not reach every partition's end offset within its time.

    What it had read would be a prefix of the topic: returned silently, "nothing was
    published" would pass on a slow broker. Raised with the partitions that fell short.
    """


class _Reader(Protocol):
    """What ``drain`` uses of an assigned AIOKafkaConsumer (a fake in the helper's tests)."""

    async def position(self, partition: TopicPartition) -> int: ...

    async def getmany(self, *, timeout_ms: int) -> dict[TopicPartition, list[Any]]: ...


async def drain(
    reader: _Reader,
    topic: str,
    end: dict[TopicPartition, int],
    within_s: float,
) -> list[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]]:
    """Every record ``reader`` fetches until its position reaches ``end`` on every
    partition, in fetch order (offset order within a partition); EndNotReached when the
    ends are not all reached within ``within_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    records: list[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]] = []
    while True:
        positions = {tp: await reader.position(tp) for tp in end}
        short = {tp: pos for tp, pos in positions.items() if pos < end[tp]}
        if not short:
            return records
        if loop.time() >= deadline:
            fell_short = ", ".join(
                f"partition {tp.partition} at {pos} of {end[tp]}"
                for tp, pos in sorted(short.items())
            )
            raise EndNotReached(
                f"{topic}: end offsets not reached within {within_s} s ({fell_short}); "
                f"{len(records)} records read"
            )
        for tp, items in (await reader.getmany(timeout_ms=300)).items():
            records.extend((tp, item) for item in items)


@dataclass
class ReadBack:
    """A topic read to its end: its partitions, and its records in fetch order."""

    partitions: list[TopicPartition]
    records: list[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]]


async def read_to_end(
    topic: str,
    *,
    within_s: float = 20,
    until: Literal["stable", "high_watermark"] = "high_watermark",
    bootstrap: str = BOOTSTRAP,
) -> ReadBack:
    """Every committed record of ``topic`` as a read_committed subscriber sees it, up to
    the end offsets taken when reading starts; EndNotReached if they are not reached in
    time, never a silent prefix.

    ``until="high_watermark"`` (the default): the high watermark, so that a transaction
    whose commit markers the broker is still writing is waited for, not missed: a 200
    means the commit is decided, and read_committed sees it a moment later (a read to
    the last stable offset right after a 200 found no PUBLISHED receipt once). An abort
    still under way is waited for the same way. ``until="stable"``: each partition's last
    stable offset, what read_committed can reach without waiting for open transactions.
    ``bootstrap``: another broker than the shared one (a test's own).
    """
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await reader.start()
    try:
        metadata = await reader._client.fetch_all_metadata()
        partitions = [TopicPartition(topic, p) for p in metadata.partitions_for_topic(topic) or ()]
        assert partitions, f"topic {topic} does not exist"
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        if until == "stable":
            end = await reader.end_offsets(partitions)
        else:
            watermarks = AIOKafkaConsumer(bootstrap_servers=bootstrap)  # read_uncommitted
            await watermarks.start()
            try:
                end = await watermarks.end_offsets(partitions)
            finally:
                await watermarks.stop()
        return ReadBack(partitions, await drain(reader, topic, end, within_s))
    finally:
        await reader.stop()


async def consume(
    topic: str,
    *,
    msg_grp_id: str | None = None,
    within_s: float = 20,
    bootstrap: str = BOOTSTRAP,
) -> list[Consumed]:
    """Every committed record of ``topic`` (optionally of one message group), in offset order
    within a partition; EndNotReached if the topic's end is not reached in time."""
    records: list[Consumed] = []
    for tp, item in (await read_to_end(topic, within_s=within_s, bootstrap=bootstrap)).records:
        schema, value = SCHEMA_FILES.decode(item.value)
        headers = {name: raw.decode() for name, raw in item.headers}
        if msg_grp_id is not None and headers.get("ivmtr.msg_grp_id") != msg_grp_id:
            continue
        key = item.key.decode() if item.key is not None else None
        records.append(Consumed(tp.topic, tp.partition, item.offset, key, headers, schema, value))
    return records


async def consume_raw(topic: str, within_s: float = 20) -> list[tuple[dict[str, str], bytes]]:
    """Every committed record of ``topic`` as (headers, value bytes), undecoded;
    EndNotReached if the topic's end is not reached in time."""
    return [
        ({k: v.decode() for k, v in item.headers}, item.value)
        for _, item in (await read_to_end(topic, within_s=within_s)).records
    ]


async def committed_by_partition(
    topic: str, within_s: float = 30
) -> dict[int, list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]]:
    """Every committed record of ``topic`` as (key, value, headers), by partition, in offset
    order: read until each partition's high watermark, so that a transaction whose markers
    the broker is still writing is waited for, not missed."""
    read = await read_to_end(topic, within_s=within_s, until="high_watermark")
    records: dict[int, list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]] = {
        tp.partition: [] for tp in read.partitions
    }
    for tp, item in read.records:
        records[tp.partition].append((item.key, item.value, list(item.headers)))
    return records


def message_group_id() -> str:
    """A fresh msgGrpId shaped like IV-MTR's (epoch ms + random suffix)."""
    return f"{int(time.time() * 1000)}{uuid.uuid4().hex[:7].upper()}"


@dataclass
class TrackerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path


def start_tracker(tmp: Path, prefix: str, group: str, **env: str) -> TrackerProcess:
    """``ivmtr-stream track`` in a process of its own, once it answers /healthz."""
    port = free_port()
    log_path = tmp / f"tracker-{port}.log"
    environment = {
        **os.environ,
        "IVMTR_TOPIC_PREFIX": prefix,
        "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "IVMTR_TRACK_GROUP_ID": group,
        "IVMTR_TRANSACTIONAL_ID_PREFIX": f"{prefix}txn",
        "IVMTR_TRACK_PORT": str(port),
        "IVMTR_LOG_FORMAT": "json",
        "IVMTR_TOPIC_PARTITIONS": "4",
        # The simulated mailing is weeks old: without this every piece would be STALLED.
        "IVMTR_TRACK_STALL_HOURS": "1000000",
        "IVMTR_TRACK_CHECK_INTERVAL_S": "3600",  # and LATE: the wall clock is tested on its own
        **env,
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "consumer", "track"],
            cwd=ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(process, f"{url}/healthz", log_path, "tracker")
    return TrackerProcess(process, url, log_path)


def stop_tracker(tracker: TrackerProcess) -> None:
    if tracker.process.poll() is None:
        tracker.process.terminate()
        try:
            tracker.process.wait(30)
        except subprocess.TimeoutExpired:
            tracker.process.kill()
            tracker.process.wait()


def wait_ready(tracker: TrackerProcess, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if httpx.get(f"{tracker.url}/readyz", timeout=2).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"tracker not ready:\n{tracker.log_path.read_text()}")
