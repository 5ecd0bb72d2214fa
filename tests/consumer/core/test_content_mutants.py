"""Content codings: cases found by ``make mutation MODULE=http-limits`` that no test held.

- trailing bytes after a small gzip stream in the same chunk: zlib puts them in
  ``unused_data`` (a large stream, cut into 1 MiB pieces, leaves them in
  ``unconsumed_tail`` too, which is all the existing test saw), so checking only one of
  the two accepted a small gzipped message with junk after it;
- a Content-Encoding header of only blanks means identity, not an unknown coding.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Iterable

import pytest

from consumer.core.content import decoded_body
from consumer.errors import MalformedMessage

BODY = b'{"events":[]}'


async def source(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def read(chunks: Iterable[bytes], encoding: str | None) -> bytes:
    body = decoded_body(
        source(chunks), encoding, max_body_bytes=1 << 20, max_decompressed_bytes=1 << 20
    )
    return b"".join([piece async for piece in body])


@pytest.mark.parametrize(
    ("encoding", "compressed"),
    [("gzip", gzip.compress(BODY)), ("deflate", zlib.compress(BODY))],
)
@pytest.mark.parametrize("junk", [b"\n", b"x", gzip.compress(b"{}")])
async def test_bytes_after_a_small_stream_in_the_same_chunk_are_malformed(
    encoding: str, compressed: bytes, junk: bytes
) -> None:
    assert await read([compressed], encoding) == BODY
    with pytest.raises(MalformedMessage) as caught:
        await read([compressed + junk], encoding)
    assert caught.value.detail == f"data after the end of the {encoding} stream"


@pytest.mark.parametrize("encoding", ["  ", "\t", " IDENTITY "])
async def test_a_blank_or_padded_content_encoding_is_identity(encoding: str) -> None:
    assert await read([b'{"events":', b"[]}"], encoding) == BODY
