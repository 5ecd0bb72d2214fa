"""No benchmark can rot: every ``bench/*.py`` script runs with tiny arguments, every helper
module imports.

Scripts (files with an ``if __name__ == "__main__":`` block) are found by a glob, so a new
one fails here until it gets an entry in ``TINY``: the arguments that make it run in a few
seconds and what its output must show. Each runs as a subprocess from a scratch directory,
writing its results there (never to ``bench/results/``), against the real local broker
when it needs one (those are marked ``kafka``). The figures themselves are not judged:
tiny runs are too small for the targets; only that each figure is there.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
BOOTSTRAP = os.environ.get("IVMTR_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TIMEOUT = 120  # seconds per script; the tiny runs take 0.5-15 s

NUMBER = r"[\d,]+(?:\.\d+)?"

# Files of bench/ that are only imported by the scripts, and why.
MODULES = {
    "http1": "the minimal HTTP/1.1 client bench/run.py pushes with (no __main__)",
}


@dataclass(frozen=True)
class Tiny:
    """How to run one script in seconds, and what it must print or write."""

    args: Callable[[Path], list[str]]  # given the scratch directory
    check: Callable[[str, Path], None]  # given stdout and the scratch directory
    kafka: bool = False


def figures(stdout: str, pattern: str) -> list[float]:
    """The numbers the first line matching ``pattern`` captures; fails when none does."""
    found = re.search(pattern, stdout, re.MULTILINE)
    assert found, f"no line matches {pattern!r} in:\n{stdout}"
    return [float(value.replace(",", "")) for value in found.groups()]


def read_json(path: Path, keys: set[str]) -> dict[str, Any]:
    assert path.is_file(), f"{path} was not written"
    result: dict[str, Any] = json.loads(path.read_text())
    missing = keys - result.keys()
    assert not missing, f"{path.name} lacks {sorted(missing)}"
    return result


def check_avro_encoder(stdout: str, tmp: Path) -> None:
    for name in ("fastavro", "compiled", "closure_tree"):
        best_us, median_us, per_s = figures(
            stdout, rf"^{name}\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})$"
        )
        assert 0 < best_us <= median_us and per_s > 0
    assert figures(stdout, rf"^compiled vs fastavro: ({NUMBER})x faster")[0] > 0
    result = read_json(
        tmp / "avro_encoder.json",
        {"events", "repeat", "bytes_match", "results", "ratio_best", "ratio_median"},
    )
    assert result["events"] == 200 and result["repeat"] == 1 and result["bytes_match"] is True
    assert set(result["results"]) == {"fastavro", "compiled", "closure_tree"}
    for row in result["results"].values():
        assert row["best_us"] > 0 and row["best_per_s"] > 0


def check_imb_codec(stdout: str, tmp: Path) -> None:
    for name in ("encode_ours", "encode_reportlab", "decode_ours"):
        assert figures(stdout, rf"^{name}\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})$")[0] > 0
    assert figures(stdout, rf"^encode ours / reportlab: ({NUMBER})x")[0] > 0
    result = read_json(
        tmp / "imb_codec.json",
        {"n", "repeat", "reportlab_matches", "rates", "encode_ratio_best"},
    )
    assert result["n"] == 200 and result["reportlab_matches"] is True
    assert set(result["rates"]) == {"encode_ours", "encode_reportlab", "decode_ours"}
    for row in result["rates"].values():
        assert row["best_per_s"] > 0


def check_message_cost(stdout: str, tmp: Path) -> None:
    assert re.search(r"^message\s+CPU ms\s+p50 ms\s+p99 ms$", stdout, re.MULTILINE), stdout
    for label in ("no events", "5 events"):
        cpu_ms, p50, p99 = figures(stdout, rf"^{label}\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})$")
        assert cpu_ms >= 0 and 0 < p50 <= p99


def check_pipeline(stdout: str, tmp: Path) -> None:
    for stage in ("pipeline", "batches"):
        best, median = figures(stdout, rf"^{stage}\s+({NUMBER}) us/record \(median ({NUMBER})\)$")
        assert 0 < best <= median
    result = read_json(
        tmp / "pipeline.json", {"messages", "records", "body_bytes", "us_per_record"}
    )
    # Every generated event went through: 2 messages of 200.
    assert result["messages"] == 2 and result["records"] == 400
    assert set(result["us_per_record"]) == {"pipeline", "batches"}


def check_scaling(stdout: str, tmp: Path) -> None:
    assert figures(stdout, rf"^2 workers / 1 worker: ({NUMBER}) \(target")[0] > 0
    result = read_json(
        tmp / "results" / "scaling-latest.json",
        {"scenarios", "workers_ratio", "replica_503_share"},
    )
    scenarios = result["scenarios"]
    for workers in (1, 2):
        run = scenarios[f"workers_{workers}"]
        assert run["statuses"] == {"200": 1} and run["records_received"] == 2_000
        # Every message published once, by the workers of that run.
        assert sum(run["spread"].values()) == 1
    replicas = scenarios["replicas"]
    assert replicas["unanswered"] == 0 and replicas["all_answers"].get("200") == 30


def check_transactions(stdout: str, tmp: Path) -> None:
    idempotent = figures(stdout, rf"^idempotent\s+({NUMBER}) records/s$")[0]
    transactional = figures(stdout, rf"^transactional\s+({NUMBER}) records/s\s+\(300 per")[0]
    ratio = figures(stdout, rf"^ratio\s+({NUMBER})$")[0]
    assert idempotent > 0 and transactional > 0
    assert ratio == pytest.approx(transactional / idempotent, rel=0.05, abs=0.002)


def run_args(tmp: Path) -> list[str]:
    return [
        "--tiny",
        f"--results={tmp / 'results'}",
        f"--run-dir={tmp / 'run'}",
        f"--cache={tmp / 'cache'}",
    ]


def check_run(scenarios: set[str]) -> Callable[[str, Path], None]:
    """bench/run.py's table and JSON, with ``scenarios`` run and every push answered 200."""

    def check(stdout: str, tmp: Path) -> None:
        assert figures(stdout, rf"^  ({NUMBER}) records/s$")[0] > 0
        assert re.search(r"^figure\s+measured\s+target\s+result$", stdout, re.MULTILINE), stdout
        assert f"written to {tmp / 'results'}" in stdout
        result = read_json(
            tmp / "results" / "latest.json",
            {"plan", "scenarios", "table", "checks", "services", "targets_ignored"},
        )
        assert result["run_dir"] == str(tmp / "run")
        assert set(result["scenarios"]) == scenarios
        for name, scenario in result["scenarios"].items():
            assert scenario["failure_count"] == 0, (name, scenario["failures"])
        for name in scenarios & {"throughput_plain", "throughput_gzip", "throughput_python"}:
            scenario = result["scenarios"][name]
            assert scenario["records_received"] == scenario["events"] > 0
            assert scenario["records_per_s"] > 0 and scenario["service_cpu_s_per_100k"] > 0
        if "latency" in scenarios:
            latency = result["scenarios"]["latency"]
            assert latency["answered_200"] == latency["messages"] == 100
            assert 0 < latency["p50_ms"] <= latency["p99_ms"]
            assert result["scenarios"]["latency_serial"]["p50_ms"] > 0
        if "memory" in scenarios:
            assert result["scenarios"]["memory"]["peak_rss_mb"] > 0
        # kcat is optional in a tiny run: its baseline, or the reason there is none.
        if "kcat_skipped" not in result:
            assert result["kcat"]["records_per_s"] > 0
        # Stopped by SIGTERM: uvicorn shuts down, then exits by the signal it caught.
        for name, service in result["services"].items():
            assert service["exit_code"] in (0, -signal.SIGTERM), (name, service)
        assert {row["figure"] for row in result["table"]} >= {
            f"  non-200 answers ({label})" for label in ("plain", "gzip")
        }

    return check


def check_receipts_memory(stdout: str, tmp: Path) -> None:
    assert figures(stdout, rf"^messages pushed\s+({NUMBER})$")[0] == 600
    assert figures(stdout, rf"^rate\s+({NUMBER}) messages/s$")[0] > 0
    tenth = figures(stdout, rf"^VmRSS after 60 messages\s+({NUMBER}) MB$")[0]
    whole = figures(stdout, rf"^VmRSS after 600 messages\s+({NUMBER}) MB$")[0]
    ratio = figures(stdout, rf"^ratio\s+({NUMBER})\s+\(target <= 1.10\)")[0]
    assert tenth > 0 and whole > 0 and ratio == pytest.approx(whole / tenth, abs=0.01)
    assert (
        figures(stdout, rf"^delivery log entries \(/metrics\)\s+({NUMBER})\s+\(cap 20\)$")[0] == 20
    )
    assert figures(stdout, rf"^evicted by the cap \(/metrics\)\s+({NUMBER})$")[0] == 580
    assert re.search(r"^first message pushed again\s+published again$", stdout, re.MULTILINE)
    assert re.search(r"^last message pushed again\s+duplicate$", stdout, re.MULTILINE)
    assert figures(stdout, rf"^bytes per message receipt \(tracemalloc\)\s+({NUMBER})$")[0] > 0
    result = read_json(
        tmp / "results" / "receipts-memory-latest.json",
        {"plan", "run", "metrics", "pushed_again", "in_process", "checks", "service_exit_code"},
    )
    assert result["plan"]["max_keys"] == 20 and result["run"]["failure_count"] == 0
    assert result["run"]["duplicates"] == 0
    assert result["service_exit_code"] in (0, -signal.SIGTERM)


def check_tracker(stdout: str, tmp: Path) -> None:
    scans, pieces = figures(
        stdout, rf"^scans / pieces \(tracker's state\)\s+({NUMBER}) / ({NUMBER})$"
    )
    assert scans == 3000 and 0 < pieces < scans
    assert figures(stdout, rf"^tracker\s+({NUMBER}) scans/s$")[0] > 0
    assert figures(stdout, rf"^tracker / best baseline\s+({NUMBER})$")[0] > 0
    assert figures(stdout, rf"^store per 100k pieces \(tracemalloc\)\s+({NUMBER}) MB$")[0] > 0
    assert figures(stdout, rf"^avg encoded status\s+({NUMBER}) bytes$")[0] > 0
    for name in ("empty", "tracker", "restarted"):
        assert figures(stdout, rf"^{name} log warnings/errors\s+({NUMBER})$") == [0]
    result = read_json(
        tmp / "results" / "tracker-latest.json",
        {"scans", "tracker", "restarted_tracker", "baseline", "state", "summary"},
    )
    assert result["scans"]["count"] == 3000


def check_simulate(stdout: str, tmp: Path) -> None:
    first_progress, _into, first_message, wall, rss = figures(
        stdout,
        rf"^after\s+first progress ({NUMBER}) s \(({NUMBER}) s into the command\), "
        rf"first message ({NUMBER}) s, wall ({NUMBER}) s, peak RSS ({NUMBER}) MB",
    )
    assert 0 < first_progress <= wall and 0 < first_message <= wall and rss > 0
    result = read_json(tmp / "results" / "simulate-latest.json", {"pieces", "runs", "command"})
    after = result["runs"]["after"]
    assert result["pieces"] == 500 and after["exit_code"] == 0 and after["progress_lines"] >= 1
    summary = after["summary"]
    assert summary["ok"] is True and summary["messages"] == summary["delivered"] > 0
    assert 0 < summary["generating_seconds"] <= summary["seconds"]


def check_auth_flood(stdout: str, tmp: Path) -> None:
    for phase in ("quiet", "flood_one", "flood_spread"):
        p50, p99, _max, answered, rss = figures(
            stdout,
            rf"^{phase}\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})\s",
        )
        assert 0 < p50 <= p99 and answered == 20 and rss > 0
    assert figures(stdout, rf"^p99 flood_one / quiet: ({NUMBER})")[0] > 0
    assert figures(stdout, rf"^valid pushes not answered 200: ({NUMBER})$") == [0]
    result = read_json(
        tmp / "results" / "auth-flood-latest.json",
        {"plan", "phases", "p99_ratio", "metrics", "service_exit_code"},
    )
    one = result["phases"]["flood_one"]["flood"]
    # The one-address flood is locked out: answered 429 after its allowance of failures.
    assert one["statuses"].get("429", 0) > 0
    assert result["metrics"]["ivmtr_auth_failures_total{feed=bench}"] >= 10
    assert result["metrics"]["ivmtr_auth_throttled_total"] > 0
    assert result["service_exit_code"] in (0, -signal.SIGTERM)


TINY: dict[str, Tiny] = {
    "avro_encoder": Tiny(
        lambda tmp: ["--events=200", "--repeat=1", f"--json={tmp / 'avro_encoder.json'}"],
        check_avro_encoder,
    ),
    "imb_codec": Tiny(
        lambda tmp: ["--n=200", "--repeat=1", f"--json={tmp / 'imb_codec.json'}"],
        check_imb_codec,
    ),
    "message_cost": Tiny(lambda tmp: ["--messages=5", "--events=5"], check_message_cost, True),
    "pipeline": Tiny(
        lambda tmp: [
            "--messages=2",
            "--events=200",
            "--repeat=1",
            f"--cache={tmp / 'cache'}",
            f"--json={tmp / 'pipeline.json'}",
        ],
        check_pipeline,
    ),
    "scaling": Tiny(
        lambda tmp: ["--tiny", f"--results={tmp / 'results'}", f"--cache={tmp / 'cache'}"],
        check_scaling,
        True,
    ),
    "transactions": Tiny(
        lambda tmp: ["--records=600", "--per-transaction=300"], check_transactions, True
    ),
    "run": Tiny(
        run_args,
        check_run(
            {
                "throughput_plain",
                "throughput_gzip",
                "throughput_python",
                "latency_serial",
                "latency",
                "memory",
            }
        ),
        True,
    ),
    "receipts_memory": Tiny(
        lambda tmp: ["--tiny", f"--results={tmp / 'results'}", f"--run-dir={tmp / 'run'}"],
        check_receipts_memory,
        True,
    ),
    "tracker": Tiny(
        lambda tmp: [
            "--scans=3000",
            f"--results={tmp / 'results'}",
            f"--cache={tmp / 'cache'}",
            f"--run-dir={tmp / 'run'}",
        ],
        check_tracker,
        True,
    ),
    "simulate": Tiny(lambda tmp: ["--tiny", f"--results={tmp / 'results'}"], check_simulate),
    "auth_flood": Tiny(
        lambda tmp: ["--tiny", f"--results={tmp / 'results'}", f"--run-dir={tmp / 'run'}"],
        check_auth_flood,
        True,
    ),
    # The old name of run.py, arguments passed on: the cheapest scenario is enough.
    "ingest": Tiny(
        lambda tmp: [*run_args(tmp), "--only=throughput", "--skip-python-path"],
        check_run({"throughput_plain", "throughput_gzip"}),
        True,
    ),
}


def is_script(path: Path) -> bool:
    return re.search(r"^if __name__ == .__main__.:", path.read_text(), re.MULTILINE) is not None


FILES = sorted(BENCH.glob("*.py"))
SCRIPTS = [path.stem for path in FILES if is_script(path)]
ONLY_IMPORTED = [path.stem for path in FILES if not is_script(path)]


def test_every_bench_file_is_covered() -> None:
    assert SCRIPTS, f"no scripts found in {BENCH}"
    untested = sorted(set(SCRIPTS) - TINY.keys())
    assert not untested, f"bench scripts with no tiny run in TINY: {untested}"
    unexplained = sorted(set(ONLY_IMPORTED) - MODULES.keys())
    assert not unexplained, f"bench files with no __main__, not listed in MODULES: {unexplained}"
    stale = sorted((TINY.keys() | MODULES.keys()) - {path.stem for path in FILES})
    assert not stale, f"entries for files that are gone: {stale}"


@pytest.mark.parametrize("name", ONLY_IMPORTED)
def test_module_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    module = importlib.import_module(f"bench.{name}")
    for attribute in getattr(module, "__all__", ()):
        assert hasattr(module, attribute), f"bench/{name}.py: {attribute} in __all__ is missing"


@pytest.fixture(scope="session")
def broker() -> None:
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.fail(f"no Kafka broker at {BOOTSTRAP}: run `scripts/kafka start` (make test does)")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.kafka] if TINY[name].kafka else [])
        for name in SCRIPTS
        if name in TINY
    ],
)
def test_script_runs_tiny(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    tiny = TINY[name]
    if tiny.kafka:
        request.getfixturevalue("broker")
    command = [sys.executable, str(BENCH / f"{name}.py"), *tiny.args(tmp_path)]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    output = f"$ {' '.join(command)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr[-4000:]}"
    assert done.returncode == 0, output
    tiny.check(done.stdout, tmp_path)
