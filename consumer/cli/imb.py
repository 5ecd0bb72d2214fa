"""``ivmtr-stream imb``: encode and decode Intelligent Mail barcodes from the shell.

Each command takes one value as arguments, or with none reads one value per
line from stdin and writes exactly one line per input line, so the output
lines up with the input. Bad values are reported on their own line and make
the command exit with status 1 once all lines are done.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import click
import orjson

from consumer.core.imb import IMbError, decode_imb, encode_imb, split_imb

__all__ = ["imb"]


@click.group("imb")
def imb() -> None:
    """Encode and decode Intelligent Mail barcodes (USPS-B-3200)."""


@imb.command("encode")
@click.argument("tracking", required=False)
@click.argument("routing", required=False, default="")
@click.pass_context
def encode(ctx: click.Context, tracking: str | None, routing: str) -> None:
    """Print the 65 F/A/D/T bars of TRACKING (20 digits) and ROUTING (0/5/9/11 digits).

    Without arguments, read TRACKING<TAB>ROUTING lines from stdin (the routing
    code may be empty, or the tab missing; spaces around fields are ignored)
    and print one bar string, or "ERROR: <reason>", per line.
    """
    if tracking is not None:
        try:
            click.echo(encode_imb(tracking, routing))
        except IMbError as exc:
            click.echo(f"ERROR: {exc}", err=True)
            ctx.exit(1)
        return
    failed = False
    for line in _stdin_lines():
        tracking_field, _, routing_field = line.partition("\t")
        try:
            click.echo(encode_imb(tracking_field.strip(), routing_field.strip()))
        except IMbError as exc:
            failed = True
            click.echo(f"ERROR: {exc}")
    if failed:
        ctx.exit(1)


@imb.command("decode")
@click.argument("value", required=False)
@click.pass_context
def decode(ctx: click.Context, value: str | None) -> None:
    """Print the fields of VALUE as one JSON object.

    VALUE is 65 bars (letters F, A, D, T; repaired if one bar is damaged, read
    upside down if need be) or, when it starts with a digit, the 20, 25, 29 or
    31 IMb digits. Without VALUE, decode one value per line of stdin. A bad
    value prints {"error": ..., "code": ...} on its line.
    """
    values = [value] if value is not None else _stdin_lines()
    failed = False
    for item in values:
        try:
            result = _decode_value(item.strip())
        except IMbError as exc:
            failed = True
            result = {"error": str(exc), "code": exc.code}
        click.echo(orjson.dumps(result).decode())
    if failed:
        ctx.exit(1)


def _decode_value(value: str) -> dict[str, Any]:
    if value[:1].isdigit():
        return split_imb(value).fields()
    decoded = decode_imb(value)
    return {
        **decoded.imb.fields(),
        "upside_down": decoded.upside_down,
        "repaired_bar": decoded.repaired_bar,
    }


def _stdin_lines() -> Iterable[str]:
    # Only the line ending goes: an empty or blank line is still a (bad) value.
    for line in sys.stdin:
        yield line.rstrip("\r\n")
