"""The spool: pushed bodies kept durably on local disk before they are answered 202.

With ``IVMTR_ACK_MODE=spool`` a message is written to the spool (fsync of the file and
of its directory) and answered; a background worker publishes spooled messages in
arrival order with the same transaction and duplicate rules as direct ingest, and
deletes an entry only after its transaction committed. Entries survive restarts and
Kafka outages. An entry whose content can never be published (it is malformed) is
moved to ``rejected/`` with the reason, for a person to look at.

Entry file: one JSON line (feed, content encoding, when received, request id), then the
body. The service spools bodies already decoded (content encoding null); entries written
by earlier versions hold the body as received, and their content encoding says how to
decode it when they are published.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from consumer.errors import IngestError, LimitExceeded, Unavailable

__all__ = ["Spool", "SpoolEntry", "SpoolFull", "SpoolWorker"]

log = structlog.get_logger()

_READ_CHUNK = 1 << 20


class SpoolFull(Unavailable):
    """The spool reached spool_max_bytes; retry later."""

    code = "spool_full"


@dataclass(frozen=True)
class SpoolEntry:
    """One spooled message."""

    path: Path
    feed: str
    content_encoding: str | None
    received_at_ms: int
    request_id: str
    body_offset: int

    async def body(self) -> AsyncIterator[bytes]:
        """The body as received, in chunks."""
        with self.path.open("rb") as file:
            file.seek(self.body_offset)
            while chunk := await asyncio.to_thread(file.read, _READ_CHUNK):
                yield chunk


class Spool:
    """A directory of spooled messages, bounded in bytes."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "rejected").mkdir(exist_ok=True)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # never answered: the sender retries it

    def size(self) -> int:
        """Bytes spooled and not yet published."""
        return sum(path.stat().st_size for path in self.directory.glob("*.msg"))

    def entries(self) -> list[SpoolEntry]:
        """Spooled messages, oldest first."""
        return [
            entry for path in sorted(self.directory.glob("*.msg")) if (entry := _read_entry(path))
        ]

    async def put(
        self,
        chunks: AsyncIterator[bytes],
        *,
        feed: str,
        content_encoding: str | None,
        request_id: str,
    ) -> SpoolEntry:
        """Write a body and fsync it, not yet visible to the worker: ``keep`` or ``discard`` it."""
        used = await asyncio.to_thread(self.size)
        if used >= self.max_bytes:
            raise SpoolFull(f"the spool is full (spool_max_bytes={self.max_bytes})")
        received_at_ms = time.time_ns() // 1_000_000
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        temporary = self.directory / f"{name}.tmp"
        header = orjson.dumps(
            {
                "feed": feed,
                "content_encoding": content_encoding,
                "received_at_ms": received_at_ms,
                "request_id": request_id,
            }
        )
        try:
            with temporary.open("wb") as file:
                file.write(header + b"\n")
                async for chunk in chunks:
                    used += len(chunk)
                    if used > self.max_bytes:
                        raise SpoolFull(f"the spool is full (spool_max_bytes={self.max_bytes})")
                    await asyncio.to_thread(file.write, chunk)
                file.flush()
                await asyncio.to_thread(os.fsync, file.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return SpoolEntry(
            temporary, feed, content_encoding, received_at_ms, request_id, len(header) + 1
        )

    async def keep(self, entry: SpoolEntry) -> SpoolEntry:
        """Make a written entry durable and visible to the worker (then answer 202)."""
        final = entry.path.with_suffix(".msg")
        entry.path.rename(final)
        await asyncio.to_thread(_fsync_directory, self.directory)
        return dataclasses.replace(entry, path=final)

    def discard(self, entry: SpoolEntry) -> None:
        """Drop a written entry that was refused."""
        entry.path.unlink(missing_ok=True)

    def remove(self, entry: SpoolEntry) -> None:
        """Delete an entry once its messages are committed."""
        entry.path.unlink(missing_ok=True)
        _fsync_directory(self.directory)

    def reject(self, entry: SpoolEntry, error: IngestError) -> Path:
        """Move an entry that can never be published aside, with the reason beside it."""
        target = self.directory / "rejected" / entry.path.name
        entry.path.rename(target)
        target.with_suffix(".reason.json").write_bytes(orjson.dumps(error.body()))
        _fsync_directory(self.directory)
        return target


def _read_entry(path: Path) -> SpoolEntry | None:
    try:
        with path.open("rb") as file:
            header = file.readline()
        meta: dict[str, Any] = orjson.loads(header)
    except (OSError, orjson.JSONDecodeError):
        return None
    return SpoolEntry(
        path,
        meta["feed"],
        meta["content_encoding"],
        meta["received_at_ms"],
        meta["request_id"],
        len(header),
    )


def _fsync_directory(directory: Path) -> None:
    # A rename is durable only once the directory itself is synced.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


Publish = Callable[[SpoolEntry], Awaitable[None]]


class SpoolWorker:
    """Publishes spooled entries in order; retries while Kafka is away."""

    def __init__(self, spool: Spool, publish: Publish, *, retry_s: float = 2.0) -> None:
        self._spool = spool
        self._publish = publish
        self._retry_s = retry_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A new entry was spooled."""
        self._wake.set()

    async def start(self) -> None:
        """Start publishing (the spool's leftovers first)."""
        self._task = asyncio.create_task(self._run(), name="spool-worker")

    async def stop(self) -> None:
        """Stop; an entry being published stays spooled unless it committed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            for entry in await asyncio.to_thread(self._spool.entries):
                await self._publish_one(entry)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 5)

    async def _publish_one(self, entry: SpoolEntry) -> None:
        while True:
            try:
                await self._publish(entry)
            except (Unavailable, LimitExceeded) as exc:
                if isinstance(exc, LimitExceeded) and not isinstance(exc, Unavailable):
                    self._reject(entry, exc)
                    return
                log.warning(
                    "spooled message waits for Kafka", entry=entry.path.name, detail=exc.detail
                )
                await asyncio.sleep(self._retry_s)
                continue
            except IngestError as exc:
                self._reject(entry, exc)
                return
            except Exception:  # a bug must not stop the spool for good: log, wait, retry
                log.exception("spooled message failed", entry=entry.path.name)
                await asyncio.sleep(self._retry_s)
                continue
            self._spool.remove(entry)
            return

    def _reject(self, entry: SpoolEntry, error: IngestError) -> None:
        target = self._spool.reject(entry, error)
        log.error(
            "spooled message rejected", entry=target.name, error=error.code, detail=error.detail
        )
