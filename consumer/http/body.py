"""Request bodies as they arrive: a sender that trickles its body is cut off in time.

Content codings and size limits are applied by ``consumer.core.content``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from consumer.errors import RequestTimeout

__all__ = ["timed_body"]


async def timed_body(
    chunks: AsyncIterator[bytes], *, idle_s: float, total_s: float
) -> AsyncIterator[bytes]:
    """The body's chunks; RequestTimeout when one takes over ``idle_s`` or all over ``total_s``.

    A sender trickling a byte at a time would otherwise hold a request, and its budget
    of in-flight work, for as long as it likes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_s
    iterator = aiter(chunks)
    while True:
        wait = min(idle_s, deadline - loop.time())
        try:
            chunk = await asyncio.wait_for(anext(iterator), max(wait, 0))
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            limit, value = (
                ("body_timeout_s", total_s) if wait < idle_s else ("read_timeout_s", idle_s)
            )
            raise RequestTimeout(
                f"the body did not arrive in time ({limit}={value:g})", limit=limit
            ) from exc
        yield chunk
