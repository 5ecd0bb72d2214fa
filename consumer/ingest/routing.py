"""Routing: for each feed, the topic (and so the serialiser) of each record kind, built once.

A feed of the feeds file may force a record kind, label its scans with a campaign and
send any kind, or its dead letters, to a topic of its own (``[feeds.NAME.topics]``); such a
topic carries the schema of the default topic it replaces. Everything else about where a
record goes is the same for every feed, and is decided here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from consumer.core.campaigns import CampaignRule
from consumer.core.records import RecordKind
from consumer.feeds import DEAD_LETTERS, FeedTable
from producer import Schema, Topic, TopicTable

__all__ = [
    "FeedRoute",
    "Routing",
    "default_schemas",
    "override_schemas",
    "scan_topics",
]


def scan_topics(topics: TopicTable) -> dict[RecordKind, Topic]:
    """The default scan topic of each record kind."""
    return {
        RecordKind.PIECE: topics.piece_scans,
        RecordKind.BUNDLE: topics.bundle_scans,
        RecordKind.HANDLING_UNIT: topics.handling_unit_scans,
        RecordKind.CONTAINER: topics.container_scans,
    }


def default_schemas(topics: TopicTable) -> dict[str, Schema]:
    """Schema of each key of a feed's ``topics`` table: the kinds' events, and dead letters."""
    schemas = {kind.value: topic.schema for kind, topic in scan_topics(topics).items()}
    schemas[DEAD_LETTERS] = topics.dead_letters.schema
    return schemas


def override_schemas(feeds: FeedTable | None, topics: TopicTable) -> dict[str, Schema]:
    """Topic name -> schema of every topic a feed names in place of a default one."""
    if feeds is None:
        return {}
    schemas = default_schemas(topics)
    return {
        name: schemas[key] for feed in feeds.feeds.values() for key, name in feed.topics.items()
    }


@dataclass(frozen=True)
class FeedRoute:
    """Where one feed's records go, and how its scans are labelled."""

    feed: str
    kind: RecordKind | None
    """The kind every record must be; None detects each record's kind."""
    campaign: str | None
    """The feed's own campaign label; ``campaigns`` rules apply when it is None."""
    campaigns: tuple[CampaignRule, ...]
    scans: Mapping[RecordKind, Topic]
    dead_letters: Topic


class Routing:
    """The route of every feed, built once from the topic table and the feeds file.

    The topics feeds name in place of defaults (``overrides``) are built here, with the
    schema of the topic each replaces; ``registry_ids`` (topic name -> schema registry id)
    fix their wire format as ``TopicTable.build`` does for the defaults.
    """

    def __init__(
        self,
        topics: TopicTable,
        feeds: FeedTable | None = None,
        registry_ids: Mapping[str, int] | None = None,
    ) -> None:
        self._defaults = scan_topics(topics)
        self._dead_letters = topics.dead_letters
        self._campaigns = feeds.campaigns if feeds is not None else ()
        ids = registry_ids or {}
        self.overrides: tuple[Topic, ...] = tuple(
            Topic(name, schema, registry_id=ids.get(name))
            for name, schema in sorted(override_schemas(feeds, topics).items())
        )
        by_name = {topic.name: topic for topic in self.overrides}
        self._default = self._route("", None, None, {})
        self._routes = {
            feed.name: self._route(
                feed.name,
                feed.kind,
                feed.campaign,
                {key: by_name[name] for key, name in feed.topics.items()},
            )
            for feed in (feeds.feeds.values() if feeds is not None else ())
        }

    def _route(
        self,
        feed: str,
        kind: RecordKind | None,
        campaign: str | None,
        named: Mapping[str, Topic],
    ) -> FeedRoute:
        scans = {
            record_kind: named.get(record_kind.value, default)
            for record_kind, default in self._defaults.items()
        }
        return FeedRoute(
            feed=feed,
            kind=kind,
            campaign=campaign,
            campaigns=tuple(self._campaigns),
            scans=MappingProxyType(scans),
            dead_letters=named.get(DEAD_LETTERS, self._dead_letters),
        )

    def route(self, feed: str) -> FeedRoute:
        """The feed's route; a feed not in the feeds file (development mode, or removed
        since its messages were spooled) detects kinds and writes to the default topics."""
        route = self._routes.get(feed)
        return route if route is not None else dataclasses.replace(self._default, feed=feed)
