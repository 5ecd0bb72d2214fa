"""What transactions cost at the Kafka level: the same records, idempotent vs transactional.

    .venv/bin/python bench/transactions.py [--records 100000] [--per-transaction 10000]

Writes the same records (realistic ~1 KB values, 6 partitions, aiokafka's batch API, acks=all)
once with an idempotent producer and once in transactions of ``--per-transaction`` records
(as the service writes a 10,000-event message), in the same run on the same broker, and
prints both rates and their ratio. Each run writes to a fresh topic, ``bench-txn-<id>``,
deleted at the end. ``--records 600 --per-transaction 300`` checks that it runs (a second).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BOOTSTRAP = os.environ.get("IVMTR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PARTITIONS = 6


async def fresh_topic() -> str:
    name = f"bench-txn-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def delete_topic(name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


async def produce(records: int, per_transaction: int | None, value: bytes) -> float:
    topic = await fresh_topic()
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        transactional_id=f"bench-{uuid.uuid4().hex[:8]}" if per_transaction else None,
    )
    await producer.start()
    await producer.partitions_for(topic)
    try:
        start = time.perf_counter()
        sent = 0
        while sent < records:
            chunk = min(per_transaction or records, records - sent)
            if per_transaction:
                await producer.begin_transaction()
            batches = {p: producer.create_batch() for p in range(PARTITIONS)}
            futures = []
            for index in range(sent, sent + chunk):
                partition = index % PARTITIONS
                key = f"{index:020d}".encode()
                if batches[partition].append(key=key, value=value, timestamp=None) is None:
                    batches[partition].close()
                    futures.append(
                        await producer.send_batch(batches[partition], topic, partition=partition)
                    )
                    batches[partition] = producer.create_batch()
                    batches[partition].append(key=key, value=value, timestamp=None)
            for partition, batch in batches.items():
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*futures)
            if per_transaction:
                await producer.commit_transaction()
            sent += chunk
        return records / (time.perf_counter() - start)
    finally:
        await producer.stop()
        await delete_topic(topic)


async def main(records: int, per_transaction: int) -> None:
    value = os.urandom(1066)  # the average encoded size of a PieceScan event
    idempotent = await produce(records, None, value)
    transactional = await produce(records, per_transaction, value)
    print(f"idempotent      {idempotent:>10,.0f} records/s")
    print(
        f"transactional   {transactional:>10,.0f} records/s  ({per_transaction:,} per transaction)"
    )
    print(f"ratio           {transactional / idempotent:>10.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-transaction", type=int, default=10_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.records, arguments.per_transaction))
