"""Tests for survivors of `make mutation MODULE=feeds` in the throttle and the Basic parser.

Each pins one edge the earlier tests left free: the lockout counter past the first, the
window boundary, which records are forgotten first, sub-second waits, a clock starting
at 0, the wait TooManyFailures carries, the Authorization length limit, strict base64,
and the words of each refusal a sender reads.
"""

from __future__ import annotations

import base64
from ipaddress import IPv4Address

import pytest

from consumer.feeds import FailureThrottle, ThrottlePolicy, TooManyFailures, Unauthorized
from consumer.feeds.access import basic_credentials


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


A, B, C = (IPv4Address(f"203.0.113.{n}") for n in (1, 2, 3))


def throttle(clock: Clock) -> FailureThrottle:
    policy = ThrottlePolicy(failure_limit=3, window_s=60, lockout_s=10, max_lockout_s=100)
    return FailureThrottle(policy, clock=clock)


def fail(limiter: FailureThrottle, client: IPv4Address, times: int) -> float | None:
    lockout = None
    for _ in range(times):
        lockout = limiter.record_failure(client)
    return lockout


def test_every_lockout_is_counted_not_only_the_first() -> None:
    clock = Clock()
    limiter = throttle(clock)
    assert fail(limiter, A, 3) == 10
    clock.now += 10  # the lockout is over; the next window starts with it
    assert fail(limiter, A, 3) == 20
    fail(limiter, B, 3)
    assert limiter.lockouts == 3


def test_a_failure_window_s_after_the_first_starts_a_new_window() -> None:
    clock = Clock()
    limiter = throttle(clock)
    fail(limiter, A, 2)
    clock.now += 60  # exactly window_s later: the count starts again
    assert limiter.record_failure(A) is None
    assert limiter.record_failure(A) is None
    assert limiter.retry_after(A) is None


def test_stale_records_are_forgotten_oldest_first() -> None:
    clock = Clock()
    limiter = throttle(clock)
    limiter.record_failure(A)
    clock.now += 150
    fail(limiter, B, 3)  # locked out: a record that must be kept
    clock.now += 51  # A's last failure is now past 2 * max_lockout_s; B's is not
    limiter.record_failure(C)
    assert len(limiter) == 2
    clock.now -= 51 - 5  # B's lockout (10 s from its third failure) still runs
    assert limiter.retry_after(B) == pytest.approx(5)


def test_the_last_second_of_a_lockout_is_still_a_wait() -> None:
    clock = Clock()
    limiter = throttle(clock)
    fail(limiter, A, 3)
    clock.now += 9.5
    assert limiter.retry_after(A) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.retry_after(A) is None


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_the_authorization_length_limit_is_4096_characters() -> None:
    header = basic("user:pass")
    at_limit = header + " " * (4096 - len(header))  # trailing spaces are stripped later
    assert basic_credentials(at_limit) == ("user", "pass")
    with pytest.raises(Unauthorized, match=r"^malformed Authorization header: too long$"):
        basic_credentials(at_limit + " ")


def test_base64_outside_its_alphabet_is_refused_not_skipped() -> None:
    token = base64.b64encode(b"user:pass").decode()
    assert basic_credentials(f"Basic {token}") == ("user", "pass")
    with pytest.raises(Unauthorized, match="not base64 of UTF-8"):
        basic_credentials(f"Basic {token[:4]}!{token[4:]}")  # lenient base64 drops the '!'


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "credentials required: use HTTP Basic authentication"),
        ("   ", "credentials required: use HTTP Basic authentication"),
        ("Bearer abc", "unsupported authentication scheme: use HTTP Basic authentication"),
        ("Basic %%%", "malformed Authorization header: not base64 of UTF-8"),
        (basic("no-colon"), "malformed Authorization header: no ':' between user and password"),
    ],
)
def test_each_refusal_says_what_is_wrong(authorization: str | None, detail: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        basic_credentials(authorization)
    assert str(refused.value) == detail


def test_a_clock_starting_at_zero_locks_no_one_out_before_the_limit() -> None:
    # time.monotonic's origin is unspecified: a throttle may start at 0.
    clock = Clock()
    clock.now = 0.0
    limiter = throttle(clock)
    assert fail(limiter, A, 2) is None
    assert limiter.retry_after(A) is None


def test_too_many_failures_carries_its_wait() -> None:
    error = TooManyFailures("too many failed password checks from this client; retry later", 30)
    assert (str(error), error.detail, error.retry_after) == (
        "too many failed password checks from this client; retry later",
        "too many failed password checks from this client; retry later",
        30,
    )
    assert error.body() == {
        "error": "too_many_failures",
        "detail": "too many failed password checks from this client; retry later",
        "retry_after_s": 30,
    }
