"""``backfill`` off a terminal: progress as log lines, per piece, from the first one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import pytest
import structlog
from click.testing import CliRunner

import consumer.api.client
import consumer.ingest.backfill
import producer
from consumer.cli.backfill import backfill_command
from consumer.ingest.backfill import BackfillSummary

IMBS = [f"{n:031d}" for n in range(1, 6)]


class Entered:
    """Stands in for the publisher and the API client: only entered and left."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def __aenter__(self) -> Entered:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


async def fake_backfill(
    imbs: Iterable[str], *, on_piece: Callable[[str], None] | None = None, **_: Any
) -> BackfillSummary:
    summary = BackfillSummary()
    for imb in imbs:
        summary.pieces += 1
        if on_piece is not None:
            on_piece(imb)
    return summary


@pytest.fixture
def no_kafka_no_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(producer, "Publisher", Entered)
    monkeypatch.setattr(consumer.api.client, "MailTrackingClient", Entered)
    monkeypatch.setattr(consumer.ingest.backfill, "backfill", fake_backfill)
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**config)
    root.handlers = handlers
    root.setLevel(level)


def test_backfill_logs_progress_per_piece_off_a_terminal(no_kafka_no_api: None) -> None:
    result = CliRunner().invoke(
        backfill_command,
        ["--imbs", "-", "--username", "u"],
        input="\n".join(IMBS) + "\n",
        env={"IVMTR_API_PASSWORD": "p", "IVMTR_LOG_FORMAT": "json", "IVMTR_LOG_LEVEL": "INFO"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["pieces"] == len(IMBS)
    lines = [orjson.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    shown = [line for line in lines if line.get("task") == "backfill"]
    assert [(line["event"], line["done"]) for line in (shown[0], shown[-1])] == [
        ("progress", 1),
        ("progress done", len(IMBS)),
    ]
    assert {line["total"] for line in shown} == {len(IMBS)} and shown[0]["unit"] == "piece"
