"""Authentication of pushes: throttled per client, password checks on threads of their own.

A wrong password costs a scrypt (tens of ms, ~16 MiB at the default cost). Three bounds
keep a flood of them from reaching the valid pushes:

- ``FailureThrottle``: a client address that keeps failing a feed's check is answered
  429 for that feed before any check, until its lockout ends;
- ``PasswordCheckPool``: checks run on a few threads of their own, not the default
  executor that runs the native ingest work, and only so many may wait for them (503
  beyond that); scrypt's memory is at most threads x 16 MiB;
- refusals made without a check (429, and 503 when the pool is full) are held for
  ``refusal_delay_s`` before they are sent, so that one connection of a client that
  ignores Retry-After asks at most once per delay instead of as fast as the event loop
  can answer.

Valid credentials are cached after their first check (``consumer.feeds.passwords``), so
a busy feed needs the pool once per process, not per push.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import structlog

from consumer.errors import Unavailable
from consumer.feeds import (
    FailureThrottle,
    FeedTable,
    TooManyFailures,
    Unauthorized,
    authorize,
    basic_credentials,
    client_address,
    client_key,
    credentials_cached,
)
from consumer.feeds.throttle import ClientKey

__all__ = ["FailureKey", "FeedAuthenticator", "PasswordCheckPool", "PasswordChecksBusy"]

FailureKey = tuple[ClientKey, str]
"""Who wrong passwords count against: a client address and the feed it pushed to.

Per feed, because IV-MTR pushes every feed of a mailer from the same USPS addresses: one
feed whose password is wrong in IV-MTR's address book must not lock the others out."""

log = structlog.get_logger()

T = TypeVar("T")


class PasswordChecksBusy(Unavailable):
    """Every password-check thread is busy and the queue before them is full; retry later."""

    code = "auth_busy"


class PasswordCheckPool:
    """A few threads for password checks, and a bound on the checks waiting for them.

    ``run`` refuses at once (PasswordChecksBusy) when ``threads + max_waiting`` checks
    are already submitted and not finished, rather than queue without limit. A check
    whose caller went away (a client that hung up) still counts until its thread is
    done with it, so the bound holds for the threads' real work.
    """

    def __init__(self, threads: int, max_waiting: int, *, retry_after_s: int = 1) -> None:
        if threads < 1 or max_waiting < 0:
            raise ValueError("need threads >= 1 and max_waiting >= 0")
        self.threads = threads
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self._executor: ThreadPoolExecutor | None = None
        # Decremented by a done-callback, which runs on the check's thread.
        self._lock = threading.Lock()
        self._submitted = 0

    @property
    def running(self) -> int:
        """Checks on a thread now (at most ``threads``)."""
        return min(self._submitted, self.threads)

    @property
    def waiting(self) -> int:
        """Checks submitted and waiting for a thread."""
        return max(0, self._submitted - self.threads)

    def start(self) -> None:
        """Make the threads' executor (the threads themselves start with the first checks)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="ivmtr-auth")

    def stop(self) -> None:
        """Drop the checks still waiting and let the threads end; ``start`` makes new ones."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, check: Callable[..., T], *args: Any) -> T:
        """``check(*args)`` on a pool thread; PasswordChecksBusy when the pool is full."""
        with self._lock:
            if self._submitted >= self.threads + self.max_waiting:
                raise PasswordChecksBusy(
                    f"{self._submitted} password checks in progress or waiting; retry later",
                    self.retry_after_s,
                )
            self._submitted += 1
        try:
            self.start()
            assert self._executor is not None
            future: Future[T] = self._executor.submit(check, *args)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        # Cancelling the awaiting task cancels a check still waiting; a running one ends
        # on its own, and is counted until it does.
        return await asyncio.wrap_future(future)

    def _finished(self, _future: Future[Any] | None) -> None:
        with self._lock:
            self._submitted -= 1


@dataclass
class _ClientChecks:
    """The checks of one client: the one running holds the lock, the rest wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class FeedAuthenticator:
    """Checks each push's feed, credentials and client address; no feeds: insecure dev mode.

    Order, cheapest first: a throttled client is answered 429 (TooManyFailures); an
    unknown feed, a client outside the feed's networks or malformed credentials are
    refused on the event loop; cached valid credentials pass on the loop; only the rest
    costs a scrypt, on the pool, one check of a client at a time. Each wrong password
    found by a check counts against the client (``throttle``) and in
    ``failures_by_feed``.
    """

    def __init__(
        self,
        feeds: FeedTable | None,
        *,
        throttle: FailureThrottle | None = None,
        pool: PasswordCheckPool | None = None,
        refusal_delay_s: float = 1.0,
    ) -> None:
        self.feeds = feeds
        # ``is None``, not ``or``: an empty throttle has len() 0, and so is false.
        self.throttle = FailureThrottle() if throttle is None else throttle
        self.pool = PasswordCheckPool(threads=1, max_waiting=16) if pool is None else pool
        self.refusal_delay_s = refusal_delay_s
        self.failures_by_feed: dict[str, int] = {}
        """Wrong passwords found by a check, by feed (a counter for metrics)."""
        self.throttled = 0
        """Pushes answered 429 without a check (a counter for metrics)."""
        # Clients with a check running or waiting: bounded by the requests in flight.
        self._checking: dict[FailureKey, _ClientChecks] = {}

    def start(self) -> None:
        """Make the password-check pool ready."""
        self.pool.start()

    def stop(self) -> None:
        """Let the password-check threads end."""
        self.pool.stop()

    async def check(
        self, feed: str, authorization: str | None, peer: str, forwarded_for: str | None
    ) -> None:
        """Return when the request may push to ``feed``: else UnknownFeed, Forbidden,
        Unauthorized, TooManyFailures or PasswordChecksBusy."""
        table = self.feeds
        if table is None:
            return  # insecure development mode, logged on every request by the app
        address = client_address(peer, forwarded_for, table.trusted_proxies)
        client: FailureKey = (client_key(address, peer), feed)
        await self._refuse_if_locked_out(client)
        if credentials_cached(table, feed, authorization) or not self._needs_check(
            table, feed, authorization
        ):
            # Either passes, or fails before any scrypt: cheap enough for the loop.
            authorize(table, feed, authorization, peer, forwarded_for)
            return
        try:
            async with self._one_check_at_a_time(client):
                # The checks before this one may have locked the client out, or put these
                # very credentials in the cache. A refusal is held outside the lock, so
                # that the client's other requests are not held one after the other.
                wait = self.throttle.retry_after(client)
                if wait is None:
                    await self._check_on_pool(
                        client, table, feed, authorization, peer, forwarded_for
                    )
        except PasswordChecksBusy:
            await self._hold(self.refusal_delay_s)
            raise
        if wait is not None:
            await self._refuse(client, wait)

    async def _check_on_pool(
        self,
        client: FailureKey,
        table: FeedTable,
        feed: str,
        authorization: str | None,
        peer: str,
        forwarded_for: str | None,
    ) -> None:
        if credentials_cached(table, feed, authorization):
            authorize(table, feed, authorization, peer, forwarded_for)
            return
        try:
            await self.pool.run(authorize, table, feed, authorization, peer, forwarded_for)
        except Unauthorized:
            self._failed(client, feed)
            raise

    async def _refuse_if_locked_out(self, client: FailureKey) -> None:
        """TooManyFailures when ``client`` is locked out, whatever its credentials: a
        locked-out client must not learn from a fast 200 that a guess was right."""
        wait = self.throttle.retry_after(client)
        if wait is not None:
            await self._refuse(client, wait)

    async def _refuse(self, client: FailureKey, wait: float) -> NoReturn:
        """Hold the refusal of a locked-out client (at most ``wait``), then raise it."""
        self.throttled += 1
        await self._hold(wait)
        remaining = self.throttle.retry_after(client) or 0.0
        raise TooManyFailures(
            "too many failed password checks from this client; retry later",
            max(1, math.ceil(remaining)),
        )

    @contextlib.asynccontextmanager
    async def _one_check_at_a_time(self, client: FailureKey) -> AsyncIterator[None]:
        """Checks of one client run one after the other, so that a burst of wrong
        passwords costs at most ``failure_limit`` scrypts before the lockout, not as many
        as the pool takes; and a burst of right ones one scrypt, then the cache."""
        entry = self._checking.get(client)
        if entry is None:
            entry = self._checking[client] = _ClientChecks()
        entry.waiting += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.waiting -= 1
            if entry.waiting == 0:
                del self._checking[client]

    @staticmethod
    def _needs_check(table: FeedTable, feed: str, authorization: str | None) -> bool:
        """Whether ``authorize`` would reach scrypt: the feed exists and the credentials
        are well formed (the network check before it is cheap either way)."""
        if feed not in table.feeds:
            return False
        try:
            basic_credentials(authorization)
        except Unauthorized:
            return False
        return True

    def _failed(self, client: FailureKey, feed: str) -> None:
        self.failures_by_feed[feed] = self.failures_by_feed.get(feed, 0) + 1
        lockout = self.throttle.record_failure(client)
        if lockout is not None:
            log.warning(
                "client locked out after failed password checks",
                client=str(client[0]),
                feed=feed,
                failures=self.throttle.policy.failure_limit,
                lockout_s=round(lockout, 1),
            )

    async def _hold(self, seconds: float) -> None:
        """Hold a refusal made without a check, so that a client that ignores
        Retry-After cannot make a connection ask again at once.

        The hold is ``refusal_delay_s`` on average, drawn from half to one and a half of
        it: held alike, a flood's connections would all be answered, and all ask again,
        in the same instant each time, and the event loop would take them in one burst
        that every valid push arriving then waits behind.
        """
        delay = min(self.refusal_delay_s * random.uniform(0.5, 1.5), seconds)
        if delay > 0:
            await asyncio.sleep(delay)
