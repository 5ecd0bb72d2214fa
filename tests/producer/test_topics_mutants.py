"""Tests for producer.topics: messages of values already encoded, routes for batch builders,
and the tracker's topics (``TrackTopics``), as the module docstring lists them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from producer.schemas import schema_dir
from producer.topics import EventRoute, KafkaMessage, TopicTable, TrackTopics
from tests.producer.test_topics import DEAD_LETTER

SCHEMA_HEADERS = (
    ("ivmtr.schema", b"ivmtr.events.DeadLetter"),
    ("ivmtr.encoding", b"avro-single-object"),
)


def test_message_goes_to_the_partition_asked_for() -> None:
    topic = TopicTable.build().dead_letters
    assert topic.message(None, DEAD_LETTER, partition=5).partition == 5
    assert topic.message(None, DEAD_LETTER).partition is None


def test_encoded_message_frames_the_body_like_message() -> None:
    topic = TopicTable.build("acme.").dead_letters
    message = topic.encoded_message("Zürich/1", b"body", [("ivmtr.feed", b"pieces")])
    assert message == KafkaMessage(
        topic="acme.dead-letters",
        key="Zürich/1".encode(),
        value=b"\xc3\x01" + topic.schema.fingerprint + b"body",
        headers=(*SCHEMA_HEADERS, ("ivmtr.feed", b"pieces")),
        partition=None,
    )
    assert topic.encoded_message(None, b"") == KafkaMessage(
        "acme.dead-letters", None, b"\xc3\x01" + topic.schema.fingerprint, SCHEMA_HEADERS
    )


@pytest.mark.parametrize("registry_id", [None, 7])
def test_a_route_is_what_encoded_message_does_to_each_body(registry_id: int | None) -> None:
    ids = None if registry_id is None else {"acme.dead-letters": registry_id}
    topic = TopicTable.build("acme.", registry_ids=ids).dead_letters
    route = topic.route([("ivmtr.feed", b"pieces")])
    assert isinstance(route, EventRoute)
    assert route.topic == "acme.dead-letters"
    message = topic.encoded_message(None, b"body", [("ivmtr.feed", b"pieces")])
    assert route.prefix + b"body" == message.value
    assert route.headers == message.headers
    expected_prefix = (
        b"\xc3\x01" + topic.schema.fingerprint
        if registry_id is None
        else b"\x00" + registry_id.to_bytes(4, "big")
    )
    assert route.prefix == expected_prefix
    assert topic.route() == EventRoute("acme.dead-letters", expected_prefix, message.headers[:2])


def test_an_unknown_topic_name_is_named_in_the_key_error() -> None:
    with pytest.raises(KeyError) as caught:
        TopicTable.build("acme.").by_name("ivmtr.piece-scans")
    assert caught.value.args == ("ivmtr.piece-scans",)


@pytest.mark.parametrize("prefix", ["ivmtr.", "acme.usps.", ""])
def test_track_topics_from_the_prefix(prefix: str) -> None:
    track = TrackTopics.build(prefix)
    assert [(topic.name, topic.schema.name) for topic in track] == [
        (f"{prefix}piece-status", "ivmtr.events.PieceStatus"),
        (f"{prefix}alerts", "ivmtr.events.PieceAlert"),
    ]
    assert (track.piece_status.name, track.alerts.name) == (
        f"{prefix}piece-status",
        f"{prefix}alerts",
    )
    assert track.schemas() == {topic.name: topic.schema for topic in track}


def test_track_topics_default_prefix() -> None:
    assert [topic.name for topic in TrackTopics.build()] == [
        "ivmtr.piece-status",
        "ivmtr.alerts",
    ]


def test_track_topics_with_registry_ids() -> None:
    track = TrackTopics.build("t.", registry_ids={"t.piece-status": 11, "t.alerts": 12})
    assert [(topic.registry_id, topic.encoding) for topic in track] == [
        (11, "confluent-avro"),
        (12, "confluent-avro"),
    ]
    assert [topic.registry_id for topic in TrackTopics.build("t.")] == [None, None]


def test_track_topics_from_another_schema_directory(tmp_path: Path) -> None:
    for path in schema_dir().glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    # the copies of PieceStatus and PieceAlert say so in their docs: the same encoding,
    # other schema files
    for name in ("PieceStatus", "PieceAlert"):
        path = tmp_path / f"ivmtr.events.{name}.avsc"
        path.write_text(path.read_text().replace('"doc": "', '"doc": "(copy) ', 1))
    copied = TrackTopics.build("t.", tmp_path)
    shipped = TrackTopics.build("t.")
    for mine, theirs in zip(copied, shipped, strict=True):
        assert mine.schema.parsed["doc"].startswith("(copy) ")
        assert not theirs.schema.parsed["doc"].startswith("(copy) ")
        assert mine.schema.fingerprint == theirs.schema.fingerprint
