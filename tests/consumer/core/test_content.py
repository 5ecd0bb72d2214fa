"""Tests for consumer.http.body: content-encoding and size limits, applied while reading."""

from __future__ import annotations

import gzip
import itertools
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterable
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.core.content import decoded_body
from consumer.errors import LimitExceeded, MalformedMessage, UnsupportedEncoding
from consumer.http.errors import status_of

MIB = 1 << 20
# Repetitive but not constant, so it compresses well yet deflate's matches vary.
PLAIN = b"".join(b'{"imb":"%031d","scanEventCode":"918"},' % (n * 7919) for n in range(60_000))
GZIP = gzip.compress(PLAIN, 6)
DEFLATE = zlib.compress(PLAIN, 6)


class Source:
    """An async chunk source that counts how many chunks were pulled from it."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.pulled = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None
        self.pulled += 1
        return chunk


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


async def read(
    chunks: Iterable[bytes],
    encoding: str | None,
    *,
    max_body_bytes: int = 1 << 30,
    max_decompressed_bytes: int = 1 << 30,
) -> list[bytes]:
    body = decoded_body(
        Source(chunks),
        encoding,
        max_body_bytes=max_body_bytes,
        max_decompressed_bytes=max_decompressed_bytes,
    )
    return [piece async for piece in body]


@pytest.mark.parametrize("encoding", [None, "", "identity", " Identity "])
async def test_identity_passes_chunks_through(encoding: str | None) -> None:
    chunks = [b'{"events":', b"", b"[]", b"}"]
    assert await read(chunks, encoding) == [b'{"events":', b"[]", b"}"]


@pytest.mark.parametrize(
    ("encoding", "data"),
    [("gzip", GZIP), ("x-gzip", GZIP), ("GZIP", GZIP), (" gzip ", GZIP), ("deflate", DEFLATE)],
)
@pytest.mark.parametrize("size", [1 << 30, 65_536, 1000, 7])
async def test_compressed_bodies_decode(encoding: str, data: bytes, size: int) -> None:
    out = await read(pieces(data, size), encoding)
    assert b"".join(out) == PLAIN
    assert max(len(piece) for piece in out) <= MIB  # pieces of at most 1 MiB
    assert all(out)  # no empty pieces


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, len(GZIP)), max_size=40), deflate=st.booleans())
async def test_any_chunking_decodes(cuts: list[int], deflate: bool) -> None:
    data = DEFLATE if deflate else GZIP
    bounds = [0, *sorted(set(cut % (len(data) + 1) for cut in cuts)), len(data)]
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    assert b"".join(await read(chunks, "deflate" if deflate else "gzip")) == PLAIN


@pytest.mark.parametrize(
    ("encoding", "chunks", "limit"),
    [
        (None, [b"a" * 600, b"a" * 600], 1024),
        ("gzip", pieces(GZIP, 100), len(GZIP) - 1),
        ("deflate", [DEFLATE], len(DEFLATE) - 1),
    ],
)
async def test_max_body_bytes(encoding: str | None, chunks: list[bytes], limit: int) -> None:
    with pytest.raises(LimitExceeded) as caught:
        await read(chunks, encoding, max_body_bytes=limit)
    assert caught.value.context == {"limit": "max_body_bytes", "value": limit}
    assert (status_of(caught.value), caught.value.code) == (413, "limit_exceeded")


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_body_of_exactly_max_body_bytes_is_accepted(encoding: str | None) -> None:
    data = GZIP if encoding else PLAIN
    assert b"".join(await read(pieces(data, 4096), encoding, max_body_bytes=len(data))) == PLAIN


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_max_decompressed_bytes(encoding: str) -> None:
    data = GZIP if encoding == "gzip" else DEFLATE
    with pytest.raises(LimitExceeded) as caught:
        await read([data], encoding, max_decompressed_bytes=len(PLAIN) - 1)
    assert caught.value.context == {"limit": "max_decompressed_bytes", "value": len(PLAIN) - 1}
    assert status_of(caught.value) == 413
    assert b"".join(await read([data], encoding, max_decompressed_bytes=len(PLAIN))) == PLAIN


@cache
def gzip_bomb(megabytes: int) -> bytes:
    """``megabytes`` MiB of zeros, gzipped (about 1000:1), built without compressing them all.

    After a full flush the deflater starts afresh, so every further MiB of zeros compresses
    to the same block; the gzip trailer's CRC-32 and size are those of all the zeros.
    """
    zeros = bytes(MIB)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    last = deflater.compress(zeros) + deflater.flush()
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, megabytes * MIB % (1 << 32))
    return header + block * (megabytes - 1) + last + trailer


def test_gzip_bomb_is_valid_gzip() -> None:
    assert gzip.decompress(gzip_bomb(5)) == bytes(5 * MIB)


async def test_gzip_bomb_stops_early_with_bounded_memory() -> None:
    bomb = gzip_bomb(200)
    assert len(bomb) < 250_000
    chunks = pieces(bomb, 1024)
    source = Source(chunks)
    produced = 0
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded) as caught:
            async for piece in decoded_body(
                source, "gzip", max_body_bytes=1 << 30, max_decompressed_bytes=16 * MIB
            ):
                assert len(piece) <= MIB
                produced += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.context == {"limit": "max_decompressed_bytes", "value": 16 * MIB}
    assert produced <= 16 * MIB
    # 16 MiB of zeros take about 16 KiB of the ~200 KiB bomb: stopped long before the end
    assert source.pulled < len(chunks) // 5
    assert peak < 8 * MIB  # pieces are dropped as they go: far below the 16 MiB inflated


@pytest.mark.parametrize(
    ("encoding", "chunks", "detail"),
    [
        ("gzip", [GZIP[:-4]], "the gzip stream is truncated"),
        ("gzip", pieces(GZIP[: len(GZIP) // 2], 1000), "the gzip stream is truncated"),
        ("gzip", [GZIP[:10]], "the gzip stream is truncated"),
        ("gzip", [], "the gzip stream is truncated"),
        ("deflate", [DEFLATE[:-1]], "the deflate stream is truncated"),
        ("gzip", [GZIP, b"x"], "data after the end of the gzip stream"),
        ("gzip", [GZIP + b"\n"], "data after the end of the gzip stream"),
        ("deflate", [DEFLATE + b"\x00"], "data after the end of the deflate stream"),
    ],
)
async def test_broken_streams(encoding: str, chunks: list[bytes], detail: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        await read(chunks, encoding)
    assert caught.value.detail == detail
    assert status_of(caught.value) == 400


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("gzip", b'{"events":[]}'),  # not compressed at all
        ("gzip", GZIP[:20] + bytes(b ^ 0xFF for b in GZIP[20:200]) + GZIP[200:]),
        ("deflate", GZIP),  # gzip sent as deflate
        ("gzip", DEFLATE),
    ],
)
async def test_corrupt_streams(encoding: str, data: bytes) -> None:
    with pytest.raises(MalformedMessage, match=rf"^the body is not valid {encoding} data \("):
        await read(pieces(data, 1000), encoding)


async def test_crc_mismatch_is_refused() -> None:
    damaged = bytearray(GZIP)
    damaged[-8] ^= 0x01  # the CRC-32 in the gzip trailer
    with pytest.raises(MalformedMessage, match=r"^the body is not valid gzip data \("):
        await read([bytes(damaged)], "gzip")


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br", "gzip, identity"])
async def test_unsupported_encoding(encoding: str) -> None:
    source = Source([GZIP])
    with pytest.raises(UnsupportedEncoding) as caught:
        async for _ in decoded_body(
            source, encoding, max_body_bytes=1 << 30, max_decompressed_bytes=1 << 30
        ):
            pass
    assert (status_of(caught.value), caught.value.code) == (415, "unsupported_content_encoding")
    assert caught.value.detail == (
        f"Content-Encoding {encoding.strip().lower()!r} is not supported (use gzip or deflate)"
    )
    assert source.pulled == 0
