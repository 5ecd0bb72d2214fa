"""``ivmtr-stream simulate``: play USPS IV-MTR against a feed URL, or write its messages as files.

Arguments become a `MailingSpec` and `PushOptions`; the work is done by
`consumer.simulator.push`, which generates each message as it is sent or written. This module
only adds the terminal: progress from the first message (a bar when stderr is a terminal, log
lines otherwise, see `consumer.cli.progress`), and the summary (text, or one JSON object with
``--json``). Exit status 0 only when every message was delivered (or written).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import orjson

from consumer.cli.context import cli_settings
from consumer.cli.progress import progress
from consumer.simulator.generate import MailingSpec
from consumer.simulator.push import (
    DeliverySummary,
    MessageResult,
    PushOptions,
    RetryPolicy,
    fresh_message_group_id,
    mailing_messages,
    push_messages,
    write_messages,
)

__all__ = ["simulate"]


@click.command("simulate")
@click.option(
    "--url",
    metavar="URL",
    help="The full feed URL to push to, e.g. http://127.0.0.1:8080/v1/feeds/demo.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the messages to this directory (<msgGrpId>-<msgSerNbr>.json) instead of pushing.",
)
@click.option(
    "--pieces",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Mail pieces in the mailing; each gives about 5.5 records.",
)
@click.option(
    "--mids",
    default="902345678,123456",
    show_default=True,
    help="Comma-separated mailer IDs; each gets one eDoc job.",
)
@click.option(
    "--message-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Records per message.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Messages per second; 0 = as fast as the service answers.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Messages in flight at once.",
)
@click.option(
    "--gzip", "gzipped", is_flag=True, help="gzip bodies (Content-Encoding: gzip), or .json.gz."
)
@click.option("--user", help="HTTP Basic user.")
@click.option("--password", help="HTTP Basic password; asked for when --user comes without it.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mailing.")
@click.option(
    "--msg-grp-id",
    help="msgGrpId of the messages. Default: a new one per run, as IV-MTR does; pass an old one "
    "to re-send a group (the service reports duplicates).",
)
@click.option(
    "--attempts",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Tries per message on 503/429/connection errors.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds per request.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
def simulate(
    ctx: click.Context,
    url: str | None,
    out: Path | None,
    pieces: int,
    mids: str,
    message_size: int,
    rate: float,
    concurrency: int,
    gzipped: bool,
    user: str | None,
    password: str | None,
    seed: int,
    msg_grp_id: str | None,
    attempts: int,
    timeout: float,
    as_json: bool,
) -> None:
    """Play USPS IV-MTR: generate a mailing's scans and push them as one message group.

    Messages are generated as they are sent (or written), so memory holds only those in
    flight, whatever --pieces is; the summary says how long generating took.
    """
    if (url is None) == (out is None):
        raise click.UsageError("give exactly one of --url and --out")
    if password is not None and user is None:
        raise click.UsageError("--password needs --user")
    if user is not None and password is None and url is not None:
        password = click.prompt(f"Password for {user}", hide_input=True, err=True)
    try:
        spec = MailingSpec(
            pieces=pieces,
            mailer_ids=tuple(m.strip() for m in mids.split(",") if m.strip()),
            seed=seed,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--pieces/--mids") from exc
    messages = mailing_messages(
        spec, message_size=message_size, msg_grp_id=msg_grp_id or fresh_message_group_id()
    )
    from consumer.logging import configure_logging  # imports aiokafka: only when it runs

    settings = cli_settings()
    configure_logging(settings.log_level, settings.log_format)  # progress lines off a terminal

    with progress(task="writing" if out is not None else "pushing", unit="rec") as shown:

        def on_result(result: MessageResult) -> None:
            # Counting the records is part of the run (and of its generating time), so the
            # total is known once the first message is done; it is cached by then.
            shown.total = messages.total_records
            shown.update(result.records)

        if out is not None:
            summary = write_messages(messages, out, gzipped=gzipped, on_result=on_result)
        else:
            assert url is not None
            options = PushOptions(
                gzip=gzipped,
                auth=(user, password or "") if user is not None else None,
                rate=rate,
                concurrency=concurrency,
                timeout_s=timeout,
                retry=RetryPolicy(attempts=attempts),
            )
            try:
                summary = asyncio.run(push_messages(messages, url, options, on_result=on_result))
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                ctx.exit(130)

    for error in summary.errors:  # stderr, so that --json output stays one object
        click.echo(f"error: {error}", err=True)
    if as_json:
        click.echo(orjson.dumps(summary.as_json()).decode())
    else:
        click.echo(render_summary(summary, wrote=out is not None))
    ctx.exit(0 if summary.ok else 1)


def render_summary(summary: DeliverySummary, *, wrote: bool = False) -> str:
    """The summary as a few lines for people (errors are printed apart)."""
    verb = "wrote" if wrote else "delivered"
    lines = [
        f"{verb} {summary.delivered}/{summary.messages} messages, {summary.records:,} records, "
        f"{summary.bytes:,} bytes in {summary.seconds:.2f} s "
        f"({summary.records_per_s:,.0f} records/s)",
        f"generating the messages took {summary.generating_seconds:.2f} s of it",
        f"msgGrpId {', '.join(summary.msg_grp_ids)}",
    ]
    if not wrote:
        lines.append(
            f"retries {summary.retries}, duplicates {summary.duplicates}, "
            f"failures {summary.failures}, not sent {summary.not_sent}"
        )
    return "\n".join(lines)
