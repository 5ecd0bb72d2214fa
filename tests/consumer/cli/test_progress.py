"""Progress: a bar on a terminal; elsewhere log lines from the first unit of work, then periodic."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from click.testing import CliRunner

from consumer.cli.progress import ProgressBar, ProgressLog, progress
from consumer.cli.simulate import simulate


class Lines:
    """A logger that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, **fields})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Undo the command's logging set-up: it points structlog at CliRunner's stderr."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**config)
    root.handlers = handlers
    root.setLevel(level)


def test_first_unit_of_work_is_logged_at_once_with_rate_and_eta() -> None:
    logger, clock = Lines(), Clock()
    shown = ProgressLog(
        task="pushing", unit="rec", total=100, every_s=3600, logger=logger, clock=clock
    )
    assert logger.lines == []
    clock.now = 10.0
    shown.update(50)
    shown.update(10)  # within the period: no line
    assert logger.lines == [
        {
            "event": "progress",
            "task": "pushing",
            "done": 50,
            "total": 100,
            "unit": "rec",
            "rate_per_s": 5.0,
            "elapsed_s": 10.0,
            "eta_s": 10.0,
        }
    ]
    clock.now = 12.0
    shown.close()
    shown.close()  # once only
    assert logger.lines[1:] == [
        {
            "event": "progress done",
            "task": "pushing",
            "done": 60,
            "total": 100,
            "unit": "rec",
            "rate_per_s": 5.0,
            "elapsed_s": 12.0,
        }
    ]


def test_lines_keep_coming_every_period_even_when_work_stalls() -> None:
    logger = Lines()
    shown = ProgressLog(task="backfill", unit="piece", total=None, every_s=0.02, logger=logger)
    shown.update(3)
    deadline = time.monotonic() + 10
    while len(logger.lines) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    shown.close()
    events = [line["event"] for line in logger.lines]
    assert len(events) >= 5 and set(events[:-1]) == {"progress"} and events[-1] == "progress done"
    assert all(line["done"] == 3 and line["total"] is None for line in logger.lines)
    assert not any("eta_s" in line for line in logger.lines)  # no total, no ETA


def test_a_terminal_gets_a_bar_anything_else_log_lines() -> None:
    terminal = Terminal()
    with progress(task="writing", unit="rec", file=terminal) as shown:
        assert isinstance(shown, ProgressBar)
        shown.total = 7
        shown.update(7)
    assert "writing: 100%" in terminal.getvalue() and "7.00/7.00" in terminal.getvalue()
    with progress(task="writing", unit="rec", total=7, file=io.StringIO()) as shown:
        assert isinstance(shown, ProgressLog)


def test_simulate_off_a_terminal_logs_progress_from_the_first_message(
    tmp_path: Path, restored_logging: None
) -> None:
    result = CliRunner().invoke(
        simulate,
        ["--out", str(tmp_path), "--pieces", "30", "--message-size", "40"],
        env={"IVMTR_LOG_FORMAT": "json", "IVMTR_LOG_LEVEL": "INFO"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    progress_lines = [line for line in lines if line.get("task") == "writing"]
    first, last = progress_lines[0], progress_lines[-1]
    records = sum(len(orjson.loads(p.read_bytes())["events"]) for p in tmp_path.iterdir())
    assert (first["event"], first["done"], first["total"]) == ("progress", 40, records)
    assert (last["event"], last["done"], last["total"]) == ("progress done", records, records)
    assert "generating the messages took" in result.stdout
