"""Valid pushes under a flood of wrong passwords: latency and the service's memory.

    .venv/bin/python bench/auth_flood.py [--seconds 15] [--connections 300] [--rate 20]
        [--events 100] [--spread 32] [--setting IVMTR_NAME=VALUE] [--service-root DIR]
        [--label TEXT] [--tiny] [--results DIR] [--run-dir DIR]

1. ``scripts/kafka start`` (a no-op when the broker runs; only this run's topics,
   ``bench-af-<run id>.*``, are created and deleted at the end).
2. Starts the service as ``bench/run.py`` does (production settings, JSON logs, no
   ``IVMTR_*`` of the caller's environment), with a feeds file holding one feed at the
   production scrypt cost (N=2**14) and ``[proxies] trusted = ["127.0.0.1/32"]``, so that
   ``X-Forwarded-For`` says which client each push is from.
   ``--service-root`` runs ``python -m consumer serve`` from another checkout (e.g. a
   ``git worktree`` of an older commit) to measure the behaviour before a change.
3. Three phases of ``--seconds`` each, in one run; in each, valid pushes (``--events``
   simulated records, each its own message group, from client 192.0.2.10) go at a steady
   ``--rate`` per second on an open-loop schedule, latency measured from the scheduled
   send time to the 200:

   - ``quiet``: the valid pushes alone;
   - ``flood_one``: plus ``--connections`` connections sending wrong passwords as fast as
     they are answered, all from one client address (127.0.0.1, no X-Forwarded-For);
   - ``flood_spread``: the same flood spread over ``--spread`` addresses
     (198.18.0.0/15, via X-Forwarded-For through the trusted proxy), each new to the
     service: every one of them gets its own allowance of failures.

   The flood runs in a process of its own, so that its client work does not delay this
   process's clock. VmRSS of the service is sampled every 50 ms.
4. Prints p50/p99/max of the valid pushes and the service's peak RSS per phase, the
   flood's answers by status, and p99 under each flood over p99 in the quiet phase
   (target: at most 1.5 for the one-address flood); scrapes the ``ivmtr_auth_*``
   metrics; writes everything as JSON to ``--results`` (``bench/results/``):
   ``auth-flood-<UTC timestamp>.json`` and ``auth-flood-latest.json``.

``--tiny`` checks that it runs, in seconds (tests/bench runs it): 2 s phases, 20 flood
connections, 8 addresses, 10-record messages; its figures say nothing about the target
(exit status 0 unless a valid push was not answered 200).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http1 import Http1Pool  # noqa: E402
from bench.run import (  # noqa: E402
    FEED,
    HTTP_ERRORS,
    MB,
    PUSH_PATH,
    RESULTS,
    RUNS,
    USER,
    RssSampler,
    Service,
    _loop_factory,
    collector_paused,
    delete_topics,
    git_state,
    log_findings,
    percentile,
    shown,
    start_service,
    status_bytes,
)
from consumer.feeds import hash_password  # noqa: E402
from consumer.simulator import MailingSpec, generate_records  # noqa: E402

TARGET_RATIO = 1.5
VALID_CLIENT = "192.0.2.10"
SPREAD_BASE = IPv4Address("198.18.0.1")
PHASES = ("quiet", "flood_one", "flood_spread")


# --------------------------------------------------------------------------- the service


def write_feeds_file(path: Path) -> str:
    """One feed at the production scrypt cost, behind a trusted local proxy; its password."""
    import secrets

    password = secrets.token_urlsafe(24)
    path.write_text(
        "# Feeds file of one bench/auth_flood.py run.\n"
        f"[feeds.{FEED}]\n"
        'kind = "auto"\n'
        f'user = "{USER}"\n'
        f'password_hash = "{hash_password(password)}"\n'
        "\n[proxies]\n"
        'trusted = ["127.0.0.1/32"]\n'
    )
    path.chmod(0o600)
    return password


def scrape_auth(url: str) -> dict[str, float]:
    """The ``ivmtr_auth_*`` samples, and refusals by error code (none before this change)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name.startswith("ivmtr_auth_") or sample.name.startswith(
                "ivmtr_refused_messages_total"
            ):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


# --------------------------------------------------------------------------- the flood


def flood_process(
    port: int, password: str, connections: int, seconds: float, spread: int, out: Queue[Any]
) -> None:
    """Wrong passwords on ``connections`` connections for ``seconds``, in a process of its
    own; from 127.0.0.1 itself (``spread`` 0) or from ``spread`` forwarded addresses."""
    out.put(asyncio.run(_flood(port, password, connections, seconds, spread)))


async def _flood(
    port: int, password: str, connections: int, seconds: float, spread: int
) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    addresses = itertools.cycle([str(SPREAD_BASE + i) for i in range(spread)] or [""])
    wrong = "x" + password[1:] if password[0] != "x" else "y" + password[1:]
    pool = Http1Pool("127.0.0.1", port, user=USER, password=wrong, max_connections=connections)
    deadline = time.perf_counter() + seconds

    async def attacker() -> None:
        while time.perf_counter() < deadline:
            headers = {"content-type": "application/json"}
            address = next(addresses)
            if address:
                headers["x-forwarded-for"] = address
            try:
                answer = await pool.post(PUSH_PATH, b"{}", headers)
                statuses[str(answer.status)] += 1
            except HTTP_ERRORS as exc:
                errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05)

    started = time.perf_counter()
    await asyncio.gather(*(attacker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    await pool.close()
    answered = sum(statuses.values())
    return {
        "connections": connections,
        "addresses": spread or 1,
        "seconds": round(elapsed, 2),
        "answers": answered,
        "answers_per_s": round(answered / elapsed, 1),
        "statuses": dict(sorted(statuses.items())),
        "errors": dict(errors),
    }


# --------------------------------------------------------------------------- valid pushes


class Messages:
    """Valid messages: each its own message group, ``events`` simulator records."""

    def __init__(self, events: int) -> None:
        pool = list(itertools.islice(generate_records(MailingSpec(pieces=500, seed=7)), 2_000))
        self._records = [orjson.dumps(record) for record in pool]
        self.events = events
        self._base_ms = time.time_ns() // 1_000_000
        self._tag = uuid.uuid4().hex[:7].upper()
        self._next = 0

    def body(self) -> bytes:
        index, self._next = self._next, self._next + 1
        start = (index * self.events) % (len(self._records) - self.events)
        group = f"{self._base_ms + index:013d}{self._tag}"
        head = (
            f'{{"msgGrpId":"{group}","msgSerNbr":1,"totMsgCnt":1,'
            f'"recCnt":{self.events},"totRecCnt":{self.events},"events":['
        )
        return head.encode() + b",".join(self._records[start : start + self.events]) + b"]}"


async def valid_pushes(
    port: int, password: str, messages: Messages, rate: float, seconds: float
) -> dict[str, Any]:
    """Open loop: push i is sent at t0 + i/rate; latency from then to its answer."""
    headers = {"content-type": "application/json", "x-forwarded-for": VALID_CLIENT}
    count = max(1, int(rate * seconds))
    bodies = [messages.body() for _ in range(count)]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    async with Http1Pool(
        "127.0.0.1", port, user=USER, password=password, max_connections=256
    ) as http:
        await http.open(8)
        with collector_paused():
            t0 = time.perf_counter() + 0.05

            async def one(body: bytes, at: float) -> None:
                try:
                    answer = await http.post(PUSH_PATH, body, headers)
                except HTTP_ERRORS as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    return
                statuses[str(answer.status)] += 1
                if answer.status == 200:
                    latencies.append(time.perf_counter() - at)
                else:
                    failures.append(f"{answer.status}: {answer.body[:200]!r}")

            tasks = []
            for index, body in enumerate(bodies):
                at = t0 + index / rate
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(body, at)))
            await asyncio.gather(*tasks)
    ms = sorted(v * 1000 for v in latencies)
    return {
        "pushes": count,
        "answered_200": len(latencies),
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(ms[-1], 2) if ms else None,
        "statuses": dict(sorted(statuses.items())),
        "failures": failures[:10],
        "failure_count": len(failures),
    }


def run_phase(
    name: str,
    service: Service,
    password: str,
    messages: Messages,
    args: argparse.Namespace,
    runner: asyncio.Runner,
) -> dict[str, Any]:
    flood: multiprocessing.Process | None = None
    results: Queue[Any] = multiprocessing.get_context("spawn").Queue()
    if name != "quiet":
        spread = args.spread if name == "flood_spread" else 0
        flood = multiprocessing.get_context("spawn").Process(
            target=flood_process,
            args=(service.port, password, args.connections, args.seconds + 1.0, spread, results),
            daemon=True,
        )
        flood.start()
        time.sleep(1.0)  # the flood is on before the first timed push
    rss_before = status_bytes(service.pid, "VmRSS")
    with RssSampler(service.pid) as sampler:
        started = time.perf_counter()
        valid = runner.run(valid_pushes(service.port, password, messages, args.rate, args.seconds))
        ended = time.perf_counter()
        flood_result = None
        if flood is not None:
            flood_result = results.get(timeout=args.seconds + 60)
            flood.join(30)
        peak = sampler.peak(0.0, float("inf"))
    return {
        "valid": valid,
        "flood": flood_result,
        "rss_before_mb": round(rss_before / MB, 1),
        "rss_peak_mb": round(peak / MB, 1),
        "seconds": round(ended - started, 2),
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="does it still run? seconds")
    parser.add_argument("--seconds", type=float, help="length of each phase (15)")
    parser.add_argument("--connections", type=int, help="flood connections (300)")
    parser.add_argument("--rate", type=float, help="valid pushes per second (20)")
    parser.add_argument("--events", type=int, help="records per valid push (100)")
    parser.add_argument("--spread", type=int, help="addresses of the spread flood (32)")
    parser.add_argument(
        "--service-root", type=Path, default=ROOT, help="checkout the service runs from"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="IVMTR_NAME=VALUE",
        help="a setting of the service (repeatable), e.g. IVMTR_AUTH_HASH_THREADS=1",
    )
    parser.add_argument("--label", default="", help="a name for this run in the JSON")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON results directory")
    parser.add_argument("--run-dir", type=Path, help="service log and feeds file")
    args = parser.parse_args(argv)
    tiny = args.tiny
    args.seconds = args.seconds or (2.0 if tiny else 15.0)
    args.connections = args.connections or (20 if tiny else 300)
    args.rate = args.rate or (10.0 if tiny else 20.0)
    args.events = args.events or (10 if tiny else 100)
    args.spread = args.spread or (8 if tiny else 32)
    try:
        args.overrides = dict(item.split("=", 1) for item in args.setting)
    except ValueError:
        parser.error("--setting takes IVMTR_NAME=VALUE")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-af-{run_id}."
    work = args.run_dir or RUNS / f"{stamp}-af"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(ROOT / "scripts" / "kafka"), "start"], check=True)
    password = write_feeds_file(work / "feeds.toml")
    messages = Messages(args.events)
    result: dict[str, Any] = {
        "started_utc": stamp,
        "command": " ".join(["python", "bench/auth_flood.py", *(argv or sys.argv[1:])]),
        "label": args.label,
        "tiny": args.tiny,
        "plan": {
            k: getattr(args, k)
            for k in ("seconds", "connections", "rate", "events", "spread", "overrides")
        },
        "service_root": shown(args.service_root.resolve()),
        "service_git": subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=args.service_root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "git": git_state(),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()},
        "target_ratio": TARGET_RATIO,
    }
    runner = asyncio.Runner(loop_factory=_loop_factory())
    service = start_service(
        prefix,
        work / "feeds.toml",
        work / "service.log",
        f"bench-af-{run_id}",
        args.overrides,
        root=args.service_root,
    )
    phases: dict[str, Any] = {}
    try:
        result["rss_ready_mb"] = round(status_bytes(service.pid, "VmRSS") / MB, 1)
        runner.run(valid_pushes(service.port, password, messages, args.rate, 1.0))  # warm-up
        for name in PHASES:
            print(f"phase {name} ({args.seconds:g} s) ...", flush=True)
            phases[name] = run_phase(name, service, password, messages, args, runner)
        result["metrics"] = scrape_auth(service.url)
    finally:
        result["service_exit_code"] = service.stop()
        result["service_log"] = log_findings(service.log_path)
        with contextlib.suppress(Exception):
            result["deleted_topics"] = runner.run(delete_topics([prefix]))
        runner.close()
    result["phases"] = phases
    result["machine"]["loadavg_after"] = os.getloadavg()
    quiet_p99 = phases["quiet"]["valid"]["p99_ms"]
    ratios = {
        name: round(phases[name]["valid"]["p99_ms"] / quiet_p99, 2) if quiet_p99 else None
        for name in ("flood_one", "flood_spread")
    }
    result["p99_ratio"] = ratios
    failures = sum(phase["valid"]["failure_count"] for phase in phases.values())

    print()
    print(
        f"{'phase':<14}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'200s':>7}{'peak RSS MB':>13}  flood"
    )
    for name, phase in phases.items():
        valid, flood = phase["valid"], phase["flood"]
        told = (
            f"{flood['answers_per_s']:,.0f}/s from {flood['addresses']} address(es): "
            + " ".join(f"{k}x{v}" for k, v in flood["statuses"].items())
            if flood
            else "-"
        )
        print(
            f"{name:<14}{valid['p50_ms']:>9.1f}{valid['p99_ms']:>9.1f}{valid['max_ms'] or 0:>9.1f}"
            f"{valid['answered_200']:>7}{phase['rss_peak_mb']:>13.1f}  {told}"
        )
    for name, ratio in ratios.items():
        verdict = ""
        if name == "flood_one" and ratio is not None:
            verdict = f"  (target <= {TARGET_RATIO}) " + (
                "PASS" if ratio <= TARGET_RATIO else "FAIL"
            )
        print(f"p99 {name} / quiet: {ratio}{verdict}")
    print(f"valid pushes not answered 200: {failures}")
    args.results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str) + "\n"
    (args.results / f"auth-flood-{stamp}.json").write_text(text)
    (args.results / "auth-flood-latest.json").write_text(text)
    print(f"written to {shown(args.results / f'auth-flood-{stamp}.json')}")
    if failures:
        return 1
    if args.tiny:
        return 0
    return 0 if (ratios["flood_one"] or 99) <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
