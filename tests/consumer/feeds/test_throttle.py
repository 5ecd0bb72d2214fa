"""consumer.feeds.throttle: failures per client, lockouts, memory bound; the clock injected."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

import pytest

from consumer.feeds import FailureThrottle, ThrottlePolicy, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


A = IPv4Address("203.0.113.7")
B = IPv4Address("203.0.113.8")


def throttle(clock: Clock, **policy: float) -> FailureThrottle:
    values: dict[str, float] = {
        "failure_limit": 3,
        "window_s": 60,
        "lockout_s": 10,
        "max_lockout_s": 100,
        **policy,
    }
    return FailureThrottle(ThrottlePolicy(**values), clock=clock)  # type: ignore[arg-type]


def test_the_limit_th_failure_locks_out_for_lockout_s() -> None:
    clock = Clock()
    limiter = throttle(clock)
    assert limiter.record_failure(A) is None
    assert limiter.record_failure(A) is None
    assert limiter.retry_after(A) is None
    assert limiter.record_failure(A) == 10
    assert limiter.retry_after(A) == pytest.approx(10)
    clock.now += 4
    assert limiter.retry_after(A) == pytest.approx(6)
    assert limiter.retry_after(B) is None  # another client is not affected
    clock.now += 6
    assert limiter.retry_after(A) is None
    assert limiter.lockouts == 1


def test_failures_count_within_a_window_only() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for _ in range(5):
        limiter.record_failure(A)
        limiter.record_failure(A)
        clock.now += 61  # two per window never reach three
    assert limiter.retry_after(A) is None and limiter.lockouts == 0


def test_each_further_lockout_doubles_up_to_the_most() -> None:
    clock = Clock()
    limiter = throttle(clock)
    lengths = []
    for _ in range(6):
        for _ in range(3):
            started = limiter.record_failure(A)
        assert started is not None
        lengths.append(started)
        clock.now += started  # the client waits out its lockout, then fails again
    # A persistent client keeps its longest lockout: the record outlives each lockout.
    assert lengths == [10, 20, 40, 80, 100, 100]


def test_a_record_is_forgotten_twice_max_lockout_s_after_its_last_failure() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for _ in range(3):
        limiter.record_failure(A)
    clock.now += 10
    for _ in range(3):
        limiter.record_failure(A)  # the second lockout: 20 s
    clock.now += 199
    limiter.record_failure(B)
    assert len(limiter) == 2  # not yet
    clock.now += 1
    limiter.record_failure(B)  # any failure sweeps the stale records
    assert len(limiter) == 1
    for _ in range(2):
        limiter.record_failure(A)
    assert limiter.record_failure(A) == 10  # a fresh start: the first lockout again


def test_the_lockout_is_not_lengthened_by_time_spent_in_it() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for _ in range(3):
        limiter.record_failure(A)
    for _ in range(40):
        assert limiter.retry_after(A) is not None  # refused without a check: not a failure
        clock.now += 0.125
    assert limiter.retry_after(A) == pytest.approx(5)
    clock.now += 5
    assert limiter.retry_after(A) is None


def test_success_changes_nothing() -> None:
    # There is no record_success: a valid sender behind the attacker's address must not
    # reset the attacker's count. The record ages out instead (test above).
    assert not hasattr(FailureThrottle, "record_success")


def test_memory_is_bounded_the_least_recently_failing_evicted() -> None:
    clock = Clock()
    limiter = throttle(clock, failure_limit=2, max_clients=3)
    limiter.record_failure(A)
    limiter.record_failure(A)  # A locked out
    for last_octet in (1, 2, 3):
        clock.now += 1
        limiter.record_failure(IPv4Address(f"198.51.100.{last_octet}"))
    assert len(limiter) == 3
    assert limiter.retry_after(A) is None  # evicted: the price of a distributed flood


def test_a_recently_failing_client_survives_eviction() -> None:
    clock = Clock()
    limiter = throttle(clock, failure_limit=2, max_clients=2)
    limiter.record_failure(B)
    limiter.record_failure(A)
    limiter.record_failure(A)  # A failed last: B is the oldest
    limiter.record_failure(IPv4Address("198.51.100.1"))
    assert limiter.retry_after(A) is not None
    assert len(limiter) == 2


def test_ipv6_clients_count_per_64() -> None:
    one = ip_address("2001:db8:1:2::1")
    same_64 = ip_address("2001:db8:1:2:ffff::9")
    other_64 = ip_address("2001:db8:1:3::1")
    assert isinstance(one, IPv6Address)
    assert client_key(one, "peer") == client_key(same_64, "peer")  # type: ignore[arg-type]
    assert client_key(one, "peer") != client_key(other_64, "peer")  # type: ignore[arg-type]
    assert client_key(one, "peer") == IPv6Network("2001:db8:1:2::/64")
    assert client_key(A, "peer") == A
    assert client_key(None, "testclient") == "testclient"


@pytest.mark.parametrize(
    "policy",
    [
        {"failure_limit": 0},
        {"max_clients": 0},
        {"window_s": 0},
        {"lockout_s": 0},
        {"lockout_s": 200, "max_lockout_s": 100},
    ],
)
def test_policies_that_make_no_sense_are_refused(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(**policy)  # type: ignore[arg-type]
