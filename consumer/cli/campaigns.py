"""``ivmtr-stream campaigns``: the campaign and job report, read from the piece-scan topic."""

from __future__ import annotations

import asyncio

import click
import orjson

from consumer.cli.context import cli_settings
from consumer.core.report import CampaignReport, ReportRow

__all__ = ["campaigns_command", "format_rows"]


def format_rows(rows: list[ReportRow]) -> str:
    """The report as an aligned text table, one line per campaign and job."""
    header = (
        "campaign",
        "job",
        "pieces",
        "first scan (UTC)",
        "last scan (UTC)",
        "delivered",
        "share",
    )
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.campaign or "-",
                row.job_id or "-",
                str(row.pieces),
                row.first_scan.strftime("%Y-%m-%d %H:%M") if row.first_scan else "-",
                row.last_scan.strftime("%Y-%m-%d %H:%M") if row.last_scan else "-",
                str(row.delivered),
                f"{row.delivered_share:.1%}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    ]
    for row in rows:
        if row.delivered_by_day:
            days = ", ".join(f"{day} {share:.0%}" for day, _, share in row.delivered_by_day)
            text.append(f"{row.campaign or '-'} / {row.job_id or '-'} delivered by day: {days}")
    return "\n".join(text)


@click.command("campaigns")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--source",
    type=click.Choice(["status", "scans"]),
    default="status",
    show_default=True,
    help="status: each piece's status, kept by `ivmtr-stream track`; scans: replay every "
    "piece scan (no tracker needed; delivered then means a logical delivery event).",
)
def campaigns_command(fmt: str, source: str) -> None:
    """Per campaign and eDoc job: pieces, first and last scan, pieces delivered, share by day.

    Reads the piece-status topic (one record per piece), or with --source scans every
    committed event of the piece-scan topic.
    """
    from consumer.service import registered_schemas
    from consumer.tail.reader import tail_topic
    from consumer.track.lookup import PieceNotTracked, latest_statuses
    from producer import TopicTable

    settings = cli_settings()
    topics = TopicTable.build(settings.topic_prefix)
    report = CampaignReport()

    async def run() -> None:
        if source == "status":
            for status in (await latest_statuses(settings)).values():
                report.add_status(status)
            return
        registry_ids = await registered_schemas(settings, topics)
        async for record in tail_topic(
            settings.kafka_bootstrap_servers,
            topics.piece_scans.name,
            topics,
            from_beginning=True,
            registry_ids=registry_ids,
        ):
            report.add(record.value)

    try:
        asyncio.run(run())
    except PieceNotTracked as exc:
        raise click.ClickException(f"{exc}; or read the scans: --source scans") from exc
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = report.rows()
    if fmt == "json":
        click.echo(
            orjson.dumps([row.as_json() for row in rows], option=orjson.OPT_INDENT_2).decode()
        )
    else:
        click.echo(format_rows(rows))
