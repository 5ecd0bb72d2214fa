"""Avro encoder benchmark: producer.avro's compiled encoder next to fastavro.

    .venv/bin/python bench/avro_encoder.py [--events 5000] [--seed 0] [--repeat 7] [--json [PATH]]

Builds realistic PieceScan events the way the service does (simulated IV-MTR records
through ``MessagePipeline``), checks that our encoder writes exactly fastavro's bytes
for every one of them, then times, in the same run on the same events: fastavro's
``schemaless_writer`` (into a fresh BytesIO, as ``AvroSingleObject`` uses it), our
compiled encoder, and our reference encoder alone (the closure tree the compiled
encoder falls back on: the other design, for comparison). Each round times all three
in turn and the best of ``--repeat`` rounds counts, so a busy neighbour on the machine
hurts less; the median round is reported too. Times are per event on one core.
``--events 200 --repeat 1`` checks that it runs (under a second).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import fastavro
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer.core.pipeline import MessagePipeline, ScanEvent  # noqa: E402
from consumer.core.records import RecordKind  # noqa: E402
from consumer.service import record_shapes  # noqa: E402
from consumer.simulator import MailingSpec, generate_records  # noqa: E402
from producer import load_schema  # noqa: E402
from producer.avro import _closure_encoder, compile_encoder  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "avro_encoder.json"
SCHEMA = "ivmtr.events.PieceScan"


def piece_events(n: int, seed: int) -> list[dict[str, Any]]:
    """The first ``n`` PieceScan event values the pipeline makes of a simulated mailing."""
    pieces = max(1, n // 5)
    while True:
        records = list(generate_records(MailingSpec(pieces=pieces, seed=seed)))
        body = orjson.dumps({"msgGrpId": "G", "msgSerNbr": 1, "events": records})
        pipeline = MessagePipeline(
            feed="f", received_at_ms=1_790_000_000_000, shapes=record_shapes()
        )
        events = [
            outcome.value
            for outcome in pipeline.feed(body) + pipeline.finish()
            if isinstance(outcome, ScanEvent) and outcome.kind is RecordKind.PIECE
        ]
        if len(events) >= n:
            return events[:n]
        pieces = pieces * 2


def seconds(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000, help="PieceScan events per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=7, help="rounds; the best one counts")
    parser.add_argument(
        "--json",
        nargs="?",
        type=Path,
        const=DEFAULT_JSON,
        help=f"write results (to {DEFAULT_JSON})",
    )
    args = parser.parse_args()

    parsed = load_schema(SCHEMA).parsed
    events = piece_events(args.events, args.seed)
    compile_start = time.perf_counter()
    ours = compile_encoder(parsed)
    compile_ms = (time.perf_counter() - compile_start) * 1000
    closures = _closure_encoder(parsed)

    def fastavro_encode(value: Any) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, value)
        return buffer.getvalue()

    sizes = []
    for index, event in enumerate(events):
        expected = fastavro_encode(event)
        if ours(event) != expected or closures(event) != expected:
            raise SystemExit(f"event {index}: our bytes differ from fastavro's")
        sizes.append(len(expected))

    # Plain loops that drop each result: what a stream does, and no garbage collector
    # passes over a growing list of results.
    def run_fastavro() -> None:
        for event in events:
            fastavro_encode(event)

    def run_ours() -> None:
        for event in events:
            ours(event)

    def run_closures() -> None:
        for event in events:
            closures(event)

    runs = {"fastavro": run_fastavro, "compiled": run_ours, "closure_tree": run_closures}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, run in runs.items():
            times[name].append(seconds(run))

    n = len(events)
    results = {
        name: {
            "best_us": min(t) / n * 1e6,
            "median_us": statistics.median(t) / n * 1e6,
            "best_per_s": n / min(t),
        }
        for name, t in times.items()
    }
    ratio_best = results["fastavro"]["best_us"] / results["compiled"]["best_us"]
    ratio_median = results["fastavro"]["median_us"] / results["compiled"]["median_us"]
    closure_ratio = results["fastavro"]["best_us"] / results["closure_tree"]["best_us"]

    load = os.getloadavg()[0]
    print(f"Avro encoding of {n:,} PieceScan events x {args.repeat} rounds, seed {args.seed}")
    print(
        f"events: {statistics.mean(sizes):.0f} bytes on average; compiling took {compile_ms:.1f} ms"
    )
    print(f"load average at the end: {load:.2f} on {os.cpu_count()} CPUs")
    print(f"fastavro {version('fastavro')}: same bytes as ours on all {n:,} events")
    print()
    print(f"{'':14} {'us (best)':>10} {'us (median)':>12} {'best /s':>10}")
    for name, result in results.items():
        print(
            f"{name:14} {result['best_us']:>10.2f} {result['median_us']:>12.2f}"
            f" {result['best_per_s']:>10,.0f}"
        )
    print()
    print(f"compiled vs fastavro: {ratio_best:.1f}x faster (best), {ratio_median:.1f}x (median)")
    print(f"closure tree alone vs fastavro: {closure_ratio:.1f}x faster (best)")

    if args.json:
        result = {
            "events": n,
            "seed": args.seed,
            "repeat": args.repeat,
            "schema": SCHEMA,
            "mean_event_bytes": statistics.mean(sizes),
            "compile_ms": compile_ms,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": load,
            "fastavro": version("fastavro"),
            "bytes_match": True,
            "results": results,
            "ratio_best": ratio_best,
            "ratio_median": ratio_median,
            "closure_tree_ratio_best": closure_ratio,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
