"""Authentication of pushes against the feeds file, without blocking the event loop."""

from __future__ import annotations

import asyncio

from consumer.feeds import FeedTable, authorize, credentials_cached

__all__ = ["FeedAuthenticator"]


class FeedAuthenticator:
    """Checks each push's feed, credentials and client address; None: insecure dev mode."""

    def __init__(self, feeds: FeedTable | None, *, concurrent_hashes: int = 4) -> None:
        self.feeds = feeds
        self._hash_slots = asyncio.Semaphore(concurrent_hashes)

    async def check(
        self, feed: str, authorization: str | None, peer: str, forwarded_for: str | None
    ) -> None:
        """Return when the request may push to ``feed``: else UnknownFeed, Forbidden or
        Unauthorized."""
        table = self.feeds
        if table is None:
            return  # insecure development mode, logged on every request by the app
        if credentials_cached(table, feed, authorization):
            authorize(table, feed, authorization, peer, forwarded_for)
            return
        # A cache miss runs scrypt (tens of ms, ~16 MiB): off the loop, a few at a time.
        async with self._hash_slots:
            await asyncio.to_thread(authorize, table, feed, authorization, peer, forwarded_for)
