"""Password hashes: scrypt parameters, verification, and the cache of successes."""

from __future__ import annotations

import math
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.feeds import hash_password, verify_password
from consumer.feeds.passwords import estimated_bits, password_weakness
from tests.consumer.feeds.samples import FAST, FLATS_HASH, LETTERS_HASH, LETTERS_PASSWORD


def test_hash_verify_round_trip() -> None:
    encoded = hash_password("pässwörd 🔑", **FAST)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert verify_password("pässwörd 🔑", encoded)
    assert not verify_password("passwörd 🔑", encoded)


def test_salts_differ() -> None:
    assert hash_password("same", **FAST) != hash_password("same", **FAST)


def test_default_parameters() -> None:
    encoded = hash_password("x" * 12)
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("x" * 12, encoded)


def test_wrong_password() -> None:
    assert not verify_password("wrong", LETTERS_HASH)
    assert not verify_password("", LETTERS_HASH)


@pytest.mark.parametrize("n", [2**9, 1000, 2**21])
def test_hash_refuses_parameters_verify_would_refuse(n: int) -> None:
    with pytest.raises(ValueError, match="scrypt parameters"):
        hash_password("password", n=n)


def test_hash_refuses_an_empty_password() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "scrypt",
        "scrypt$$$$$",
        "scrypt$1024$8$1$$",
        "scrypt$1024$8$1$!!!!$!!!!",
        "scrypt$1024$8$1$AAAA$AAAA",
        "scrypt$1024$0$1$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$1024$8$99$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$1048576$32$1$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$99999999$8$1$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$-1024$8$1$" + LETTERS_HASH.split("$", 4)[4],
        LETTERS_HASH + "$",
        LETTERS_HASH[:-2],
        LETTERS_HASH.replace("=", "\u00e9"),
        "\ud800",
    ],
)
def test_malformed_hashes_never_raise(encoded: str) -> None:
    assert verify_password(LETTERS_PASSWORD, encoded) is False


def test_unencodable_passwords_are_false() -> None:
    assert verify_password("\ud800", LETTERS_HASH) is False


@given(st.text(max_size=200), st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_any_text_as_a_hash_is_refused_without_raising(password: str, encoded: str) -> None:
    # Random text is never a hash in our format, let alone one of ``password``.
    assert verify_password(password, encoded) is False


@given(st.text(max_size=200).filter(lambda text: text != LETTERS_PASSWORD))
@settings(max_examples=200, deadline=None)
def test_any_other_text_as_the_password_is_refused(password: str) -> None:
    assert verify_password(password, LETTERS_HASH) is False
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH) is True


def test_hash_refuses_a_password_with_nul() -> None:
    # scrypt could not tell it from the same password without its trailing NULs.
    with pytest.raises(ValueError, match="NUL"):
        hash_password("secret\x00", **FAST)


def test_cache_does_not_accept_a_wrong_password_after_a_right_one() -> None:
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH)
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH)
    assert not verify_password(LETTERS_PASSWORD + "x", LETTERS_HASH)
    assert not verify_password(LETTERS_PASSWORD[:-1], LETTERS_HASH)
    assert not verify_password(LETTERS_PASSWORD, FLATS_HASH)


def test_cache_is_bounded_by_the_hash() -> None:
    # A new hash of the same password (password rotated in the file) is checked afresh.
    other = hash_password(LETTERS_PASSWORD, **FAST)
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH)
    assert verify_password(LETTERS_PASSWORD, other)
    assert not verify_password("x", other)


# --------------------------------------------------------------------------- strength


def test_generated_secrets_are_strong_enough() -> None:
    for _ in range(2000):
        assert password_weakness(secrets.token_urlsafe(24)) is None
        # 160 bits of 16 symbols. (token_hex(16), 128 bits, is estimated under 100 about
        # once in 100,000: its runs like "3434" count 1 bit a character.)
        assert password_weakness(secrets.token_hex(20)) is None


@pytest.mark.parametrize(
    ("password", "most_bits"),
    [
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40),  # repeats: 1 bit each
        ("abcdefghijklmnopqrstuvwxyz0123456789", 60),  # runs: 1 bit each
        ("Xy7!Q2Xy7!Q2Xy7!Q2Xy7!Q2Xy7!Q2", 45),  # a repeated unit counts once
        ("passwordPASSWORDqwertyletmein123", 60),  # common words: 10 bits each
        ("UspsFeedPassword2026!", 85),
    ],
)
def test_patterns_count_for_little(password: str, most_bits: float) -> None:
    assert estimated_bits(password) <= most_bits
    assert password_weakness(password) is not None


def test_bits_grow_with_length_and_classes() -> None:
    lower = "qhzmrvkwtxjnbyfd"
    assert estimated_bits(lower) == pytest.approx(16 * math.log2(26))
    assert estimated_bits(lower + "Q") > estimated_bits(lower + "q")
    assert estimated_bits("") == 0


def test_the_reason_says_what_is_needed_and_how() -> None:
    reason = password_weakness("Zq9!weak")
    assert reason is not None
    assert "at least 100 needed" in reason and "token_urlsafe(24)" in reason
    assert "dev-credentials" in reason
    assert "Zq9!weak" not in reason  # never echoes the password
