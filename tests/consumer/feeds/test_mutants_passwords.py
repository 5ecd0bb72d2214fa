"""Passwords: cases found by ``make mutation MODULE=feeds`` that no test held.

- scrypt parameter bounds were tested on the refused side only, and not every bound:
  each bound is pinned here on both sides, in stored hashes (refused before any scrypt
  runs, so a hostile feeds file cannot make the service allocate gigabytes) and in
  ``hash_password`` (refused with the parameter and its limit).
- Stored salts and digests: their lengths' bounds, and base64 that is not strict.
- Parameters beyond OpenSSL's default memory limit (32 MiB) must still work.
- ``verify_password`` never raises and fails closed when scrypt cannot run; a success
  is cached, so the next check of the same credentials does not pay scrypt again.
- The strength estimate was held only by upper bounds: here its documented rules give
  exact values, and tables of passwords on each side of the 100-bit minimum.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.feeds.passwords import (
    MIN_PASSWORD_BITS,
    _VerifiedCache,
    credentials_match,
    estimated_bits,
    hash_password,
    is_password_hash,
    password_weakness,
    verify_password,
)

PASSWORD = "a feed's password"
SCRYPT = hashlib.scrypt  # the real one, whatever a test does to hashlib


def encoded(
    n: int = 2**10,
    r: int = 1,
    p: int = 1,
    *,
    salt: bytes = b"s" * 16,
    dklen: int = 32,
    digest: bytes | None = None,
) -> str:
    """A hash of PASSWORD in the documented format, made with hashlib (not hash_password).

    With ``digest``, that digest instead: a hash only to be parsed, never verified.
    """
    if digest is None:
        memory = 128 * r * (n + 2 + p) + (1 << 20)
        digest = SCRYPT(PASSWORD.encode(), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=dklen)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${n}${r}${p}${salt_b64}${digest_b64}"


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count hashlib.scrypt's calls (each entry: the n it was called with)."""
    calls: list[int] = []

    def counting(password: bytes, **kwargs: int) -> bytes:
        calls.append(kwargs["n"])
        return SCRYPT(password, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "scrypt", counting)
    yield calls


# --------------------------------------------------------------------------- bounds

# (n, r, p): each bound on both sides. 128*r*n is the memory scrypt needs, at most 256 MiB.
FAKE = b"d" * 32  # the digest of hashes that are only parsed
ACCEPTED = [
    (2**10, 1, 1),  # the smallest n
    (2**20, 1, 1),  # the largest n (128 MiB)
    (2**10, 32, 1),  # the largest r
    (2**10, 1, 16),  # the largest p
    (2**20, 2, 1),  # exactly 256 MiB
    (2**19, 4, 16),  # exactly 256 MiB
    (2**14, 8, 1),  # the defaults
]
REFUSED = [
    ((2**9, 1, 1), ("n", "2**10", "512")),  # below the smallest n
    ((2**21, 1, 1), ("n", "2**20", "2097152")),  # above the largest n
    ((1536, 1, 1), ("n", "power of two", "1536")),  # in range, not a power of two
    ((3 * 2**12, 1, 1), ("n", "power of two", "12288")),
    ((2**10 + 1, 1, 1), ("n", "power of two", "1025")),
    ((2**10, 33, 1), ("r", "32", "33")),
    ((2**10, 1, 17), ("p", "16", "17")),
    ((2**20, 3, 1), ("128*r*n", "256 MiB")),  # 384 MiB
    ((2**20, 4, 1), ("128*r*n", "256 MiB")),  # 512 MiB
    ((2**19, 8, 1), ("128*r*n", "256 MiB")),
    ((2**20, 32, 16), ("128*r*n", "256 MiB")),  # 4 GiB: every other bound is met
]


@pytest.mark.parametrize(("n", "r", "p"), ACCEPTED)
def test_stored_hashes_within_every_bound_are_accepted(n: int, r: int, p: int) -> None:
    assert is_password_hash(encoded(n, r, p, digest=FAKE))


@pytest.mark.parametrize(("params", "facts"), REFUSED)
def test_stored_hashes_beyond_a_bound_are_refused_without_running_scrypt(
    params: tuple[int, int, int], facts: tuple[str, ...], scrypt_calls: list[int]
) -> None:
    stored = encoded(*params, digest=FAKE)
    assert not is_password_hash(stored)
    assert verify_password(PASSWORD, stored) is False
    assert credentials_match("u", PASSWORD, "u", stored) is False
    assert scrypt_calls == []


@pytest.mark.parametrize(("params", "facts"), REFUSED)
def test_hash_password_names_the_parameter_and_its_limit(
    params: tuple[int, int, int], facts: tuple[str, ...], scrypt_calls: list[int]
) -> None:
    n, r, p = params
    with pytest.raises(ValueError, match=r"^scrypt parameters refused: ") as caught:
        hash_password(PASSWORD, n=n, r=r, p=p)
    message = str(caught.value)
    for fact in facts:
        assert re.search(rf"(?<![\w*]){re.escape(fact)}(?![\w*])", message), (fact, message)
    assert scrypt_calls == []


@pytest.mark.parametrize(("n", "r", "p"), [(n, r, p) for n, r, p in ACCEPTED if n * r * p <= 2**14])
def test_hashes_at_the_bounds_are_made_and_verified(n: int, r: int, p: int) -> None:
    made = hash_password(PASSWORD, n=n, r=r, p=p)
    assert made.startswith(f"scrypt${n}${r}${p}$")
    assert verify_password(PASSWORD, made)
    assert verify_password(PASSWORD, encoded(n, r, p))
    assert not verify_password(PASSWORD + "!", made)


def test_parameters_beyond_openssls_default_memory_limit_work() -> None:
    # 128*r*n = 32 MiB, and scrypt needs a little more: OpenSSL refuses it unless told
    # that more memory is fine.
    made = hash_password(PASSWORD, n=2**15, r=8, p=1)
    assert verify_password(PASSWORD, made)
    assert credentials_match("u", PASSWORD, "u", made)


# --------------------------------------------------------------------------- salt, digest


@pytest.mark.parametrize(
    ("salt", "dklen", "accepted"),
    [
        (b"s" * 15, 32, False),  # salt shorter than hash_password's 16 bytes
        (b"s" * 16, 32, True),
        (b"s" * 17, 32, True),
        (b"s" * 16, 15, False),  # digest: 16 to 64 bytes
        (b"s" * 16, 16, True),
        (b"s" * 16, 64, True),
        (b"s" * 16, 65, False),
    ],
)
def test_salt_and_digest_lengths(salt: bytes, dklen: int, accepted: bool) -> None:
    made = encoded(salt=salt, dklen=dklen)
    assert is_password_hash(made) is accepted
    assert verify_password(PASSWORD, made) is accepted


@pytest.mark.parametrize("field", [4, 5])
def test_salt_and_digest_must_be_strict_base64(field: int) -> None:
    # A 17-byte salt and a 32-byte digest each end in one "=": a second one is padding
    # base64 does not have, which a lax decoder would ignore.
    parts = encoded(salt=b"s" * 17).split("$")
    assert parts[field].endswith("=") and not parts[field].endswith("==")
    assert verify_password(PASSWORD, "$".join(parts))
    parts[field] += "="
    assert not is_password_hash("$".join(parts))
    assert not verify_password(PASSWORD, "$".join(parts))


# --------------------------------------------------------------------------- verification


def test_verify_password_is_false_for_what_is_not_text() -> None:
    right = encoded()
    assert verify_password(PASSWORD, right)
    for password, stored in [
        (None, right),
        (PASSWORD.encode(), right),
        (PASSWORD, None),
        (PASSWORD, right.encode()),
        (None, None),
    ]:
        assert verify_password(password, stored) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [MemoryError, ValueError])
def test_when_scrypt_cannot_run_the_password_is_refused(
    error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    right = encoded()

    def failing(*args: object, **kwargs: object) -> bytes:
        raise error("cannot")

    monkeypatch.setattr(hashlib, "scrypt", failing)
    assert verify_password(PASSWORD, right) is False
    assert credentials_match("u", PASSWORD, "u", right) is False


def test_a_verified_password_does_not_pay_scrypt_again(scrypt_calls: list[int]) -> None:
    right = encoded()
    assert verify_password(PASSWORD, right)
    assert verify_password(PASSWORD, right)
    assert scrypt_calls == [2**10]
    assert not verify_password(PASSWORD + "!", right)  # a wrong one always pays
    assert scrypt_calls == [2**10, 2**10]


def test_the_cache_holds_1024_entries_by_default() -> None:
    cache = _VerifiedCache()
    keys = [("hash", cache.digest(str(i).encode())) for i in range(1025)]
    for key in keys:
        cache.add(key)
    assert keys[0] not in cache  # the oldest went when the 1025th came
    assert all(key in cache for key in keys[1:])


# --------------------------------------------------------------------------- strength

LOG2_26 = math.log2(26)  # lowercase letters only
LOG2_36 = math.log2(36)  # lowercase and digits
LOG2_52 = math.log2(52)  # lower and upper case


def _primitive(unit: str) -> bool:
    """Whether ``unit`` is not itself a shorter unit repeated (the classic test)."""
    return (unit + unit).find(unit, 1) == len(unit)


UNITS = st.text(st.sampled_from("abcxyzQRSK0189#!@ é€"), min_size=1, max_size=12).filter(_primitive)


@given(UNITS, st.integers(min_value=2, max_value=5), st.data())
@settings(max_examples=300, deadline=None)
def test_a_repeated_unit_is_worth_the_unit_plus_one_bit(
    unit: str, copies: int, data: st.DataObject
) -> None:
    # The documented rule: a password that repeats a shorter unit is worth its unit
    # plus 1 bit, however many copies and whatever part of a last copy follows.
    tail = data.draw(st.integers(min_value=0, max_value=len(unit) - 1))
    password = unit * copies + unit[:tail]
    assert estimated_bits(password) == estimated_bits(unit) + 1.0


@given(UNITS.filter(lambda unit: len(unit) >= 2), st.data())
@settings(max_examples=200, deadline=None)
def test_a_unit_followed_by_part_of_itself_is_worth_the_unit_plus_one_bit(
    unit: str, data: st.DataObject
) -> None:
    # Dropping the last characters of a repeated password must not count the copy
    # again: Xy7!Xy7 is worth what Xy7!Xy7! is worth.
    tail = data.draw(st.integers(min_value=1, max_value=len(unit) - 1))
    assert estimated_bits(unit + unit[:tail]) == estimated_bits(unit) + 1.0


@pytest.mark.parametrize(
    ("password", "bits"),
    [
        ("password", 10.0),  # one common word: 10 bits
        ("passwordqwerty", 20.0),  # two common words: 10 bits each
        # Every occurrence of a word counts, and each digit is worth log2(26 + 10).
        ("admin1admin2admin3", 30.0 + 3 * LOG2_36),
        # A character is in one word at most: the second "test" shares its "t" with
        # the first, so e, s, t count as characters (t continues the run "st": 1 bit).
        ("Qtestest", 10.0 + 3 * LOG2_52 + 1.0),
        ("qhzm", 4 * LOG2_26),  # no word, no run, no repeat: log2(26) each
        ("qrst", LOG2_26 + 3.0),  # a run: 1 bit a character after the first
    ],
)
def test_documented_rules_give_exact_estimates(password: str, bits: float) -> None:
    assert estimated_bits(password) == pytest.approx(bits)


# Each side of MIN_PASSWORD_BITS, with why. 16 random characters from the 95 printable
# ASCII ones are worth 16 * log2(95) = 105 bits, 15 of them 98.5.
WEAK = [
    "Kq8#vT2!mZ4@wYp",  # 15 random characters: just under, the message asks for 16
    "qhzmrvkwtxjnbyfdlgpc",  # 20 random lowercase letters: 20 * log2(26) = 94 bits
    "Tr0ub4dor&3xQTr0ub4dor&3xQ",  # a 13-character unit typed twice: the unit, +1
    "Kq8#vT2!mZ4@wYp" * 3,  # repeated: worth 15 random characters, +1
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",  # three runs
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",  # repeats
    "passwordqwertyletmeinwelcomeadminsecretchangemedefaultiloveyou",  # 9 words: 90
    "P@ssw0rdQw3rtyL3tm31nW3lc0m3Adm1nS3cr3tCh@ng3m3D3f@ult",  # leet: the same words
]
STRONG = [
    "Kq8#vT2!mZ4@wYp7",  # 16 random characters, as the message asks: 105 bits
    "qhzmrvkwtxjnbyfdlgpcwj",  # 22 random lowercase letters: 103 bits
    # Exactly 100: ten common words at 10 bits each; "at least 100" takes it.
    "passwordqwertyletmeinwelcomeadminsecretchangemedefaultiloveyoumonkey",
    "6bQ1xZ_r9Lm-TfK3vW8yNc2HjP5sDg7A",  # what secrets.token_urlsafe(24) makes
]


@pytest.mark.parametrize("password", WEAK)
def test_passwords_under_the_minimum_are_refused(password: str) -> None:
    assert estimated_bits(password) < MIN_PASSWORD_BITS == 100
    assert password_weakness(password) is not None


@pytest.mark.parametrize("password", STRONG)
def test_passwords_at_or_over_the_minimum_are_accepted(password: str) -> None:
    assert estimated_bits(password) >= MIN_PASSWORD_BITS == 100
    assert password_weakness(password) is None


def test_a_repeated_password_cut_short_is_still_refused() -> None:
    # Refused typed twice, so refused typed twice but for its last characters.
    for cut in range(1, 14):
        assert password_weakness("Tr0ub4dor&3xQTr0ub4dor&3xQ"[:-cut]) is not None


def test_an_estimate_equal_to_the_minimum_is_enough() -> None:
    assert estimated_bits("password") == 10.0  # one common word
    assert password_weakness("password", min_bits=10) is None
    assert password_weakness("password", min_bits=10.5) is not None


def test_the_reason_gives_the_rule_and_both_ways_to_get_a_password() -> None:
    reason = password_weakness("passwordqwerty")
    assert reason is not None
    for clause in (
        r"\babout 20 bits estimated, at least 100 needed\b",
        r"\buse one of at least 16 random letters, digits and symbols\b",
        r"\(repeats, runs and common words count for little\)",
        r"\be\.g\. from `python -c 'import secrets; print\(secrets\.token_urlsafe\(24\)\)'`",
        r", or `ivmtr-stream dev-credentials` for development$",
    ):
        assert re.search(clause, reason), clause
