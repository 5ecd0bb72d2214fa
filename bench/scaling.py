"""Scaling out: one worker against two on one port, and three replicas taking round-robin load.

    .venv/bin/python bench/scaling.py [--events 300000] [--senders 4]
                                      [--replica-messages 1500] [--replica-senders 12]
                                      [--tiny] [--results DIR] [--cache DIR]

Runs on the local broker (``scripts/kafka start``), the service as ``bench/run.py`` runs
it (feeds file, Basic auth, production settings), with the messages ``bench/run.py``
generates (the same cache):

1. **workers**: the plain throughput messages (10,000 events each) pushed by ``--senders``
   connections through ``serve`` with ``IVMTR_WORKERS=1``, then ``=2``, each on fresh topics
   after one warm-up message. Records per second of each and their ratio; and how the
   messages spread over the workers (from the final receipts' ``replica``).
2. **replicas**: three services on one topic prefix, as three hosts would run them, take
   100-event messages round-robin (message i goes to replica i mod 3) from
   ``--replica-senders`` connections at once. Every answer is counted: the share answered
   ``503`` is what sharing the delivery slots costs (before slot ownership by group,
   replicas took slots from each other mid-message: 2.0% of first answers were 503). A
   message answered ``503`` is pushed again to the next replica until it is answered
   ``200``, as IV-MTR retries, and every message must end answered ``200``. A message
   reaching a replica that does not own its slot is forwarded to the owner: the forwards
   are counted from the replicas' logs.

Prints the figures and writes them as JSON to ``bench/results/scaling-<UTC>.json`` and
``scaling-latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    CACHE,
    MESSAGE_EVENTS,
    PUSH_PATH,
    RESULTS,
    RUNS,
    Bodies,
    client,
    delete_topics,
    push_headers,
    run_throughput,
    scenario_bodies,
    start_service,
    warm_up,
    write_feeds_file,
)

REPLICAS = 3


def published_by_replica(log_path: Path, group: str) -> Counter[str]:
    """Messages of ``group`` published (not duplicates), by the replica that logged them."""
    writers: Counter[str] = Counter()
    for line in log_path.read_text(errors="replace").split("\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            entry.get("event") == "message published"
            and entry.get("outcome") == "published"
            and entry.get("msg_grp_id") == group
        ):
            writers[str(entry.get("replica"))] += 1
    return writers


def forwarded(log_paths: list[Path]) -> Counter[str]:
    """Messages handed to the owner of their delivery slot, by the owner's answer status."""
    statuses: Counter[str] = Counter()
    for path in log_paths:
        for line in path.read_text(errors="replace").split("\n"):
            if '"message forwarded"' in line:
                statuses[str(json.loads(line).get("status"))] += 1
    return statuses


async def workers_scenario(
    prefix: str,
    run_dir: Path,
    feeds: Path,
    password: str,
    plain: Bodies,
    warm: Bodies,
    senders: int,
    workers: int,
) -> dict[str, Any]:
    service = start_service(
        f"{prefix}w{workers}.",
        feeds,
        run_dir / f"workers-{workers}.log",
        f"{prefix.rstrip('.')}-w{workers}",
        {"IVMTR_WORKERS": str(workers)},
    )
    try:
        await warm_up(service, password, warm)
        result = await run_throughput(service, password, plain, senders)
    finally:
        service.stop()
    result["workers"] = workers
    return result


async def replicas_scenario(
    prefix: str,
    run_dir: Path,
    feeds: Path,
    password: str,
    small: Bodies,
    warm: list[Bodies],
    senders: int,
) -> dict[str, Any]:
    replicas = [
        start_service(prefix + "r.", feeds, run_dir / f"replica-{n}.log", f"replica-{n}")
        for n in range(REPLICAS)
    ]
    first_answers: Counter[int] = Counter()
    attempts: Counter[int] = Counter()
    unanswered: list[int] = []
    try:
        for service, bodies in zip(replicas, warm, strict=True):
            await warm_up(service, password, bodies)
        pools = [client(service, password, senders) for service in replicas]
        for pool in pools:
            await pool.__aenter__()
            await pool.open(senders)
        pending = iter(range(len(small.bodies)))
        headers = push_headers(False)
        started = time.perf_counter()

        async def sender() -> None:
            for index in pending:
                for attempt in range(20):
                    pool = pools[(index + attempt) % REPLICAS]
                    answer = await pool.post(PUSH_PATH, small.bodies[index], headers)
                    attempts[answer.status] += 1
                    if attempt == 0:
                        first_answers[answer.status] += 1
                    if answer.status == 200:
                        break
                    await asyncio.sleep(0.05)
                else:
                    unanswered.append(index)

        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - started
        for pool in pools:
            await pool.__aexit__(None, None, None)
    finally:
        for service in replicas:
            service.stop()
    messages = len(small.bodies)
    return {
        "replicas": REPLICAS,
        "messages": messages,
        "message_events": small.message_events,
        "senders": senders,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(messages / elapsed, 1),
        "first_answers": {str(k): v for k, v in sorted(first_answers.items())},
        "all_answers": {str(k): v for k, v in sorted(attempts.items())},
        "share_503_first": round(first_answers[503] / messages, 5),
        "share_503_all": round(attempts[503] / max(1, sum(attempts.values())), 5),
        "unanswered": len(unanswered),
        "forwarded": dict(forwarded([run_dir / f"replica-{n}.log" for n in range(REPLICAS)])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000, help="workers: events (300,000)")
    parser.add_argument("--senders", type=int, default=4, help="workers: connections (4)")
    parser.add_argument(
        "--replica-messages", type=int, default=1500, help="replicas: 100-event messages (1,500)"
    )
    parser.add_argument(
        "--replica-senders", type=int, default=12, help="replicas: connections at once (12)"
    )
    parser.add_argument("--tiny", action="store_true", help="seconds: that it runs")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--cache", type=Path, default=CACHE, help="bench/run.py's body cache")
    args = parser.parse_args()
    if args.tiny:
        args.events, args.replica_messages, args.replica_senders = 2_000, 30, 3
    message_events = min(MESSAGE_EVENTS, args.events)

    subprocess.run([str(ROOT / "scripts" / "kafka"), "start"], check=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = RUNS / f"scaling-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    feeds = run_dir / "feeds.toml"
    password = write_feeds_file(feeds)
    prefix = f"bench-{uuid.uuid4().hex[:8]}."

    def bodies(name: str, events: int, per: int, seed: int) -> Bodies:
        return scenario_bodies(
            name, events=events, message_events=per, compress=False, seed=seed, cache=args.cache
        )

    plain = bodies("throughput-plain", args.events, message_events, 1)
    small = bodies("latency", args.replica_messages * 100, 100, 1)
    warm = [
        bodies(f"warm-up-{name}", 100, 100, seed)
        for name, seed in (("a", 1001), ("b", 1002), ("c", 1003), ("d", 1004), ("e", 1005))
    ]

    async def scenarios() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for workers, warm_bodies in ((1, warm[0]), (2, warm[1])):
            print(f"workers={workers}: pushing {plain.events:,} events ...", flush=True)
            result = await workers_scenario(
                prefix, run_dir, feeds, password, plain, warm_bodies, args.senders, workers
            )
            log_path = run_dir / f"workers-{workers}.log"
            result["spread"] = dict(published_by_replica(log_path, plain.msg_grp_id))
            result["forwarded"] = dict(forwarded([log_path]))
            print(
                f"  {result['records_per_s']:,.0f} records/s; by worker {result['spread']}; "
                f"forwarded {result['forwarded']}"
            )
            out[f"workers_{workers}"] = result
        print(f"{REPLICAS} replicas, round-robin: {len(small.bodies):,} messages ...", flush=True)
        out["replicas"] = await replicas_scenario(
            prefix, run_dir, feeds, password, small, warm[2:], args.replica_senders
        )
        print(
            f"  first answers {out['replicas']['first_answers']}; "
            f"forwarded {out['replicas']['forwarded']}"
        )
        await delete_topics([prefix])
        return out

    found = asyncio.run(scenarios())
    one, two = found["workers_1"]["records_per_s"], found["workers_2"]["records_per_s"]
    result = {
        "started_utc": stamp,
        "command": " ".join(["python", "bench/scaling.py", *sys.argv[1:]]),
        "scenarios": found,
        "workers_ratio": round(two / one, 3),
        # What the ratio cannot show on a small machine: the CPU each record costs, all
        # workers together, and how busy the machine's cores were meanwhile.
        "service_cpu_s_per_100k": {
            workers: found[f"workers_{workers}"]["service_cpu_s_per_100k"] for workers in (1, 2)
        },
        "machine_busy_share": {
            workers: round(
                found[f"workers_{workers}"]["cpu_seconds"]["machine"]
                / (found[f"workers_{workers}"]["cpu_seconds"]["wall"] * (os.cpu_count() or 1)),
                3,
            )
            for workers in (1, 2)
        },
        "replica_503_share": found["replicas"]["share_503_first"],
    }
    print(f"2 workers / 1 worker: {result['workers_ratio']:.3f} (target >= 1.3)")
    print(
        f"service CPU s per 100k records, 1 / 2 workers: {result['service_cpu_s_per_100k']}; "
        f"machine busy: {result['machine_busy_share']}"
    )
    print(f"replicas: share of first answers that were 503: {result['replica_503_share']:.4%}")
    args.results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    (args.results / f"scaling-{stamp}.json").write_text(text)
    (args.results / "scaling-latest.json").write_text(text)
    print(f"written to {args.results / f'scaling-{stamp}.json'}")
    failed = found["replicas"]["unanswered"] or any(
        found[name]["failure_count"] for name in ("workers_1", "workers_2")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
