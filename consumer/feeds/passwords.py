"""Feed passwords: scrypt hashes, their verification, and the cache of successes.

Passwords are stored only as ``scrypt$N$r$p$<salt b64>$<hash b64>`` (``hash_password``,
or ``ivmtr-stream hash-password``). Successful verifications are cached in memory so
that a busy feed pays scrypt once, not per request; see ``_VerifiedCache`` for why
this is safe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import string
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "MIN_PASSWORD_BITS",
    "clear_verification_cache",
    "credentials_known",
    "credentials_match",
    "estimated_bits",
    "hash_password",
    "is_password_hash",
    "password_weakness",
    "verify_password",
]

# scrypt parameters we accept, in hashes we make and hashes we read. The upper bounds
# keep a mistyped hash in the feeds file from costing gigabytes per request; the lower
# bound on N still allows the cheap hashes of the tests (2**10) while refusing toys.
_SCRYPT_MIN_N = 2**10
_SCRYPT_MAX_N = 2**20
_SCRYPT_MAX_R = 32
_SCRYPT_MAX_P = 16
_SCRYPT_MAX_MEMORY = 256 << 20
_SALT_BYTES = 16
_HASH_BYTES = 32
_HASH_FORMAT = re.compile(
    r"scrypt\$([1-9][0-9]{0,7})\$([1-9][0-9]{0,2})\$([1-9][0-9]{0,2})"
    r"\$([A-Za-z0-9+/]{4,128}={0,2})\$([A-Za-z0-9+/]{4,128}={0,2})"
)


@dataclass(frozen=True)
class _ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def _check_parameters(n: int, r: int, p: int) -> str | None:
    """Why these scrypt parameters are refused, or None when they are fine."""
    if n < _SCRYPT_MIN_N or n > _SCRYPT_MAX_N or n & (n - 1):
        return f"n must be a power of two from 2**10 to 2**20, got {n}"
    if not 1 <= r <= _SCRYPT_MAX_R:
        return f"r must be 1 to {_SCRYPT_MAX_R}, got {r}"
    if not 1 <= p <= _SCRYPT_MAX_P:
        return f"p must be 1 to {_SCRYPT_MAX_P}, got {p}"
    if 128 * r * n > _SCRYPT_MAX_MEMORY:
        return f"128*r*n must be at most {_SCRYPT_MAX_MEMORY >> 20} MiB"
    return None


def _maxmem(n: int, r: int, p: int) -> int:
    # What OpenSSL allocates (V: 128*r*(n+2), B: 128*r*p), plus slack; the default
    # limit of 32 MiB would refuse n=2**15 r=8, which is a reasonable choice.
    return 128 * r * (n + 2 + p) + (1 << 20)


def _parse_hash(encoded: str) -> _ScryptHash | None:
    """The parts of an encoded hash, or None when it is not in our format."""
    match = _HASH_FORMAT.fullmatch(encoded)
    if match is None:
        return None
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if _check_parameters(n, r, p) is not None:
        return None
    try:
        salt = base64.b64decode(match.group(4), validate=True)
        digest = base64.b64decode(match.group(5), validate=True)
    except binascii.Error:
        return None
    if len(salt) < _SALT_BYTES or not 16 <= len(digest) <= 64:
        return None
    return _ScryptHash(n, r, p, salt, digest)


def hash_password(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """Hash ``password`` with scrypt and a random 16-byte salt.

    Returns ``scrypt$N$r$p$<salt b64>$<hash b64>`` (standard base64 with padding).
    The defaults cost ~16 MiB and some tens of ms per hash. ValueError for an empty
    password, one with NUL (``_scrypt_matches`` says why), or parameters outside what
    ``verify_password`` accepts.
    """
    if not password:
        raise ValueError("the password is empty")
    if "\x00" in password:
        raise ValueError("the password contains NUL (U+0000)")
    problem = _check_parameters(n, r, p)
    if problem is not None:
        raise ValueError(f"scrypt parameters refused: {problem}")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_maxmem(n, r, p),
        dklen=_HASH_BYTES,
    )
    return "$".join(
        [
            "scrypt",
            str(n),
            str(r),
            str(p),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def _scrypt_matches(password: bytes, encoded: str) -> bool:
    """The uncached check: False for a wrong password or a malformed hash, never raises."""
    parsed = _parse_hash(encoded)
    if parsed is None:
        return False
    try:
        digest = hashlib.scrypt(
            password,
            salt=parsed.salt,
            n=parsed.n,
            r=parsed.r,
            p=parsed.p,
            maxmem=_maxmem(parsed.n, parsed.r, parsed.p),
            dklen=len(parsed.digest),
        )
    except (ValueError, MemoryError):
        return False
    # scrypt keys HMAC-SHA256 with the password, and HMAC pads a short key with zero bytes,
    # so P and P + "\0" hash alike. No password hashed has NUL (``hash_password``): one
    # that has is wrong, and is still hashed so that it takes as long as any other.
    return hmac.compare_digest(digest, parsed.digest) and b"\x00" not in password


class _VerifiedCache:
    """Credentials that verified recently, so a busy feed pays scrypt once, not per push.

    Why this is safe:

    - Only successes are stored, and an entry is keyed by the exact encoded hash and
      a 32-byte digest of the exact credentials. A wrong password has another digest
      (HMAC-SHA256 is collision resistant), so it can never hit; it always pays the
      full scrypt check and fails.
    - Keying by the encoded hash makes a password change self-invalidating: the new
      hash has a new random salt, so old entries can never match it again; they are
      simply evicted (LRU, ``maxsize`` entries).
    - Digests are HMACs under a random per-process key, not bare SHA-256: what sits in
      memory cannot be compared across processes or against precomputed tables, and
      an attacker cannot choose inputs that land on a given key, so the dict lookup
      (not constant time) reveals nothing usable.
    - A hit is fast and a miss is slow, but a hit only happens for correct
      credentials, which the 200 that follows reveals anyway. ``credentials_match``
      (what ``authorize`` uses) binds the user into the digest, so a right password
      with a wrong user is a miss and takes as long as any other failure.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        self._maxsize = maxsize
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        # authorize may run in several worker threads at once.
        self._lock = threading.Lock()

    def digest(self, *parts: bytes) -> bytes:
        """A keyed digest of ``parts``, each length-prefixed so that the split is unambiguous."""
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()

    def __contains__(self, key: tuple[str, bytes]) -> bool:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return True
            return False

    def add(self, key: tuple[str, bytes]) -> None:
        with self._lock:
            self._entries[key] = None
            self._entries.move_to_end(key)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_VERIFIED = _VerifiedCache()


def clear_verification_cache() -> None:
    """Forget every cached successful verification (tests; never needed for safety)."""
    _VERIFIED.clear()


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (from ``hash_password``), in constant time.

    Never raises: a malformed hash, out-of-range parameters, or a password that is not
    encodable give False. Successes are cached (``_VerifiedCache``).
    """
    if not isinstance(password, str) or not isinstance(encoded, str):
        return False
    try:
        secret = password.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    key = (encoded, _VERIFIED.digest(b"password", secret))
    if key in _VERIFIED:
        return True
    if not _scrypt_matches(secret, encoded):
        return False
    _VERIFIED.add(key)
    return True


def is_password_hash(encoded: str) -> bool:
    """Whether ``encoded`` is a hash in our format, with parameters ``verify_password`` accepts."""
    return _parse_hash(encoded) is not None


def credentials_match(user: str, password: str, expected_user: str, encoded: str) -> bool:
    """Whether user and password are ``expected_user`` and the password of ``encoded``.

    Takes as long whichever part is wrong. Successes are cached, keyed by the user and
    the password together (``_VerifiedCache``).
    """
    user_bytes = user.encode("utf-8")
    password_bytes = password.encode("utf-8")
    key = (encoded, _VERIFIED.digest(b"credentials", user_bytes, password_bytes))
    if key in _VERIFIED:
        return True
    # Digests first so that compare_digest does not leak the expected user's length.
    user_ok = hmac.compare_digest(
        hashlib.sha256(user_bytes).digest(), hashlib.sha256(expected_user.encode("utf-8")).digest()
    )
    # Always run scrypt, even for a wrong user, so the timing does not tell which failed.
    password_ok = _scrypt_matches(password_bytes, encoded)
    if user_ok and password_ok:
        _VERIFIED.add(key)
        return True
    return False


def credentials_known(user: str, password: str, encoded: str) -> bool:
    """Whether ``credentials_match`` would accept these credentials from its cache alone.

    Cheap (an HMAC), never runs scrypt.
    """
    key = (
        encoded,
        _VERIFIED.digest(b"credentials", user.encode("utf-8"), password.encode("utf-8")),
    )
    return key in _VERIFIED


# --------------------------------------------------------------------------- strength

MIN_PASSWORD_BITS = 100
"""Estimated strength a feed password needs (``password_weakness``).

Feed passwords are generated secrets, not something a person remembers, so the bar is
what a random secret has: 100 bits is ~16 random characters of letters, digits and
symbols (``secrets.token_urlsafe(24)`` has 192). Against it, the scrypt of a leaked
feeds file is out of reach and so is guessing at the endpoint (which is throttled too).
"""

# Sizes of the character classes a password draws from; any non-ASCII character counts
# as one class of 100, a guess that is generous to the password rather than strict.
_CLASSES: tuple[tuple[Callable[[str], bool], int], ...] = (
    (lambda c: c in string.ascii_lowercase, 26),
    (lambda c: c in string.ascii_uppercase, 26),
    (lambda c: c in string.digits, 10),
    (lambda c: c in string.punctuation or c == " ", 33),
    (lambda c: not c.isascii(), 100),
)
# Words that head every guessing list, found anywhere in the password, in any case: each
# counts as a single choice among many common words (10 bits), not as its letters.
_COMMON_WORDS = (
    "password", "passwort", "passw0rd", "qwerty", "azerty", "asdf", "letmein", "welcome",
    "admin", "secret", "changeme", "default", "iloveyou", "monkey", "dragon", "master",
    "login", "usps", "ivmtr", "mailtracking", "test", "demo", "feed", "spring", "summer",
    "autumn", "winter",
)  # fmt: skip
_COMMON_WORD_BITS = 10.0
# Digits and symbols that stand in for letters (``p@ssw0rd``), undone before the search.
_LEET = str.maketrans("0134579@$!", "oieastgasi")


def _smallest_period(text: str) -> int:
    """The length of the shortest unit that ``text`` repeats (its own length if none).

    The last copy may be cut short: ``Xy7!Xy7`` and ``Xy7!X`` repeat ``Xy7!`` too, or
    dropping the last character of a repeated password would count its copy in full
    (``Xy7!Xy7!`` is worth its unit, ``Xy7!Xy7`` would be worth nearly twice as much).
    """
    for period in range(1, len(text)):
        if all(text[i] == text[i - period] for i in range(period, len(text))):
            return period
    return len(text)


def estimated_bits(password: str) -> float:
    """A rough estimate of the bits of entropy of ``password``, erring high for random
    strings and low for made-up ones.

    Each character is worth log2 of the size of the character classes the password
    uses (lowercase 26, uppercase 26, digits 10, ASCII symbols and space 33, anything
    else 100), except what a guesser tries first: a character that repeats the one
    before it or continues a run (``aaaa``, ``abcd``, ``4321``) is worth 1 bit; a
    common word (``password``, ``P@ssw0rd``, ``qwerty``, ``usps``...) is worth 10 bits; a
    password that repeats a shorter unit (``Xy7!Xy7!``, ``Xy7!Xy7``) is worth its unit,
    plus 1 bit.
    """
    if not password:
        return 0.0
    period = _smallest_period(password)
    if period < len(password):
        return estimated_bits(password[:period]) + 1.0
    pool = sum(size for member, size in _CLASSES if any(member(c) for c in password))
    per_character = math.log2(pool)
    lowered = password.lower().translate(_LEET)
    in_word = [False] * len(password)
    bits = 0.0
    for word in _COMMON_WORDS:
        start = lowered.find(word)
        while start >= 0:
            if not any(in_word[start : start + len(word)]):
                in_word[start : start + len(word)] = [True] * len(word)
                bits += _COMMON_WORD_BITS
            start = lowered.find(word, start + 1)
    previous: str | None = None
    for index, character in enumerate(password):
        if not in_word[index]:
            patterned = previous is not None and abs(ord(character) - ord(previous)) <= 1
            bits += 1.0 if patterned else per_character
        previous = character
    return bits


def password_weakness(password: str, min_bits: float = MIN_PASSWORD_BITS) -> str | None:
    """Why ``password`` is too weak to be a feed password, or None when it is strong enough.

    The reason says what is required and how to generate such a password.
    """
    bits = estimated_bits(password)
    if bits >= min_bits:
        return None
    return (
        f"the password is too weak for a feed: about {bits:.0f} bits estimated, at least "
        f"{min_bits:.0f} needed. Feed passwords are generated secrets: use one of at least "
        "16 random letters, digits and symbols (repeats, runs and common words count for "
        "little), e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(24))'`, "
        "or `ivmtr-stream dev-credentials` for development"
    )
