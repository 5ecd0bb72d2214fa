"""Tests for producer.registry's ``register_schemas``: the requests it sends, in order.

Against ``httpx.MockTransport``; tests/integration/test_registry.py has the real registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping

import httpx
import pytest

from producer.registry import RegistryClient, RegistryConfig, register_schemas, schema_json
from producer.schemas import Schema
from producer.topics import TopicTable

URL = "https://registry.example/apis/ccompat/v7"


class Registry:
    """Answers like a registry that gives ids 100, 101, ... in order of registration."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/apis/ccompat/v7/")
        self.requests.append((request.method, path, json.loads(request.content)))
        if request.method == "PUT":
            return httpx.Response(200, json=json.loads(request.content))
        return httpx.Response(200, json={"id": 100 + sum(m == "POST" for m, *_ in self.requests)})


def client(registry: Registry) -> RegistryClient:
    return RegistryClient(RegistryConfig(URL), transport=httpx.MockTransport(registry))


Schemas = Mapping[str, Schema] | Iterable[tuple[str, Schema]]


def pairs(topics: TopicTable) -> Iterator[tuple[str, Schema]]:
    for topic in topics:
        yield topic.name, topic.schema


@pytest.mark.parametrize("given", [TopicTable.schemas, pairs], ids=["mapping", "pairs"])
async def test_sets_the_level_then_registers_each_subject(
    given: Callable[[TopicTable], Schemas],
) -> None:
    topics = TopicTable.build("acme.")
    registry = Registry()
    async with client(registry) as registry_client:
        ids = await register_schemas(registry_client, given(topics))
    assert ids == {topic.name: 101 + index for index, topic in enumerate(topics)}
    expected: list[tuple[str, str, object]] = []
    for topic in topics:
        subject = f"{topic.name}-value"
        expected.append(("PUT", f"config/{subject}", {"compatibility": "BACKWARD_TRANSITIVE"}))
        expected.append(
            (
                "POST",
                f"subjects/{subject}/versions",
                {"schema": schema_json(topic.schema), "schemaType": "AVRO"},
            )
        )
    assert registry.requests == expected


async def test_any_topic_names_and_no_level() -> None:
    schema = TopicTable.build().dead_letters.schema
    registry = Registry()
    async with client(registry) as registry_client:
        ids = await register_schemas(
            registry_client, {"feed-a.rejects": schema, "feed-b.rejects": schema}, None
        )
    assert ids == {"feed-a.rejects": 101, "feed-b.rejects": 102}
    assert [(method, path) for method, path, _ in registry.requests] == [
        ("POST", "subjects/feed-a.rejects-value/versions"),
        ("POST", "subjects/feed-b.rejects-value/versions"),
    ]
