"""The feeds file: every feed, i.e. the ``{feed}`` of ``POST /v1/feeds/{feed}``.

A feeds file (TOML, see ``examples/feeds.toml``) names each feed with its record kind,
campaign label, credentials, allowed client networks and topic overrides, plus the
reverse proxies whose ``X-Forwarded-For`` is believed and the ``[[campaigns]]`` rules.
``load_feeds`` reads and checks it once at start-up.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from consumer.core.campaigns import CampaignRule
from consumer.core.records import RecordKind
from consumer.feeds.campaigns import parse_campaign_rules
from consumer.feeds.errors import FeedsFileError
from consumer.feeds.keys import no_unknown_keys
from consumer.feeds.networks import IPNetwork, parse_networks
from consumer.feeds.passwords import is_password_hash

__all__ = [
    "DEAD_LETTERS",
    "FEED_NAME",
    "TOPIC_KEYS",
    "Feed",
    "FeedTable",
    "load_feeds",
    "parse_feeds",
]

FEED_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Feed names, as accepted in the URL by ``consumer.http.app``."""

DEAD_LETTERS: Final = "dead_letters"
"""The key of the dead-letter topic in a feed's ``topics`` table, beside the record kinds."""
TOPIC_KEYS: Final = frozenset({*(kind.value for kind in RecordKind), DEAD_LETTERS})
"""Keys of a feed's ``topics`` table: the record kinds, and ``dead_letters``."""

# Kafka's own rule for topic names (``kafka.common.internals.Topic``).
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_FEED_KEYS = frozenset({"kind", "campaign", "user", "password_hash", "allowed_networks", "topics"})
_MAX_CAMPAIGN_LENGTH = 256
_MAX_USER_LENGTH = 128


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
    no_unknown_keys(data, {"feeds", "proxies", "campaigns"}, "")
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
    no_unknown_keys(proxies, {"trusted"}, "proxies.")
    trusted = parse_networks(proxies.get("trusted", []), "proxies.trusted", None, allow_empty=True)
    return FeedTable(
        MappingProxyType(feeds), trusted, parse_campaign_rules(data.get("campaigns", []))
    )


def _parse_feed(name: str, data: object) -> Feed:
    """The feed ``name`` from its ``[feeds.<name>]`` table."""
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
    no_unknown_keys(data, _FEED_KEYS, f"{where}.", feed=name)

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
    if not isinstance(password_hash, str) or not is_password_hash(password_hash):
        raise FeedsFileError(
            f"{where}.password_hash",
            "not a password hash of ours: expected scrypt$N$r$p$<salt>$<hash> as printed "
            "by `ivmtr-stream hash-password` (never a plain password)",
            feed=name,
        )

    networks: tuple[IPNetwork, ...] = ()
    if "allowed_networks" in data:
        networks = parse_networks(data["allowed_networks"], f"{where}.allowed_networks", name)

    topics_data = data.get("topics", {})
    if not isinstance(topics_data, dict):
        raise FeedsFileError(f"{where}.topics", "must be a table", feed=name)
    no_unknown_keys(topics_data, TOPIC_KEYS, f"{where}.topics.", feed=name)
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
