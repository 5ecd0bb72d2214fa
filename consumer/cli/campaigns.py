"""``ivmtr-stream campaigns``: the campaign and job report, as a table, JSON or an HTML page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from consumer.cli.context import cli_settings
from consumer.core.report import TABLE_COLUMNS, CampaignReport, ReportRow
from consumer.core.report_page import ReportSource, render_report_page

__all__ = ["campaigns_command", "format_rows"]


def format_rows(rows: list[ReportRow]) -> str:
    """The report as an aligned text table, one line per campaign and job."""
    lines = [TABLE_COLUMNS, *(row.table_cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_COLUMNS))]
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
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or one JSON object.",
)
@click.option(
    "--source",
    type=click.Choice(["status", "scans"]),
    default="status",
    show_default=True,
    help="status: each piece's status, kept by `ivmtr-stream track`; scans: replay every "
    "piece scan (no tracker needed; delivered then means a logical delivery event).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the report as one self-contained HTML page to this file: per campaign "
    "and job, the share delivered by day and the pieces by last mail phase as charts, and "
    "the table (opens offline: no script, nothing fetched).",
)
def campaigns_command(fmt: str, source: str, html_path: Path | None) -> None:
    """Per campaign and eDoc job: pieces, first and last scan, pieces delivered, share by day.

    Reads the piece-status topic (one record per piece), or with --source scans every
    committed event of the piece-scan topic. With --html FILE, writes the report as an
    HTML page with charts as well.
    """
    from consumer.service import registered_schemas
    from consumer.tail.reader import tail_topic
    from consumer.track.lookup import PieceNotTracked, latest_statuses
    from producer import TopicTable, TrackTopics

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
    if html_path is not None:
        if source == "status":
            read_from = ReportSource(
                TrackTopics.build(settings.topic_prefix).piece_status.name,
                "each piece's latest status, kept by ivmtr-stream track",
            )
        else:
            read_from = ReportSource(
                topics.piece_scans.name,
                "every piece scan replayed (delivered: a logical delivery event)",
            )
        page = render_report_page(rows, source=read_from, generated_at=datetime.now(UTC))
        try:
            html_path.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {html_path}: {exc.strerror}") from exc
        click.echo(f"wrote {html_path} ({len(rows)} campaign and job rows)", err=True)
