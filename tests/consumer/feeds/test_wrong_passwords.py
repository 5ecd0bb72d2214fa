"""Wrong passwords are refused: random ones, near misses, and ones whose scrypt digest
shares bytes with the right one's; before and after the right one is cached.

A check that compares too little (the first byte of the digest, a prefix of the password,
a cache key of part of the credentials) accepts some wrong passwords and still every
right one, so only wrong passwords chosen to look right, or many random ones, find it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.feeds import FeedTable, Unauthorized, authorize, credentials_cached, verify_password
from consumer.feeds.passwords import clear_verification_cache, credentials_match
from tests.consumer.feeds.samples import (
    FAST,
    LETTERS_HASH,
    LETTERS_PASSWORD,
    USPS,
    basic,
    near_misses,
)

USER = "usps-letters"

# Each example runs one to three scrypts of the FAST cost (~2 ms each on the CI machine).
# Random wrong passwords find a check of the digest's first byte 1 time in 256, so the
# random tests take some hundreds; the digest near misses below find it every time.
# (The near-miss tests first found that P + NUL was taken for P: see _scrypt_matches.)
EXAMPLES = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def warm(check: Callable[[], bool]) -> None:
    """Run ``check`` of the right credentials once, so that the cache holds them."""
    assert check() is True


@pytest.mark.parametrize("cached", [False, True], ids=["cold", "cached"])
@given(wrong=near_misses(LETTERS_PASSWORD))
@EXAMPLES
def test_verify_password_refuses_near_misses(cached: bool, wrong: str) -> None:
    clear_verification_cache()
    if cached:
        warm(lambda: verify_password(LETTERS_PASSWORD, LETTERS_HASH))
    assert verify_password(wrong, LETTERS_HASH) is False
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH) is True


@given(wrong=st.text(max_size=64).filter(lambda text: text != LETTERS_PASSWORD))
@settings(max_examples=600, deadline=None)
def test_verify_password_refuses_random_passwords(wrong: str) -> None:
    assert verify_password(wrong, LETTERS_HASH) is False


@pytest.mark.parametrize("cached", [False, True], ids=["cold", "cached"])
@given(
    user=st.one_of(st.just(USER), near_misses(USER)),
    password=st.one_of(st.just(LETTERS_PASSWORD), near_misses(LETTERS_PASSWORD)),
)
@EXAMPLES
def test_credentials_match_only_the_right_user_and_password(
    cached: bool, user: str, password: str
) -> None:
    clear_verification_cache()
    if cached:
        warm(lambda: credentials_match(USER, LETTERS_PASSWORD, USER, LETTERS_HASH))
    right = (user, password) == (USER, LETTERS_PASSWORD)
    assert credentials_match(user, password, USER, LETTERS_HASH) is right
    assert credentials_match(USER, LETTERS_PASSWORD, USER, LETTERS_HASH) is True


@given(
    user=st.one_of(st.just(USER), near_misses(USER)),
    password=st.one_of(st.just(LETTERS_PASSWORD), near_misses(LETTERS_PASSWORD)),
)
@EXAMPLES
def test_authorize_takes_only_the_feeds_credentials(
    table: FeedTable, user: str, password: str
) -> None:
    """Through the header, with the right credentials cached first (the busy-feed case)."""
    clear_verification_cache()
    warm(lambda: authorize(table, "letters", basic(USER, LETTERS_PASSWORD), USPS, None) is not None)
    # Basic splits at the first ':', so a user with a colon moves the rest to the password.
    sent_user, _, sent_password = f"{user}:{password}".partition(":")
    header = basic(user, password)
    if (sent_user, sent_password) == (USER, LETTERS_PASSWORD):
        assert credentials_cached(table, "letters", header)
        assert authorize(table, "letters", header, USPS, None).name == "letters"
        return
    assert not credentials_cached(table, "letters", header)
    with pytest.raises(Unauthorized) as caught:
        authorize(table, "letters", header, USPS, None)
    assert caught.value.detail == "invalid user or password"


# --------------------------------------------------------------------------- digest near misses

SALT = bytes(range(16))


def scrypt_digest(password: str) -> bytes:
    """The FAST scrypt of ``password`` under SALT, by hashlib directly (the reference)."""
    return hashlib.scrypt(password.encode(), salt=SALT, dklen=32, maxmem=1 << 25, **FAST)


def encoded_hash(digest: bytes) -> str:
    """SALT and ``digest`` in the feeds file's format, assembled here, not by the code."""
    parts = [str(FAST["n"]), str(FAST["r"]), str(FAST["p"]), SALT, digest]
    return "scrypt$" + "$".join(
        base64.b64encode(part).decode() if isinstance(part, bytes) else part for part in parts
    )


RIGHT_DIGEST = scrypt_digest(LETTERS_PASSWORD)
FIXED_SALT_HASH = encoded_hash(RIGHT_DIGEST)


def first_sharing(condition: Callable[[bytes], bool]) -> str:
    """The first ``wrong-<i>`` whose digest meets ``condition`` (1 in 256: ~0.5 s)."""
    for index in itertools.count():
        candidate = f"wrong-{index}"
        if condition(scrypt_digest(candidate)):
            return candidate
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def digest_near_misses() -> dict[str, str]:
    """Wrong passwords whose scrypt digests agree with the right one's at one end."""
    return {
        "first byte": first_sharing(lambda digest: digest[0] == RIGHT_DIGEST[0]),
        "last byte": first_sharing(lambda digest: digest[-1] == RIGHT_DIGEST[-1]),
    }


@pytest.mark.parametrize("padding", ["\x00", "\x00" * 20])
def test_trailing_nuls_do_not_make_the_right_password(padding: str) -> None:
    # HMAC pads a short key with zero bytes, so scrypt alone hashes these alike.
    assert scrypt_digest(LETTERS_PASSWORD + padding) == RIGHT_DIGEST
    wrong = LETTERS_PASSWORD + padding
    assert verify_password(wrong, FIXED_SALT_HASH) is False
    assert credentials_match(USER, wrong, USER, FIXED_SALT_HASH) is False
    assert verify_password(LETTERS_PASSWORD, FIXED_SALT_HASH) is True


def test_the_hand_built_hash_verifies_the_right_password() -> None:
    assert verify_password(LETTERS_PASSWORD, FIXED_SALT_HASH) is True
    assert credentials_match(USER, LETTERS_PASSWORD, USER, FIXED_SALT_HASH) is True


@pytest.mark.parametrize("shared", ["first byte", "last byte"])
@pytest.mark.parametrize("cached", [False, True], ids=["cold", "cached"])
def test_a_digest_sharing_bytes_with_the_right_one_is_refused(
    digest_near_misses: dict[str, str], shared: str, cached: bool
) -> None:
    wrong = digest_near_misses[shared]
    assert scrypt_digest(wrong) != RIGHT_DIGEST
    if cached:
        warm(lambda: verify_password(LETTERS_PASSWORD, FIXED_SALT_HASH))
        warm(lambda: credentials_match(USER, LETTERS_PASSWORD, USER, FIXED_SALT_HASH))
    assert verify_password(wrong, FIXED_SALT_HASH) is False
    assert credentials_match(USER, wrong, USER, FIXED_SALT_HASH) is False
