"""The schema registry client and the Confluent wire format, against a real registry.

Needs a running registry (``scripts/registry start``: Apicurio Registry 3.3 with its
Confluent-compatible API at http://127.0.0.1:8081/apis/ccompat/v7); the Kafka round trip
also needs the broker (``scripts/kafka start``). Values are read back the way a
subscriber would: confluent-kafka's ``AvroDeserializer`` and ``DeserializingConsumer``
with a ``SchemaRegistryClient`` that fetches the writer schema by the id in each value.

The first section needs neither: the client against ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import certifi
import fastavro
import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from click.testing import CliRunner

from consumer.cli.schemas import schemas
from consumer.core.pipeline import DeadLetter, MessagePipeline, ScanEvent
from consumer.ingest.routing import scan_topics
from consumer.service import record_shapes
from consumer.simulator import MailingSpec, generate_records
from producer import TopicTable, TrackTopics
from producer.errors import PublishError
from producer.registry import (
    IncompatibleSchema,
    NotFound,
    RegistryClient,
    RegistryConfig,
    RegistryError,
    RegistryUnavailable,
    register_schemas,
    schema_json,
    subject_name,
)
from producer.wire import ConfluentAvro, confluent_schema_id

pytestmark = pytest.mark.registry

REGISTRY_URL = os.environ.get(
    "IVMTR_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7"
).rstrip("/")
BOOTSTRAP = os.environ.get("IVMTR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_prefix() -> str:
    """A topic prefix of our own, so every test starts with subjects nobody registered."""
    return f"it-{uuid.uuid4().hex[:10]}."


# -- the client against a mock transport (no registry needed) ---------------------------------


class Recorder:
    """An httpx MockTransport handler that records requests and answers from a table."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.body = {"id": 7} if body is None else body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)


def mock_client(recorder: Recorder, **config: Any) -> RegistryClient:
    settings = {"url": "https://registry.example/apis/ccompat/v7", **config}
    return RegistryClient(RegistryConfig(**settings), transport=httpx.MockTransport(recorder))


async def test_basic_auth_and_the_request_as_sent() -> None:
    recorder = Recorder()
    async with mock_client(recorder, username="svc", password="s3cret") as client:
        assert await client.register("ivmtr.piece-scans-value", '{"type":"string"}') == 7
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == (
        "https://registry.example/apis/ccompat/v7/subjects/ivmtr.piece-scans-value/versions"
    )
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"svc:s3cret").decode()
    assert request.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    assert json.loads(request.content) == {"schema": '{"type":"string"}', "schemaType": "AVRO"}


async def test_bearer_token_and_subject_quoting() -> None:
    recorder = Recorder(body={"compatibilityLevel": "FULL"})
    async with mock_client(recorder, bearer_token="tok") as client:
        assert await client.get_compatibility("a/b-value") == "FULL"
    (request,) = recorder.requests
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.url.raw_path == b"/apis/ccompat/v7/config/a%2Fb-value?defaultToGlobal=true"


async def test_no_credentials_no_authorization_header() -> None:
    recorder = Recorder(body=[])
    async with mock_client(recorder) as client:
        assert await client.subjects() == []
    assert "Authorization" not in recorder.requests[0].headers


def test_config_refuses_settings_that_do_not_go_together() -> None:
    with pytest.raises(ValueError, match="username and a password"):
        RegistryConfig("http://r", password="p")
    with pytest.raises(ValueError, match="not both"):
        RegistryConfig("http://r", username="u", password="p", bearer_token="t")
    with pytest.raises(ValueError, match="http"):
        RegistryConfig("127.0.0.1:8081")
    assert "s3cret" not in repr(RegistryConfig("http://r", username="u", password="s3cret"))
    assert "tok" not in repr(RegistryConfig("http://r", bearer_token="tok"))


def test_tls_settings() -> None:
    assert RegistryConfig("https://r")._verify() is True
    assert RegistryConfig("https://r", verify=False)._verify() is False
    context = RegistryConfig("https://r", ca_file=certifi.where())._verify()
    assert not isinstance(context, bool) and context.cert_store_stats()["x509_ca"] > 0
    with pytest.raises(OSError):
        RegistryConfig("https://r", ca_file="/nonexistent/ca.pem")._verify()


@pytest.mark.parametrize(
    ("status", "body", "error", "retriable"),
    [
        (409, {"error_code": 409, "message": "Incompatible"}, IncompatibleSchema, False),
        (422, {"error_code": 42201, "message": "Invalid schema"}, RegistryError, False),
        (401, {"error_code": 401, "message": "Unauthorized"}, RegistryError, False),
        (404, {"error_code": 40401, "message": "Subject not found"}, NotFound, False),
        (503, {"error_code": 50003, "message": "Forwarding failed"}, RegistryUnavailable, True),
    ],
)
async def test_answers_map_to_errors(
    status: int, body: dict[str, Any], error: type[RegistryError], retriable: bool
) -> None:
    async with mock_client(Recorder(status, body)) as client:
        with pytest.raises(error) as caught:
            await client.register("s-value", '{"type":"string"}')
    assert type(caught.value) is error
    assert isinstance(caught.value, PublishError)
    assert caught.value.retriable is retriable
    assert caught.value.status == status and caught.value.error_code == body["error_code"]
    assert body["message"] in str(caught.value)


async def test_a_subject_that_does_not_exist_yet_is_compatible() -> None:
    async with mock_client(Recorder(404, {"error_code": 40401, "message": "no"})) as client:
        assert await client.is_compatible("new-value", '{"type":"string"}') is True


def test_confluent_avro_frames_the_avro_body() -> None:
    topics = TopicTable.build()
    receipt = delivery_receipt()
    data = ConfluentAvro(topics.deliveries.schema, 0x01020304)(receipt)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, topics.deliveries.schema.parsed, receipt)
    assert data == b"\x00\x01\x02\x03\x04" + body.getvalue()
    assert confluent_schema_id(data) == 0x01020304
    with pytest.raises(ValueError):
        ConfluentAvro(topics.deliveries.schema, 1 << 32)
    with pytest.raises(ValueError):
        confluent_schema_id(b"\xc3\x01" + bytes(8))


def test_the_registered_text_is_stable_plain_avro() -> None:
    for topic in TopicTable.build():
        text = schema_json(topic.schema)
        assert text == schema_json(TopicTable.build().by_name(topic.name).schema)
        assert "__fastavro" not in text
        reparsed = fastavro.parse_schema(json.loads(text))
        assert fastavro.schema.to_parsing_canonical_form(
            reparsed
        ) == fastavro.schema.to_parsing_canonical_form(topic.schema.parsed)


# -- against the registry ---------------------------------------------------------------------


def delivery_receipt() -> dict[str, Any]:
    """A message receipt as consumer.ingest.message writes it."""
    return {
        "kind": "MESSAGE",
        "status": "PUBLISHED",
        "feed": "f",
        "msg_grp_id": "G",
        "msg_ser_nbr": 1,
        "tot_msg_cnt": 1,
        "rec_cnt": None,
        "tot_rec_cnt": None,
        "records_received": 3,
        "records_rejected": 1,
        "published": {"ivmtr.piece-scans": 2},
        "content_sha256": "0" * 64,
        "messages_received": [],
        "problems": [],
        "replica": "0",
        "written_at": 1_700_000_000_000,
    }


def pipeline_values(topics: TopicTable) -> dict[str, list[dict[str, Any]]]:
    """Values of every topic, made by the service's own pipeline from a simulated mailing."""
    records = list(generate_records(MailingSpec(pieces=50, bundles=True, flats_share=0.5)))
    body = orjson.dumps({"msgGrpId": "G", "msgSerNbr": 1, "events": [*records, {"noise": 1}]})
    pipeline = MessagePipeline(feed="f", received_at_ms=0, shapes=record_shapes())
    by_kind = scan_topics(topics)
    values: dict[str, list[dict[str, Any]]] = {topic.name: [] for topic in topics}
    for outcome in pipeline.feed(body) + pipeline.finish():
        if isinstance(outcome, ScanEvent):
            values[by_kind[outcome.kind].name].append(outcome.value)
        else:
            assert isinstance(outcome, DeadLetter)
            values[topics.dead_letters.name].append(outcome.value)
    values[topics.deliveries.name].append(delivery_receipt())
    assert all(values.values()), {name: len(found) for name, found in values.items()}
    return values


@pytest.fixture(scope="module")
def registry_url() -> str:
    try:
        httpx.get(f"{REGISTRY_URL}/subjects", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(
            f"no schema registry at {REGISTRY_URL} ({exc}): run `scripts/registry start` "
            "(make test does)"
        )
    return REGISTRY_URL


@pytest_asyncio.fixture
async def registry(registry_url: str) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(RegistryConfig(registry_url)) as client:
        yield client


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def topics(prefix: str) -> TopicTable:
    return TopicTable.build(prefix)


async def test_register_all_topics_then_again_after_a_restart(
    registry: RegistryClient, topics: TopicTable, prefix: str, registry_url: str
) -> None:
    ids = await register_schemas(registry, topics.schemas())
    assert set(ids) == {topic.name for topic in topics}
    assert len(set(ids.values())) == len(ids), "each value schema has an id of its own"

    # a new client, as after a restart of the service: the same schemas, the same ids
    async with RegistryClient(RegistryConfig(registry_url)) as restarted:
        assert await register_schemas(restarted, TopicTable.build(prefix).schemas()) == ids

    for topic in topics:
        subject = subject_name(topic.name)
        assert await registry.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
        found = await registry.lookup(subject, topic.schema)
        assert (found.subject, found.version, found.id) == (subject, 1, ids[topic.name])
        latest = await registry.latest(subject)
        assert (latest.version, latest.id) == (1, ids[topic.name])
        # the registry keeps the schema with its docs and defaults
        stored = json.loads(await registry.schema_by_id(ids[topic.name]))
        assert fastavro.schema.to_parsing_canonical_form(
            fastavro.parse_schema(stored)
        ) == fastavro.schema.to_parsing_canonical_form(topic.schema.parsed)
        assert stored.get("doc") == topic.schema.parsed.get("doc")


async def test_the_registry_refuses_a_field_added_without_a_default(
    registry: RegistryClient, topics: TopicTable
) -> None:
    ids = await register_schemas(registry, topics.schemas())
    subject = subject_name(topics.dead_letters.name)
    breaking = json.loads(schema_json(topics.dead_letters.schema))
    breaking["fields"].append({"name": "severity", "type": "string"})

    assert await registry.is_compatible(subject, breaking) is False
    with pytest.raises(IncompatibleSchema) as caught:
        await registry.register(subject, breaking)
    assert caught.value.status == 409 and not caught.value.retriable
    assert isinstance(caught.value, RegistryError)

    # with a default it is a new version with a new id; the old schema keeps its id
    evolving = json.loads(schema_json(topics.dead_letters.schema))
    evolving["fields"].append({"name": "severity", "type": "string", "default": "ERROR"})
    assert await registry.is_compatible(subject, evolving) is True
    new_id = await registry.register(subject, evolving)
    assert new_id != ids[topics.dead_letters.name]
    assert (await registry.latest(subject)).version == 2
    assert (
        await registry.register(subject, topics.dead_letters.schema)
        == ids[topics.dead_letters.name]
    )


def test_schemas_cli_registers_and_checks_against_the_registry(
    registry_url: str, prefix: str
) -> None:
    runner = CliRunner(env={"IVMTR_SCHEMA_REGISTRY_URL": None, "IVMTR_TOPIC_PREFIX": None})
    options = ["--registry-url", registry_url, "--prefix", prefix]
    registered = runner.invoke(schemas, ["register", *options])
    assert registered.exit_code == 0, registered.output
    rows = [line.split("\t") for line in registered.output.splitlines()]
    # the service's topics, then the tracker's
    assert [row[:2] for row in rows] == [
        [topic.name, f"{topic.name}-value"]
        for topic in (*TopicTable.build(prefix), *TrackTopics.build(prefix))
    ]
    assert runner.invoke(schemas, ["register", *options]).output == registered.output

    checked = runner.invoke(schemas, ["check", *options])
    assert checked.exit_code == 0, checked.output

    # someone registered a newer version (compatible with ours) that our files cannot read
    topics = TopicTable.build(prefix)
    newer = json.loads(schema_json(topics.dead_letters.schema))
    next(item for item in newer["fields"] if item["name"] == "raw")["type"] = ["null", "string"]
    subject = subject_name(topics.dead_letters.name)
    httpx.post(
        f"{registry_url}/subjects/{subject}/versions", json={"schema": json.dumps(newer)}
    ).raise_for_status()
    checked = runner.invoke(schemas, ["check", *options])
    assert checked.exit_code == 1
    assert (
        f"  {subject} version 2: DeadLetter.raw: the old union [null, string] has null, "
        "which string cannot read"
    ) in checked.output.splitlines()


async def test_an_invalid_schema_is_refused_with_422(registry: RegistryClient) -> None:
    with pytest.raises(RegistryError) as caught:
        await registry.register(f"{unique_prefix()}x-value", '{"type": "record", "name": "A"}')
    assert caught.value.status == 422 and not caught.value.retriable


async def test_confluent_deserializer_reads_every_topic(
    registry: RegistryClient, topics: TopicTable, registry_url: str
) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    ids = await register_schemas(registry, topics.schemas())
    with SchemaRegistryClient({"url": registry_url, "timeout": 10}) as subscriber_registry:
        deserialise = AvroDeserializer(
            subscriber_registry, conf={"subject.name.strategy": topic_subject_name_strategy}
        )
        for topic_name, values in pipeline_values(topics).items():
            topic = topics.by_name(topic_name)
            serialise = ConfluentAvro(topic.schema, ids[topic_name])
            context = SerializationContext(topic_name, MessageField.VALUE)
            for value in values[:20]:
                data = serialise(value)
                assert confluent_schema_id(data) == ids[topic_name]
                body = io.BytesIO(data[5:])
                assert deserialise(data, context) == fastavro.schemaless_reader(
                    body, topic.schema.parsed, None
                )


@pytest_asyncio.fixture
async def kafka_topic() -> AsyncIterator[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        pytest.fail(f"no Kafka broker at {BOOTSTRAP} ({exc}); run `scripts/kafka start`")
    name = f"{unique_prefix()}piece-scans"
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)])
        assert all(error == 0 for _, error, *_ in response.topic_errors), response
        yield name
    finally:
        try:
            await admin.delete_topics([name])
        finally:
            await admin.close()


def consume_with_confluent(topic: str, registry_url: str, count: int) -> list[Any]:
    """What a subscriber writes: a DeserializingConsumer with the registry's Avro deserializer."""
    from confluent_kafka import DeserializingConsumer
    from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import StringDeserializer

    registry = SchemaRegistryClient({"url": registry_url, "timeout": 10})
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"it-registry-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "key.deserializer": StringDeserializer("utf_8"),
            "value.deserializer": AvroDeserializer(
                registry, conf={"subject.name.strategy": topic_subject_name_strategy}
            ),
        }
    )
    try:
        consumer.subscribe([topic])
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append((message.key(), message.value()))
        return got
    finally:
        consumer.close()
        registry.close()


@pytest.mark.kafka
async def test_a_subscriber_reads_confluent_avro_from_kafka(
    registry: RegistryClient, registry_url: str, kafka_topic: str
) -> None:
    topics = TopicTable.build(kafka_topic.removesuffix("piece-scans"))
    topic = topics.piece_scans
    ids = await register_schemas(registry, topics.schemas())
    serialise = ConfluentAvro(topic.schema, ids[topic.name])
    values = pipeline_values(topics)[topic.name][:5]

    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(
                topic.name, key=value["imb"].encode(), value=serialise(value)
            )
    finally:
        await producer.stop()

    got = await asyncio.to_thread(consume_with_confluent, topic.name, registry_url, len(values))
    expected = [
        (
            value["imb"],
            fastavro.schemaless_reader(io.BytesIO(serialise(value)[5:]), topic.schema.parsed, None),
        )
        for value in values
    ]
    assert got == expected


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


async def test_an_unreachable_registry_is_unavailable_quickly(silent_port: int) -> None:
    topics = TopicTable.build()
    refused = RegistryConfig(f"http://127.0.0.1:{free_port()}/apis/ccompat/v7", timeout_s=5)
    started = time.monotonic()
    async with RegistryClient(refused) as client:
        with pytest.raises(RegistryUnavailable, match="not reachable") as caught:
            await register_schemas(client, topics.schemas())
    assert caught.value.retriable
    assert time.monotonic() - started < 2

    silent = RegistryConfig(f"http://127.0.0.1:{silent_port}/apis/ccompat/v7", timeout_s=0.5)
    started = time.monotonic()
    async with RegistryClient(silent) as client:
        with pytest.raises(RegistryUnavailable, match=r"did not answer within 0\.5s"):
            await client.subjects()
    assert time.monotonic() - started < 2
