"""``ivmtr-stream tail``: print the decoded records of one topic, as JSON lines or a table.

Arguments become settings (``--config`` of the root command, then the environment, then this
command's options), a topic name and a `TailFilter`; reading and formatting live in
`consumer.tail.reader`. Ctrl-C ends ``--follow`` with status 0.
"""

from __future__ import annotations

import asyncio

import click

from consumer.cli.context import cli_settings
from consumer.service import registered_schemas
from consumer.tail.reader import (
    TailError,
    TailFilter,
    json_line,
    resolve_topic,
    table_header,
    table_row,
    tail_topic,
)

__all__ = ["tail"]

_IMB_LENGTHS = (20, 25, 29, 31)


def _check_imb(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    digits = value.strip()
    if not digits.isdigit() or len(digits) not in _IMB_LENGTHS:
        raise click.BadParameter("IMb digits: 20 (tracking code only), 25, 29 or 31")
    return digits


@click.command("tail")
@click.option(
    "--topic",
    required=True,
    help="Topic name, or its suffix after the prefix (piece-scans, dead-letters, deliveries, ...).",
)
@click.option(
    "--from-beginning", is_flag=True, help="Start at the oldest record instead of the newest."
)
@click.option("--follow", is_flag=True, help="Keep waiting for new records until Ctrl-C.")
@click.option(
    "--max", "max_records", type=click.IntRange(min=1), help="Stop after N matching records."
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
    help="json: one object per line; table: one aligned line per record.",
)
@click.option(
    "--imb",
    callback=_check_imb,
    help="Only this IMb, or every IMb with this 20-digit tracking code.",
)
@click.option("--mid", help="Only this mailer ID (barcode, tray or container label).")
@click.option("--feed", help="Only records pushed to this feed.")
@click.option("--group", help="Only records of this msgGrpId.")
@click.option("--prefix", help="Topic prefix (default IVMTR_TOPIC_PREFIX).")
@click.option(
    "--bootstrap-servers", help="Kafka bootstrap servers (default IVMTR_KAFKA_BOOTSTRAP_SERVERS)."
)
def tail(
    topic: str,
    from_beginning: bool,
    follow: bool,
    max_records: int | None,
    output: str,
    imb: str | None,
    mid: str | None,
    feed: str | None,
    group: str | None,
    prefix: str | None,
    bootstrap_servers: str | None,
) -> None:
    """Print the committed records of a topic: scans, dead letters or delivery receipts.

    Without --follow it stops once it has read up to where the topic ended when it started.
    """
    from producer import TopicTable, TrackTopics

    settings = cli_settings(topic_prefix=prefix, kafka_bootstrap_servers=bootstrap_servers)
    table = [*TopicTable.build(settings.topic_prefix), *TrackTopics.build(settings.topic_prefix)]
    name = resolve_topic(topic, table, settings.topic_prefix)
    where = TailFilter(imb=imb, mid=mid, feed=feed, group=group)
    active = any(v is not None for v in (imb, mid, feed, group))

    async def run() -> None:
        if output == "table":
            click.echo(table_header())
        registry_ids = await registered_schemas(settings, table)
        async for record in tail_topic(
            settings.kafka_bootstrap_servers,
            name,
            table,
            registry_ids=registry_ids,
            from_beginning=from_beginning,
            follow=follow,
            max_records=max_records,
            where=where if active else None,
        ):
            click.echo(table_row(record) if output == "table" else json_line(record)[:-1])

    try:
        asyncio.run(run())
    except TailError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --follow ends
