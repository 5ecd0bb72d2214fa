"""The native path writes to Kafka exactly what the Python path writes.

Two services in this process, one with ``fast_path=off`` (no native code: the reference)
and one with ``fast_path=require`` (native scanner, encoder, key hash and record batches),
each on its own topic prefix, take the same messages with the same receive time. Then
every topic of both is read back from the real broker, and each partition must hold the
same records, in the same order: keys, values and headers, byte for byte. Only the
receipts' ``written_at`` (the wall clock at commit) may differ.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import fastavro
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from consumer.core.campaigns import CampaignRule
from consumer.ingest import IngestSummary
from consumer.service import IngestService
from consumer.settings import Settings
from consumer.simulator.generate import MailingSpec, generate_records
from producer import TopicTable
from tests.integration.conftest import BOOTSTRAP, committed_by_partition, require_broker

pytest.importorskip("ivmtr_native")
pytestmark = pytest.mark.kafka

RECEIVED_AT_MS = 1_700_000_000_000
RULES = (
    CampaignRule("by-stid", stids=frozenset({"040", "300"})),
    CampaignRule("by-job", job_ids=frozenset({"J123456"})),
)
SUFFIXES = (
    "piece-scans",
    "bundle-scans",
    "handling-unit-scans",
    "container-scans",
    "dead-letters",
    "deliveries",
)

# Records the native path leaves to Python, each in its own way: a bar-string IMb, a
# nested member, a repeated key, an invalid scan time, no IMb at all, an unknown kind,
# an unusual time format. Mixed between generated ones, they pin the order of a
# partition where both paths write.
PYTHON_PATH = [
    b'{"imb":"ATTFAFTDTFAFTDTFAFTDTFAFTDTFAFTDTFAFTDTFAFTDTFAFTDTFAFTDTFAFTDTFA",'
    b'"scanDatetime":"2016-01-22 22:29:53-05:00","scanEventCode":"918","handlingEventType":"A"}',
    b'{"imb":"0004069951599001910222082810103","scanDatetime":"2016-01-22 22:29:53-05:00",'
    b'"scanEventCode":"918","handlingEventType":"A","futureField":{"nested":[1,2]}}',
    b'{"imb":"0004069951599001910222082810103","scanDatetime":"2016-01-22 22:29:53-05:00",'
    b'"scanEventCode":"918","scanEventCode":"919","handlingEventType":"A"}',
    b'{"imb":"0004069951599001910222082810103","scanDatetime":"yesterday",'
    b'"scanEventCode":"918","handlingEventType":"A"}',
    b'{"scanDatetime":"2016-01-22 22:29:53-05:00","scanEventCode":"918"}',
    b'{"something":"else"}',
    b'{"imb":"0004069951599001910222082810103","scanDatetime":"2016-01-22T22:29:53.5Z",'
    b'"scanEventCode":"918","handlingEventType":"A","mailPhase":"Phase 3c - Destination"}',
]


def generated(pieces: int, seed: int) -> list[bytes]:
    spec = MailingSpec(pieces=pieces, seed=seed, bundles=True, flats_share=0.5)
    return [orjson.dumps(record) for record in generate_records(spec)]


def body(group: str, serial: int, records: list[bytes], tot_msg_cnt: int = 3) -> bytes:
    head = orjson.dumps({"msgGrpId": group, "msgSerNbr": serial, "totMsgCnt": tot_msg_cnt})
    return head[:-1] + b',"events":[' + b",".join(records) + b"]}"


def messages() -> list[bytes]:
    """The same messages for both paths: coordinates are fixed, so receipts agree too."""
    group = "1700000000000IDENT"
    small = generated(pieces=40, seed=11)
    mixed = list(small)
    for at, raw in enumerate(PYTHON_PATH):
        mixed.insert(3 + at * 7, raw)
    large = generated(pieces=6000, seed=12)  # seals many batches per partition
    return [
        body(group, 1, mixed),
        body(group, 2, large),
        body(group, 1, mixed),  # a duplicate: aborted, only its receipt's claim is written
        body(group, 3, mixed[:20]),
        body(group, 3, mixed[20:]),  # a conflict: published again, with a CONFLICT receipt
        body(group + "B", 1, [], tot_msg_cnt=1),
    ]


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def run_service(fast_path: str, prefix: str) -> list[IngestSummary]:
    settings = Settings(
        kafka_bootstrap_servers=BOOTSTRAP,
        topic_prefix=prefix,
        replica_id="identity",
        fast_path=fast_path,  # type: ignore[arg-type]
        insecure_dev_mode=True,
        group_check_interval_s=3600,
    )
    service = IngestService(settings)
    await service.start()
    try:
        route = dataclasses.replace(
            service.routing.route("identity"), campaign="feed-campaign", campaigns=RULES
        )
        summaries = []
        for data in messages():
            summaries.append(
                await service.ingest.ingest(chunks(data), route, received_at_ms=RECEIVED_AT_MS)
            )
        return summaries
    finally:
        await service.stop()


def receipts(records: list[tuple[bytes | None, bytes, Any]], prefix: str) -> list[Any]:
    """Receipts decoded, without their commit time, topic names without the run's prefix."""
    schema = TopicTable.build().deliveries.schema.parsed
    decoded = []
    for key, value, headers in records:
        receipt = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
        assert isinstance(receipt, dict)
        receipt.pop("written_at")
        receipt["published"] = {
            name.removeprefix(prefix): count for name, count in receipt["published"].items()
        }
        decoded.append((key, receipt, headers))
    return decoded


async def test_both_paths_write_the_same_records_to_every_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_broker()
    run = uuid.uuid4().hex[:8]
    python_prefix, native_prefix = f"id-py-{run}.", f"id-native-{run}."
    python = await run_service("off", python_prefix)
    # Which batch builder each path handed aiokafka's accumulator (watched, not replaced).
    sent: Counter[str] = Counter()
    send_batch = AIOKafkaProducer.send_batch

    async def watched(self: AIOKafkaProducer, batch: Any, topic: str, **kw: Any) -> Any:
        sent[type(batch).__name__] += 1
        return await send_batch(self, batch, topic, **kw)

    monkeypatch.setattr(AIOKafkaProducer, "send_batch", watched)
    native = await run_service("require", native_prefix)
    monkeypatch.undo()
    assert set(sent) == {"NativeBatch"} and sent["NativeBatch"] > 50, sent

    # The native service took the records it can (and the Python one none).
    assert sum(summary.fast_path_records for summary in python) == 0
    assert sum(summary.fast_path_records for summary in native) > 6000
    for ours, reference in zip(native, python, strict=True):
        assert ours.as_json() == {
            **reference.as_json(),
            "published": {
                name.replace(python_prefix, native_prefix): count
                for name, count in reference.as_json()["published"].items()
            },
        }
        assert ours.campaign_scans == reference.campaign_scans
        assert ours.campaign_deliveries == reference.campaign_deliveries
    assert python[0].rejected == 5 and python[2].duplicate
    assert python[4].status.value == "CONFLICT"
    assert python[0].campaign_scans["by-stid"] > 0

    for suffix in SUFFIXES:
        expected = await committed_by_partition(python_prefix + suffix)
        written = await committed_by_partition(native_prefix + suffix)
        assert sorted(written) == sorted(expected), suffix
        if suffix == "deliveries":
            expected = {p: receipts(r, python_prefix) for p, r in expected.items()}
            written = {p: receipts(r, native_prefix) for p, r in written.items()}
        for partition, records in expected.items():
            assert len(written[partition]) == len(records), (suffix, partition)
            assert written[partition] == records, (suffix, partition)
        assert sum(len(records) for records in expected.values()) > 0, suffix
