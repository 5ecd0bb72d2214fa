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
