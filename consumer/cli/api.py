"""``piece``, ``lookup`` and ``api-emulator``: the IV-MTR Mail Tracking API from the shell.

API settings are ``consumer.api.settings.ApiSettings``: options override ``IVMTR_API_*``
environment variables (the README's Configuration lists them all)::

    IVMTR_API_USERNAME      BCG user with IV-MTR API access       (--username)
    IVMTR_API_PASSWORD      its password (environment only: kept out of argv)
    IVMTR_API_ENVIRONMENT   production (default) or cat            (--environment)
    IVMTR_API_URL           Mail Tracking API base URL override    (--api-url)
    IVMTR_API_AUTH_URL      OAuth base URL override                (--auth-url)

Exit status: 0 success, 1 not found or an API failure, 2 a refused query or bad settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import click
import orjson
import structlog

from consumer.api.client import ENVIRONMENTS, ApiConfig, MailTrackingClient
from consumer.api.models import ApiError, Piece, PieceNotFound, RuleViolation
from consumer.api.rules import no_single_piece_data
from consumer.api.settings import ApiSettings, ApiSettingsError, load_api_settings

__all__ = ["api", "api_emulator", "api_options", "api_settings", "lookup", "piece"]

ENV_USERNAME = ApiSettings.env_name("username")
ENV_PASSWORD = ApiSettings.env_name("password")
ENV_ENVIRONMENT = ApiSettings.env_name("environment")
ENV_API_URL = ApiSettings.env_name("api_url")
ENV_AUTH_URL = ApiSettings.env_name("auth_url")

_F = TypeVar("_F", bound=Callable[..., Any])


def api_options(command: _F) -> _F:
    options = [
        click.option("--username", default=None, help=f"BCG user name ({ENV_USERNAME})."),
        click.option(
            "--environment",
            type=click.Choice(sorted(ENVIRONMENTS)),
            default=None,
            help=f"USPS environment ({ENV_ENVIRONMENT}; default production).",
        ),
        click.option("--api-url", default=None, help=f"API base URL override ({ENV_API_URL})."),
        click.option("--auth-url", default=None, help=f"OAuth base URL override ({ENV_AUTH_URL})."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def api_settings(options: Mapping[str, object]) -> ApiSettings:
    """The API settings of a command: its options (None when not given) over the environment.

    A missing or invalid setting ends the command with exit status 2, naming the variable.
    """
    try:
        return load_api_settings(**options)
    except ApiSettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Client warnings (retries) go to stderr, keeping stdout clean; the old config returns."""
    from consumer.logging import configure_logging

    configured, saved = structlog.is_configured(), structlog.get_config()
    configure_logging("WARNING", "auto")
    try:
        yield
    finally:
        if configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def _run_query(config: ApiConfig, query: Callable[[MailTrackingClient], Any]) -> Any:
    async def run() -> Any:
        async with MailTrackingClient(config) as client:
            return await query(client)

    with _warnings_to_stderr():
        try:
            return asyncio.run(run())
        except RuleViolation as exc:
            raise click.UsageError(str(exc)) from exc
        except ApiError as exc:
            raise click.ClickException(str(exc)) from exc


# ----------------------------------------------------------------------------- piece

_SCAN_COLUMNS = (
    ("scanDatetime", "SCAN TIME"),
    ("scanEventCode", "OP"),
    ("handlingEventType", "HET"),
    ("mailPhase", "PHASE"),
    ("machineName", "MACHINE"),
    ("scanFacilityName", "FACILITY"),
    ("scanFacilityState", "ST"),
    ("scanFacilityZip", "ZIP"),
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _table(piece: Piece) -> str:
    width = max(len(name) for name in piece.attributes)
    lines = [f"{name:<{width}}  {_cell(value)}" for name, value in piece.attributes.items()]
    rows = [[title for _, title in _SCAN_COLUMNS]]
    rows += [[_cell(scan.get(name)) for name, _ in _SCAN_COLUMNS] for scan in piece.scans]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_SCAN_COLUMNS))]
    lines.append("")
    lines.append(f"{len(piece.scans)} scan{'s' if len(piece.scans) != 1 else ''}")
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


@click.command("piece")
@click.argument("imb")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: attributes, then one line per scan. json: one object, push-feed field names.",
)
@api_options
def piece(imb: str, fmt: str, **options: str | None) -> None:
    """Show the attributes and scans of the piece with full IMb IMB (20, 25, 29 or 31 digits).

    Field names are the push feed's (camelCase). For a partial IMb use `lookup`.
    """
    config = api_settings(options)

    async def query(client: MailTrackingClient) -> Piece | None:
        try:
            return await client.piece(imb)
        except PieceNotFound:
            return None

    found: Piece | None = _run_query(config, query)
    if found is None:
        raise click.ClickException(
            f"piece not found: {imb.strip()} (the API keeps data for 30 days after the scan "
            "date; older scans need a One-Time Query in the IV-MTR web application, up to "
            "120 days)"
        )
    if fmt == "json":
        body = {"imb": found.imb, "attributes": dict(found.attributes), "scans": found.scans}
        click.echo(orjson.dumps(body).decode())
    else:
        click.echo(_table(found))


# ----------------------------------------------------------------------------- lookup


@click.command("lookup")
@click.argument("mid")
@click.argument("serial")
@click.option("--stid", default=None, help="Narrow to this 3-digit STID (sent to the API).")
@click.option(
    "--routing",
    default=None,
    help="Keep IMbs whose routing code starts with these 5, 9 or 11 digits (filtered here: "
    "the API has no routing-code lookup).",
)
@api_options
def lookup(
    mid: str, serial: str, stid: str | None, routing: str | None, **options: str | None
) -> None:
    """Print the full IMbs scanned for mailer ID MID and serial number SERIAL, one per line.

    MID has 6 digits (9 when it starts with 9); SERIAL makes 15 digits with it.
    """
    config = api_settings(options)

    async def query(client: MailTrackingClient) -> list[str]:
        return await client.lookup(mid, serial, stid=stid, routing=routing)

    barcodes: list[str] = _run_query(config, query)
    if not barcodes:
        raise click.ClickException(f"no IMbs found for mailer ID {mid} and serial {serial}")
    for imb in barcodes:
        click.echo(imb)
    excluded = [imb for imb in barcodes if no_single_piece_data(imb[2:5])]
    if excluded:
        click.echo(
            f"note: {len(excluded)} of these carry a Business Reply Mail STID; the single-piece "
            "query returns no data for them (IV-MTR API FAQ, question 5)",
            err=True,
        )


# ----------------------------------------------------------------------------- emulator


@click.command("api-emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=int, default=8099, show_default=True, help="Listen port.")
@click.option(
    "--pieces",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Pieces of the simulated mailing it serves.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
@click.option("--username", default="emulator", show_default=True, help="BCG user name it accepts.")
@click.option("--password", default="emulator", show_default=True, help="BCG password it accepts.")
@click.option(
    "--token-ttl", type=click.FloatRange(min=1), default=900.0, show_default=True, help="Seconds."
)
def api_emulator(
    host: str, port: int, pieces: int, seed: int, username: str, password: str, token_ttl: float
) -> None:
    """Serve a local IV-MTR Mail Tracking API over a simulated mailing (for demos and tests)."""
    from consumer.simulator.api_emulator import ApiEmulator, api_pieces_for, serve_emulator
    from consumer.simulator.generate import MailingSpec

    data = api_pieces_for(MailingSpec(pieces=pieces, seed=seed))
    emulator = ApiEmulator(data, username=username, password=password, token_ttl_s=token_ttl)
    auth_url, api_url = ApiEmulator.urls(f"http://{host}:{port}")
    imb = next(iter(data), None)
    lines = [
        f"IV-MTR API emulator: {len(data)} pieces, seed {seed}",
        f"export {ENV_API_URL}={api_url}",
        f"export {ENV_AUTH_URL}={auth_url}",
        f"export {ENV_USERNAME}={username}",
        f"export {ENV_PASSWORD}={password}",
    ]
    if imb is not None:
        mid_length = 9 if imb[5] == "9" else 6
        lines.append(f"try: piece {imb}")
        lines.append(f"     lookup {imb[5 : 5 + mid_length]} {imb[5 + mid_length : 20]}")
    lines.append('faults: POST /_emulator/faults {"fail_next": 2, "status": 503}')
    click.echo("\n".join(lines), err=True)
    serve_emulator(host, port, emulator)


# ----------------------------------------------------------------------------- group


@click.group("api")
def api() -> None:
    """Query the IV-MTR Mail Tracking API (pull), or run a local emulator of it."""


api.add_command(piece)
api.add_command(lookup)
api.add_command(api_emulator, "emulator")
