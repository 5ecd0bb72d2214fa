"""Reading ivmtr-stream's events as any Kafka subscriber would: confluent-kafka and a registry.

Run with the service's IVMTR_SCHEMA_REGISTRY_URL set (values in the Confluent wire format).
"""

from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer


def read_events(
    bootstrap: str, registry_url: str, topic: str, group: str, limit: int
) -> list[dict]:
    """Up to ``limit`` committed events of ``topic``, decoded to dicts."""
    registry = SchemaRegistryClient({"url": registry_url, "timeout": 10})
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # whole messages only, never aborted ones
            # Subjects are <topic>-value; the classic strategy needs no extra registry call.
            "value.deserializer": AvroDeserializer(
                registry, conf={"subject.name.strategy": topic_subject_name_strategy}
            ),
        }
    )
    consumer.subscribe([topic])
    events: list[dict] = []
    try:
        while len(events) < limit:
            message = consumer.poll(10)
            if message is None:
                break
            if message.error() is None:
                events.append(message.value())
    finally:
        consumer.close()
        registry.close()
    return events
