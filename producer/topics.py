"""Topics own their serialisers: a sender names a topic, never a serialiser.

The topic table is built from a name prefix (``ivmtr.`` by default):

    <prefix>piece-scans          PieceScan          key: 20-digit IMb tracking code
    <prefix>bundle-scans         BundleScan         key: 20-digit IMb tracking code of the top piece
    <prefix>handling-unit-scans  HandlingUnitScan   key: 24-digit IMtb
    <prefix>container-scans      ContainerScan      key: 21-character IMcb
    <prefix>dead-letters         DeadLetter         key: msgGrpId/msgSerNbr
    <prefix>deliveries           DeliveryReceipt    key: msg:<grp>/<serial>, group:<grp>
                                                    (compacted; partition = delivery slot)

and, written by the tracker (``ivmtr-stream track``), ``TrackTopics``:

    <prefix>piece-status         PieceStatus        key: 20-digit IMb tracking code
                                                    (compacted; partition = piece-scans')
    <prefix>alerts               PieceAlert         key: 20-digit IMb tracking code
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from producer.schemas import Schema, load_schema
from producer.wire import AvroSingleObject, ConfluentAvro, FramedAvro

__all__ = ["EncodedEvents", "EventRoute", "KafkaMessage", "Topic", "TopicTable", "TrackTopics"]

Headers = tuple[tuple[str, bytes], ...]


class KafkaMessage(NamedTuple):
    """One record ready for Kafka: topic, key and value bytes, headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()
    partition: int | None = None  # None: the key's partition, as the Java client picks it


class EventRoute(NamedTuple):
    """Where events already in Avro binary go: their topic, the framing header their bodies
    get, and the headers every one of them carries."""

    topic: str
    prefix: bytes
    headers: Headers


class EncodedEvents(NamedTuple):
    """Events the native encoder took, held in native memory (an ``ivmtr_native.EncodedRun``),
    with the route of each kind: ``routes[kind]`` for an event of that kind index."""

    run: Any
    routes: tuple[EventRoute, ...]


class Topic:
    """A Kafka topic with the schema and serialiser of its values.

    With a ``registry_id`` (the id a schema registry gave ``schema`` under the topic's
    subject) values are written in the Confluent wire format, else in Avro single-object
    encoding. Fixed at construction: build topics after their schemas are registered.
    """

    def __init__(self, name: str, schema: Schema, *, registry_id: int | None = None) -> None:
        self.name = name
        self.schema = schema
        self.registry_id = registry_id
        self._serialise: FramedAvro = (
            AvroSingleObject(schema) if registry_id is None else ConfluentAvro(schema, registry_id)
        )
        self.encoding = self._serialise.encoding
        self._schema_headers: Headers = (
            ("ivmtr.schema", schema.name.encode()),
            ("ivmtr.encoding", self.encoding.encode()),
        )

    def __repr__(self) -> str:
        return f"Topic({self.name!r}, {self.schema.name!r})"

    def message(
        self,
        key: str | None,
        value: Mapping[str, Any],
        headers: Sequence[tuple[str, bytes]] = (),
        *,
        partition: int | None = None,
    ) -> KafkaMessage:
        """Serialise one value for this topic. Headers always name the value's schema."""
        return KafkaMessage(
            topic=self.name,
            key=None if key is None else key.encode(),
            value=self._serialise(value),
            headers=self._schema_headers + tuple(headers),
            partition=partition,
        )

    def encoded_message(
        self, key: str | None, body: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> KafkaMessage:
        """``message`` for a value already in Avro binary under this topic's schema."""
        return KafkaMessage(
            topic=self.name,
            key=None if key is None else key.encode(),
            value=self._serialise.frame(body),
            headers=self._schema_headers + tuple(headers),
        )

    def route(self, headers: Sequence[tuple[str, bytes]] = ()) -> EventRoute:
        """The route of events already in Avro binary under this topic's schema: what
        ``encoded_message`` would do to each of them, for a batch builder to do."""
        return EventRoute(self.name, self._serialise.header, self._schema_headers + tuple(headers))


def _topic(
    prefix: str,
    suffix: str,
    schema_name: str,
    schema_directory: Path | None,
    registry_ids: Mapping[str, int] | None,
) -> Topic:
    name = f"{prefix}{suffix}"
    schema = load_schema(f"ivmtr.events.{schema_name}", schema_directory)
    return Topic(name, schema, registry_id=(registry_ids or {}).get(name))


@dataclass(frozen=True)
class TopicTable:
    """Every topic the service writes to."""

    piece_scans: Topic
    bundle_scans: Topic
    handling_unit_scans: Topic
    container_scans: Topic
    dead_letters: Topic
    deliveries: Topic

    @classmethod
    def build(
        cls,
        prefix: str = "ivmtr.",
        schema_directory: Path | None = None,
        *,
        registry_ids: Mapping[str, int] | None = None,
    ) -> TopicTable:
        """The topic table for a name prefix, with schemas loaded from ``schemas/``.

        ``registry_ids`` (topic name -> schema registry id, as ``register_schemas``
        returns them) switches the topics it names to the Confluent wire format.
        """

        def topic(suffix: str, schema_name: str) -> Topic:
            return _topic(prefix, suffix, schema_name, schema_directory, registry_ids)

        return cls(
            piece_scans=topic("piece-scans", "PieceScan"),
            bundle_scans=topic("bundle-scans", "BundleScan"),
            handling_unit_scans=topic("handling-unit-scans", "HandlingUnitScan"),
            container_scans=topic("container-scans", "ContainerScan"),
            dead_letters=topic("dead-letters", "DeadLetter"),
            deliveries=topic("deliveries", "DeliveryReceipt"),
        )

    def __iter__(self) -> Iterator[Topic]:
        yield self.piece_scans
        yield self.bundle_scans
        yield self.handling_unit_scans
        yield self.container_scans
        yield self.dead_letters
        yield self.deliveries

    def schemas(self) -> dict[str, Schema]:
        """Topic name -> value schema, in table order: what registering the table takes."""
        return {topic.name: topic.schema for topic in self}

    def by_name(self, name: str) -> Topic:
        """The topic called ``name``; KeyError when it is not one of ours."""
        for topic in self:
            if topic.name == name:
                return topic
        raise KeyError(name)


@dataclass(frozen=True)
class TrackTopics:
    """The topics the tracker writes: each piece's status, and alerts."""

    piece_status: Topic
    alerts: Topic

    @classmethod
    def build(
        cls,
        prefix: str = "ivmtr.",
        schema_directory: Path | None = None,
        *,
        registry_ids: Mapping[str, int] | None = None,
    ) -> TrackTopics:
        """The tracker's topics for a name prefix (``registry_ids`` as in ``TopicTable``)."""
        return cls(
            piece_status=_topic(
                prefix, "piece-status", "PieceStatus", schema_directory, registry_ids
            ),
            alerts=_topic(prefix, "alerts", "PieceAlert", schema_directory, registry_ids),
        )

    def __iter__(self) -> Iterator[Topic]:
        yield self.piece_status
        yield self.alerts

    def schemas(self) -> dict[str, Schema]:
        """Topic name -> value schema: what registering them takes."""
        return {topic.name: topic.schema for topic in self}
