"""The feeds file: every feed, i.e. the ``{feed}`` of ``POST /v1/feeds/{feed}``.

A feeds file (TOML, see ``examples/feeds.toml``) names each feed with its record kind,
campaign label, credentials, allowed client networks and topic overrides, plus the
reverse proxies whose ``X-Forwarded-For`` is believed and the ``[[campaigns]]`` rules.
``load_feeds`` reads and checks it once at start-up.

The file is checked by the pydantic models of ``consumer.feeds.schema`` (every mistake
at once, each named by feed and key path), then converted to the plain, frozen ``Feed``
and ``FeedTable`` below. The service keeps using these rather than the models: they hold
the values in the form requests need (``RecordKind`` or None for auto, tuples of
networks, read-only topic maps, ``CampaignRule``), carry no validation machinery into
the request path, and keep ``consumer.feeds`` callers independent of how the file is
parsed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from consumer.core.campaigns import CampaignRule
from consumer.core.records import RecordKind
from consumer.feeds.errors import FeedsFileError
from consumer.feeds.networks import IPNetwork
from consumer.feeds.schema import (
    DEAD_LETTERS,
    FEED_NAME,
    TOPIC_KEYS,
    CampaignRuleModel,
    FeedModel,
    check_feeds_file,
)

__all__ = [
    "DEAD_LETTERS",
    "FEED_NAME",
    "TOPIC_KEYS",
    "Feed",
    "FeedTable",
    "load_feeds",
    "parse_feeds",
]


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
    """Read and check a feeds file; FeedsFileError lists every mistake, with the file's path."""
    location = os.fspath(path)
    try:
        data = tomllib.loads(Path(location).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FeedsFileError.one(
            "", f"cannot read the feeds file: {exc.strerror}", path=location
        ) from exc
    except UnicodeDecodeError as exc:
        raise FeedsFileError.one("", "not UTF-8 text", path=location) from exc
    except tomllib.TOMLDecodeError as exc:
        raise FeedsFileError.one("", f"not valid TOML: {exc}", path=location) from exc
    try:
        return parse_feeds(data)
    except FeedsFileError as exc:
        raise exc.at(location) from None


def parse_feeds(data: Mapping[str, Any]) -> FeedTable:
    """Check the parsed TOML of a feeds file and build the table from it.

    FeedsFileError lists every mistake (see ``consumer.feeds.schema``), each naming its
    key path and, inside a feed, the feed.
    """
    model = check_feeds_file(data)
    return FeedTable(
        MappingProxyType({name: _feed(name, feed) for name, feed in model.feeds.items()}),
        tuple(model.proxies.trusted),
        tuple(_campaign_rule(rule) for rule in model.campaigns),
    )


def _feed(name: str, model: FeedModel) -> Feed:
    return Feed(
        name=name,
        kind=None if model.kind == "auto" else RecordKind(model.kind),
        campaign=model.campaign,
        user=model.user,
        password_hash=model.password_hash,
        allowed_networks=tuple(model.allowed_networks or ()),
        topics=MappingProxyType(model.topics.overrides()),
    )


def _campaign_rule(model: CampaignRuleModel) -> CampaignRule:
    return CampaignRule(
        campaign=model.id,
        mailer_ids=frozenset(model.mailer_ids),
        serial_ranges=tuple((int(low), int(high)) for low, high in model.serial_ranges),
        stids=frozenset(model.stids),
        job_ids=frozenset(model.job_ids),
        mailing_group_ids=frozenset(model.mailing_group_ids),
    )
