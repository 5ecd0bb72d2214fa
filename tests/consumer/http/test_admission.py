"""Tests for consumer.http.admission: shared in-flight budgets, refused (503) not queued."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

import pytest

from consumer.errors import IngestError, Unavailable
from consumer.http.admission import Admission, Overloaded
from consumer.http.errors import status_of


def admission(
    max_requests: int = 2, max_bytes: int = 100, max_records: int = 10, retry_after_s: int = 7
) -> Admission:
    return Admission(
        max_requests=max_requests,
        max_bytes=max_bytes,
        max_records=max_records,
        retry_after_s=retry_after_s,
    )


def in_flight(a: Admission) -> tuple[int, int, int]:
    return a.requests, a.body_bytes, a.records


async def chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


def test_overloaded_is_a_503_with_retry_after() -> None:
    a = admission(max_requests=1, retry_after_s=7)
    with a.request(), pytest.raises(Overloaded) as caught, a.request():
        pass
    error = caught.value
    assert isinstance(error, Unavailable)
    assert isinstance(error, IngestError)
    assert status_of(error) == 503
    assert error.code == "overloaded"
    assert error.retry_after == 7
    assert error.body()["error"] == "overloaded"
    assert "max_concurrent_requests=1" in error.detail


@pytest.mark.parametrize("max_requests", [1, 2, 5])
def test_requests_limit_exact(max_requests: int) -> None:
    a = admission(max_requests=max_requests)
    with contextlib.ExitStack() as stack:
        for n in range(max_requests):
            stack.enter_context(a.request())
            assert a.requests == n + 1
        with pytest.raises(Overloaded), a.request():
            pytest.fail("admitted past max_requests")
        assert a.requests == max_requests  # a refused request takes nothing
    assert in_flight(a) == (0, 0, 0)
    with a.request():  # free again
        assert a.requests == 1


def test_bytes_limit_exact() -> None:
    a = admission(max_bytes=100, retry_after_s=3)
    with a.request() as ticket:
        ticket.take_bytes(60)
        ticket.take_bytes(40)  # exactly max_bytes is allowed
        assert a.body_bytes == 100
        with pytest.raises(Overloaded) as caught:
            ticket.take_bytes(1)
        assert caught.value.retry_after == 3
        assert status_of(caught.value) == 503
        assert "max_inflight_bytes=100" in caught.value.detail
        assert a.body_bytes == 100  # the refused take is not counted
        ticket.take_bytes(0)
    assert in_flight(a) == (0, 0, 0)


def test_records_limit_exact() -> None:
    a = admission(max_records=10, retry_after_s=4)
    with a.request() as ticket:
        ticket.take_records(9)
        with pytest.raises(Overloaded) as caught:
            ticket.take_records(2)
        assert caught.value.retry_after == 4
        assert "max_inflight_records=10" in caught.value.detail
        assert a.records == 9
        ticket.take_records(1)
        assert a.records == 10
        with pytest.raises(Overloaded):
            ticket.take_records(1)
    assert in_flight(a) == (0, 0, 0)


def test_single_take_larger_than_budget() -> None:
    a = admission(max_bytes=100, max_records=10)
    with a.request() as ticket:
        with pytest.raises(Overloaded):
            ticket.take_bytes(101)
        with pytest.raises(Overloaded):
            ticket.take_records(11)
        assert in_flight(a) == (1, 0, 0)


class Boom(Exception):
    pass


def test_release_on_exception() -> None:
    a = admission()
    with pytest.raises(Boom), a.request() as ticket:
        ticket.take_bytes(70)
        ticket.take_records(8)
        assert in_flight(a) == (1, 70, 8)
        raise Boom
    assert in_flight(a) == (0, 0, 0)


def test_release_when_the_request_is_refused_midway() -> None:
    a = admission(max_bytes=100)
    with pytest.raises(Overloaded), a.request() as ticket:
        ticket.take_bytes(80)
        ticket.take_bytes(80)
    assert in_flight(a) == (0, 0, 0)
    with a.request() as ticket:
        ticket.take_bytes(100)  # the whole budget is back


def test_tickets_share_the_budgets() -> None:
    a = admission(max_requests=3, max_bytes=100, max_records=10)
    with a.request() as first, a.request() as second:
        first.take_bytes(60)
        first.take_records(6)
        with pytest.raises(Overloaded):
            second.take_bytes(41)
        with pytest.raises(Overloaded):
            second.take_records(5)
        second.take_bytes(40)
        second.take_records(4)
        assert in_flight(a) == (2, 100, 10)
        with a.request() as third:
            with pytest.raises(Overloaded):
                third.take_bytes(1)
            with pytest.raises(Overloaded):
                third.take_records(1)
        assert in_flight(a) == (2, 100, 10)
    assert in_flight(a) == (0, 0, 0)


def test_release_gives_back_only_what_that_request_took() -> None:
    a = admission(max_requests=2, max_bytes=100, max_records=10)
    with a.request() as second:
        with a.request() as first:
            first.take_bytes(70)
            first.take_records(7)
            second.take_bytes(30)
            second.take_records(3)
        assert in_flight(a) == (1, 30, 3)
        second.take_bytes(70)  # what the first request took is free again
        second.take_records(7)
        assert in_flight(a) == (1, 100, 10)
    assert in_flight(a) == (0, 0, 0)


async def test_metered_counts_bytes() -> None:
    a = admission(max_bytes=100)
    with a.request() as ticket:
        out = [c async for c in ticket.metered(chunks([b"abc", b"", b"defgh", b"x" * 12]))]
        assert out == [b"abc", b"", b"defgh", b"x" * 12]
        assert ticket.body_bytes == 20
        assert a.body_bytes == 20
    assert a.body_bytes == 0


async def test_metered_refuses_past_the_budget() -> None:
    a = admission(max_bytes=10)
    got: list[bytes] = []
    with pytest.raises(Overloaded), a.request() as ticket:
        async for chunk in ticket.metered(chunks([b"1234", b"123456", b"7"])):
            got.append(chunk)
    assert got == [b"1234", b"123456"]  # exactly max_bytes passed, the next chunk refused
    assert in_flight(a) == (0, 0, 0)


async def test_concurrent_requests_share_budgets() -> None:
    a = admission(max_requests=2, max_bytes=100, max_records=10)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        with a.request() as ticket:
            async for _ in ticket.metered(chunks([b"x" * 30, b"x" * 30])):
                pass
            ticket.take_records(6)
            holding.set()
            await release.wait()

    async def push(size: int, records: int) -> str:
        try:
            with a.request() as ticket:
                async for _ in ticket.metered(chunks([b"y" * size])):
                    pass
                ticket.take_records(records)
        except Overloaded as exc:
            return exc.code
        return "ok"

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(holding.wait(), 1)
    assert in_flight(a) == (1, 60, 6)
    assert await push(41, 1) == "overloaded"
    assert await push(40, 5) == "overloaded"
    assert in_flight(a) == (1, 60, 6)
    assert await push(40, 4) == "ok"
    # A second holder fills max_requests: a third request is refused before reading anything.
    second_holding = asyncio.Event()

    async def hold_request() -> None:
        with a.request():
            second_holding.set()
            await release.wait()

    other = asyncio.create_task(hold_request())
    await asyncio.wait_for(second_holding.wait(), 1)
    assert await push(0, 0) == "overloaded"
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, other), 1)
    assert in_flight(a) == (0, 0, 0)
    assert await push(100, 10) == "ok"


async def test_cancelled_request_releases() -> None:
    a = admission()
    started = asyncio.Event()

    async def slow() -> None:
        with a.request() as ticket:
            ticket.take_bytes(50)
            ticket.take_records(5)
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(slow())
    await asyncio.wait_for(started.wait(), 1)
    assert in_flight(a) == (1, 50, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert in_flight(a) == (0, 0, 0)
