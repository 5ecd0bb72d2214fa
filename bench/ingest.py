"""End-to-end ingest benchmark: the service as it runs in production, on the local broker.

    .venv/bin/python bench/ingest.py [--events 100000] [--message-size 100000] [--gzip]

Generates a realistic mailing with the simulator's generator (before the clock starts),
starts ``ivmtr-stream serve`` in a subprocess with its own topic prefix, pushes the
messages over HTTP and reports scan records per second from the first request byte to
the last 200, and the service's peak resident memory (VmHWM). The baseline, measured in
the same run on the same broker, is a bare aiokafka producer (acks=all, idempotent,
batch API) writing the same number of records of the same encoded size: the ratio says
what the service costs over just producing the bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer.simulator import MailingSpec, generate_records, message_group  # noqa: E402

BOOTSTRAP = os.environ.get("IVMTR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def proc_status(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(prefix: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "IVMTR_PORT": str(port),
        "IVMTR_TOPIC_PREFIX": prefix,
        "IVMTR_REPLICA_ID": uuid.uuid4().hex[:8],
        "IVMTR_LOG_LEVEL": "WARNING",
        "IVMTR_LOG_FORMAT": "json",
    }
    process = subprocess.Popen([sys.executable, "-m", "consumer", "serve"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("service did not become ready")


def build_messages(
    events: int, message_size: int, seed: int, compress: bool
) -> tuple[list[bytes], int]:
    records = []
    for record in generate_records(MailingSpec(pieces=events // 5 + 10, seed=seed)):
        records.append(record)
        if len(records) == events:
            break
    messages = message_group(records, message_size=message_size, seed=seed)
    bodies = [orjson.dumps(message) for message in messages]
    raw_bytes = sum(len(body) for body in bodies)
    if compress:
        bodies = [gzip.compress(body, 6) for body in bodies]
    return bodies, raw_bytes


async def push_all(url: str, bodies: list[bytes], compress: bool, pid: int) -> dict[str, float]:
    headers = {"content-type": "application/json"}
    if compress:
        headers["content-encoding"] = "gzip"
    received = 0
    async with httpx.AsyncClient(timeout=600) as client:
        cpu_before = cpu_seconds(pid)
        start = time.perf_counter()
        for body in bodies:
            response = await client.post(f"{url}/v1/feeds/bench", content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"push failed: {response.status_code} {response.text}")
            received += response.json()["received"]
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu_before
    return {
        "records": received,
        "seconds": elapsed,
        "records_per_s": received / elapsed,
        "service_cpu_s": cpu,
    }


async def baseline(records: int, value_size: int) -> dict[str, float]:
    """A bare aiokafka producer writing ``records`` values of ``value_size`` bytes, acks=all."""
    topic = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
    await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        enable_idempotence=True,
        acks="all",
        max_batch_size=512 * 1024,
        linger_ms=5,
    )
    await producer.start()
    await producer.partitions_for(topic)
    value = os.urandom(value_size)
    keys = [f"{i:020d}".encode() for i in range(records)]
    try:
        start = time.perf_counter()
        futures = []
        batches = {p: producer.create_batch() for p in range(6)}
        for index, key in enumerate(keys):
            partition = index % 6
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
        elapsed = time.perf_counter() - start
    finally:
        await producer.stop()
    return {"records": records, "seconds": elapsed, "records_per_s": records / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--message-size", type=int, default=100_000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()

    subprocess.run([str(ROOT / "scripts" / "kafka"), "start"], check=True)
    bodies, raw_bytes = build_messages(args.events, args.message_size, args.seed, args.gzip)
    process, url = start_service(f"bench-{uuid.uuid4().hex[:8]}.")
    try:
        rss_ready = proc_status(process.pid, "VmRSS")
        result = asyncio.run(push_all(url, bodies, args.gzip, process.pid))
        peak = proc_status(process.pid, "VmHWM")
        rss_after = proc_status(process.pid, "VmRSS")
    finally:
        process.terminate()
        process.wait(30)
    # The events the service wrote average about the size of the JSON record it read.
    base = asyncio.run(baseline(int(result["records"]), raw_bytes // max(1, args.events)))
    report = {
        "events": args.events,
        "message_size": args.message_size,
        "messages": len(bodies),
        "gzip": args.gzip,
        "body_bytes": raw_bytes,
        "service": result,
        "baseline_aiokafka": base,
        "ratio_to_baseline": result["records_per_s"] / base["records_per_s"],
        "cpu_s_per_100k_records": result["service_cpu_s"] / result["records"] * 100_000,
        "rss_ready_mb": rss_ready / 2**20,
        "rss_peak_mb": peak / 2**20,
        "rss_after_mb": rss_after / 2**20,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'events':<28}{args.events:>14,}  in {len(bodies)} message(s), gzip={args.gzip}")
    for label, figures in (("service records/s", result), ("baseline aiokafka records/s", base)):
        print(f"{label:<28}{figures['records_per_s']:>14,.0f}  ({figures['seconds']:.2f} s)")
    print(f"{'ratio service/baseline':<28}{report['ratio_to_baseline']:>14.3f}")
    print(f"{'service CPU s per 100k':<28}{report['cpu_s_per_100k_records']:>14.2f}")
    memory = f"{rss_ready / 2**20:.0f} / {peak / 2**20:.0f} / {rss_after / 2**20:.0f} MB"
    print(f"{'RSS ready / peak / after':<28}{memory:>14}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
