"""Tests for producer.deliveries against the real broker: a restarted publisher knows the
receipts committed before, in either wire format its deliveries topic writes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from producer.admin import TopicSpec, ensure_topics
from producer.kafka import KafkaConfig
from producer.publisher import Publisher
from producer.topics import TopicTable
from tests.integration.conftest import BOOTSTRAP, require_broker

pytestmark = pytest.mark.kafka


def receipt(status: str) -> dict[str, Any]:
    """A message receipt as consumer.ingest.message writes it."""
    return {
        "kind": "MESSAGE",
        "status": status,
        "feed": "f",
        "msg_grp_id": "G",
        "msg_ser_nbr": 1,
        "tot_msg_cnt": 1,
        "rec_cnt": None,
        "tot_rec_cnt": None,
        "records_received": 3,
        "records_rejected": 0,
        "published": {},
        "content_sha256": None if status == "STARTED" else "0" * 64,
        "messages_received": [],
        "problems": [],
        "replica": "0",
        "written_at": 1_700_000_000_000,
    }


async def publish_receipt(topics: TopicTable, key: str) -> None:
    publisher = Publisher(
        KafkaConfig(bootstrap_servers=BOOTSTRAP), topics, transactional_id_prefix="test"
    )
    async with publisher, publisher.delivery(key, receipt("STARTED")) as delivery:
        assert delivery.prior is None
        published = receipt("PUBLISHED")
        await delivery.add(topics.deliveries.message(key, published, partition=delivery.slot))
        delivery.receipt = published


@pytest.mark.parametrize("registry_ids", [False, True], ids=["single-object", "confluent"])
async def test_a_restarted_publisher_knows_the_receipts_committed_before(
    registry_ids: bool,
) -> None:
    require_broker()
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    # Any id frames the same way; the broker never asks a registry.
    ids = {f"{prefix}deliveries": 41} if registry_ids else None
    topics = TopicTable.build(prefix, registry_ids=ids)
    await ensure_topics(
        BOOTSTRAP,
        [TopicSpec(topic.name, 1) for topic in topics if topic is not topics.deliveries]
        + [TopicSpec(topics.deliveries.name, 2, 1, (("cleanup.policy", "compact"),))],
    )
    key = "msg:G/1"
    await publish_receipt(topics, key)

    async with Publisher(
        KafkaConfig(bootstrap_servers=BOOTSTRAP),
        TopicTable.build(prefix, registry_ids=ids),
        transactional_id_prefix="test",
    ) as restarted:
        known = restarted.log.get(key)
        assert restarted.log.failure is None
    assert known is not None
    assert (known["status"], known["content_sha256"]) == ("PUBLISHED", "0" * 64)
