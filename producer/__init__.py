"""Publishing: topics that own their Avro serialisers, transactional Kafka producers."""

from producer.admin import TopicSpec, ensure_topics, missing_topics
from producer.errors import (
    KafkaUnavailable,
    PublishError,
    PublishTimeout,
    SerializationError,
    TransactionAborted,
)
from producer.kafka import KafkaConfig, PartitionedBatches, TransactionalProducer
from producer.publisher import Publisher
from producer.schemas import Schema, load_schema, schema_dir
from producer.topics import KafkaMessage, Topic, TopicTable, TrackTopics
from producer.wire import AvroSingleObject, ConfluentAvro, FramedAvro, SingleObjectDecoder

__all__ = [
    "AvroSingleObject",
    "ConfluentAvro",
    "FramedAvro",
    "KafkaConfig",
    "KafkaMessage",
    "KafkaUnavailable",
    "PartitionedBatches",
    "PublishError",
    "PublishTimeout",
    "Publisher",
    "Schema",
    "SerializationError",
    "SingleObjectDecoder",
    "Topic",
    "TopicSpec",
    "TopicTable",
    "TrackTopics",
    "TransactionAborted",
    "TransactionalProducer",
    "ensure_topics",
    "load_schema",
    "missing_topics",
    "schema_dir",
]
