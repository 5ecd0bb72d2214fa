"""One request's time to wait for Kafka: all of its waits together, not each one.

A pushed message waits for Kafka several times: for its delivery slot (held by another
message, or being dealt), for a producer to start or take the slot back after a fencing,
for the claim and the delivery log, to hand batches over, for the commit, and for the
abort when something failed. Bounded one by one, those waits add up: with the broker
frozen, a push waited for its claim and then as long again for its abort. A
``WaitBudget`` is made once per request and every wait draws on it, so the request's
answer comes within the budget however the time was spent.

Only time spent waiting for Kafka counts: reading the client's body and parsing it
between waits has bounds of its own (``IVMTR_BODY_TIMEOUT_S``, ``IVMTR_READ_TIMEOUT_S``),
so a large body arriving slowly does not use up the time its commit needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from producer.errors import PublishTimeout

__all__ = ["WaitBudget"]


class WaitBudget:
    """How long one request may still wait for Kafka, over all of its waits.

    Belongs to one task: a ``waiting`` block inside another counts once (the outer one's
    time) and is bounded by the outer one's timeout.
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._spent = 0.0
        self._depth = 0  # waiting blocks entered and not yet left
        self._entered_at = 0.0  # when the outermost of them was entered

    @property
    def spent(self) -> float:
        """Seconds waited so far, the wait in progress included."""
        if self._depth:
            return self._spent + self._clock() - self._entered_at
        return self._spent

    @property
    def remaining(self) -> float:
        """Seconds left to wait (0 when the budget is used up)."""
        return max(0.0, self.seconds - self.spent)

    @contextlib.asynccontextmanager
    async def waiting(self, what: str) -> AsyncIterator[None]:
        """Run a wait for Kafka within what is left; PublishTimeout naming ``what`` when
        nothing is left, or the block has not ended when the budget runs out."""
        if self._depth:
            yield  # the outer block bounds this one and counts its time
            return
        left = self.remaining
        if left <= 0:
            raise PublishTimeout(self._exhausted(what))
        self._depth, self._entered_at = 1, self._clock()
        try:
            async with asyncio.timeout(left):
                yield
        except TimeoutError as exc:
            raise PublishTimeout(self._exhausted(what)) from exc
        finally:
            self._spent += self._clock() - self._entered_at
            self._depth = 0

    async def wait_for(self, task: asyncio.Future[Any]) -> bool:
        """Wait for ``task`` at most what is left, never cancelling it: whether it ended.

        For cleanups such as an abort: one the broker does not answer in time goes on in
        the background while the request is answered.
        """
        if task.done():
            return True
        left = self.remaining
        if left <= 0:
            return False
        started = self._clock()
        try:
            done, _ = await asyncio.wait({task}, timeout=left)
        finally:
            if not self._depth:
                self._spent += self._clock() - started
        return bool(done)

    def _exhausted(self, what: str) -> str:
        return f"Kafka did not answer within {self.seconds:g} s (waiting for {what})"
