"""`ivmtr-stream serve`: how the command hands the built app to uvicorn."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from consumer.cli import main


@pytest.fixture
def server_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Stands in for uvicorn's serving loop; records what the loop would have started with."""
    for name in list(os.environ):
        if name.startswith("IVMTR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IVMTR_INSECURE_DEV_MODE", "true")
    runs: list[dict[str, Any]] = []

    def run(server: uvicorn.Server, sockets: object = None) -> None:
        app = server.config.app
        runs.append(
            {
                "frozen": gc.get_freeze_count(),
                "app_tracked": any(o is app for o in gc.get_objects()),
                "loop": server.config.loop,
            }
        )

    monkeypatch.setattr(uvicorn.Server, "run", run)
    try:
        yield runs
    finally:
        gc.unfreeze()  # this test process keeps running other tests


def test_serve_freezes_the_built_heap_before_serving(server_runs: list[dict[str, Any]]) -> None:
    gc.unfreeze()
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    (run,) = server_runs
    # Everything built before serving (modules, schemas, the app) is out of the
    # collector's reach: full collections under load no longer walk it.
    assert run["frozen"] > 10_000
    assert not run["app_tracked"]
    assert run["loop"] == "uvloop"


def test_workers_hand_uvicorns_supervisor_a_factory_and_each_worker_rebuilds_the_settings(
    server_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from consumer.cli import workers

    started: list[tuple[uvicorn.Config, list[Any]]] = []

    class Supervisor:
        def __init__(self, config: uvicorn.Config, sockets: list[Any]) -> None:
            started.append((config, sockets))

        def run(self) -> None:
            for sock in started[-1][1]:
                sock.close()

    monkeypatch.setattr(workers, "Multiprocess", Supervisor)
    config_file = tmp_path / "ivmtr.toml"
    config_file.write_text('topic_prefix = "acme."\nreplica_id = "east"\n')
    # Recorded, so that what serve sets for its workers is undone after the test.
    monkeypatch.setenv(workers._WORKER_SPEC, "")
    result = CliRunner().invoke(
        main, ["--config", str(config_file), "serve", "--port", "0", "--workers", "3"]
    )
    assert result.exit_code == 0, result.output
    assert server_runs == []  # the parent serves nothing itself
    ((config, sockets),) = started
    assert config.workers == 3 and config.factory is True
    assert config.app == "consumer.cli.workers:worker_app"
    assert len(sockets) == 1
    # In a worker: the parent's file and command-line values, and a replica id of its own.
    settings = workers.worker_settings()
    assert (settings.topic_prefix, settings.port, settings.workers) == ("acme.", 0, 3)
    assert settings.replica_id == f"east-{os.getpid()}"
    # The TLS floor holds in every worker: each loads the config class itself.
    assert isinstance(config, workers.ServerConfig)


def test_a_bad_setting_stops_serve_once_before_any_worker_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("IVMTR_"):
            monkeypatch.delenv(name)
    # No feeds file and no insecure mode: the service refuses to start.
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--workers", "2"])
    assert result.exit_code != 0
    assert "feeds" in result.output.lower()
