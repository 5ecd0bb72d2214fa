"""Failed password checks per client address, and the lockouts they earn.

A client that keeps failing is locked out: once ``failure_limit`` failures fall within
``window_s`` of the first of them, the client is refused without a check for
``lockout_s``, doubled at each further lockout up to ``max_lockout_s``. The caller asks
``retry_after`` before any hashing and reports each wrong password to
``record_failure``; nothing here knows about HTTP, feeds or time itself (the clock is
injected), so the whole policy is testable without sleeping.

Decisions:

- A success changes nothing. Behind one address (a NAT, a proxy not listed as
  trusted) an attacker and a valid sender are the same client; were a success to clear
  the record, the valid sender's pushes would reset the attacker's count and let it
  guess forever, one failure short of the limit. A valid sender that mistyped its
  password is forgiven by time instead: its failure count restarts with each window,
  and the record (with its count of lockouts, which lengthen each next one) is
  forgotten ``2 * max_lockout_s`` after its last failure, i.e. at least
  ``max_lockout_s`` after its last lockout ended.
- Failures that arrive while a client is locked out cannot happen (it is refused
  before any check), so a lockout is never lengthened by the requests it refuses: a
  client that honours Retry-After gets its next attempts when it was told.
- IPv6 clients are counted per /64 (``client_key``): one host is routinely given a
  whole /64 and can use any address of it.
- Memory is bounded: at most ``max_clients`` records (about 200 bytes each), the one
  whose last failure is oldest evicted first. A flood from more addresses than that
  can push out a locked-out client's record; that is a distributed attack, which a
  per-address count does not stop anyway (README, Security).

Not thread-safe: one event loop owns a ``FailureThrottle``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from consumer.errors import IngestError

__all__ = ["ClientKey", "FailureThrottle", "ThrottlePolicy", "TooManyFailures", "client_key"]

ClientKey = IPv4Address | IPv6Network | str
"""Who failures are counted against: an IPv4 address, an IPv6 /64, or an opaque peer."""


class TooManyFailures(IngestError):
    """The client failed too many password checks: refused without one (answered 429)
    until ``retry_after`` seconds have passed."""

    code = "too_many_failures"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after_s=retry_after)
        self.retry_after = retry_after


def client_key(address: IPv4Address | IPv6Address | None, peer: str) -> ClientKey:
    """What failures from ``address`` are counted against.

    ``address`` is the resolved client address (``client_address``: trusted proxies
    believed); an IPv6 one counts as its /64. None (a peer that is not an address, or a
    trusted proxy that sent a malformed X-Forwarded-For) counts as the raw ``peer``,
    so such clients share the record of the hop that brought them.
    """
    if isinstance(address, IPv6Address):
        return IPv6Network((int(address) >> 64 << 64, 64))
    if address is None:
        return peer
    return address


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures lock a client out, and for how long."""

    failure_limit: int = 10
    """Failures within ``window_s`` that start a lockout."""
    window_s: float = 60.0
    """Failures are counted in windows of this length, from a window's first failure."""
    lockout_s: float = 60.0
    """The first lockout; each further one doubles, up to ``max_lockout_s``."""
    max_lockout_s: float = 3600.0
    """The longest lockout; a record is forgotten twice this long after its last failure."""
    max_clients: int = 100_000
    """Most clients tracked at once; past it the least recently failing is forgotten."""

    def __post_init__(self) -> None:
        if self.failure_limit < 1 or self.max_clients < 1:
            raise ValueError("failure_limit and max_clients must be at least 1")
        if not (self.window_s > 0 and 0 < self.lockout_s <= self.max_lockout_s):
            raise ValueError("need window_s > 0 and 0 < lockout_s <= max_lockout_s")

    def lockout_length(self, earlier_lockouts: int) -> float:
        """How long the lockout after ``earlier_lockouts`` others lasts."""
        # Capped exponent: 2**64 seconds is already far beyond any max_lockout_s.
        return min(self.max_lockout_s, self.lockout_s * 2.0 ** min(earlier_lockouts, 64))


class _Record:
    """One client's failures: the current window, and its lockouts."""

    __slots__ = ("failures", "last_failure", "locked_until", "lockouts", "window_start")

    def __init__(self, now: float) -> None:
        self.window_start = now
        self.failures = 0
        self.last_failure = now
        self.locked_until = 0.0
        self.lockouts = 0


class FailureThrottle:
    """Per-client failure counts and lockouts; see the module docstring for the policy.

    A client is any hashable key: the authenticator counts a client address's failures
    per feed (``(client_key(...), feed)``).
    """

    def __init__(
        self, policy: ThrottlePolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        # Ordered by last failure, oldest first: eviction and forgetting pop from the front.
        self._records: OrderedDict[Hashable, _Record] = OrderedDict()
        self.lockouts = 0
        """Lockouts started since this throttle was made (a counter for metrics)."""

    def __len__(self) -> int:
        """Clients tracked now."""
        return len(self._records)

    def retry_after(self, client: Hashable) -> float | None:
        """Seconds until ``client`` may be checked again; None when it may be now."""
        record = self._records.get(client)
        if record is None:
            return None
        remaining = record.locked_until - self._clock()
        return remaining if remaining > 0 else None

    def record_failure(self, client: Hashable) -> float | None:
        """Count a failed check of ``client``; the lockout it started, in seconds, if any."""
        now = self._clock()
        self._forget_stale(now)
        policy = self.policy
        record = self._records.get(client)
        if record is None:
            record = self._records[client] = _Record(now)
            while len(self._records) > policy.max_clients:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(client)
        if now - record.window_start >= policy.window_s:
            record.window_start, record.failures = now, 0
        record.failures += 1
        record.last_failure = now
        if record.failures < policy.failure_limit:
            return None
        length = policy.lockout_length(record.lockouts)
        record.locked_until = now + length
        record.lockouts += 1
        # The next window starts after the lockout: a fresh allowance of failures, each
        # lockout longer than the last until the record is forgotten.
        record.window_start, record.failures = record.locked_until, 0
        self.lockouts += 1
        return length

    def _forget_stale(self, now: float) -> None:
        """Drop records whose last failure is ``2 * max_lockout_s`` old: their lockout, which
        ends at most ``max_lockout_s`` after the failure that started it, ended at least
        ``max_lockout_s`` ago."""
        horizon = now - 2 * self.policy.max_lockout_s
        records = self._records
        while records:
            oldest = next(iter(records.values()))
            if oldest.last_failure > horizon:
                return
            records.popitem(last=False)
