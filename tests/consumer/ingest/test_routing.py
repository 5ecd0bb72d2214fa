"""Tests for consumer.ingest.routing: each feed's topics, built once, defaults elsewhere."""

from __future__ import annotations

from consumer.core.campaigns import CampaignRule
from consumer.core.records import RecordKind
from consumer.feeds import hash_password, parse_feeds
from consumer.ingest.routing import Routing, override_schemas, scan_topics
from producer import TopicTable

TOPICS = TopicTable.build("t.")
HASH = hash_password("a long enough password", n=2**10)


def feeds_file() -> dict[str, object]:
    return {
        "feeds": {
            "letters": {
                "user": "letters",
                "password_hash": HASH,
                "kind": "piece",
                "campaign": "spring",
                "topics": {"piece": "letters.pieces", "dead_letters": "letters.dead"},
            },
            "trays": {
                "user": "trays",
                "password_hash": HASH,
                "kind": "handling_unit",
                "topics": {"handling_unit": "letters.pieces2"},
            },
            "auto": {"user": "auto", "password_hash": HASH},
        },
        "campaigns": [{"id": "fall", "mailer_ids": ["901234567"]}],
    }


def test_each_record_kind_has_its_default_topic() -> None:
    topics = scan_topics(TOPICS)
    assert {kind: topic.name for kind, topic in topics.items()} == {
        RecordKind.PIECE: "t.piece-scans",
        RecordKind.BUNDLE: "t.bundle-scans",
        RecordKind.HANDLING_UNIT: "t.handling-unit-scans",
        RecordKind.CONTAINER: "t.container-scans",
    }


def test_a_feed_routes_to_its_own_topics_with_the_schemas_they_replace() -> None:
    table = parse_feeds(feeds_file())
    routing = Routing(TOPICS, table)
    letters = routing.route("letters")
    assert (letters.feed, letters.kind, letters.campaign) == ("letters", RecordKind.PIECE, "spring")
    assert letters.scans[RecordKind.PIECE].name == "letters.pieces"
    assert letters.scans[RecordKind.PIECE].schema == TOPICS.piece_scans.schema
    assert letters.scans[RecordKind.BUNDLE] is TOPICS.bundle_scans
    assert letters.dead_letters.name == "letters.dead"
    assert letters.dead_letters.schema == TOPICS.dead_letters.schema
    trays = routing.route("trays")
    assert trays.scans[RecordKind.HANDLING_UNIT].schema == TOPICS.handling_unit_scans.schema
    assert trays.dead_letters is TOPICS.dead_letters
    assert [rule.campaign for rule in letters.campaigns] == ["fall"]
    assert isinstance(letters.campaigns[0], CampaignRule)
    assert {topic.name for topic in routing.overrides} == set(override_schemas(table, TOPICS))
    assert set(override_schemas(table, TOPICS)) == {
        "letters.pieces",
        "letters.dead",
        "letters.pieces2",
    }


def test_a_feed_not_in_the_file_detects_kinds_and_uses_the_defaults() -> None:
    routing = Routing(TOPICS, parse_feeds(feeds_file()))
    for name in ("auto", "removed-since"):
        route = routing.route(name)
        assert (route.feed, route.kind, route.campaign) == (name, None, None)
        assert dict(route.scans) == scan_topics(TOPICS)
        assert route.dead_letters is TOPICS.dead_letters
    bare = Routing(TOPICS)
    assert bare.overrides == () and bare.route("dev").campaigns == ()


def test_registry_ids_fix_the_wire_format_of_override_topics() -> None:
    routing = Routing(TOPICS, parse_feeds(feeds_file()), {"letters.pieces": 7})
    letters = routing.route("letters")
    value = letters.scans[RecordKind.PIECE].encoded_message("k", b"\x00").value
    assert value[:5] == b"\x00" + (7).to_bytes(4, "big")
    dead = letters.dead_letters.encoded_message("k", b"\x00").value
    assert dead[:2] == b"\xc3\x01"  # no id: single-object encoding
