"""``ivmtr-stream simulate --out DIR`` at scale: how soon progress shows, and peak memory.

    .venv/bin/python bench/simulate.py [--pieces N] [--before TREE] [--results DIR] [--tiny]

Runs ``ivmtr-stream simulate --pieces N --out <temporary dir> --json`` with stderr a pipe (so
progress, where the code has any off a terminal, comes as log lines) for each code tree: this
checkout and, with ``--before``, another one (e.g. a worktree of an older commit,
``git worktree add /tmp/sim-before <commit>``), whose code is put first on ``PYTHONPATH`` and run
by the same interpreter, one after the other on the same machine. For each run it reports:

* ``first_progress_s``: seconds from spawning the process to its first progress line on stderr
  (``null`` when it printed none), and ``first_progress_in_command_s``: the ``elapsed_s`` that
  line states, counted from the command's start (after start-up and imports);
* ``first_message_s``: seconds to the first message file appearing in the directory;
* ``wall_s`` and ``peak_rss_mb`` (the child's ``ru_maxrss`` from ``os.wait4``);
* the command's own JSON summary (messages, records, seconds, generating_seconds if reported).

Both times include starting the interpreter and importing the CLI, measured apart as
``startup_s`` (``ivmtr-stream --version``). Writes the result as JSON to ``--results``
(``bench/results/``): ``simulate-<UTC timestamp>.json`` and ``simulate-latest.json``.
``--tiny`` (500 pieces) checks that it runs; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = "from consumer.cli.main import main; main()"


def run_simulate(tree: Path, pieces: int, out: Path) -> dict[str, Any]:
    """One ``simulate --out`` run of the code in `tree`, watched from outside."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env = {k: v for k, v in env.items() if not k.startswith("IVMTR_")}
    command = [sys.executable, "-c", CLI, "simulate", "--pieces", str(pieces)]
    command += ["--out", str(out), "--json"]
    started = time.monotonic()
    child = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first_progress: list[float] = []
    first_line: list[dict[str, Any]] = []
    stderr_lines: list[str] = []

    def read_stderr() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            if not first_progress and '"progress' in line:
                first_progress.append(time.monotonic() - started)
                with contextlib.suppress(json.JSONDecodeError):
                    first_line.append(json.loads(line))
            stderr_lines.append(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    stdout: list[str] = []
    collector = threading.Thread(
        target=lambda: stdout.append(child.stdout.read() if child.stdout else ""), daemon=True
    )
    collector.start()
    first_message: float | None = None
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if first_message is None and out.is_dir() and any(out.iterdir()):
            first_message = time.monotonic() - started
        time.sleep(0.01)
    wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    collector.join()
    try:
        summary = json.loads(stdout[0]) if stdout and stdout[0].strip() else {}
    except json.JSONDecodeError:
        summary = {"unparsed": stdout[0][-500:]}
    return {
        "tree": str(tree),
        "exit_code": child.returncode,
        "first_progress_s": round(first_progress[0], 3) if first_progress else None,
        "first_progress_in_command_s": first_line[0].get("elapsed_s") if first_line else None,
        "first_message_s": round(first_message, 3) if first_message is not None else None,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "progress_lines": sum('"progress' in line for line in stderr_lines),
        "summary": {k: v for k, v in summary.items() if k not in ("errors", "msg_grp_ids")},
    }


def startup_seconds(tree: Path) -> float:
    """Starting the interpreter and importing the CLI, which every run pays first."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", CLI, "--version"], cwd=tree, env=env, check=True, capture_output=True
    )
    return round(time.monotonic() - started, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pieces", type=int, default=50_000)
    parser.add_argument("--before", type=Path, help="another checkout to run first, for comparison")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tiny", action="store_true", help="500 pieces: checks that it runs")
    args = parser.parse_args()
    pieces = 500 if args.tiny else args.pieces
    trees = [("before", args.before.resolve())] if args.before else []
    trees.append(("after", ROOT))
    runs: dict[str, Any] = {}
    for label, tree in trees:
        with tempfile.TemporaryDirectory(prefix="bench-simulate-") as scratch:
            run = run_simulate(tree, pieces, Path(scratch) / "out")
        run["startup_s"] = startup_seconds(tree)
        runs[label] = run
        print(
            f"{label:6} first progress {run['first_progress_s']} s "
            f"({run['first_progress_in_command_s']} s into the command), first message "
            f"{run['first_message_s']} s, wall {run['wall_s']} s, peak RSS "
            f"{run['peak_rss_mb']} MB (start-up alone {run['startup_s']} s); "
            f"summary {run['summary']}"
        )
    result = {
        "benchmark": "simulate",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pieces": pieces,
        "command": "ivmtr-stream simulate --pieces N --out DIR --json (stderr a pipe)",
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "runs": runs,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"simulate-{stamp}.json", "simulate-latest.json"):
        (args.results / name).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(run["exit_code"] == 0 for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
