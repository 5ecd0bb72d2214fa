"""The feeds file: who may push to which feed, and from where; Basic-auth checks.

A feeds file (TOML, see ``examples/feeds.toml``) names every feed, i.e. the ``{feed}``
of ``POST /v1/feeds/{feed}``, with its record kind, campaign label, credentials,
allowed client networks and topic overrides, plus the reverse proxies whose
``X-Forwarded-For`` is believed. ``load_feeds`` reads and checks it once at start-up;
``authorize`` then decides each request from plain values (no HTTP framework here).

Errors, all answered by the one handler in ``consumer.http.app``:

    IngestError (consumer.errors)   status  code
    ├── UnknownFeed                 404     unknown_feed   (consumer.errors)
    ├── Unauthorized                401     unauthorized   (carries ``headers``: the challenge)
    └── Forbidden                   403     forbidden      (client address not allowed)

    FeedsFileError                  the feeds file is invalid; names the feed and field

Passwords are stored only as ``scrypt$N$r$p$<salt b64>$<hash b64>`` (``hash_password``,
or ``ivmtr-stream hash-password``). Successful verifications are cached in memory so
that a busy feed pays scrypt once, not per request; see ``_VerifiedCache`` for why
this is safe.

Only this module's ``load_feeds`` and ``generate_dev_credentials`` touch the file
system; everything else is pure apart from the verification cache.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
import tomllib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from consumer.core.campaigns import CampaignRule
from consumer.core.records import RecordKind
from consumer.errors import IngestError, UnknownFeed

__all__ = [
    "DEV_FEED",
    "DEV_USER",
    "FEED_NAME",
    "TOPIC_KEYS",
    "WWW_AUTHENTICATE",
    "Feed",
    "FeedTable",
    "FeedsFileError",
    "Forbidden",
    "IPAddress",
    "IPNetwork",
    "Unauthorized",
    "authorize",
    "basic_credentials",
    "clear_verification_cache",
    "client_address",
    "credentials_cached",
    "generate_dev_credentials",
    "hash_password",
    "load_feeds",
    "parse_feeds",
    "password_file",
    "verify_password",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

WWW_AUTHENTICATE: Final = 'Basic realm="ivmtr-stream", charset="UTF-8"'
"""The challenge sent with every 401 (RFC 7617; credentials are decoded as UTF-8)."""

FEED_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Feed names, as accepted in the URL by ``consumer.http.app``."""

TOPIC_KEYS: Final = frozenset({*(kind.value for kind in RecordKind), "dead_letters"})
"""Keys of a feed's ``topics`` table: the record kinds, and ``dead_letters``."""

DEV_FEED: Final = "demo"
DEV_USER: Final = "demo"

# Kafka's own rule for topic names (``kafka.common.internals.Topic``).
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_FEED_KEYS = frozenset({"kind", "campaign", "user", "password_hash", "allowed_networks", "topics"})
_MAX_CAMPAIGN_LENGTH = 256
_MAX_USER_LENGTH = 128

# An Authorization header longer than this is refused before it is decoded; real
# Basic credentials are far shorter, and this bounds the work an attacker can cause.
_MAX_AUTHORIZATION_LENGTH = 4096

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


# --------------------------------------------------------------------------- errors


class FeedsFileError(Exception):
    """The feeds file is unreadable or invalid; the message names the file, feed and field.

    ``field`` is the dotted path of the offending value (``feeds.letters.kind``),
    empty when the file as a whole is unreadable; ``feed`` the feed's name when the
    problem is inside one feed; ``path`` the file, when it was read from one.
    """

    def __init__(
        self, field: str, problem: str, *, feed: str | None = None, path: str | None = None
    ) -> None:
        super().__init__(": ".join(part for part in (path, field, problem) if part))
        self.field = field
        self.feed = feed
        self.path = path
        self.problem = problem


class Unauthorized(IngestError):
    """Missing, malformed or wrong Basic credentials for the feed (401 + challenge)."""

    status = 401
    code = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        # Response headers the error handler must add; a 401 without a challenge is
        # not valid HTTP (RFC 9110 15.5.2).
        self.headers: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": WWW_AUTHENTICATE})


class Forbidden(IngestError):
    """The client address is outside the feed's ``allowed_networks`` (403)."""

    status = 403
    code = "forbidden"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Feed:
    """One feed of the feeds file.

    ``kind`` is None for ``auto`` (each record's kind is detected); ``allowed_networks``
    empty means any address; ``topics`` maps keys of ``TOPIC_KEYS`` to topic names that
    replace the default topic of that kind for this feed.
    """

    name: str
    kind: RecordKind | None
    campaign: str | None
    user: str
    # Not secret like a password, but an offline-guessing target: keep it out of logs.
    password_hash: str = field(repr=False)
    allowed_networks: tuple[IPNetwork, ...] = ()
    topics: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True)
class FeedTable:
    """Every feed by name, and the proxies whose ``X-Forwarded-For`` is believed."""

    feeds: Mapping[str, Feed] = field(hash=False)
    trusted_proxies: tuple[IPNetwork, ...] = ()
    campaigns: tuple[CampaignRule, ...] = ()


# --------------------------------------------------------------------------- loading


def load_feeds(path: str | os.PathLike[str]) -> FeedTable:
    """Read and check a feeds file; FeedsFileError names what is wrong and where."""
    location = os.fspath(path)
    try:
        data = tomllib.loads(Path(location).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FeedsFileError(
            "", f"cannot read the feeds file: {exc.strerror}", path=location
        ) from exc
    except UnicodeDecodeError as exc:
        raise FeedsFileError("", "not UTF-8 text", path=location) from exc
    except tomllib.TOMLDecodeError as exc:
        raise FeedsFileError("", f"not valid TOML: {exc}", path=location) from exc
    try:
        return parse_feeds(data)
    except FeedsFileError as exc:
        raise FeedsFileError(exc.field, exc.problem, feed=exc.feed, path=location) from None


def parse_feeds(data: Mapping[str, Any]) -> FeedTable:
    """Check the parsed TOML of a feeds file and build the table from it.

    Two feeds may not share a user: a user then names exactly one feed in logs, and
    "credentials of another feed" is never ambiguous. To let one sender push to two
    feeds, give it two users.
    """
    _no_unknown_keys(data, {"feeds", "proxies", "campaigns"}, "")
    feeds_data = data.get("feeds")
    if not isinstance(feeds_data, dict) or not feeds_data:
        raise FeedsFileError("feeds", "no feed defined: add a [feeds.<name>] table")
    feeds: dict[str, Feed] = {}
    users: dict[str, str] = {}
    topic_owners: dict[str, tuple[str, str]] = {}
    for name, feed_data in feeds_data.items():
        feed = _parse_feed(name, feed_data)
        if feed.user in users:
            raise FeedsFileError(
                f"feeds.{name}.user",
                f"user {feed.user!r} is also the user of feed {users[feed.user]!r}; "
                "each feed needs its own user",
                feed=name,
            )
        users[feed.user] = name
        for key, topic in feed.topics.items():
            # One topic carries one schema: the same topic for two kinds would mix them.
            owner = topic_owners.setdefault(topic, (key, name))
            if owner[0] != key:
                raise FeedsFileError(
                    f"feeds.{name}.topics.{key}",
                    f"topic {topic!r} is already the {owner[0]} topic of feed {owner[1]!r}",
                    feed=name,
                )
        feeds[name] = feed
    proxies = data.get("proxies", {})
    if not isinstance(proxies, dict):
        raise FeedsFileError("proxies", "must be a table")
    _no_unknown_keys(proxies, {"trusted"}, "proxies.")
    trusted = _networks(proxies.get("trusted", []), "proxies.trusted", None, allow_empty=True)
    return FeedTable(MappingProxyType(feeds), trusted, _campaign_rules(data.get("campaigns", [])))


_RULE_KEYS = {"id", "mailer_ids", "serial_ranges", "stids", "job_ids", "mailing_group_ids"}


def _campaign_rules(data: object) -> tuple[CampaignRule, ...]:
    """``[[campaigns]]`` tables, in file order (the first match wins)."""
    if not isinstance(data, list):
        raise FeedsFileError("campaigns", "must be an array of tables: [[campaigns]]")
    rules = []
    for index, item in enumerate(data):
        where = f"campaigns[{index}]"
        if not isinstance(item, dict):
            raise FeedsFileError(where, "must be a table")
        _no_unknown_keys(item, _RULE_KEYS, f"{where}.")
        campaign = item.get("id")
        if not isinstance(campaign, str) or not campaign.strip():
            raise FeedsFileError(f"{where}.id", "must be a non-empty string")
        ranges = []
        for pair in _string_list(item, "serial_ranges", where, nested=True):
            low, high = (int(value) for value in pair)
            if low > high:
                raise FeedsFileError(f"{where}.serial_ranges", f"{pair[0]} is above {pair[1]}")
            ranges.append((low, high))
        rules.append(
            CampaignRule(
                campaign=campaign,
                mailer_ids=frozenset(_string_list(item, "mailer_ids", where)),
                serial_ranges=tuple(ranges),
                stids=frozenset(_string_list(item, "stids", where)),
                job_ids=frozenset(_string_list(item, "job_ids", where)),
                mailing_group_ids=frozenset(_string_list(item, "mailing_group_ids", where)),
            )
        )
    return tuple(rules)


def _string_list(
    item: Mapping[str, Any], key: str, where: str, *, nested: bool = False
) -> list[Any]:
    values = item.get(key, [])
    if not isinstance(values, list):
        raise FeedsFileError(f"{where}.{key}", "must be an array")
    for value in values:
        if nested:
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, str) and v.isascii() and v.isdigit() for v in value)
            )
            if not ok:
                raise FeedsFileError(
                    f"{where}.{key}", 'each range is ["first serial", "last serial"]'
                )
        elif not isinstance(value, str) or not value:
            raise FeedsFileError(f"{where}.{key}", "must hold non-empty strings")
    return values


def _parse_feed(name: str, data: object) -> Feed:
    where = f"feeds.{name}"
    if not FEED_NAME.fullmatch(name):
        raise FeedsFileError(
            where,
            "a feed name is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
            feed=name,
        )
    if not isinstance(data, dict):
        raise FeedsFileError(where, "must be a table", feed=name)
    _no_unknown_keys(data, _FEED_KEYS, f"{where}.", feed=name)

    kind_value = data.get("kind", "auto")
    choices = ", ".join([*(k.value for k in RecordKind), "auto"])
    if not isinstance(kind_value, str) or kind_value not in {*RecordKind, "auto"}:
        raise FeedsFileError(f"{where}.kind", f"must be one of {choices}", feed=name)
    kind = None if kind_value == "auto" else RecordKind(kind_value)

    campaign = data.get("campaign")
    if campaign is not None and (
        not isinstance(campaign, str)
        or not campaign.strip()
        or len(campaign) > _MAX_CAMPAIGN_LENGTH
    ):
        raise FeedsFileError(
            f"{where}.campaign",
            f"must be a non-empty string of at most {_MAX_CAMPAIGN_LENGTH} characters",
            feed=name,
        )

    user = data.get("user")
    if user is None:
        raise FeedsFileError(f"{where}.user", "missing", feed=name)
    if (
        not isinstance(user, str)
        or not user
        or len(user) > _MAX_USER_LENGTH
        or ":" in user
        or not user.isprintable()
    ):
        raise FeedsFileError(
            f"{where}.user",
            f"must be 1 to {_MAX_USER_LENGTH} printable characters without ':' "
            "(Basic auth cannot carry a ':' in the user)",
            feed=name,
        )

    password_hash = data.get("password_hash")
    if password_hash is None:
        raise FeedsFileError(f"{where}.password_hash", "missing", feed=name)
    # The value is never quoted back: it may be a plain password pasted by mistake.
    if not isinstance(password_hash, str) or _parse_hash(password_hash) is None:
        raise FeedsFileError(
            f"{where}.password_hash",
            "not a password hash of ours: expected scrypt$N$r$p$<salt>$<hash> as printed "
            "by `ivmtr-stream hash-password` (never a plain password)",
            feed=name,
        )

    networks: tuple[IPNetwork, ...] = ()
    if "allowed_networks" in data:
        networks = _networks(data["allowed_networks"], f"{where}.allowed_networks", name)

    topics_data = data.get("topics", {})
    if not isinstance(topics_data, dict):
        raise FeedsFileError(f"{where}.topics", "must be a table", feed=name)
    _no_unknown_keys(topics_data, TOPIC_KEYS, f"{where}.topics.", feed=name)
    for key, topic in topics_data.items():
        if not isinstance(topic, str) or not _TOPIC_NAME.fullmatch(topic) or topic in {".", ".."}:
            raise FeedsFileError(
                f"{where}.topics.{key}",
                "a topic name is 1 to 249 letters, digits, '.', '_' or '-'",
                feed=name,
            )

    return Feed(
        name=name,
        kind=kind,
        campaign=campaign,
        user=user,
        password_hash=password_hash,
        allowed_networks=networks,
        topics=MappingProxyType(dict(topics_data)),
    )


def _networks(
    value: object, where: str, feed: str | None, *, allow_empty: bool = False
) -> tuple[IPNetwork, ...]:
    if not isinstance(value, list):
        raise FeedsFileError(where, "must be a list of CIDR strings", feed=feed)
    if not value and not allow_empty:
        # An empty list would refuse every client, which is never what was meant.
        raise FeedsFileError(
            where, "is empty, which would refuse every client; leave it out to allow any", feed=feed
        )
    networks: list[IPNetwork] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise FeedsFileError(f"{where}[{index}]", "must be a CIDR string", feed=feed)
        try:
            # strict: "10.1.2.3/8" is refused rather than silently widened to 10.0.0.0/8.
            networks.append(ipaddress.ip_network(item.strip(), strict=True))
        except ValueError as exc:
            raise FeedsFileError(
                f"{where}[{index}]", f"{item!r} is not an IPv4/IPv6 network: {exc}", feed=feed
            ) from exc
    return tuple(networks)


def _no_unknown_keys(
    data: Mapping[str, Any],
    known: frozenset[str] | set[str],
    prefix: str,
    *,
    feed: str | None = None,
) -> None:
    for key in data:
        if key not in known:
            raise FeedsFileError(
                f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(known))})", feed=feed
            )


# --------------------------------------------------------------------------- passwords


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
    password or parameters outside what ``verify_password`` accepts.
    """
    if not password:
        raise ValueError("the password is empty")
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
    return hmac.compare_digest(digest, parsed.digest)


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
      credentials, which the 200 that follows reveals anyway. ``authorize`` binds the
      user into the digest, so a right password with a wrong user is a miss and takes
      as long as any other failure.
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


# --------------------------------------------------------------------------- requests


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """The (user, password) of a Basic ``Authorization`` header; Unauthorized otherwise.

    The scheme is case-insensitive; the credentials are base64 of UTF-8
    ``user:password`` (RFC 7617), split at the first ':'.
    """
    if authorization is None or not authorization.strip():
        raise Unauthorized("credentials required: use HTTP Basic authentication")
    if len(authorization) > _MAX_AUTHORIZATION_LENGTH:
        raise Unauthorized("malformed Authorization header: too long")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("unsupported authentication scheme: use HTTP Basic authentication")
    token = token.strip()
    try:
        # Some clients drop the padding; put it back rather than refuse them.
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise Unauthorized("malformed Authorization header: not base64 of UTF-8") from None
    user, colon, password = text.partition(":")
    if not colon:
        raise Unauthorized("malformed Authorization header: no ':' between user and password")
    return user, password


def _address(text: str) -> IPAddress | None:
    """An address from a peer or X-Forwarded-For entry, or None when it is not one.

    Accepts ``1.2.3.4``, ``::1``, ``[::1]``, and with a port ``1.2.3.4:80`` or
    ``[::1]:80`` (some proxies add one). IPv4-mapped IPv6 addresses (dual-stack
    sockets) become IPv4, so that IPv4 networks match them.
    """
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _in_any(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    # ``in`` between different IP versions is simply False, never an error.
    return any(address in network for network in networks)


def client_address(
    peer: str, forwarded_for: str | None, trusted_proxies: tuple[IPNetwork, ...]
) -> IPAddress | None:
    """The client's address: the TCP peer, or what trusted proxies say it is.

    When the peer is a trusted proxy, ``X-Forwarded-For`` (all its headers joined with
    ',') is read from the right: each entry was appended by the hop to its right, so
    entries are believed only while that hop is trusted. The first entry that is not a
    trusted proxy is the client. When every entry is a trusted proxy, the left-most is
    the client; with no header, the peer itself is.

    A malformed entry met on the way makes the client unknown (None): the trusted hop
    that wrote it cannot be believed, and the entries left of it are the client's own
    claims. None is in no network, so a feed with ``allowed_networks`` then refuses.
    The same goes for a peer that is not an address (a Unix socket, a test client).
    """
    address = _address(peer)
    if address is None or not _in_any(address, trusted_proxies):
        # Headers from untrusted peers are the client's own claims: ignored.
        return address
    if forwarded_for is None or not forwarded_for.strip():
        return address
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            return None
        if not _in_any(address, trusted_proxies):
            return address
    return address


def _credentials_match(feed: Feed, user: str, password: str) -> bool:
    """Whether user and password are the feed's, taking as long whichever part is wrong."""
    user_bytes = user.encode("utf-8")
    password_bytes = password.encode("utf-8")
    key = (feed.password_hash, _VERIFIED.digest(b"credentials", user_bytes, password_bytes))
    if key in _VERIFIED:
        return True
    # Digests first so that compare_digest does not leak the expected user's length.
    user_ok = hmac.compare_digest(
        hashlib.sha256(user_bytes).digest(), hashlib.sha256(feed.user.encode("utf-8")).digest()
    )
    # Always run scrypt, even for a wrong user, so the timing does not tell which failed.
    password_ok = _scrypt_matches(password_bytes, feed.password_hash)
    if user_ok and password_ok:
        _VERIFIED.add(key)
        return True
    return False


def authorize(
    table: FeedTable,
    feed_name: str,
    authorization_header: str | None,
    peer: str,
    forwarded_for: str | None,
) -> Feed:
    """The feed a request may push to, or the error to answer it with.

    Checks in order: the feed exists (else UnknownFeed, 404); the client address (see
    ``client_address``) is in the feed's ``allowed_networks`` when it has some (else
    Forbidden, 403, before any scrypt work, so that other networks cannot make us
    spend CPU); the Basic credentials are the feed's (else Unauthorized, 401, with
    ``headers`` to send). Credentials of another feed are simply wrong credentials.

    A cache miss costs one scrypt (tens of ms, ~16 MiB): call it off the event loop,
    or first ask ``credentials_cached``. Error messages never contain the header or
    the password.
    """
    feed = table.feeds.get(feed_name)
    if feed is None:
        raise UnknownFeed(f"no feed called {feed_name!r}")
    if feed.allowed_networks:
        address = client_address(peer, forwarded_for, table.trusted_proxies)
        if address is None:
            raise Forbidden(f"feed {feed_name!r} only accepts known client addresses")
        if not _in_any(address, feed.allowed_networks):
            raise Forbidden(f"client address {address} may not push to feed {feed_name!r}")
    user, password = basic_credentials(authorization_header)
    if not _credentials_match(feed, user, password):
        raise Unauthorized("invalid user or password")
    return feed


def credentials_cached(table: FeedTable, feed_name: str, authorization_header: str | None) -> bool:
    """Whether ``authorize`` would accept these credentials without running scrypt.

    Cheap (a base64 decode and an HMAC): lets the app run the common case on the event
    loop and send only cache misses to a worker thread. Never raises.
    """
    feed = table.feeds.get(feed_name)
    if feed is None:
        return False
    try:
        user, password = basic_credentials(authorization_header)
    except Unauthorized:
        return False
    key = (
        feed.password_hash,
        _VERIFIED.digest(b"credentials", user.encode("utf-8"), password.encode("utf-8")),
    )
    return key in _VERIFIED


# --------------------------------------------------------------------------- development


def password_file(feeds_path: str | os.PathLike[str]) -> Path:
    """Where ``generate_dev_credentials`` keeps the dev password: ``<feeds file>.password``."""
    path = Path(feeds_path)
    return path.with_name(path.name + ".password")


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    """Write ``text`` to a file only its owner can read (0600 whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the file may have existed with a wider mode
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def generate_dev_credentials(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Write a development feeds file with one feed ``demo`` and a fresh random password.

    The password is also kept in ``password_file(path)`` (mode 0600) so that a later
    run can show it again. FileExistsError when ``path`` exists; prints nothing.
    Returns (user, password).
    """
    target = Path(path)
    if target.exists():
        raise FileExistsError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    text = (
        "# Development feeds file written by `ivmtr-stream dev-credentials`.\n"
        f"# The password is in {password_file(target).name}. Not for production: see\n"
        "# examples/feeds.toml.\n"
        "\n"
        f"[feeds.{DEV_FEED}]\n"
        'kind = "auto"\n'
        f'user = "{DEV_USER}"\n'
        f'password_hash = "{hash_password(password)}"\n'
    )
    # The password file first: once the feeds file exists, its password is on disk.
    _write_private(password_file(target), password + "\n", exclusive=False)
    _write_private(target, text, exclusive=True)
    return DEV_USER, password
