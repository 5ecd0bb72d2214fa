"""``ivmtr-stream backfill``: fetch pieces' scans from the Mail Tracking API into the topics."""

from __future__ import annotations

import asyncio
import sys
from typing import IO

import click
import orjson

from consumer.cli.api import api_options, api_settings
from consumer.cli.context import cli_settings
from consumer.cli.progress import progress

__all__ = ["backfill_command"]


@click.command("backfill")
@click.option(
    "--imbs",
    "imbs_file",
    type=click.File("r"),
    required=True,
    help="File of full IMbs, one per line ('-' for standard input).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Pieces fetched and published at once (IVMTR_API_CONCURRENCY; default 4).",
)
@click.option("--feed", default="api", show_default=True, help="Feed name on the events.")
@api_options
def backfill_command(
    imbs_file: IO[str], concurrency: int | None, feed: str, **options: str | None
) -> None:
    """Publish the API's scans of each IMb as ordinary scan events (source API).

    Event ids are the same as for the same scans pushed by IV-MTR, so subscribers can
    drop repeats. Exit code 1 when any piece could not be fetched or published.
    """
    from consumer.api.client import MailTrackingClient
    from consumer.ingest.backfill import backfill
    from consumer.ingest.routing import Routing
    from consumer.logging import configure_logging
    from consumer.service import kafka_config, record_shapes
    from producer import Publisher, TopicTable

    settings = cli_settings()
    configure_logging(settings.log_level, settings.log_format)  # progress lines off a terminal
    config = api_settings({**options, "concurrency": concurrency})
    imbs = [line.strip() for line in imbs_file if line.strip()]
    topics = TopicTable.build(settings.topic_prefix)

    async def run() -> dict[str, object]:
        publisher = Publisher(
            kafka_config(settings),
            topics,
            transactional_id_prefix=settings.transactional_id_prefix,
            timeout_s=settings.kafka_timeout_s,
        )
        with progress(task="backfill", unit="piece", total=len(imbs)) as shown:
            async with publisher, MailTrackingClient(config) as client:
                summary = await backfill(
                    imbs,
                    client=client,
                    publisher=publisher,
                    route=Routing(topics).route(feed),
                    shapes=record_shapes(),
                    concurrency=config.concurrency,
                    on_piece=lambda _: shown.update(),
                )
        return summary.as_json()

    result = asyncio.run(run())
    click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if result["failed"]:
        sys.exit(1)
