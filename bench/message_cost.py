"""What one small pushed message costs at the Kafka level, without HTTP or parsing.

    .venv/bin/python bench/message_cost.py [--messages 300] [--events 100]

Runs the service's own ``Publisher`` (delivery slots, STARTED claim, receipts, one
transaction per message) on the local broker, on topics of its own, and publishes
``--messages`` messages one at a time, each with its STARTED and final receipts as the
service writes them: first with no events (the fixed cost of a message), then with
``--events`` pre-encoded ~1 KB events each (a 100-event push). Prints this
process's CPU milliseconds per message and the latency p50/p99, and for comparison the
CPU the whole service spends per 100-event message (``make bench``, "service CPU per
100-event message"). The difference between the two rows is what the transaction itself
costs; it is aiokafka's pure-Python protocol work (requests encoded and responses decoded
per message: AddPartitionsToTxn twice, Produce twice, EndTxn), which the latency target has
to fit in. ``--messages 5 --events 5`` checks that it runs (a second or two).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

from consumer import Settings  # noqa: E402
from consumer.service import IngestService, topic_specs  # noqa: E402
from producer import KafkaMessage, ensure_topics  # noqa: E402

BOOTSTRAP = os.environ.get("IVMTR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def started_receipt(key: str) -> dict[str, Any]:
    return {
        "kind": "MESSAGE",
        "status": "STARTED",
        "feed": "bench",
        "msg_grp_id": key,
        "msg_ser_nbr": 1,
        "tot_msg_cnt": None,
        "rec_cnt": None,
        "tot_rec_cnt": None,
        "records_received": 0,
        "records_rejected": 0,
        "published": {},
        "content_sha256": None,
        "messages_received": [],
        "problems": [],
        "replica": "bench",
        "written_at": 0,
    }


async def run(
    service: IngestService, messages: int, events: list[KafkaMessage]
) -> dict[str, float]:
    publisher = service.publisher
    latencies = []
    cpu_before = cpu_seconds()
    for _ in range(messages):
        started = time.perf_counter()
        key = f"msg:{uuid.uuid4().hex}/1"
        # As the service does: a small message's events go with the claim.
        async with publisher.delivery(key, started_receipt(key), events) as delivery:
            # The final receipt, as the service writes it.
            receipt = {**started_receipt(key), "status": "PUBLISHED", "content_sha256": "0" * 64}
            delivery.receipt = receipt
            await delivery.add(
                service.topics.deliveries.message(delivery.key, receipt, partition=delivery.slot)
            )
        latencies.append(time.perf_counter() - started)
    cpu = cpu_seconds() - cpu_before
    latencies.sort()
    return {
        "cpu_ms_per_message": 1000 * cpu / messages,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


async def delete_topics(prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def main(messages: int, event_count: int) -> None:
    settings = Settings(
        kafka_bootstrap_servers=BOOTSTRAP,
        topic_prefix=f"bench-cost-{uuid.uuid4().hex[:8]}.",
        insecure_dev_mode=True,
    )
    service = IngestService(settings)
    await ensure_topics(BOOTSTRAP, topic_specs(settings, service.topics))
    value = os.urandom(1066)  # the average encoded size of a PieceScan event
    events = [
        service.topics.piece_scans.encoded_message(f"{i:020d}", value) for i in range(event_count)
    ]
    await service.publisher.start()
    try:
        await run(service, 20, events)  # warm-up: producers, metadata, the slots' first claims
        empty = await run(service, messages, [])
        full = await run(service, messages, events)
    finally:
        await service.publisher.stop()
        await delete_topics(settings.topic_prefix)
    print(f"{'message':<28}{'CPU ms':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, row in (("no events", empty), (f"{event_count} events", full)):
        print(
            f"{name:<28}{row['cpu_ms_per_message']:>10.2f}{row['p50_ms']:>10.1f}"
            f"{row['p99_ms']:>10.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.messages, args.events))
    except ImportError:
        asyncio.run(main(args.messages, args.events))
