"""Feeds: cases found by ``make mutation MODULE=feeds`` that no test held.

- ThrottlePolicy's bounds were tested only on the refused side (0, lockout > max), so
  moving a bound by one (``failure_limit < 2``, ``lockout_s < max_lockout_s``, ...) or
  the message passed; here the smallest accepted values and the messages are pinned.
- hash_password's salt and digest lengths were never checked (scrypt's default dklen is
  64, token_bytes' default 32), nor the messages of the values it refuses.
- _VerifiedCache's LRU bound: the module's cache is built at import, so only a cache
  built in the test sees a change to ``__init__``.
- X-Forwarded-For entries in brackets: what may follow the ``]`` (a port of any
  number of digits, nothing else) was tested with few cases.
"""

from __future__ import annotations

import base64
import ipaddress

import pytest

from consumer.feeds.networks import client_address
from consumer.feeds.passwords import _VerifiedCache, hash_password, verify_password
from consumer.feeds.throttle import ThrottlePolicy

FAST = {"n": 2**10, "r": 1, "p": 1}  # the cheapest allowed: the lengths do not depend on it


@pytest.mark.parametrize(
    "policy",
    [
        {"failure_limit": 1, "max_clients": 1},
        {"window_s": 0.001, "lockout_s": 0.001, "max_lockout_s": 0.001},
        {"lockout_s": 100.0, "max_lockout_s": 100.0},
    ],
)
def test_the_smallest_sensible_policies_are_accepted(policy: dict[str, float]) -> None:
    made = ThrottlePolicy(**policy)  # type: ignore[arg-type]
    for name, value in policy.items():
        assert getattr(made, name) == value


@pytest.mark.parametrize("policy", [{"failure_limit": 0}, {"max_clients": 0}])
def test_a_count_below_one_is_refused_with_its_reason(policy: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"^failure_limit and max_clients must be at least 1$"):
        ThrottlePolicy(**policy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "policy", [{"window_s": 0}, {"lockout_s": 0}, {"lockout_s": 101, "max_lockout_s": 100}]
)
def test_times_out_of_order_are_refused_with_their_reason(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"^need window_s > 0 and 0 < lockout_s <= max_lockout_s$"):
        ThrottlePolicy(**policy)  # type: ignore[arg-type]


def test_a_hash_holds_a_16_byte_salt_and_a_32_byte_digest() -> None:
    encoded = hash_password("correct horse battery staple", **FAST)
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "1", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert verify_password("correct horse battery staple", encoded)


@pytest.mark.parametrize(
    ("password", "reason"),
    [("", r"^the password is empty$"), ("a\x00b", r"^the password contains NUL \(U\+0000\)$")],
)
def test_unhashable_passwords_are_refused_with_their_reason(password: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        hash_password(password, **FAST)


def test_the_verified_cache_keeps_the_most_recently_used_entries() -> None:
    cache = _VerifiedCache(maxsize=2)
    a, b, c = (("hash", cache.digest(x)) for x in (b"a", b"b", b"c"))
    assert cache.digest(b"a") == a[1] and len(a[1]) == 32
    assert cache.digest(b"a", b"b") != cache.digest(b"ab")  # length-prefixed parts
    cache.add(a)
    cache.add(b)
    assert a in cache  # a is now the most recently used
    cache.add(c)  # evicts b, the least recently used
    assert a in cache and c in cache
    assert b not in cache
    cache.clear()
    assert a not in cache
    # Another cache has another key: its digests mean nothing here.
    assert _VerifiedCache().digest(b"a") != a[1]


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("[2001:db8:56::1]:8", "2001:db8:56::1"),  # a one-digit port is a port
        ("[2001:db8:56::1]:65535", "2001:db8:56::1"),
        ("[2001:db8:56::1]:", None),  # a colon without a port
        ("[2001:db8:56::1]x5", None),  # digits, but no colon before them
        ("[2001:db8:56::1]:x8", None),
        ("[2001:db8:56::1]]", None),
        # A scope id may hold almost anything, "]" too: the entry still ends at the first "]".
        ("[fe80::1%a]b]", None),
        ("[fe80::1%a]:80]", None),
    ],
)
def test_what_may_follow_a_bracketed_forwarded_address(
    forwarded: str, expected: str | None
) -> None:
    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    got = client_address("10.0.0.5", forwarded, trusted)
    assert got == (None if expected is None else ipaddress.ip_address(expected))
