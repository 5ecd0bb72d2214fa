"""The service's CPU per record between the body and the record batches, without Kafka.

    .venv/bin/python bench/pipeline.py [--messages 5] [--repeat 5] [--events N] [--cache DIR]
                                       [--json [PATH]]

Takes the plain throughput messages ``bench/run.py`` pushes (10,000 events each; the same
cache under ``.local/bench-cache/``, generated and cached when missing), and times, on one
core, per record:

- ``pipeline``: what a worker thread does with a message's body: the body in 1 MiB pieces
  (as ``coalesced`` hands them over), through ``MessagePipeline`` with the native fast path
  (scan, parse, validate, enrich, Avro-encode) and the body's SHA-256, as
  ``_MessageRun.process`` does;
- ``batches``: what the event loop then does with the native runs: ``RecordBatches``
  appends them (the service's topics and partitions, 512 KiB batches), seals, builds each
  batch's header and CRC, and frees the runs.

Each round times every message once; the best of ``--repeat`` rounds counts (a busy
neighbour on the machine hurts less) and the median is shown beside it. The end-to-end
figures (``bench/run.py``) are what users get; this one isolates the native work, so a
change to it can be compared before and after in one sitting with little noise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import CACHE, MESSAGE_EVENTS, scenario_bodies  # noqa: E402
from consumer import Settings  # noqa: E402
from consumer.core.fastpath import KINDS  # noqa: E402
from consumer.core.pipeline import MessagePipeline, outcome_count  # noqa: E402
from consumer.ingest.message import WORK_BYTES, coordinate_headers  # noqa: E402
from consumer.ingest.routing import scan_topics  # noqa: E402
from consumer.native import load_native  # noqa: E402
from consumer.service import _fast_path, ingest_limits, record_shapes  # noqa: E402
from producer.topics import TopicTable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5, help="messages per round (5)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best counts (5)")
    parser.add_argument(
        "--events", type=int, default=MESSAGE_EVENTS, help="events per message (10,000)"
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="bench/run.py's body cache")
    parser.add_argument("--json", nargs="?", const="-", help="write the result as JSON")
    args = parser.parse_args()

    settings = Settings(fast_path="require")
    topics = TopicTable.build("bench.")
    fast_path = _fast_path(settings, topics)
    native = load_native("require")
    assert fast_path is not None and native is not None
    limits = ingest_limits(settings)
    shapes = record_shapes()
    by_kind = scan_topics(topics)
    kind_topics = [by_kind[kind] for kind in KINDS]
    names = sorted({topic.name for topic in kind_topics})
    bodies = scenario_bodies(
        "throughput-plain",
        events=args.messages * args.events,
        message_events=args.events,
        compress=False,
        seed=1,
        cache=args.cache,
    ).bodies

    def pipeline_round() -> tuple[float, int, list[Any]]:
        started = time.process_time()
        records = 0
        runs: list[Any] = []
        for body in bodies:
            pipeline = MessagePipeline(
                feed="bench",
                received_at_ms=1_700_000_000_000,
                shapes=shapes,
                limits=limits,
                fast_path=fast_path,
                flat_records=native.flat_records,
            )
            digest = hashlib.sha256()
            for at in range(0, len(body), WORK_BYTES):
                piece = body[at : at + WORK_BYTES]
                digest.update(piece)
                outcomes = pipeline.feed(piece)
                records += outcome_count(outcomes)
                runs.extend(o for o in outcomes if hasattr(o, "kind_counts"))
            outcomes = pipeline.finish()
            records += outcome_count(outcomes)
            runs.extend(o for o in outcomes if hasattr(o, "kind_counts"))
            headers = coordinate_headers(pipeline.envelope, pipeline.feed_name)
        routes = [(names.index(topic.name), *topic.route(headers)[1:]) for topic in kind_topics]
        return time.process_time() - started, records, [(runs, routes)]

    def batches_round(work: list[Any]) -> float:
        started = time.process_time()
        batches = native.RecordBatches(
            partitions=[settings.topic_partitions] * len(names),
            max_batch_bytes=settings.max_batch_bytes,
            transactional=True,
        )
        for runs, routes in work:
            for run in runs:
                batches.append_run(run, [(t, p, list(h)) for t, p, h in routes], 0)
                for _, _, batch in batches.sealed():
                    batch._build()
            runs.clear()  # the runs are freed here, as the event loop frees them
        for _, _, batch in batches.drain():
            batch._build()
        return time.process_time() - started

    stages: dict[str, list[float]] = {"pipeline": [], "batches": []}
    records = 0
    for _ in range(args.repeat):
        seconds, records, work = pipeline_round()
        stages["pipeline"].append(seconds / records * 1e6)
        stages["batches"].append(batches_round(work) / records * 1e6)
    result = {
        "messages": len(bodies),
        "records": records,
        "body_bytes": sum(map(len, bodies)),
        "us_per_record": {
            stage: {"best": round(min(times), 3), "median": round(statistics.median(times), 3)}
            for stage, times in stages.items()
        },
    }
    for stage, figures in result["us_per_record"].items():
        print(f"{stage:9s} {figures['best']:7.3f} us/record (median {figures['median']:.3f})")
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
