"""Tests for consumer.http.body: a body that trickles or stalls is cut off in time.

Found by ``make mutation MODULE=http-limits``: no unit test ran ``timed_body``, so all of its
mutants (the idle and total bounds swapped, dropped or widened; the wrong limit named in
the 408) went unnoticed outside the integration suite. Every source here ends by itself
after a bounded time, so a mutant that loses a timeout fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable

import pytest

from consumer.errors import RequestTimeout
from consumer.http.body import timed_body
from consumer.http.errors import status_of


async def paced(parts: Iterable[bytes], every_s: float) -> AsyncIterator[bytes]:
    """The parts, one each every_s seconds."""
    for part in parts:
        await asyncio.sleep(every_s)
        yield part


async def stalling(first: bytes, stall_s: float) -> AsyncIterator[bytes]:
    """One part at once, then nothing for stall_s, then one more part."""
    yield first
    await asyncio.sleep(stall_s)
    yield b"late"


async def collect(chunks: AsyncIterator[bytes], got: list[bytes]) -> None:
    async for chunk in chunks:
        got.append(chunk)


async def test_passes_every_chunk_through_in_order_and_ends_with_the_body() -> None:
    parts = [b"{", b"", b'"msgGrpId"', b": 1}"]
    got: list[bytes] = []
    await collect(timed_body(paced(parts, 0.001), idle_s=5, total_s=5), got)
    assert got == parts


async def test_an_empty_body_ends_at_once() -> None:
    got: list[bytes] = []
    await collect(timed_body(paced([], 0), idle_s=5, total_s=5), got)
    assert got == []


async def test_a_stall_longer_than_idle_s_is_a_read_timeout() -> None:
    got: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await collect(timed_body(stalling(b"first", 3.0), idle_s=0.1, total_s=60), got)
    elapsed = time.monotonic() - started
    assert got == [b"first"]  # what arrived in time was passed on before the cut
    assert 0.09 <= elapsed < 2.0  # the idle bound, not the stall, ended it
    # The total budget is far off, so the idle bound is the one named (wait == idle_s).
    assert caught.value.context == {"limit": "read_timeout_s"}
    assert caught.value.detail == "the body did not arrive in time (read_timeout_s=0.1)"
    assert status_of(caught.value) == 408


async def test_a_trickle_within_idle_s_is_cut_off_at_total_s() -> None:
    # A chunk every 20 ms never trips the 5 s idle bound; 0.3 s in all is the limit. The
    # source would end after 4 s, so a mutant without the total bound fails, not hangs.
    got: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await collect(timed_body(paced([b"x"] * 200, 0.02), idle_s=5, total_s=0.3), got)
    elapsed = time.monotonic() - started
    assert 0.29 <= elapsed < 2.0
    assert 3 <= len(got) < 20
    assert caught.value.context == {"limit": "body_timeout_s"}
    assert caught.value.detail == "the body did not arrive in time (body_timeout_s=0.3)"


async def test_the_total_bound_counts_from_the_start_not_from_each_chunk() -> None:
    # Each wait is the smaller of idle_s and what is left of total_s: the first chunks come
    # quickly, then a stall shorter than idle_s but past the total deadline is cut at it.
    got: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await collect(timed_body(stalling(b"first", 3.0), idle_s=2.5, total_s=0.2), got)
    elapsed = time.monotonic() - started
    assert got == [b"first"]
    assert 0.19 <= elapsed < 1.5
    assert caught.value.context == {"limit": "body_timeout_s"}
