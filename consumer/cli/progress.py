"""Progress of a long-running command: a bar on a terminal, periodic log lines anywhere else.

A tqdm bar on a pipe, a file or a container log is a stream of carriage returns nobody reads,
and an unattended run that prints nothing until it ends looks hung. So when stderr is not a
terminal, `ProgressLog` writes one structlog line when the first unit of work is done, then one
every ``every_s`` seconds (done, total, rate, ETA) from a small timer thread, so a stalled run
keeps saying where it stands, and a last line when the work ends.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any, Protocol, TextIO

import structlog
from tqdm import tqdm

__all__ = ["DEFAULT_EVERY_S", "Progress", "ProgressBar", "ProgressLog", "progress"]

DEFAULT_EVERY_S = 10.0


class Progress(Protocol):
    """Counts units of work done; `total` may become known only once the work has started."""

    total: int | None

    def update(self, done: int = 1) -> None: ...

    def close(self) -> None: ...


class ProgressBar:
    """A tqdm bar on `file` (a terminal)."""

    def __init__(self, *, task: str, unit: str, total: int | None, file: TextIO) -> None:
        self._bar = tqdm(total=total, unit=unit, unit_scale=True, desc=task, file=file)

    @property
    def total(self) -> int | None:
        total = self._bar.total
        return int(total) if total is not None else None

    @total.setter
    def total(self, value: int | None) -> None:
        self._bar.total = value
        self._bar.refresh()

    def update(self, done: int = 1) -> None:
        self._bar.update(done)

    def close(self) -> None:
        self._bar.close()


class ProgressLog:
    """Log lines ``event="progress"`` as the work goes, and ``event="progress done"`` at the end.

    Each line carries `task`, ``done``, ``total``, `unit`, ``rate_per_s``, ``elapsed_s`` and,
    once the total is known and work is moving, ``eta_s``.
    """

    def __init__(
        self,
        *,
        task: str,
        unit: str,
        total: int | None,
        every_s: float = DEFAULT_EVERY_S,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every_s <= 0:
            raise ValueError("every_s must be > 0")
        self.task, self.unit, self.total = task, unit, total
        self.done = 0
        self._every_s = every_s
        self._logger = logger if logger is not None else structlog.get_logger("consumer.progress")
        self._clock = clock
        self._started = clock()
        self._closed = threading.Event()
        self._timer = threading.Thread(target=self._tick, name=f"progress-{task}", daemon=True)
        self._timer.start()

    def update(self, done: int = 1) -> None:
        first = self.done == 0 and done > 0
        self.done += done
        if first:  # the first sign of life comes at once, not a period later
            self._log("progress")

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._timer.join()
        self._log("progress done")

    def _tick(self) -> None:
        while not self._closed.wait(self._every_s):
            self._log("progress")

    def _log(self, event: str) -> None:
        elapsed = self._clock() - self._started
        done, total = self.done, self.total
        rate = done / elapsed if elapsed > 0 else 0.0
        fields: dict[str, Any] = {
            "task": self.task,
            "done": done,
            "total": total,
            "unit": self.unit,
            "rate_per_s": round(rate, 1),
            "elapsed_s": round(elapsed, 2),
        }
        if total is not None and rate > 0 and event == "progress":
            fields["eta_s"] = round(max(0, total - done) / rate, 1)
        self._logger.info(event, **fields)


def progress(
    *,
    task: str,
    unit: str,
    total: int | None = None,
    file: TextIO | None = None,
    every_s: float = DEFAULT_EVERY_S,
) -> closing[Progress]:
    """``with progress(...) as p:`` a bar when `file` (stderr) is a terminal, else log lines.

    Log lines go through structlog: configure logging first (`consumer.logging`).
    """
    stream = file if file is not None else sys.stderr
    if stream.isatty():
        bar: Progress = ProgressBar(task=task, unit=unit, total=total, file=stream)
        return closing(bar)
    log: Progress = ProgressLog(task=task, unit=unit, total=total, every_s=every_s)
    return closing(log)
