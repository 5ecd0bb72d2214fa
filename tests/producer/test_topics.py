"""Tests for producer.topics: topics own their serialisers; the table is built from a prefix."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producer.errors import SerializationError
from producer.schemas import schema_dir
from producer.topics import KafkaMessage, Topic, TopicTable
from producer.wire import SingleObjectDecoder

# attribute, topic name after the prefix, value schema (topics.py docstring)
TABLE = [
    ("piece_scans", "piece-scans", "ivmtr.events.PieceScan"),
    ("bundle_scans", "bundle-scans", "ivmtr.events.BundleScan"),
    ("handling_unit_scans", "handling-unit-scans", "ivmtr.events.HandlingUnitScan"),
    ("container_scans", "container-scans", "ivmtr.events.ContainerScan"),
    ("dead_letters", "dead-letters", "ivmtr.events.DeadLetter"),
    ("deliveries", "deliveries", "ivmtr.events.DeliveryReceipt"),
]

DEAD_LETTER = {
    "provenance": {
        "source": "PUSH",
        "feed": "pieces",
        "msg_grp_id": "17367877181793X9RM5Z",
        "msg_ser_nbr": 1,
        "record_index": 3,
        "received_at": 1_736_787_718_179,
    },
    "kind": None,
    "reasons": [{"field": None, "problem": "cannot tell the record kind: no imb, imtb or imcb"}],
    "raw": '{"a":1}',
}


@pytest.mark.parametrize("prefix", ["ivmtr.", "acme.usps.", ""])
def test_topic_names_from_the_prefix(prefix: str) -> None:
    table = TopicTable.build(prefix)
    assert [(topic.name, topic.schema.name) for topic in table] == [
        (prefix + suffix, schema) for _, suffix, schema in TABLE
    ]
    for attribute, suffix, schema in TABLE:
        topic = getattr(table, attribute)
        assert (topic.name, topic.schema.name) == (prefix + suffix, schema)
        assert table.by_name(prefix + suffix) is topic
        assert topic.schema.parsed["name"] == schema  # the file holds the schema it is named for


def test_default_prefix() -> None:
    assert [topic.name for topic in TopicTable.build()] == [
        f"ivmtr.{suffix}" for _, suffix, _ in TABLE
    ]


def test_unknown_topic_name() -> None:
    table = TopicTable.build("acme.")
    with pytest.raises(KeyError):
        table.by_name("ivmtr.piece-scans")


def test_schemas_from_another_directory(tmp_path: Path) -> None:
    for path in schema_dir().glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    table = TopicTable.build("x.", tmp_path)
    assert [topic.schema.fingerprint for topic in table] == [
        topic.schema.fingerprint for topic in TopicTable.build()
    ]


def test_repr() -> None:
    assert (
        repr(TopicTable.build().dead_letters)
        == "Topic('ivmtr.dead-letters', 'ivmtr.events.DeadLetter')"
    )


def test_message() -> None:
    topic = TopicTable.build("acme.").dead_letters
    message = topic.message("17367877181793X9RM5Z/1", DEAD_LETTER, [("ivmtr.feed", b"pieces")])
    assert isinstance(message, KafkaMessage)
    assert message.topic == "acme.dead-letters"
    assert message.key == b"17367877181793X9RM5Z/1"
    # the schema and encoding headers always come first, then the caller's
    assert message.headers == (
        ("ivmtr.schema", b"ivmtr.events.DeadLetter"),
        ("ivmtr.encoding", b"avro-single-object"),
        ("ivmtr.feed", b"pieces"),
    )
    assert message.value[:10] == b"\xc3\x01" + topic.schema.fingerprint
    assert SingleObjectDecoder([topic.schema])(message.value) == {
        **DEAD_LETTER,
        "provenance": {**DEAD_LETTER["provenance"], "received_at": message_time()},
    }


def message_time() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=1_736_787_718_179)


def test_message_without_key_or_headers() -> None:
    message = TopicTable.build().dead_letters.message(None, DEAD_LETTER)
    assert message.key is None
    assert message.headers == (
        ("ivmtr.schema", b"ivmtr.events.DeadLetter"),
        ("ivmtr.encoding", b"avro-single-object"),
    )


def test_registry_ids_switch_the_wire_format() -> None:
    schema = TopicTable.build().dead_letters.schema
    topic = Topic("ivmtr.dead-letters", schema, registry_id=7)
    assert (topic.registry_id, topic.encoding) == (7, "confluent-avro")
    message = topic.message(None, DEAD_LETTER)
    assert message.value[:5] == b"\x00\x00\x00\x00\x07"
    assert ("ivmtr.encoding", b"confluent-avro") in message.headers
    decoded = SingleObjectDecoder([], {7: topic.schema})(message.value)
    assert decoded["raw"] == DEAD_LETTER["raw"]
    assert topic.encoded_message(None, b"body").value == b"\x00\x00\x00\x00\x07body"


def test_a_table_built_with_registry_ids() -> None:
    ids = {"acme.dead-letters": 7, "acme.deliveries": 8, "acme.other": 9}
    table = TopicTable.build("acme.", registry_ids=ids)
    assert {topic.name: topic.registry_id for topic in table} == {
        "acme.piece-scans": None,
        "acme.bundle-scans": None,
        "acme.handling-unit-scans": None,
        "acme.container-scans": None,
        "acme.dead-letters": 7,
        "acme.deliveries": 8,
    }
    assert table.dead_letters.message("k", DEAD_LETTER).value[:5] == b"\x00\x00\x00\x00\x07"
    assert table.piece_scans.encoding == "avro-single-object"
    # the same schemas, whatever the framing
    assert table.schemas() == TopicTable.build("acme.").schemas()


def test_schemas_by_topic_name() -> None:
    table = TopicTable.build("acme.")
    assert list(table.schemas().items()) == [(topic.name, topic.schema) for topic in table]


def test_unicode_key() -> None:
    message = TopicTable.build().dead_letters.message("Zürich/1", DEAD_LETTER)
    assert message.key == "Zürich/1".encode()


def test_message_with_a_value_that_does_not_fit() -> None:
    topic: Topic = TopicTable.build().piece_scans
    with pytest.raises(SerializationError, match=r"^ivmtr\.events\.PieceScan: "):
        topic.message("k", DEAD_LETTER)


def test_topics_do_not_share_fingerprints() -> None:
    fingerprints = [topic.schema.fingerprint for topic in TopicTable.build()]
    assert len(set(fingerprints)) == len(fingerprints) == 6
