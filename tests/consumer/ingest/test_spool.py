"""Tests for consumer.ingest.spool: durable spooled bodies and the worker that publishes them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import pytest

from consumer.errors import (
    IngestError,
    LimitExceeded,
    MalformedMessage,
    RecordTooLarge,
    Unavailable,
)
from consumer.http.admission import Overloaded
from consumer.http.errors import status_of
from consumer.ingest.spool import Spool, SpoolEntry, SpoolWorker

MIB = 1 << 20
RETRY_S = 0.01


async def chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


def split(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


async def read(entry: SpoolEntry) -> bytes:
    return b"".join([chunk async for chunk in entry.body()])


async def spooled(
    spool: Spool,
    body: bytes,
    request_id: str,
    *,
    feed: str = "pieces",
    content_encoding: str | None = None,
    keep: bool = True,
) -> SpoolEntry:
    entry = await spool.put(
        chunks(split(body, 7 if len(body) < 4096 else 65_536) or [b""]),
        feed=feed,
        content_encoding=content_encoding,
        request_id=request_id,
    )
    return await spool.keep(entry) if keep else entry


async def eventually(condition: Callable[[], bool], within: float = 2.0) -> None:
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    assert condition()


def leftovers(directory: Path) -> list[Path]:
    return list(directory.glob("*.tmp"))


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file())


# --- the spool ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, 2, 100, 64 * 1024, MIB - 1, MIB, MIB + 1, 3 * MIB + 5], ids=str
)
async def test_round_trip(tmp_path: Path, size: int) -> None:
    body = (bytes(range(251)) * (size // 251 + 1))[:size]
    spool = Spool(tmp_path, max_bytes=64 * MIB)
    entry = await spool.put(
        chunks(split(body, 65_536)),
        feed="pieces",
        content_encoding="gzip",
        request_id="req-1",
    )
    assert await read(entry) == body  # readable before keep (the service checks it then)
    kept = await spool.keep(entry)
    assert kept.path.suffix == ".msg"
    assert not entry.path.exists()
    assert await read(kept) == body
    [listed] = spool.entries()
    assert listed == kept
    assert (listed.feed, listed.content_encoding, listed.request_id) == ("pieces", "gzip", "req-1")
    assert await read(listed) == body
    assert spool.size() == kept.path.stat().st_size >= size
    # Survives a restart.
    [again] = Spool(tmp_path, max_bytes=64 * MIB).entries()
    assert again == kept
    assert await read(again) == body


async def test_round_trip_keeps_header_like_bytes_and_metadata(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    body = b'\n{"feed":"other"}\n\r\n\x00\xff'
    entry = await spooled(
        spool, body, 'r"\n\u00fc', feed="feed\nwith newline", content_encoding=None
    )
    [listed] = spool.entries()
    assert listed == entry
    assert listed.feed == "feed\nwith newline"
    assert listed.request_id == 'r"\n\u00fc'
    assert listed.content_encoding is None
    assert await read(listed) == body


async def test_received_at_is_when_put(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    before = time.time_ns() // 1_000_000
    entry = await spooled(spool, b"x", "r")
    after = time.time_ns() // 1_000_000
    assert before <= entry.received_at_ms <= after
    assert spool.entries()[0].received_at_ms == entry.received_at_ms


async def test_entries_in_arrival_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    written = [await spooled(spool, b"body %d" % n, f"r{n}", keep=False) for n in range(6)]
    # Kept (answered) in another order than they arrived: still listed oldest first.
    for n in (3, 0, 5, 1, 4, 2):
        await spool.keep(written[n])
    entries = spool.entries()
    assert [e.request_id for e in entries] == [f"r{n}" for n in range(6)]
    assert [await read(e) for e in entries] == [b"body %d" % n for n in range(6)]


async def test_tmp_not_visible_until_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    entry = await spooled(spool, b"hello", "r1", keep=False)
    assert entry.path.suffix == ".tmp"
    assert entry.path.exists()
    assert spool.entries() == []
    assert spool.size() == 0
    kept = await spool.keep(entry)
    assert spool.entries() == [kept]
    assert spool.size() > 0


async def test_discard(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    entry = await spooled(spool, b"refused", "r1", keep=False)
    spool.discard(entry)
    spool.discard(entry)  # idempotent
    assert files(tmp_path) == []
    assert spool.entries() == []


async def test_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    first = await spooled(spool, b"one", "r1")
    second = await spooled(spool, b"two", "r2")
    spool.remove(first)
    assert spool.entries() == [second]
    spool.remove(first)  # idempotent
    spool.remove(second)
    assert spool.entries() == []
    assert spool.size() == 0
    assert files(tmp_path) == []


async def test_leftover_tmp_removed_on_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    kept = await spooled(spool, b"kept", "r1")
    unanswered = await spooled(spool, b"never answered", "r2", keep=False)
    rejected = await spooled(spool, b"bad", "r3")
    spool.reject(rejected, MalformedMessage("not JSON"))
    assert unanswered.path.exists()

    restarted = Spool(tmp_path, max_bytes=MIB)
    assert not unanswered.path.exists()
    assert leftovers(tmp_path) == []
    assert restarted.entries() == [kept]
    assert await read(restarted.entries()[0]) == b"kept"
    assert len(list((tmp_path / "rejected").iterdir())) == 2  # rejected ones stay put


async def test_full_spool_refused_up_front(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    await spooled(spool, b"x" * 1000, "r1")  # exactly max_bytes of body fits into an empty spool
    assert spool.size() >= 1000

    pulled = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal pulled
        pulled += 1
        yield b"y"

    with pytest.raises(Unavailable) as caught:
        await spool.put(source(), feed="pieces", content_encoding=None, request_id="r2")
    assert status_of(caught.value) == 503
    assert "spool_max_bytes=1000" in caught.value.detail
    assert pulled == 0  # refused before reading the body
    assert leftovers(tmp_path) == []
    assert len(spool.entries()) == 1


async def test_body_larger_than_the_spool_refused_midway(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    with pytest.raises(Unavailable):
        await spooled(spool, b"x" * 1001, "r1", keep=False)
    assert files(tmp_path) == []
    assert spool.entries() == []
    # The spool is usable afterwards.
    entry = await spooled(spool, b"x" * 1000, "r2")
    assert await read(entry) == b"x" * 1000


async def test_full_spool_counts_what_is_spooled(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    first = await spooled(spool, b"a" * 500, "r1")
    used = spool.size()
    with pytest.raises(Unavailable):
        await spooled(spool, b"b" * (1000 - used + 1), "r2", keep=False)
    assert leftovers(tmp_path) == []
    await spooled(spool, b"b" * (1000 - used), "r3")  # up to max_bytes exactly
    spool.remove(first)
    await spooled(spool, b"c" * 100, "r4")  # room again once published
    assert [e.request_id for e in spool.entries()] == ["r3", "r4"]


async def test_failing_body_leaves_no_tmp(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await spool.put(broken(), feed="pieces", content_encoding=None, request_id="r1")
    assert files(tmp_path) == []


async def test_reject_keeps_body_and_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=MIB)
    body = b'{"msgGrpId": "G", "events": [oops'
    entry = await spooled(spool, body, "r1", content_encoding="identity")
    other = await spooled(spool, b"fine", "r2")
    size_before = spool.size()

    target = spool.reject(entry, LimitExceeded("max_records", 10))

    assert target.parent == tmp_path / "rejected"
    assert target.exists()
    assert not entry.path.exists()
    assert target.read_bytes()[entry.body_offset :] == body
    header = json.loads(target.read_bytes()[: entry.body_offset])
    assert header["request_id"] == "r1"
    assert header["feed"] == "pieces"
    assert header["content_encoding"] == "identity"
    reasons = list((tmp_path / "rejected").glob("*.reason.json"))
    assert len(reasons) == 1
    assert reasons[0].name.startswith(entry.path.stem)
    assert json.loads(reasons[0].read_bytes()) == {
        "error": "limit_exceeded",
        "detail": "the message exceeds max_records=10",
        "limit": "max_records",
        "value": 10,
    }
    assert spool.entries() == [other]
    assert spool.size() < size_before


# --- the worker --------------------------------------------------------------------------


class FakePublish:
    """Records what was published; raises the scripted errors for a request id first."""

    def __init__(self, failures: dict[str, list[IngestError]] | None = None) -> None:
        self.failures = {k: list(v) for k, v in (failures or {}).items()}
        self.calls: list[str] = []
        self.published: list[tuple[str, bytes]] = []
        self.still_spooled: list[bool] = []

    async def __call__(self, entry: SpoolEntry) -> None:
        self.calls.append(entry.request_id)
        self.still_spooled.append(entry.path.exists())
        body = await read(entry)
        pending = self.failures.get(entry.request_id)
        if pending:
            raise pending.pop(0)
        self.published.append((entry.request_id, body))


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool", max_bytes=16 * MIB)


async def run_worker(
    spool: Spool, publish: Callable[[SpoolEntry], Awaitable[None]], *, retry_s: float = RETRY_S
) -> SpoolWorker:
    worker = SpoolWorker(spool, publish, retry_s=retry_s)
    await worker.start()
    return worker


async def test_worker_publishes_in_order_and_removes(spool: Spool) -> None:
    bodies = [b"", b"a", b"b" * 100, b"c" * (MIB + 3)]
    for n, body in enumerate(bodies):
        await spooled(spool, body, f"r{n}")
    publish = FakePublish()
    worker = await run_worker(spool, publish)
    try:
        await eventually(lambda: len(publish.published) == len(bodies))
        await eventually(lambda: spool.entries() == [])
    finally:
        await worker.stop()
    assert publish.published == [(f"r{n}", body) for n, body in enumerate(bodies)]
    assert publish.calls == [f"r{n}" for n in range(len(bodies))]
    assert all(publish.still_spooled)  # deleted only after publish returned
    assert spool.size() == 0
    assert files(spool.directory) == []
    assert list((spool.directory / "rejected").iterdir()) == []


@pytest.mark.parametrize(
    "error",
    [Unavailable("kafka is away", 1), Overloaded("too much in flight", 1)],
    ids=["unavailable", "overloaded"],
)
async def test_worker_retries_unavailable_until_it_succeeds(
    spool: Spool, error: Unavailable
) -> None:
    await spooled(spool, b"first", "r1")
    await spooled(spool, b"second", "r2")
    publish = FakePublish({"r1": [error, error]})
    worker = await run_worker(spool, publish)
    try:
        await eventually(lambda: len(publish.published) == 2)
        await eventually(lambda: spool.entries() == [])
    finally:
        await worker.stop()
    assert publish.calls == ["r1", "r1", "r1", "r2"]  # r2 waits for r1: order is kept
    assert publish.published == [("r1", b"first"), ("r2", b"second")]
    assert list((spool.directory / "rejected").iterdir()) == []


async def test_worker_waits_retry_s_between_attempts(spool: Spool) -> None:
    await spooled(spool, b"first", "r1")
    publish = FakePublish({"r1": [Unavailable("away"), Unavailable("away")]})
    loop = asyncio.get_running_loop()
    started = loop.time()
    worker = await run_worker(spool, publish, retry_s=0.05)
    try:
        await eventually(lambda: spool.entries() == [])
    finally:
        await worker.stop()
    assert publish.calls == ["r1"] * 3
    assert loop.time() - started >= 0.1


@pytest.mark.parametrize(
    "error",
    [
        MalformedMessage("not JSON"),
        LimitExceeded("max_records", 10),
        RecordTooLarge(100, index=3),
    ],
    ids=["malformed", "limit", "record-too-large"],
)
async def test_worker_rejects_what_can_never_be_published(spool: Spool, error: IngestError) -> None:
    bad = await spooled(spool, b"[not json", "r1")
    await spooled(spool, b"good", "r2")
    publish = FakePublish({"r1": [error]})
    worker = await run_worker(spool, publish)
    try:
        await eventually(lambda: publish.published == [("r2", b"good")])
        await eventually(lambda: spool.entries() == [])
    finally:
        await worker.stop()
    assert publish.calls == ["r1", "r2"]  # tried once, not retried
    rejected = spool.directory / "rejected"
    target = rejected / bad.path.name
    assert target.read_bytes()[bad.body_offset :] == b"[not json"
    reason = json.loads(target.with_suffix(".reason.json").read_bytes())
    assert reason == error.body()
    assert reason["error"] == error.code
    assert sorted(p.name for p in rejected.iterdir()) == sorted(
        [target.name, target.with_suffix(".reason.json").name]
    )


async def test_worker_picks_up_new_entries_after_wake(spool: Spool) -> None:
    publish = FakePublish()

    def published(count: int) -> Callable[[], bool]:
        return lambda: len(publish.published) == count

    worker = await run_worker(spool, publish)
    try:
        await asyncio.sleep(0.02)  # idle on an empty spool
        for n in range(3):
            await spooled(spool, b"late %d" % n, f"r{n}")
            worker.wake()
            # The worker's own poll is 5 s: within 1 s only wake() can have done it.
            await eventually(published(n + 1), within=1.0)
        await eventually(lambda: spool.entries() == [], within=1.0)
    finally:
        await worker.stop()
    assert publish.published == [(f"r{n}", b"late %d" % n) for n in range(3)]


async def test_worker_picks_up_entries_spooled_while_publishing(spool: Spool) -> None:
    await spooled(spool, b"first", "r1")
    publishing = asyncio.Event()
    go_on = asyncio.Event()
    published: list[str] = []

    async def publish(entry: SpoolEntry) -> None:
        if entry.request_id == "r1":
            publishing.set()
            await go_on.wait()
        published.append(entry.request_id)

    worker = await run_worker(spool, publish)
    try:
        await asyncio.wait_for(publishing.wait(), 1)
        await spooled(spool, b"second", "r2")
        worker.wake()
        go_on.set()
        await eventually(lambda: published == ["r1", "r2"], within=1.0)
        await eventually(lambda: spool.entries() == [], within=1.0)
    finally:
        await worker.stop()


async def test_worker_publishes_leftovers_of_a_previous_run(spool: Spool) -> None:
    await spooled(spool, b"from before", "r1")
    unanswered = await spooled(spool, b"never answered", "r2", keep=False)
    restarted = Spool(spool.directory, max_bytes=spool.max_bytes)
    assert not unanswered.path.exists()
    publish = FakePublish()
    worker = await run_worker(restarted, publish)
    try:
        await eventually(lambda: restarted.entries() == [])
    finally:
        await worker.stop()
    assert publish.published == [("r1", b"from before")]


async def test_stop_while_retrying_leaves_the_entry(spool: Spool) -> None:
    entry = await spooled(spool, b"waits for kafka", "r1")
    publish = FakePublish({"r1": [Unavailable("away")] * 1000})
    worker = await run_worker(spool, publish)
    try:
        await eventually(lambda: len(publish.calls) >= 2)
    finally:
        await worker.stop()
    calls = len(publish.calls)
    await asyncio.sleep(3 * RETRY_S)
    assert len(publish.calls) == calls  # really stopped
    assert spool.entries() == [entry]
    assert await read(spool.entries()[0]) == b"waits for kafka"
    assert list((spool.directory / "rejected").iterdir()) == []

    # The next run publishes it.
    publish = FakePublish()
    worker = await run_worker(spool, publish)
    try:
        await eventually(lambda: spool.entries() == [])
    finally:
        await worker.stop()
    assert publish.published == [("r1", b"waits for kafka")]


async def test_stop_while_publishing_leaves_the_entry(spool: Spool) -> None:
    entry = await spooled(spool, b"in flight", "r1")
    publishing = asyncio.Event()

    async def publish(entry: SpoolEntry) -> None:
        publishing.set()
        await asyncio.Event().wait()  # a transaction that never commits

    worker = await run_worker(spool, publish)
    await asyncio.wait_for(publishing.wait(), 1)
    await worker.stop()
    assert spool.entries() == [entry]
    assert list((spool.directory / "rejected").iterdir()) == []


async def test_stop_is_idempotent(spool: Spool) -> None:
    worker = SpoolWorker(spool, FakePublish(), retry_s=RETRY_S)
    await worker.stop()  # never started
    await worker.start()
    await worker.stop()
    await worker.stop()
