"""Handing a push to the process that owns its delivery slot.

Each delivery slot has one owner among the service's processes (``producer.slot_group``).
A process that receives a message of a slot it does not own streams the body, exactly as
it arrived (still compressed), to the owner's internal address and relays the owner's
answer. So the sender sees one answer, and only the owner's producer ever writes to the
slot: nobody is fenced under load.

- The body's raw bytes are kept (``BodyTee``) only until the message's coordinates are
  known: usually from its first bytes (``consumer.core.coordinates``), at worst when the
  pipeline opens its transaction. A message kept here stops keeping them at that point.
- The hop is signed (``HopSigner``): the origin authenticated the sender, checked its
  address and sends no credentials on; the owner believes a hop whose signature it can
  check with the key every process derives from the same feeds file.
- A hop is never forwarded again: a message whose slot moved while it travelled is
  answered 503, and the sender's retry finds the new owner.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import structlog
from starlette.responses import Response

from consumer.core.coordinates import leading_coordinates
from consumer.errors import Unavailable
from consumer.feeds import FeedTable, Forbidden

__all__ = ["HOP_HEADER", "BodyTee", "Forwarder", "HopSigner", "body_head"]

log = structlog.get_logger()

HOP_HEADER = "x-ivmtr-hop"
# How much of the decoded body is read to find the coordinates before giving up on them.
HEAD_BYTES = 64 << 10
# A signed hop is believed for this long (clock skew between hosts included).
_HOP_MAX_AGE_MS = 300_000
# The owner's answer headers passed back to the sender.
_RELAYED = ("retry-after", "www-authenticate", "x-request-id", "content-type")


class BodyTee:
    """The raw request body, passed through and kept while it may have to go elsewhere."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._kept: list[bytes] | None = []

    @property
    def keeping(self) -> bool:
        """True until ``release``: every byte read so far can still be replayed."""
        return self._kept is not None

    def release(self) -> None:
        """The message stays here: stop keeping its bytes."""
        self._kept = None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks, kept while ``keeping``."""
        async for chunk in self._chunks:
            if self._kept is not None:
                self._kept.append(chunk)
            yield chunk

    async def replay(self) -> AsyncIterator[bytes]:
        """The whole body: what was read so far, then the rest."""
        kept, self._kept = self._kept, None
        assert kept is not None, "the body was released"
        for chunk in kept:
            yield chunk
        async for chunk in self._chunks:
            yield chunk


async def body_head(
    body: AsyncIterator[bytes], limit: int = HEAD_BYTES
) -> tuple[tuple[str, int] | None, AsyncIterator[bytes]]:
    """The coordinates from the start of the decoded ``body`` (None when not found in its
    first ``limit`` bytes), and the whole body to read on."""
    head: list[bytes] = []
    size = 0
    coordinates = None
    iterator = aiter(body)
    async for chunk in iterator:
        head.append(chunk)
        size += len(chunk)
        coordinates = leading_coordinates(b"".join(head) if len(head) > 1 else chunk)
        if coordinates is not None or size >= limit:
            break

    async def whole() -> AsyncIterator[bytes]:
        for chunk in head:
            yield chunk
        async for chunk in iterator:
            yield chunk

    return coordinates, whole()


class HopSigner:
    """Signs and checks hops with a key derived from the feeds file.

    Every process of a service reads the same feeds file; its password hashes are secret
    to senders, so a sender cannot sign a hop itself. In insecure development mode (no
    feeds file) nothing is secret and any hop is believed, like any push.
    """

    def __init__(self, feeds: FeedTable | None) -> None:
        material = hashlib.sha256(b"ivmtr-stream hop v1\0")
        if feeds is not None:
            for name in sorted(feeds.feeds):
                feed = feeds.feeds[name]
                material.update(f"{name}\0{feed.user}\0{feed.password_hash}\0".encode())
        self._key = material.digest()

    def _signature(self, feed: str, request_id: str, origin: str, at_ms: int) -> str:
        message = f"{feed}\n{request_id}\n{origin}\n{at_ms}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, feed: str, request_id: str, origin: str) -> str:
        """The hop header's value for a message this process forwards."""
        at_ms = time.time_ns() // 1_000_000
        return f"{origin};{at_ms};{self._signature(feed, request_id, origin, at_ms)}"

    def check(self, value: str, feed: str, request_id: str) -> str:
        """The origin named by a hop header; Forbidden unless signed with our key, recently."""
        parts = value.rsplit(";", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            raise Forbidden("malformed hop header")
        origin, at, signature = parts
        if abs(time.time_ns() // 1_000_000 - int(at)) > _HOP_MAX_AGE_MS:
            raise Forbidden("hop too old (are the hosts' clocks in step?)")
        if not hmac.compare_digest(signature, self._signature(feed, request_id, origin, int(at))):
            raise Forbidden("hop signature does not match: do all processes share the feeds file?")
        return origin


@dataclass
class Forwarder:
    """Streams messages to their slot's owner over HTTP and gives back the owner's answer."""

    client: httpx.AsyncClient
    signer: HopSigner
    origin: str  # this process's replica id, named in the hop

    async def forward(
        self,
        owner: str,
        feed: str,
        request_id: str,
        body: AsyncIterator[bytes],
        *,
        content_type: str,
        content_encoding: str | None,
    ) -> Response:
        """The owner's answer to the message; Unavailable when the owner cannot be reached."""
        if not owner:
            raise Unavailable("the owner of the message's delivery slot gave no address")
        headers = {
            "content-type": content_type,
            "x-request-id": request_id,
            HOP_HEADER: self.signer.sign(feed, request_id, self.origin),
        }
        if content_encoding:
            headers["content-encoding"] = content_encoding
        try:
            answer = await self.client.post(
                f"{owner}/v1/feeds/{feed}", content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("forwarding failed", owner=owner, error=str(exc) or type(exc).__name__)
            raise Unavailable(
                f"the owner of the message's delivery slot did not answer: {owner}"
            ) from exc
        relayed = {name: answer.headers[name] for name in _RELAYED if name in answer.headers}
        return Response(answer.content, answer.status_code, relayed)
