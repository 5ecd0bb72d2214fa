"""Topic administration: create the service's topics idempotently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from producer.kafka import kafka_errors

__all__ = ["TopicSpec", "ensure_topics", "missing_topics"]


@dataclass(frozen=True)
class TopicSpec:
    """How to create one topic."""

    name: str
    partitions: int = 6
    replication_factor: int = 1
    config: tuple[tuple[str, str], ...] = ()


async def _admin(bootstrap_servers: str, timeout_ms: int) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    with kafka_errors():
        await asyncio.wait_for(admin.start(), timeout_ms / 1000)
    return admin


async def missing_topics(
    bootstrap_servers: str, names: Iterable[str], *, timeout_ms: int = 10_000
) -> list[str]:
    """Those of ``names`` that do not exist on the cluster."""
    admin = await _admin(bootstrap_servers, timeout_ms)
    try:
        with kafka_errors():
            existing = set(await asyncio.wait_for(admin.list_topics(), timeout_ms / 1000))
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return [name for name in names if name not in existing]


async def ensure_topics(
    bootstrap_servers: str, specs: Iterable[TopicSpec], *, timeout_ms: int = 30_000
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    specs = list(specs)
    admin = await _admin(bootstrap_servers, timeout_ms)
    try:
        with kafka_errors():
            existing = set(await admin.list_topics())
            wanted = [spec for spec in specs if spec.name not in existing]
            if not wanted:
                return []
            new_topics = [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    topic_configs=dict(spec.config),
                )
                for spec in wanted
            ]
            with contextlib.suppress(TopicAlreadyExistsError):
                # Another replica may create the same topic at the same moment.
                await admin.create_topics(new_topics)
            await _wait_for_leaders(
                admin, bootstrap_servers, [spec.name for spec in wanted], timeout_ms / 1000
            )
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return [spec.name for spec in wanted]


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, bootstrap_servers: str, names: list[str], within_s: float
) -> None:
    """Wait until every partition of ``names`` has a leader that answers.

    A new topic is listed, and even described with leaders, before those leaders serve
    it: a reader started then is told NotLeaderForPartition, which aiokafka logs at error
    level before it retries, so every start that created topics logged errors. Asking
    each partition's end offset the way ``end_offsets`` does retries quietly until all
    answer; it costs a few hundred milliseconds, once, when topics are created.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    described: list[dict[str, Any]] = []
    while loop.time() < deadline:
        described = await admin.describe_topics(names)
        if all(_has_leaders(topic) for topic in described):
            break
        await asyncio.sleep(0.1)
    else:
        return
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=max(1000, int((deadline - loop.time()) * 1000)),
    )
    await probe.start()
    try:
        # A timeout leaves the readers to retry, as before; it is not an error here.
        with contextlib.suppress(KafkaTimeoutError):
            await probe.end_offsets(partitions)
    finally:
        await probe.stop()


def _has_leaders(topic: dict[str, Any]) -> bool:
    """Whether a described topic exists and each of its partitions has a leader."""
    partitions = topic.get("partitions") or []
    return (
        topic.get("error_code") == 0
        and bool(partitions)
        and all(p.get("error_code") == 0 and p.get("leader", -1) >= 0 for p in partitions)
    )
