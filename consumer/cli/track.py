"""``track`` runs the piece tracker; ``piece-status`` prints one piece's status."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click
import orjson

from consumer.cli.context import cli_settings

__all__ = ["piece_status_command", "track_command"]


@click.command("track")
@click.option(
    "--port", type=int, default=None, help="Port of /metrics and health (IVMTR_TRACK_PORT)."
)
def track_command(port: int | None) -> None:
    """Track every piece: statuses to <prefix>piece-status, alerts to <prefix>alerts.

    Joins the tracker group (IVMTR_TRACK_GROUP_ID) over the piece and bundle scan topics;
    run as many as there are partitions to share the work.
    """
    from consumer.logging import configure_logging
    from consumer.track.service import TrackService
    from consumer.track.tracker import TrackerError

    settings = cli_settings(track_port=port)
    configure_logging(settings.log_level, settings.log_format)
    service = TrackService(settings)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        try:
            await service.start()
            running = asyncio.create_task(service.run())
            waiting = asyncio.create_task(stopping.wait())
            done, _ = await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if running in done:
                running.result()
            waiting.cancel()
        finally:
            await service.stop()
            if "running" in locals():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    try:
        asyncio.run(run())
    except TrackerError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("piece-status")
@click.argument("imb")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
    help="One JSON object, or a table for people.",
)
def piece_status_command(imb: str, fmt: str) -> None:
    """Print the status of the piece with this IMb (or its 20-digit tracking code).

    IMB is the piece's Intelligent Mail barcode as 20, 25, 29 or 31 digits.
    """
    from consumer.track.lookup import PieceNotTracked, format_status, piece_status

    digits = "".join(c for c in imb if c.isdigit())
    if len(digits) not in (20, 25, 29, 31) or len(digits) != len(imb.strip()):
        raise click.BadParameter("give the IMb's 20, 25, 29 or 31 digits", param_hint="IMB")
    settings = cli_settings()
    try:
        status = asyncio.run(piece_status(settings, digits[:20]))
    except PieceNotTracked as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "json":
        click.echo(orjson.dumps(status, default=str, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_status(status))
