"""End-to-end benchmark of the ingest service, on the local broker, against a kcat baseline.

    .venv/bin/python bench/run.py [--quick | --tiny] [--events N] [--skip-kcat] [--kcat-optional]
                                  [--skip-python-path] [--senders K] [--results DIR]

(``make bench`` runs this.) Needs kcat, the Debian package:

    apt-get update && apt-get install -y kcat        # kcat 1.7.1, librdkafka 2.0.2 on Debian 12

What it does, in order:

1. ``scripts/kafka start`` (a no-op when the broker runs). The broker is shared: the
   benchmark only creates (and at the end deletes) its own topics, ``bench-<run id>.*``
   and ``bench-kcat-<run id>-<n>``.
2. Generates every request body before any clock starts, with the simulator's generator
   (``MailingSpec``, ``generate_records``, ``message_group``: realistic field values and
   sizes, about 1.3 kB of JSON per record). Bodies are cached under
   ``.local/bench-cache/`` keyed by their parameters and the generator's source, so only
   the first run pays for generation (~30 s for the default sizes). Then warms the broker:
   kcat writes rounds of ``--events`` records to scratch topics, untimed, until its rate
   stops rising (at most ``--warm-rounds``, 12; none with ``--quick``, ``--tiny`` or
   ``--skip-kcat``), so that the service and kcat both meet a broker whose JVM has
   compiled its produce path, as a production broker has.
3. Starts the service as it runs in production: ``python -m consumer serve`` (uvicorn,
   uvloop), every setting at its default (acks=all, transactions, ack mode ``kafka``,
   INFO JSON logs) except its own port, topic prefix and replica id, with a feeds file
   holding one feed (``bench``, kind auto) with a scrypt password hash; pushes use HTTP
   Basic auth. No ``IVMTR_*`` variable of the caller's environment reaches it.
4. Scenarios, each pushing one message group with its own msgGrpId:

   - throughput, plain and gzip: N events (``--events``, default 300,000) in
     10,000-event messages pushed by K concurrent senders (``--senders``, default 3);
     scan records per second from the first request byte to the last 200, and service
     CPU seconds (user + system, /proc/<pid>/stat) per 100,000 records.
   - latency: 100-event messages at a steady 100 messages/s for ``--latency-seconds``
     (default 15) on an open-loop schedule (message i is sent at t0 + i/rate whatever
     the earlier answers did), latency measured from the scheduled send time to the 200;
     p50, p99, max, p99 per second of the run (a stall shows as a run of slow seconds),
     and any non-200 answer.
   - memory, on a freshly started service: VmRSS at ready, VmRSS sampled every 50 ms
     and VmHWM (reset through /proc/<pid>/clear_refs first) while it takes one
     300,000-event message (``--memory-events``), and VmRSS 3 s after the 200.
5. The Python path, same run: a service with the native fast path off
   (``IVMTR_FAST_PATH=off``, own topic prefix) takes the first fifth of the plain throughput
   messages; the ratio of the two rates is what the fast path buys.
6. Baseline, same run, same broker: kcat producing the same number of records as the
   throughput scenario, with the same average key, value and header sizes as the events
   the service wrote (measured by reading a sample of them back, weighted by what each
   topic got), from a file (``-l``, one ``key<TAB>value`` line per record), with
   acks=all, idempotence, the service's batch size and librdkafka's default linger (5 ms),
   to a fresh 6-partition topic; the median of ``--kcat-runs`` (3) runs, each checked by the
   topic's end offsets. Ratio: our records/s over kcat's.
7. Prints a table (figure, target, pass/fail) and writes the whole result as JSON to
   ``bench/results/<UTC timestamp>.json`` and ``bench/results/latest.json``. Service logs
   and the feeds file of the run stay in ``.local/bench-runs/<timestamp>/``.

``--quick`` is a smoke test: 20,000 events, 5 s of latency, a 30,000-event memory message,
one kcat run, no broker warm-up. Targets are stated for the full run (2 cores, local
broker, acks=all, transactions on); the machine is shared, so the JSON also records the
load average and the CPU the broker, this process and everything else used during each
scenario.

``--tiny`` checks that the benchmark still runs, in about 15 s (tests/bench runs it):
every scenario on 10,000 events (one message each), 1 s of latency, a 1,000-event memory
message, one kcat run if kcat is installed (``--kcat-optional``), no broker warm-up. Its
figures say nothing about the targets, so it implies ``--ignore-targets``: the table still
shows PASS/FAIL, but the exit status is 0 unless a push was not answered 200. ``--results``,
``--run-dir`` and ``--cache`` move what a run writes out of the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import gzip
import hashlib
import json
import math
import os
import platform
import random
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http1 import Http1Pool  # noqa: E402
from consumer import Settings  # noqa: E402
from consumer.feeds import hash_password  # noqa: E402
from consumer.simulator import (  # noqa: E402
    DEFAULT_START,
    MailingSpec,
    generate_records,
    message_group,
    new_message_group_id,
)

BOOTSTRAP = "127.0.0.1:9092"
CACHE = ROOT / ".local" / "bench-cache"
RUNS = ROOT / ".local" / "bench-runs"
RESULTS = ROOT / "bench" / "results"
CACHE_VERSION = 1

FEED = "bench"
USER = "bench-usps"
MESSAGE_EVENTS = 10_000
LATENCY_MESSAGE_EVENTS = 100
GZIP_LEVEL = 6
PARTITIONS = 6  # IVMTR_TOPIC_PARTITIONS default; the kcat topic gets as many
# librdkafka's own default linger: the service's is 0, since it hands aiokafka whole
# batches, while kcat sends line by line and needs linger to batch at all.
KCAT_LINGER_MS = 5
SERVICE_BATCH_BYTES = Settings.model_fields["max_batch_bytes"].default
SAMPLE_PER_TOPIC = 2_000
SERIAL_MESSAGES = 50  # 100-event messages pushed one at a time, before the open loop
MB = 2**20

TARGETS = {
    "records_per_s": 100_000,
    "ratio_to_kcat": 0.3,
    "p99_ms": 25.0,
    "peak_rss_mb": 300.0,
}

KCAT_INSTALL = "apt-get update && apt-get install -y kcat"


# --------------------------------------------------------------------------- /proc


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (its threads included)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / clock_ticks()


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its live children (``serve --workers``' workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = cpu_seconds(pid)
    for child in children:
        with contextlib.suppress(OSError):
            total += cpu_seconds(int(child))
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / clock_ticks()


def status_bytes(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current VmRSS (Linux >= 4.0); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def broker_pid() -> int | None:
    """The local broker's pid, read from scripts/kafka's pid file (for CPU accounting only)."""
    try:
        pid = int((ROOT / ".local" / "kafka" / "kafka.pid").read_text().split()[0])
        cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return None
    return pid


class RssSampler:
    """A thread sampling a process's VmRSS every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter(), rss_bytes(self.pid)))
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


@dataclass
class CpuWindow:
    """CPU seconds used between ``start`` and ``stop`` by the service (its workers
    included), broker, us, and all."""

    service_pid: int
    broker: int | None = field(default_factory=broker_pid)
    begin: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        times = os.times()
        now = {
            "wall": time.perf_counter(),
            "service": tree_cpu_seconds(self.service_pid),
            "bench_client": times.user + times.system,
            "machine": machine_busy_seconds(),
        }
        if self.broker is not None:
            with contextlib.suppress(OSError):
                now["broker"] = cpu_seconds(self.broker)
        return now

    def start(self) -> CpuWindow:
        self.begin = self._now()
        return self

    def stop(self) -> dict[str, float]:
        end = self._now()
        self.used = {k: round(end[k] - self.begin[k], 3) for k in end if k in self.begin}
        known = sum(self.used.get(k, 0.0) for k in ("service", "bench_client", "broker"))
        self.used["other_processes"] = round(max(0.0, self.used["machine"] - known), 3)
        return self.used


# --------------------------------------------------------------------------- inputs


@dataclass
class Bodies:
    """The request bodies of one scenario, ready to send."""

    name: str
    bodies: list[bytes]
    events: int
    message_events: int
    json_bytes: int  # before compression
    gzip: bool
    msg_grp_id: str

    @property
    def sent_bytes(self) -> int:
        return sum(len(b) for b in self.bodies)


def _generator_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "consumer" / "simulator").glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


_RECORDS: dict[tuple[int, int], list[dict[str, object]]] = {}


def _records(count: int, seed: int) -> list[dict[str, object]]:
    """``count`` records of one simulated mailing (about 5.5 records per piece)."""
    if (count, seed) not in _RECORDS:
        records: list[dict[str, object]] = []
        pieces = count // 5 + 10
        while len(records) < count:
            records = []
            for record in generate_records(MailingSpec(pieces=pieces, seed=seed)):
                records.append(record)
                if len(records) == count:
                    break
            pieces *= 2
        _RECORDS[(count, seed)] = records
    return _RECORDS[(count, seed)]


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, else as it is."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def scenario_bodies(
    name: str,
    *,
    events: int,
    message_events: int,
    compress: bool,
    seed: int,
    cache: Path = CACHE,
) -> Bodies:
    """The bodies of a scenario, from the cache or generated (and then cached)."""
    # A msgGrpId per scenario: the same records under another group id are new messages,
    # not duplicates, so the gzip run publishes again.
    rng = random.Random(f"{name}/{seed}")
    msg_grp_id = new_message_group_id(rng, DEFAULT_START)
    params = {
        "version": CACHE_VERSION,
        "name": name,
        "events": events,
        "message_events": message_events,
        "gzip": compress,
        "gzip_level": GZIP_LEVEL,
        "seed": seed,
        "msg_grp_id": msg_grp_id,
        "generator": _generator_fingerprint(),
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    directory = cache / f"{name}-{events}-{key}"
    meta_path = directory / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        bodies = [(directory / f"{i:06d}.body").read_bytes() for i in range(meta["messages"])]
        return Bodies(
            name, bodies, events, message_events, meta["json_bytes"], compress, msg_grp_id
        )

    started = time.perf_counter()
    records = _records(events, seed)
    envelopes = message_group(records, message_size=message_events, msg_grp_id=msg_grp_id)
    plain = [orjson.dumps(envelope) for envelope in envelopes]
    json_bytes = sum(len(b) for b in plain)
    bodies = [gzip.compress(b, GZIP_LEVEL, mtime=0) for b in plain] if compress else plain
    scratch = directory.with_name(directory.name + f".tmp{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for i, body in enumerate(bodies):
        (scratch / f"{i:06d}.body").write_bytes(body)
    meta = {**params, "messages": len(bodies), "json_bytes": json_bytes}
    (scratch / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    scratch.rename(directory)
    print(
        f"  generated {name}: {events:,} events in {len(bodies)} message(s) "
        f"({time.perf_counter() - started:.1f} s, cached in {shown(directory)})",
        flush=True,
    )
    return Bodies(name, bodies, events, message_events, json_bytes, compress, msg_grp_id)


# --------------------------------------------------------------------------- service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_feeds_file(path: Path) -> str:
    """A production-style feeds file with one feed; returns the feed's password."""
    password = secrets.token_urlsafe(24)
    text = (
        "# Feeds file of one benchmark run (bench/run.py).\n"
        f"[feeds.{FEED}]\n"
        'kind = "auto"\n'
        'campaign = "benchmark"\n'
        f'user = "{USER}"\n'
        f'password_hash = "{hash_password(password)}"\n'
    )
    path.touch(mode=0o600)
    path.write_text(text)
    return password


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    url: str
    log_path: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def spawn_consumer(
    command: str, settings: dict[str, str], log_path: Path, *, root: Path = ROOT
) -> subprocess.Popen[bytes]:
    """``python -m consumer <command>`` from ``root`` with ``settings`` as its only IVMTR_*
    variables (none of the caller's leak in), its output to ``log_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVMTR_")}
    env.update(settings)
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        # ``-m`` puts the working directory first on sys.path: root's ``consumer`` runs.
        return subprocess.Popen(
            [sys.executable, "-m", "consumer", command],
            cwd=root,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def start_service(
    prefix: str,
    feeds_file: Path,
    log_path: Path,
    replica: str,
    overrides: dict[str, str] | None = None,
    *,
    root: Path = ROOT,
) -> Service:
    """``python -m consumer serve`` with production defaults, run from ``root`` (this
    checkout, or an older one to compare with); waits for /readyz."""
    port = free_port()
    settings = {
        **(overrides or {}),
        "IVMTR_HOST": "127.0.0.1",
        "IVMTR_PORT": str(port),
        "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "IVMTR_TOPIC_PREFIX": prefix,
        "IVMTR_REPLICA_ID": replica,
        "IVMTR_FEEDS_FILE": str(feeds_file),
        # stderr is a file, so the default (auto) would pick JSON as well; say it.
        "IVMTR_LOG_FORMAT": "json",
    }
    process = spawn_consumer("serve", settings, log_path, root=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"service exited with {process.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return Service(process, port, url, log_path, settings)
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"service did not become ready:\n{log_path.read_text()}")


def log_findings(log_path: Path) -> dict[str, Any]:
    """Lines per level, and every warning or error event with its count."""
    levels: Counter[str] = Counter()
    notable: Counter[str] = Counter()
    unparsed: list[str] = []
    # "\n" only: a JSON line may hold U+2028 raw, which str.splitlines() splits at.
    for line in log_path.read_text(errors="replace").split("\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                unparsed.append(line[:300])
            continue
        level = str(entry.get("level", "?")).lower()
        levels[level] += 1
        if level not in ("debug", "info"):
            detail = entry.get("error") or entry.get("code") or ""
            notable[f"{level}: {entry.get('event')}" + (f" ({detail})" if detail else "")] += 1
    return {
        "lines_by_level": dict(levels),
        "warnings_and_errors": dict(notable),
        "non_json_lines": unparsed[:20],
    }


# --------------------------------------------------------------------------- pushing


PUSH_PATH = f"/v1/feeds/{FEED}"
HTTP_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


def client(service: Service, password: str, connections: int) -> Http1Pool:
    """Pushes go through a minimal HTTP/1.1 client: httpx costs the sender too much CPU."""
    return Http1Pool(
        "127.0.0.1", service.port, user=USER, password=password, max_connections=connections
    )


def push_headers(compressed: bool) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if compressed:
        headers["content-encoding"] = "gzip"
    return headers


@dataclass
class Answers:
    """What the service answered to a scenario's pushes."""

    received: int = 0
    published: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)

    def take(self, status: int, body: bytes, expected: int) -> bool:
        self.statuses[status] += 1
        if status != 200:
            self.failures.append(f"{status}: {body[:300].decode(errors='replace')}")
            return False
        answer = orjson.loads(body)
        if answer.get("duplicate"):
            self.duplicates += 1
        if answer.get("received") != expected:
            self.failures.append(f"received {answer.get('received')} of {expected} records")
        self.received += int(answer.get("received", 0))
        self.rejected += int(answer.get("rejected", 0))
        self.published.update(answer.get("published", {}))
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "records_received": self.received,
            "records_rejected": self.rejected,
            "published_by_topic": dict(self.published),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "duplicates": self.duplicates,
            "failures": self.failures[:20],
            "failure_count": len(self.failures),
        }


def events_in(scenario: Bodies, index: int) -> int:
    """Records in message ``index`` (``message_group`` fills every message but the last)."""
    per = scenario.message_events
    return min(per, scenario.events - per * index)


async def run_throughput(
    service: Service, password: str, scenario: Bodies, senders: int
) -> dict[str, Any]:
    headers = push_headers(scenario.gzip)
    answers = Answers()
    pending = iter(range(len(scenario.bodies)))
    async with client(service, password, senders) as http:
        await http.open(senders)
        cpu = CpuWindow(service.pid).start()
        started = time.perf_counter()

        async def sender() -> None:
            for index in pending:
                try:
                    answer = await http.post(PUSH_PATH, scenario.bodies[index], headers)
                except HTTP_ERRORS as exc:
                    answers.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                answers.take(answer.status, answer.body, events_in(scenario, index))

        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - started
        used = cpu.stop()
    return {
        "events": scenario.events,
        "messages": len(scenario.bodies),
        "message_events": MESSAGE_EVENTS,
        "senders": senders,
        "gzip": scenario.gzip,
        "json_bytes": scenario.json_bytes,
        "sent_bytes": scenario.sent_bytes,
        "seconds": round(elapsed, 3),
        "records_per_s": round(answers.received / elapsed, 1),
        "json_mb_per_s": round(scenario.json_bytes / MB / elapsed, 2),
        "cpu_seconds": used,
        "service_cpu_s_per_100k": round(used["service"] / max(1, answers.received) * 1e5, 3),
        **answers.as_json(),
    }


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """This process's garbage collector off while a latency clock runs, as ``timeit`` does.

    A full collection of the client, with every request body in memory, paused it for
    26-31 ms; the answers that arrived meanwhile were counted as the service's latency.
    """
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def run_latency(
    service: Service, password: str, scenario: Bodies, rate: float
) -> dict[str, Any]:
    """Open loop: message i is sent at t0 + i/rate, whatever happened to the others."""
    headers = push_headers(scenario.gzip)
    answers = Answers()
    latencies: list[float] = []  # from the scheduled send time to the answer
    by_second: dict[int, list[float]] = {}  # the same, by the second of the run it was sent in
    send_lag: list[float] = []  # how late the client started each send
    in_flight = 0
    most_in_flight = 0
    async with client(service, password, 1024) as http:
        # Open the connections the steady state needs before the clock starts.
        await http.open(16)
        with collector_paused():
            cpu = CpuWindow(service.pid).start()
            t0 = time.perf_counter() + 0.05

            async def one(index: int, at: float) -> None:
                nonlocal in_flight, most_in_flight
                send_lag.append(time.perf_counter() - at)
                in_flight += 1
                most_in_flight = max(most_in_flight, in_flight)
                try:
                    answer = await http.post(PUSH_PATH, scenario.bodies[index], headers)
                    done = time.perf_counter()
                    if answers.take(answer.status, answer.body, events_in(scenario, index)):
                        latencies.append(done - at)
                        by_second.setdefault(int(at - t0), []).append(done - at)
                except HTTP_ERRORS as exc:
                    answers.failures.append(f"{type(exc).__name__}: {exc}")
                finally:
                    in_flight -= 1

            tasks = []
            first_send = last_send = 0.0
            for index in range(len(scenario.bodies)):
                at = t0 + index / rate
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(index, at)))
                await asyncio.sleep(0)  # let it start: its send time is when it starts
                last_send = time.perf_counter()
                if index == 0:
                    first_send = last_send
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - t0
            used = cpu.stop()
    ordered = sorted(latencies)
    ms = [v * 1000 for v in ordered]
    return {
        "messages": len(scenario.bodies),
        "message_events": LATENCY_MESSAGE_EVENTS,
        "target_rate_msg_s": rate,
        "gzip": scenario.gzip,
        "offered_rate_msg_s": round(
            (len(scenario.bodies) - 1) / max(1e-9, last_send - first_send), 2
        ),
        "answered_rate_msg_s": round(len(latencies) / elapsed, 2),
        "seconds": round(elapsed, 3),
        "answered_200": len(latencies),
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p90_ms": round(percentile(ms, 0.90), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(ms[-1], 2) if ms else math.nan,
        "mean_ms": round(statistics.fmean(ms), 2) if ms else math.nan,
        # Where the tail is: a pile-up after a stall shows as a run of slow seconds.
        "p99_ms_by_second": [
            round(percentile(sorted(v), 0.99) * 1000, 1) for _, v in sorted(by_second.items())
        ],
        "client_send_lag_ms": {
            "p99": round(percentile(sorted(send_lag), 0.99) * 1000, 2),
            "max": round(max(send_lag, default=0) * 1000, 2),
        },
        "most_in_flight": most_in_flight,
        "cpu_seconds": used,
        "service_cpu_s_per_100k": round(used["service"] / max(1, answers.received) * 1e5, 3),
        **answers.as_json(),
    }


async def run_memory(service: Service, password: str, scenario: Bodies) -> dict[str, Any]:
    answers = Answers()
    pid = service.pid
    rss_ready = rss_bytes(pid)
    hwm_reset = reset_peak_rss(pid)
    hwm_before = status_bytes(pid, "VmHWM")
    async with client(service, password, 1) as http:
        await http.open(1)
        with RssSampler(pid) as sampler:
            cpu = CpuWindow(pid).start()
            started = time.perf_counter()
            try:
                answer = await http.post(PUSH_PATH, scenario.bodies[0], push_headers(scenario.gzip))
                answers.take(answer.status, answer.body, scenario.events)
            except HTTP_ERRORS as exc:
                answers.failures.append(f"{type(exc).__name__}: {exc}")
            elapsed = time.perf_counter() - started
            used = cpu.stop()
            hwm = status_bytes(pid, "VmHWM")
            rss_at_answer = rss_bytes(pid)
            await asyncio.sleep(3)
            rss_after = rss_bytes(pid)
        sampled_peak = sampler.peak(started, time.perf_counter())
        samples = len([t for t, _ in sampler.samples if started <= t <= started + elapsed])
    return {
        "events": scenario.events,
        "gzip": scenario.gzip,
        "json_bytes": scenario.json_bytes,
        "sent_bytes": scenario.sent_bytes,
        "seconds": round(elapsed, 3),
        "records_per_s": round(answers.received / elapsed, 1) if elapsed else math.nan,
        "rss_ready_mb": round(rss_ready / MB, 1),
        "vmhwm_reset": hwm_reset,
        "vmhwm_before_mb": round(hwm_before / MB, 1),
        "peak_rss_mb": round(max(hwm if hwm_reset else 0, sampled_peak) / MB, 1),
        "vmhwm_mb": round(hwm / MB, 1),
        "sampled_peak_rss_mb": round(sampled_peak / MB, 1),
        "rss_samples": samples,
        "rss_at_answer_mb": round(rss_at_answer / MB, 1),
        "rss_after_3s_mb": round(rss_after / MB, 1),
        "cpu_seconds": used,
        "service_cpu_s_per_100k": round(used["service"] / max(1, answers.received) * 1e5, 3),
        **answers.as_json(),
    }


async def warm_up(service: Service, password: str, scenario: Bodies) -> None:
    """One small message first: connections, scrypt's cache, the first transaction."""
    async with client(service, password, 1) as http:
        for body in scenario.bodies:
            answer = await http.post(PUSH_PATH, body, push_headers(False))
            if answer.status != 200:
                raise SystemExit(f"warm-up push failed: {answer.status} {answer.body!r}")


async def run_serial(service: Service, password: str, scenario: Bodies) -> dict[str, Any]:
    """Closed loop, one message at a time: what a 100-event message costs with no queue."""
    answers = Answers()
    latencies: list[float] = []
    async with client(service, password, 1) as http:
        await http.open(1)
        with collector_paused():
            cpu = CpuWindow(service.pid).start()
            for index, body in enumerate(scenario.bodies):
                started = time.perf_counter()
                answer = await http.post(PUSH_PATH, body, push_headers(scenario.gzip))
                if answers.take(answer.status, answer.body, events_in(scenario, index)):
                    latencies.append((time.perf_counter() - started) * 1000)
            used = cpu.stop()
    ordered = sorted(latencies)
    return {
        "messages": len(scenario.bodies),
        "message_events": scenario.message_events,
        "p50_ms": round(percentile(ordered, 0.50), 2),
        "p99_ms": round(percentile(ordered, 0.99), 2),
        "max_ms": round(ordered[-1], 2) if ordered else math.nan,
        "max_rate_msg_s": round(len(ordered) / (sum(ordered) / 1000), 1) if ordered else 0.0,
        "cpu_seconds": used,
        "service_cpu_ms_per_message": round(used["service"] / max(1, len(ordered)) * 1000, 2),
        **answers.as_json(),
    }


# --------------------------------------------------------------------------- Kafka


async def sample_sizes(topics: dict[str, int]) -> dict[str, Any]:
    """Average key, value and header bytes of the events written, weighted per topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    per_topic: dict[str, dict[str, float]] = {}
    headers_sample: list[tuple[str, bytes]] = []
    try:
        for topic, count in topics.items():
            if count <= 0:
                continue
            metadata = await consumer._client.fetch_all_metadata()
            parts = metadata.partitions_for_topic(topic) or set()
            partitions = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            keys = values = header_bytes = seen = 0
            deadline = time.monotonic() + 20
            want = min(SAMPLE_PER_TOPIC, count)
            while seen < want and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500, max_records=want - seen)
                for items in batch.values():
                    for item in items:
                        seen += 1
                        keys += len(item.key or b"")
                        values += len(item.value or b"")
                        header_bytes += sum(len(k) + len(v) for k, v in item.headers)
                        if not headers_sample or topic == max(topics, key=topics.__getitem__):
                            headers_sample = [(k, bytes(v)) for k, v in item.headers]
            if seen:
                per_topic[topic] = {
                    "records": count,
                    "sampled": seen,
                    "key": keys / seen,
                    "value": values / seen,
                    "headers": header_bytes / seen,
                }
    finally:
        await consumer.stop()
    total = sum(t["records"] for t in per_topic.values())

    def weighted(name: str) -> float:
        return sum(t[name] * t["records"] for t in per_topic.values()) / max(1, total)

    return {
        "per_topic": per_topic,
        "key_bytes": round(weighted("key"), 1),
        "value_bytes": round(weighted("value"), 1),
        "header_bytes": round(weighted("headers"), 1),
        "headers_sample": {k: v.decode(errors="replace") for k, v in headers_sample},
    }


async def create_topic(name: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def end_offsets_sum(topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        parts = metadata.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def delete_topics(prefixes: Sequence[str]) -> list[str]:
    """Delete the topics this run created (names starting with one of ``prefixes``)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if names:
            await admin.delete_topics(names)
        return sorted(names)
    finally:
        await admin.close()


def kcat_version() -> str | None:
    path = shutil.which("kcat")
    if path is None:
        return None
    out = subprocess.run([path, "-V"], capture_output=True, text=True, check=False)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if "Version" in line]
    return lines[0].strip() if lines else "unknown"


def write_kcat_input(path: Path, records: int, key_bytes: int, value_bytes: int) -> int:
    """``records`` lines of ``key<TAB>value``: distinct keys, printable random values."""
    alphabet = (string.ascii_letters + string.digits).encode()
    rng = random.Random(7)
    block = bytes(rng.choice(alphabet) for _ in range(value_bytes + 4096))
    width = max(1, key_bytes)
    total = 0
    with path.open("wb") as out:
        chunk: list[bytes] = []
        for i in range(records):
            key = f"{i:0{width}d}"[-width:].encode() if key_bytes else b""
            start = (i * 131) % 4096
            line = key + b"\t" + block[start : start + value_bytes] + b"\n"
            total += len(key) + value_bytes
            chunk.append(line)
            if len(chunk) == 10_000:
                out.write(b"".join(chunk))
                chunk = []
        out.write(b"".join(chunk))
    return total


def run_kcat(
    topic: str, input_path: Path, headers: dict[str, str]
) -> tuple[list[str], float, str, float]:
    """Runs kcat once: its command, wall seconds, stderr and CPU seconds (user + system)."""
    command = [
        "kcat",
        "-P",
        "-b",
        BOOTSTRAP,
        "-t",
        topic,
        "-K",
        r"\t",
        "-X",
        "acks=all",
        "-X",
        "enable.idempotence=true",
        "-X",
        f"linger.ms={KCAT_LINGER_MS}",
        "-X",
        f"batch.size={SERVICE_BATCH_BYTES}",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}={value}"]
    command += ["-l", str(input_path)]
    children_before = os.times()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.perf_counter() - started
    children_after = os.times()
    cpu = (children_after.children_user - children_before.children_user) + (
        children_after.children_system - children_before.children_system
    )
    if done.returncode != 0:
        raise SystemExit(f"kcat failed ({done.returncode}): {done.stderr[-2000:]}")
    return command, elapsed, done.stderr.strip(), cpu


async def warm_broker(run_id: str, records: int, work: Path, rounds: int) -> dict[str, Any]:
    """kcat writes rounds of ``records`` records of the usual size to scratch topics, untimed,
    until its rate stops rising (a round under 1.1 x the best before it), or ``rounds``.

    A broker started minutes ago runs its produce path interpreted and half compiled. On
    one started the same day, the broker spent 6.9 s of CPU on a throughput run that later
    cost it 1.5 s, and kcat's own rate rose over successive runs from 117,000 to 210,000
    records/s. Production brokers are warm; so is this one before any clock starts.
    """
    input_path = work / "kcat-warm.txt"
    write_kcat_input(input_path, records, 20, 1060)
    rates: list[float] = []
    try:
        for n in range(1, rounds + 1):
            topic = f"bench-kcat-{run_id}-warm-{n}"
            await create_topic(topic, PARTITIONS)
            _, elapsed, _, _ = run_kcat(topic, input_path, {"ivmtr.feed": FEED})
            rates.append(records / elapsed)
            if n > 1 and rates[-1] < 1.1 * max(rates[:-1]):
                break
    finally:
        input_path.unlink(missing_ok=True)
    return {"records_per_round": records, "records_per_s": [round(rate) for rate in rates]}


async def kcat_baseline(
    run_id: str, records: int, sizes: dict[str, Any], runs: int, work: Path
) -> dict[str, Any]:
    key_bytes = round(sizes["key_bytes"])
    value_bytes = round(sizes["value_bytes"])
    headers = sizes["headers_sample"]
    input_path = work / "kcat-input.txt"
    payload = write_kcat_input(input_path, records, key_bytes, value_bytes)
    attempts: list[dict[str, Any]] = []
    rates: list[float] = []
    command: list[str] = []
    try:
        for n in range(1, runs + 1):
            topic = f"bench-kcat-{run_id}-{n}"
            await create_topic(topic, PARTITIONS)
            broker = broker_pid()
            broker_before = cpu_seconds(broker) if broker else 0.0
            command, elapsed, stderr, kcat_cpu = run_kcat(topic, input_path, headers)
            broker_cpu = cpu_seconds(broker) - broker_before if broker else math.nan
            written = await end_offsets_sum(topic)
            if written != records:
                raise SystemExit(f"kcat wrote {written} records to {topic}, expected {records}")
            rates.append(records / elapsed)
            attempts.append(
                {
                    "topic": topic,
                    "seconds": round(elapsed, 3),
                    "records_per_s": round(records / elapsed, 1),
                    # Who pays for kcat's records: the broker's CPU per record beside
                    # the service's shows what our transactions and batches cost it.
                    "cpu_s_per_100k": {
                        "kcat": round(kcat_cpu / records * 1e5, 3),
                        "broker": round(broker_cpu / records * 1e5, 3),
                    },
                    "stderr": stderr[-500:],
                }
            )
            print(f"  kcat run {n}: {records / elapsed:,.0f} records/s ({elapsed:.2f} s)")
    finally:
        input_path.unlink(missing_ok=True)
    median = round(statistics.median(rates), 1)
    return {
        "version": kcat_version(),
        "command": shlex.join(command).replace(str(input_path), "<input file>"),
        "records": records,
        "key_bytes": key_bytes,
        "value_bytes": value_bytes,
        "header_bytes": sum(len(k) + len(v.encode()) for k, v in headers.items()),
        "payload_bytes": payload,
        "runs": attempts,
        "records_per_s": median,
        "seconds": round(records / median, 3),
    }


# --------------------------------------------------------------------------- report


def _fmt(value: float, unit: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if unit == "rec/s":
        return f"{value:,.0f} rec/s"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    if unit == "x":
        return f"{value:.3f}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,}"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, measured, target, verdict) per line of the table."""
    out: list[tuple[str, str, str, str]] = []
    checks: dict[str, bool] = {}

    def row(name: str, value: float, unit: str, op: str = "", target: float | None = None) -> None:
        verdict = ""
        if target is not None and not (isinstance(value, float) and math.isnan(value)):
            ok = value >= target if op == ">=" else value < target if op == "<" else value == target
            verdict = "PASS" if ok else "FAIL"
            checks[name] = ok
        elif target is not None:
            verdict, checks[name] = "FAIL", False
        shown = _fmt(target, unit) if target is not None else ""
        if unit == "rec/s" and target is not None:
            shown = f"{target:,.0f}"
        out.append((name, _fmt(value, unit), f"{op} {shown}".strip(), verdict))

    s = result["scenarios"]
    kcat = result.get("kcat")
    for key, label in (("throughput_plain", "plain"), ("throughput_gzip", "gzip")):
        t = s.get(key)
        if not t:
            continue
        size = f"{t['events']:,} ev, {t['message_events']:,}/msg, {t['senders']} senders"
        row(f"throughput {label} ({size})", t["records_per_s"], "rec/s", ">=", 100_000)
        if kcat:
            row(
                f"  ratio to kcat ({label})",
                t["records_per_s"] / kcat["records_per_s"],
                "x",
                ">=",
                TARGETS["ratio_to_kcat"],
            )
        row(f"  service CPU per 100k records ({label})", t["service_cpu_s_per_100k"], "s")
        row(f"  non-200 answers ({label})", t["failure_count"], "", "==", 0)
    python = s.get("throughput_python")
    if python:
        row(
            f"throughput plain, Python path only ({python['events']:,} ev)",
            python["records_per_s"],
            "rec/s",
        )
        row("  service CPU per 100k records (Python path)", python["service_cpu_s_per_100k"], "s")
        if s.get("throughput_plain"):
            row(
                "  native fast path / Python path (plain)",
                s["throughput_plain"]["records_per_s"] / python["records_per_s"],
                "x",
            )
    if kcat:
        row(
            f"kcat baseline ({kcat['records']:,} rec, {kcat['key_bytes']}+"
            f"{kcat['value_bytes']} B, median of {len(kcat['runs'])})",
            kcat["records_per_s"],
            "rec/s",
        )
    lat = s.get("latency")
    if lat:
        label = (
            f"{lat['message_events']} ev @ {lat['target_rate_msg_s']:g} msg/s, "
            f"{lat['messages']} msg"
        )
        row(f"latency p50 ({label})", lat["p50_ms"], "ms")
        row("  latency p99", lat["p99_ms"], "ms", "<", TARGETS["p99_ms"])
        row("  latency max", lat["max_ms"], "ms")
        row("  offered rate (msg/s)", lat["offered_rate_msg_s"], "x")
        row("  answered rate (msg/s)", lat["answered_rate_msg_s"], "x")
        row("  non-200 answers (latency)", lat["failure_count"], "", "==", 0)
    serial = s.get("latency_serial")
    if serial:
        row(
            f"latency p50, one at a time ({serial['message_events']} ev, "
            f"{serial['messages']} msg, no queueing)",
            serial["p50_ms"],
            "ms",
        )
        row("  p99, one at a time", serial["p99_ms"], "ms")
        row("  service CPU per 100-event message (ms)", serial["service_cpu_ms_per_message"], "x")
    mem = s.get("memory")
    if mem:
        row(
            f"peak RSS while taking one {mem['events']:,}-event message",
            mem["peak_rss_mb"],
            "MB",
            "<",
            TARGETS["peak_rss_mb"],
        )
        out.append(
            (
                "  RSS at ready / 3 s after the 200",
                f"{mem['rss_ready_mb']:.0f} / {mem['rss_after_3s_mb']:.0f} MB",
                "",
                "",
            )
        )
        row("  time for that message", mem["seconds"], "s")
        row("  service CPU per 100k records (memory)", mem["service_cpu_s_per_100k"], "s")
        row("  non-200 answers (memory)", mem["failure_count"], "", "==", 0)
    result["checks"] = checks
    result["passed"] = all(checks.values()) if checks else False
    return out


def print_table(table: list[tuple[str, str, str, str]]) -> None:
    widths = [
        max(len(r[i]) for r in [("figure", "measured", "target", "result"), *table])
        for i in range(4)
    ]
    header = ("figure", "measured", "target", "result")
    line = "  ".join(
        (h.ljust(w) if i in (0, 3) else h.rjust(w))
        for i, (h, w) in enumerate(zip(header, widths, strict=True))
    )
    print(line)
    print("-" * len(line))
    for r in table:
        print(
            "  ".join(
                (c.ljust(w) if i in (0, 3) else c.rjust(w))
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty_files": len(git("status", "--porcelain").splitlines()),
    }


# --------------------------------------------------------------------------- main


@dataclass
class Plan:
    events: int
    senders: int
    rate: float
    latency_seconds: float
    memory_events: int
    kcat_runs: int
    warm_rounds: int
    seed: int
    quick: bool

    @property
    def latency_messages(self) -> int:
        return max(1, round(self.rate * self.latency_seconds))


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke test: small and short")
    size.add_argument(
        "--tiny",
        action="store_true",
        help="does it still run? seconds; implies --kcat-optional and --ignore-targets",
    )
    parser.add_argument("--events", type=int, help="events per throughput scenario (300,000)")
    parser.add_argument("--senders", type=int, default=3, help="concurrent senders (3)")
    parser.add_argument("--rate", type=float, default=100.0, help="latency: messages/s (100)")
    parser.add_argument("--latency-seconds", type=float, help="latency duration (15 s)")
    parser.add_argument("--memory-events", type=int, help="events of the memory message (300,000)")
    parser.add_argument("--kcat-runs", type=int, help="kcat runs, the median counts (3)")
    parser.add_argument("--skip-kcat", action="store_true", help="no kcat baseline")
    parser.add_argument(
        "--kcat-optional",
        action="store_true",
        help="without kcat installed, run with no baseline instead of stopping",
    )
    parser.add_argument(
        "--ignore-targets",
        action="store_true",
        help="exit status 0 unless a push was not answered 200, whatever the figures",
    )
    parser.add_argument(
        "--warm-rounds",
        type=int,
        help="most kcat rounds of --events records that warm the broker first (12; 0: none)",
    )
    parser.add_argument(
        "--skip-python-path",
        action="store_true",
        help="no throughput run with the native fast path off (IVMTR_FAST_PATH=off)",
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (1)")
    parser.add_argument("--keep-topics", action="store_true", help="do not delete the topics")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="directory of the JSON results (bench/results)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="directory of the run's service logs and feeds file (.local/bench-runs/<timestamp>)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=CACHE,
        help="directory of the generated request bodies (.local/bench-cache)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=["throughput", "latency", "memory"],
        help="run only these scenarios (repeatable); for development",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    if args.tiny:
        args.kcat_optional = args.ignore_targets = True
    # Defaults: (full run, --quick, --tiny).
    size = 2 if args.tiny else 1 if quick else 0
    events = args.events or (300_000, 20_000, MESSAGE_EVENTS)[size]
    warm_rounds = args.warm_rounds
    if warm_rounds is None:
        warm_rounds = 0 if size else 12
    plan = Plan(
        events=events,
        senders=args.senders,
        rate=args.rate,
        latency_seconds=args.latency_seconds or (15.0, 5.0, 1.0)[size],
        memory_events=args.memory_events or (300_000, 30_000, 1_000)[size],
        kcat_runs=args.kcat_runs or (3, 1, 1)[size],
        warm_rounds=warm_rounds,
        seed=args.seed,
        quick=quick,
    )
    if plan.events < MESSAGE_EVENTS or plan.senders < 1 or plan.rate <= 0:
        parser.error("--events must be >= 10,000, --senders >= 1, --rate > 0")
    return args, plan


def main(argv: Sequence[str] | None = None) -> int:
    args, plan = parse_args(argv)
    only = set(args.only or ["throughput", "latency", "memory"])
    kcat_skipped = None
    if not args.skip_kcat and "throughput" in only and shutil.which("kcat") is None:
        if not args.kcat_optional:
            print(
                "kcat is not installed; it is the baseline of the benchmark. Install it with\n"
                f"    {KCAT_INSTALL}\n"
                "or run with --skip-kcat (or --kcat-optional).",
                file=sys.stderr,
            )
            return 2
        kcat_skipped = f"kcat is not installed ({KCAT_INSTALL})"
        print(f"no kcat baseline: {kcat_skipped}", flush=True)
        args.skip_kcat = True

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-{run_id}."
    work = args.run_dir or RUNS / stamp
    work.mkdir(parents=True, exist_ok=True)
    results = args.results

    print("kafka: scripts/kafka start", flush=True)
    subprocess.run([str(ROOT / "scripts" / "kafka"), "start"], check=True)

    print("inputs (generated before any clock starts):", flush=True)
    inputs: dict[str, Bodies] = {
        # One per service process: the second one's would be a duplicate of the first's.
        f"warm_up_{name}": scenario_bodies(
            f"warm-up-{name}",
            events=100,
            message_events=100,
            compress=False,
            seed=seed,
            cache=args.cache,
        )
        for name, seed in (
            ("a", plan.seed + 1000),
            ("b", plan.seed + 2000),
            ("c", plan.seed + 3000),
        )
    }
    if "throughput" in only:
        for compress in (False, True):
            inputs["throughput_gzip" if compress else "throughput_plain"] = scenario_bodies(
                "throughput-gzip" if compress else "throughput-plain",
                events=plan.events,
                message_events=MESSAGE_EVENTS,
                compress=compress,
                seed=plan.seed,
                cache=args.cache,
            )
    if "latency" in only:
        inputs["latency_serial"] = scenario_bodies(
            "latency-serial",
            events=SERIAL_MESSAGES * LATENCY_MESSAGE_EVENTS,
            message_events=LATENCY_MESSAGE_EVENTS,
            compress=False,
            seed=plan.seed + 1,
            cache=args.cache,
        )
        inputs["latency"] = scenario_bodies(
            "latency",
            events=plan.latency_messages * LATENCY_MESSAGE_EVENTS,
            message_events=LATENCY_MESSAGE_EVENTS,
            compress=False,
            seed=plan.seed,
            cache=args.cache,
        )
    if "memory" in only:
        inputs["memory"] = scenario_bodies(
            "memory",
            events=plan.memory_events,
            message_events=plan.memory_events,
            compress=False,
            seed=plan.seed,
            cache=args.cache,
        )
    _RECORDS.clear()

    password = write_feeds_file(work / "feeds.toml")
    result: dict[str, Any] = {
        "started_utc": stamp,
        "command": " ".join([Path(sys.executable).name, "bench/run.py", *sys.argv[1:]]),
        "quick": plan.quick,
        "plan": plan.__dict__,
        "targets": TARGETS,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "loadavg_before": os.getloadavg(),
        },
        "git": git_state(),
        "broker": BOOTSTRAP,
        "topic_prefix": prefix,
        "run_dir": shown(work),
        "scenarios": {},
    }
    if kcat_skipped:
        result["kcat_skipped"] = kcat_skipped
    if args.ignore_targets:
        result["targets_ignored"] = True
    scenarios: dict[str, Any] = result["scenarios"]
    services: dict[str, Any] = {}
    runner = asyncio.Runner(loop_factory=_loop_factory())
    try:
        if plan.warm_rounds and not args.skip_kcat and shutil.which("kcat"):
            print(f"broker warm-up: kcat, rounds of {plan.events:,} records, untimed ...")
            warm = runner.run(warm_broker(run_id, plan.events, work, plan.warm_rounds))
            result["broker_warm_up"] = warm
            print("  records/s by round:", ", ".join(f"{r:,}" for r in warm["records_per_s"]))
        if only & {"throughput", "latency"}:
            service = start_service(
                prefix, work / "feeds.toml", work / "service-a.log", f"bench-{run_id}-a"
            )
            result["service_settings"] = {
                k: v for k, v in service.env.items() if k not in ("IVMTR_PORT",)
            }
            print(
                f"service A: pid {service.pid}, {service.url}, "
                f"RSS {rss_bytes(service.pid) / MB:.0f} MB"
            )
            try:
                runner.run(warm_up(service, password, inputs["warm_up_a"]))
                for key in ("throughput_plain", "throughput_gzip"):
                    if key in inputs:
                        print(f"{key}: pushing {inputs[key].events:,} events ...", flush=True)
                        with RssSampler(service.pid) as sampler:
                            t0 = time.perf_counter()
                            scenarios[key] = runner.run(
                                run_throughput(service, password, inputs[key], plan.senders)
                            )
                            scenarios[key]["sampled_peak_rss_mb"] = round(
                                sampler.peak(t0, time.perf_counter()) / MB, 1
                            )
                        print(f"  {scenarios[key]['records_per_s']:,.0f} records/s")
                if "latency_serial" in inputs:
                    print(f"latency, one message at a time: {SERIAL_MESSAGES} messages ...")
                    scenarios["latency_serial"] = runner.run(
                        run_serial(service, password, inputs["latency_serial"])
                    )
                    print(f"  p50 {scenarios['latency_serial']['p50_ms']:.1f} ms")
                if "latency" in inputs:
                    print(
                        f"latency: {plan.latency_messages} messages at {plan.rate:g}/s ...",
                        flush=True,
                    )
                    scenarios["latency"] = runner.run(
                        run_latency(service, password, inputs["latency"], plan.rate)
                    )
                    latency = scenarios["latency"]
                    print(f"  p99 {latency['p99_ms']:.1f} ms; by second of the run:")
                    print("   ", " ".join(f"{v:g}" for v in latency["p99_ms_by_second"]))
                services["a"] = {"rss_end_mb": round(rss_bytes(service.pid) / MB, 1)}
            finally:
                services.setdefault("a", {})["exit_code"] = service.stop()
                services["a"]["log"] = log_findings(service.log_path)

        if not args.skip_kcat and "throughput_plain" in scenarios:
            published = scenarios["throughput_plain"]["published_by_topic"]
            print("sizes: reading a sample of the events back ...", flush=True)
            sizes = runner.run(sample_sizes(published))
            result["encoded_sizes"] = sizes
            print(
                f"  average key {sizes['key_bytes']} B, value {sizes['value_bytes']} B, "
                f"headers {sizes['header_bytes']} B; kcat baseline ...",
                flush=True,
            )
            result["kcat"] = runner.run(
                kcat_baseline(run_id, plan.events, sizes, plan.kcat_runs, work)
            )

        if "throughput_plain" in scenarios and not args.skip_python_path:
            # The same bodies on a topic prefix of its own (elsewhere they are duplicates).
            plain = inputs["throughput_plain"]
            count = min(len(plain.bodies), max(2, len(plain.bodies) // 5))
            python_bodies = dataclasses.replace(
                plain,
                bodies=plain.bodies[:count],
                events=sum(events_in(plain, index) for index in range(count)),
            )
            service = start_service(
                f"bench-{run_id}-py.",
                work / "feeds.toml",
                work / "service-c.log",
                f"bench-{run_id}-c",
                {"IVMTR_FAST_PATH": "off"},
            )
            print(f"service C (Python path only): pid {service.pid}", flush=True)
            try:
                runner.run(warm_up(service, password, inputs["warm_up_c"]))
                print(f"throughput_python: pushing {python_bodies.events:,} events ...", flush=True)
                scenarios["throughput_python"] = runner.run(
                    run_throughput(service, password, python_bodies, plan.senders)
                )
                print(f"  {scenarios['throughput_python']['records_per_s']:,.0f} records/s")
            finally:
                services["c"] = {"exit_code": service.stop(), "log": log_findings(service.log_path)}

        if "memory" in inputs:
            service = start_service(
                prefix, work / "feeds.toml", work / "service-b.log", f"bench-{run_id}-b"
            )
            print(
                f"service B (memory): pid {service.pid}, RSS {rss_bytes(service.pid) / MB:.0f} MB"
            )
            try:
                runner.run(warm_up(service, password, inputs["warm_up_b"]))
                print(f"memory: one {plan.memory_events:,}-event message ...", flush=True)
                scenarios["memory"] = runner.run(run_memory(service, password, inputs["memory"]))
                print(f"  peak {scenarios['memory']['peak_rss_mb']:.0f} MB")
            finally:
                services["b"] = {"exit_code": service.stop(), "log": log_findings(service.log_path)}
    finally:
        result["services"] = services
        result["machine"]["loadavg_after"] = os.getloadavg()
        if not args.keep_topics:
            try:
                result["deleted_topics"] = runner.run(
                    delete_topics([prefix, f"bench-{run_id}-py.", f"bench-kcat-{run_id}-"])
                )
            except Exception as exc:  # cleanup must not hide the result
                print(f"could not delete the run's topics: {exc}", file=sys.stderr)
        runner.close()

    table = rows(result)
    result["table"] = [
        dict(zip(("figure", "measured", "target", "result"), r, strict=True)) for r in table
    ]
    results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str) + "\n"
    (results / f"{stamp}.json").write_text(text)
    (results / "latest.json").write_text(text)

    print()
    print_table(table)
    if result.get("kcat"):
        print(f"\nkcat: {result['kcat']['version']}\n  {result['kcat']['command']}")
    for name, info in services.items():
        notable = info.get("log", {}).get("warnings_and_errors")
        if notable:
            print(f"service {name.upper()} log warnings/errors: {notable}")
    busy = {
        name: scenario["cpu_seconds"]["other_processes"] / scenario["cpu_seconds"]["wall"]
        for name, scenario in scenarios.items()
        if scenario.get("cpu_seconds", {}).get("wall")
    }
    result["machine"]["other_processes_cores"] = {k: round(v, 2) for k, v in busy.items()}
    if busy:
        print(
            "cores used by other processes meanwhile (not the service, broker or this script): "
            + ", ".join(f"{k} {v:.2f}" for k, v in busy.items())
        )
        if max(busy.values()) > 0.25:
            print("  the machine was shared: figures are lower than on an idle machine")
    load = result["machine"]
    print(
        f"load average before {load['loadavg_before'][0]:.2f}, after {load['loadavg_after'][0]:.2f}"
    )
    print(f"written to {shown(results / f'{stamp}.json')} and {shown(results / 'latest.json')}")
    if args.ignore_targets:
        failed = {name: s["failure_count"] for name, s in scenarios.items() if s["failure_count"]}
        if failed:
            print(f"pushes not answered 200, by scenario: {failed}")
        return 1 if failed else 0
    return 0 if result["passed"] else 1


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
