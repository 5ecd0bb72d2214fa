"""Body pieces are joined before they go to the worker thread: same bytes, fewer hand-overs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from consumer.ingest.message import coalesced


async def pieces(sizes: list[int]) -> AsyncIterator[bytes]:
    for number, size in enumerate(sizes):
        yield bytes([number % 256]) * size


@pytest.mark.parametrize(
    ("sizes", "size", "expected"),
    [
        ([], 5, []),
        ([10], 5, [10]),
        ([3, 3, 3, 3, 3], 5, [6, 6, 3]),
        ([7, 1, 1], 5, [7, 2]),
        ([1, 1, 1, 1], 2, [2, 2]),
        ([100], 5, [100]),
    ],
)
async def test_pieces_are_joined_up_to_the_size_and_the_bytes_stay_the_same(
    sizes: list[int], size: int, expected: list[int]
) -> None:
    out = [piece async for piece in coalesced(pieces(sizes), size)]
    assert [len(piece) for piece in out] == expected
    assert b"".join(out) == b"".join([piece async for piece in pieces(sizes)])
