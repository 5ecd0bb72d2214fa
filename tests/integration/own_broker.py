"""A Kafka broker of a test's own, for tests that stop, freeze or kill the broker.

The broker on 127.0.0.1:9092 is shared by every test and by whoever else works on the
machine: a fault test must never stop it. ``OwnBroker`` runs ``scripts/kafka`` with its
own ports and state directory (``KAFKA_PORT``, ``KAFKA_CONTROLLER_PORT``, ``KAFKA_WORK``)
over the jars ``scripts/kafka deps`` already fetched, and the ``own_broker`` fixture
always stops it at the end, whatever the test did to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, free_port

__all__ = ["OwnBroker", "own_broker"]

SCRIPT = ROOT / "scripts" / "kafka"
# The shared broker's ports: never ours, even if they happen to be free.
_SHARED_PORTS = frozenset({9092, 9093})


def _free_port_pair() -> tuple[int, int]:
    while True:
        client, controller = free_port(), free_port()
        if client != controller and not {client, controller} & _SHARED_PORTS:
            return client, controller


class OwnBroker:
    """One single-node broker on free ports, its state under ``work``."""

    def __init__(self, work: Path) -> None:
        self.port, self.controller_port = _free_port_pair()
        self.work = work
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._frozen = False

    def _script(self, action: str, timeout_s: float = 180) -> str:
        environment = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_WORK": str(self.work),
            # Two cores shared with the test's service: a small heap starts faster.
            "KAFKA_HEAP": "-Xms128m -Xmx512m",
        }
        done = subprocess.run(
            [str(SCRIPT), action],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode not in (0, 1) or (action != "status" and done.returncode):
            raise RuntimeError(f"scripts/kafka {action} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    @property
    def pid(self) -> int:
        """The broker JVM's pid (as scripts/kafka recorded it)."""
        return int((self.work / "kafka.pid").read_text().split()[0])

    def start(self) -> None:
        """Start the broker (keeping its data) and wait until it serves requests."""
        self._script("start")

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM, scripts/kafka stop); its data stays."""
        self.thaw()  # a frozen JVM cannot run its shutdown hook
        self._script("stop")

    def running(self) -> bool:
        """Whether the broker process is up (frozen counts as up)."""
        return self._script("status").startswith("running")

    def freeze(self) -> None:
        """SIGSTOP the broker: connections stay open, nothing is answered (a long GC
        pause, or a network partition, as a client sees it)."""
        os.kill(self.pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT a frozen broker; a no-op otherwise."""
        if self._frozen:
            os.kill(self.pid, signal.SIGCONT)
            self._frozen = False


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    """A started broker of this test's own; stopped (thawed first) however the test ends."""
    broker = OwnBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
