"""The service's memory under a long stream of small messages: the delivery log has a ceiling.

    .venv/bin/python bench/receipts_memory.py [--messages N] [--max-keys K] [--senders S]
                                              [--events E] [--tiny] [--results DIR]

Every message a replica publishes leaves a receipt in its delivery log (``producer/
deliveries.py``), held in memory to recognise the message if it is pushed again. The log
keeps receipts for ``IVMTR_DELIVERY_RETENTION_DAYS`` and at most
``IVMTR_DELIVERY_LOG_MAX_KEYS`` of them, the oldest evicted first. This benchmark shows that
ceiling on the running service:

1. ``scripts/kafka start`` (a no-op when the broker runs; it is shared: only this run's
   topics, ``bench-rm-<run id>.*``, are created and deleted at the end).
2. Starts the service the way ``bench/run.py`` does (its ``start_service``: production
   settings, a feeds file, Basic auth, JSON logs, no ``IVMTR_*`` of the caller's
   environment) with ``IVMTR_DELIVERY_LOG_MAX_KEYS=K`` (default N/20, so the log is full
   long before N/10 messages).
3. Pushes N small messages (``--messages``, default 200,000) from S concurrent senders
   (``--senders``, 32), each its own message group (msgGrpId, msgSerNbr 1, totMsgCnt 1,
   so the group watcher writes a GROUP_COMPLETE receipt for each as it would in
   production) holding E simulated records (``--events``, 4). Bodies are built as they
   are sent, from a pool of simulator records (a body is ~1.3 kB per record).
4. Reports VmRSS of the service after N/10 messages were answered and after N, their ratio
   (target: at most 1.10), messages/s, VmRSS by tenth of the run, and what ``/metrics``
   says of the log (``ivmtr_delivery_log_entries``, ``ivmtr_delivery_log_evictions_total``).
   Then pushes the first message again (evicted long ago: published again, as a new
   message) and the last one (still held: a duplicate).
5. Measures in this process, with tracemalloc, the bytes one message receipt takes in a
   ``DeliveryLog`` (with its group and group receipt), as the service holds them.
6. Writes the whole result as JSON to ``--results`` (``bench/results/``):
   ``receipts-memory-<UTC timestamp>.json`` and ``receipts-memory-latest.json``.

``--tiny`` checks that it runs, in seconds (tests/bench runs it): 600 messages, a cap of 20,
8 senders; its figures say nothing about the target (exit status 0 unless a push failed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    HTTP_ERRORS,
    MB,
    PUSH_PATH,
    RESULTS,
    RUNS,
    CpuWindow,
    RssSampler,
    _loop_factory,
    client,
    delete_topics,
    git_state,
    log_findings,
    push_headers,
    shown,
    start_service,
    status_bytes,
    write_feeds_file,
)
from consumer.simulator import MailingSpec, generate_records  # noqa: E402
from producer.deliveries import DeliveryLog, group_key, message_key  # noqa: E402
from producer.topics import TopicTable  # noqa: E402

TARGET_RATIO = 1.10
POOL_RECORDS = 4_000


# --------------------------------------------------------------------------- messages


class Messages:
    """Message ``i``: its own msgGrpId, ``events`` records from a pool of simulator records."""

    def __init__(self, count: int, events: int, seed: int) -> None:
        self.count = count
        self.events = events
        pool = list(
            itertools.islice(generate_records(MailingSpec(pieces=1_000, seed=seed)), POOL_RECORDS)
        )
        self._records = [orjson.dumps(record) for record in pool]
        # msgGrpId as IV-MTR's: 13 digits of epoch ms, then 7 characters (this run's).
        self._base_ms = time.time_ns() // 1_000_000
        self._tag = uuid.uuid4().hex[:7].upper()

    def group(self, index: int) -> str:
        return f"{self._base_ms + index:013d}{self._tag}"

    def body(self, index: int) -> bytes:
        start = (index * self.events) % (len(self._records) - self.events)
        events = b",".join(self._records[start : start + self.events])
        head = (
            f'{{"msgGrpId":"{self.group(index)}","msgSerNbr":1,"totMsgCnt":1,'
            f'"recCnt":{self.events},"totRecCnt":{self.events},"events":['
        )
        return head.encode() + events + b"]}"


@dataclass
class Pushed:
    """What the service answered."""

    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the run


async def push_all(
    service: Any, password: str, messages: Messages, senders: int, tenth: int
) -> dict[str, Any]:
    """Push every message; VmRSS when the ``tenth``-th and the last answers arrive."""
    pid = service.pid
    pushed = Pushed()
    marks: dict[str, Any] = {}
    by_tenth: list[dict[str, float]] = []
    step = max(1, messages.count // 10)
    pending = iter(range(messages.count))
    headers = push_headers(False)
    async with client(service, password, senders) as http:
        await http.open(senders)
        cpu = CpuWindow(pid).start()
        started = time.perf_counter()

        def answered() -> None:
            pushed.answered += 1
            n = pushed.answered
            if n == tenth:
                marks["tenth"] = (n, status_bytes(pid, "VmRSS"), time.perf_counter() - started)
            if n % step == 0 or n == messages.count:
                by_tenth.append(
                    {
                        "messages": n,
                        "vmrss_mb": round(status_bytes(pid, "VmRSS") / MB, 1),
                        "seconds": round(time.perf_counter() - started, 1),
                    }
                )

        async def sender() -> None:
            for index in pending:
                try:
                    answer = await http.post(PUSH_PATH, messages.body(index), headers)
                except HTTP_ERRORS as exc:
                    pushed.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                pushed.statuses[answer.status] += 1
                if answer.status != 200:
                    pushed.failures.append(f"{answer.status}: {answer.body[:300]!r}")
                elif orjson.loads(answer.body).get("duplicate"):
                    pushed.duplicates += 1
                answered()

        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - started
        marks["end"] = (pushed.answered, status_bytes(pid, "VmRSS"), elapsed)
        used = cpu.stop()
    await asyncio.sleep(3)
    rss_later = status_bytes(pid, "VmRSS")
    tenth_n, tenth_rss, tenth_s = marks.get("tenth", (0, 0, 0.0))
    end_n, end_rss, _ = marks["end"]
    return {
        "messages": messages.count,
        "events_per_message": messages.events,
        "senders": senders,
        "seconds": round(elapsed, 1),
        "messages_per_s": round(pushed.answered / elapsed, 1),
        "messages_per_s_after_tenth": round((end_n - tenth_n) / max(1e-9, elapsed - tenth_s), 1),
        "vmrss_after_tenth_mb": round(tenth_rss / MB, 1),
        "vmrss_after_all_mb": round(end_rss / MB, 1),
        "vmrss_3s_later_mb": round(rss_later / MB, 1),
        "ratio": round(end_rss / tenth_rss, 3) if tenth_rss else None,
        "vmrss_by_tenth": by_tenth,
        "cpu_seconds": used,
        "service_cpu_ms_per_message": round(used["service"] / max(1, pushed.answered) * 1e3, 2),
        "answered": pushed.answered,
        "statuses": {str(k): v for k, v in sorted(pushed.statuses.items())},
        "duplicates": pushed.duplicates,
        "failures": pushed.failures[:20],
        "failure_count": len(pushed.failures),
    }


async def push_again(service: Any, password: str, messages: Messages) -> dict[str, Any]:
    """The first message (evicted) and the last (held), pushed again."""
    result: dict[str, Any] = {}
    async with client(service, password, 1) as http:
        for name, index in (("first", 0), ("last", messages.count - 1)):
            answer = await http.post(PUSH_PATH, messages.body(index), push_headers(False))
            body = orjson.loads(answer.body) if answer.status == 200 else {}
            result[name] = {
                "status_code": answer.status,
                "duplicate": body.get("duplicate"),
                "status": body.get("status"),
            }
    return result


def scrape(url: str) -> dict[str, float]:
    """The delivery log's metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ivmtr_delivery_log"):
                label = sample.labels.get("reason")
                found[sample.name + (f"{{reason={label}}}" if label else "")] = sample.value
    return found


def bytes_per_entry(count: int, events: int) -> dict[str, Any]:
    """tracemalloc: what one message receipt (and its group, group receipt) takes in the log."""
    topics = TopicTable.build("bench-rm.")
    log = DeliveryLog("127.0.0.1:1", topics.deliveries)
    now = time.time_ns() // 1_000_000

    def receipts(n: int) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for i in range(n):
            group = f"{now + i:013d}ABCDEFG"
            message = {
                "kind": "MESSAGE",
                "status": "PUBLISHED",
                "feed": "bench",
                "msg_grp_id": group,
                "msg_ser_nbr": 1,
                "tot_msg_cnt": 1,
                "rec_cnt": events,
                "tot_rec_cnt": events,
                "records_received": events,
                "records_rejected": 0,
                "published": {"bench-rm.piece-scans": events},
                "content_sha256": hashlib.sha256(group.encode()).hexdigest(),
                "messages_received": [],
                "problems": [],
                "replica": "bench",
                "written_at": now,
            }
            out.append((message_key(group, 1), message))
            done = {**message, "kind": "GROUP", "status": "GROUP_COMPLETE", "msg_ser_nbr": None}
            out.append((group_key(group), {**done, "content_sha256": None}))
        return out

    for key, receipt in receipts(10):  # the log's first allocations
        log.apply(key, receipt)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    items = receipts(count)
    for key, receipt in items:
        log.apply(key, receipt)
    del items, key, receipt
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"receipts": count, "bytes_per_message_receipt": round(held / count)}


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="does it still run? seconds")
    parser.add_argument("--messages", type=int, help="messages pushed (200,000)")
    parser.add_argument("--max-keys", type=int, help="IVMTR_DELIVERY_LOG_MAX_KEYS (messages/20)")
    parser.add_argument("--senders", type=int, help="concurrent senders (32)")
    parser.add_argument("--events", type=int, default=4, help="records per message (4)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (1)")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="directory of the JSON results"
    )
    parser.add_argument(
        "--run-dir", type=Path, help="service log and feeds file (.local/bench-runs/<stamp>-rm)"
    )
    args = parser.parse_args(argv)
    args.messages = args.messages or (600 if args.tiny else 200_000)
    args.max_keys = args.max_keys or (20 if args.tiny else max(1, args.messages // 20))
    args.senders = args.senders or (8 if args.tiny else 32)
    if args.messages < 10 or args.events < 1 or args.events > POOL_RECORDS // 2:
        parser.error("--messages must be >= 10, --events between 1 and 2,000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-rm-{run_id}."
    work = args.run_dir or RUNS / f"{stamp}-rm"
    work.mkdir(parents=True, exist_ok=True)
    tenth = args.messages // 10

    print("kafka: scripts/kafka start", flush=True)
    subprocess.run([str(ROOT / "scripts" / "kafka"), "start"], check=True)
    messages = Messages(args.messages, args.events, args.seed)
    password = write_feeds_file(work / "feeds.toml")
    overrides = {"IVMTR_DELIVERY_LOG_MAX_KEYS": str(args.max_keys)}
    result: dict[str, Any] = {
        "started_utc": stamp,
        "command": " ".join([Path(sys.executable).name, "bench/receipts_memory.py", *sys.argv[1:]]),
        "tiny": args.tiny,
        "plan": {
            "messages": args.messages,
            "max_keys": args.max_keys,
            "senders": args.senders,
            "events_per_message": args.events,
            "tenth": tenth,
        },
        "target_ratio": TARGET_RATIO,
        "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()},
        "git": git_state(),
        "topic_prefix": prefix,
        "run_dir": shown(work),
    }
    runner = asyncio.Runner(loop_factory=_loop_factory())
    service = start_service(
        prefix, work / "feeds.toml", work / "service.log", f"bench-rm-{run_id}", overrides
    )
    result["service_settings"] = {k: v for k, v in service.env.items() if k != "IVMTR_PORT"}
    print(
        f"service: pid {service.pid}, VmRSS {status_bytes(service.pid, 'VmRSS') / MB:.0f} MB, "
        f"IVMTR_DELIVERY_LOG_MAX_KEYS={args.max_keys}",
        flush=True,
    )
    try:
        result["vmrss_ready_mb"] = round(status_bytes(service.pid, "VmRSS") / MB, 1)
        print(
            f"pushing {args.messages:,} messages of {args.events} records, "
            f"{args.senders} senders ...",
            flush=True,
        )
        with RssSampler(service.pid, interval=1.0) as sampler:
            run = runner.run(push_all(service, password, messages, args.senders, tenth))
        result["run"] = run
        result["vmrss_peak_sampled_mb"] = round(
            max((r for _, r in sampler.samples), default=0) / MB, 1
        )
        result["metrics"] = scrape(service.url)
        result["pushed_again"] = runner.run(push_again(service, password, messages))
        result["metrics_after_pushed_again"] = scrape(service.url)
    finally:
        result["service_exit_code"] = service.stop()
        result["service_log"] = log_findings(service.log_path)
        try:
            result["deleted_topics"] = runner.run(delete_topics([prefix]))
        except Exception as exc:  # cleanup must not hide the result
            print(f"could not delete the run's topics: {exc}", file=sys.stderr)
        runner.close()
    result["in_process"] = bytes_per_entry(2_000 if args.tiny else 20_000, args.events)
    result["machine"]["loadavg_after"] = os.getloadavg()

    run = result["run"]
    ratio = run["ratio"]
    entries = result["metrics"].get("ivmtr_delivery_log_entries")
    again = result["pushed_again"]
    checks = {
        "ratio": ratio is not None and ratio <= TARGET_RATIO,
        "all_answered_200": run["failure_count"] == 0,
        "log_at_its_cap": entries == args.max_keys,
        "evicted_first_published_again": again["first"]["duplicate"] is False,
        "held_last_is_a_duplicate": again["last"]["duplicate"] is True,
    }
    result["checks"] = checks

    def line(name: str, value: str, verdict: str = "") -> None:
        print(f"{name:<44}{value:>22}  {verdict}".rstrip())

    print()
    line("messages pushed", f"{run['answered']:,}")
    line("rate", f"{run['messages_per_s']:,.1f} messages/s")
    line("  after the first tenth", f"{run['messages_per_s_after_tenth']:,.1f} messages/s")
    line("service CPU per message", f"{run['service_cpu_ms_per_message']:.2f} ms")
    line("VmRSS at ready", f"{result['vmrss_ready_mb']:,.1f} MB")
    line(f"VmRSS after {tenth:,} messages", f"{run['vmrss_after_tenth_mb']:,.1f} MB")
    line(f"VmRSS after {args.messages:,} messages", f"{run['vmrss_after_all_mb']:,.1f} MB")
    line(
        "ratio",
        "n/a" if ratio is None else f"{ratio:.3f}",
        f"(target <= {TARGET_RATIO:.2f}) " + ("PASS" if checks["ratio"] else "FAIL"),
    )
    line(
        "VmRSS by tenth (MB)",
        " ".join(f"{row['vmrss_mb']:.0f}" for row in run["vmrss_by_tenth"]),
    )
    line(
        "delivery log entries (/metrics)",
        f"{entries:,.0f}" if entries is not None else "n/a",
        f"(cap {args.max_keys:,})",
    )
    evicted = result["metrics"].get("ivmtr_delivery_log_evictions_total{reason=cap}")
    line("evicted by the cap (/metrics)", f"{evicted:,.0f}" if evicted is not None else "n/a")
    line(
        "first message pushed again",
        "duplicate" if again["first"]["duplicate"] else "published again",
    )
    line(
        "last message pushed again",
        "duplicate" if again["last"]["duplicate"] else "published again",
    )
    line("non-200 answers", f"{run['failure_count']:,}")
    line(
        "bytes per message receipt (tracemalloc)",
        f"{result['in_process']['bytes_per_message_receipt']:,}",
    )

    args.results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str) + "\n"
    (args.results / f"receipts-memory-{stamp}.json").write_text(text)
    (args.results / "receipts-memory-latest.json").write_text(text)
    print(f"written to {shown(args.results / f'receipts-memory-{stamp}.json')}")
    if args.tiny:
        return 1 if run["failure_count"] else 0
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
