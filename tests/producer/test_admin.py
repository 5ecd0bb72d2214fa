"""producer.admin against the real broker: created topics are served when it returns."""

from __future__ import annotations

import logging
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from producer.admin import TopicSpec, ensure_topics, missing_topics
from tests.integration.conftest import BOOTSTRAP, require_broker

pytestmark = pytest.mark.kafka


async def test_every_partition_answers_once_ensure_topics_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reader started right after creation is never told NotLeaderForPartition.

    Before ensure_topics waited for the leaders to answer, about one start in two logged
    aiokafka's "Failed fetch offsets ... NotLeaderForPartitionError" at error level.
    """
    require_broker()
    prefix = f"admin-{uuid.uuid4().hex[:8]}."
    names = [f"{prefix}{suffix}" for suffix in "abcd"]
    specs = [TopicSpec(name, partitions=16) for name in names]
    assert sorted(await ensure_topics(BOOTSTRAP, specs)) == names
    reader = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    with caplog.at_level(logging.WARNING, logger="aiokafka"):
        await reader.start()
        try:
            partitions = [TopicPartition(name, p) for name in names for p in range(16)]
            reader.assign(partitions)
            await reader.seek_to_end()
            assert [await reader.position(tp) for tp in partitions] == [0] * len(partitions)
        finally:
            await reader.stop()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")] == []
    # Idempotent: a second call creates nothing and all exist.
    assert await ensure_topics(BOOTSTRAP, specs) == []
    assert await missing_topics(BOOTSTRAP, [*names, f"{prefix}none"]) == [f"{prefix}none"]
