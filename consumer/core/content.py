"""Content codings of a message body (identity, gzip, deflate) and its size limits.

A gzip bomb is cut off while it is being inflated: output is produced in bounded
pieces and counted against ``max_decompressed_bytes`` before the next piece. Pure
computation over the chunks it is given: the HTTP app decodes pushed bodies with it, the
spool worker the bodies it replays.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from consumer.errors import LimitExceeded, MalformedMessage, UnsupportedEncoding

__all__ = ["decoded_body"]

_PIECE = 1 << 20
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def decoded_body(
    chunks: AsyncIterator[bytes],
    content_encoding: str | None,
    *,
    max_body_bytes: int,
    max_decompressed_bytes: int,
) -> AsyncIterator[bytes]:
    """The body as plain bytes, in pieces of at most 1 MiB, with both size limits enforced."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > max_body_bytes:
                raise LimitExceeded("max_body_bytes", max_body_bytes)
            if chunk:
                yield chunk
        return
    if encoding not in _WBITS:
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding!r} is not supported (use gzip or deflate)"
        )
    inflater = zlib.decompressobj(_WBITS[encoding])
    received = produced = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > max_body_bytes:
            raise LimitExceeded("max_body_bytes", max_body_bytes)
        if inflater.eof and chunk:
            raise MalformedMessage(f"data after the end of the {encoding} stream")
        data = chunk
        while data:
            try:
                piece = inflater.decompress(data, _PIECE)
            except zlib.error as exc:
                raise MalformedMessage(f"the body is not valid {encoding} data ({exc})") from exc
            produced += len(piece)
            if produced > max_decompressed_bytes:
                raise LimitExceeded("max_decompressed_bytes", max_decompressed_bytes)
            if piece:
                yield piece
            data = inflater.unconsumed_tail
            if inflater.eof:
                if data or inflater.unused_data:
                    raise MalformedMessage(f"data after the end of the {encoding} stream")
                break
    if not inflater.eof:
        raise MalformedMessage(f"the {encoding} stream is truncated")
