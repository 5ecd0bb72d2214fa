"""The root ``ivmtr-stream`` command; each command group lives in a module of its own."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group()
@click.version_option(package_name="ivmtr-stream")
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file of settings (keys as in the README table, lower case, without IVMTR_).",
)
def main(config: str | None) -> None:
    """USPS IV-MTR push feeds in, validated and IMb-enriched Avro scan events out on Kafka."""


def _register_subcommands() -> None:
    # Imported here so that `ivmtr-stream --help` does not build the IMb tables twice.
    from consumer.cli.api import api_emulator, lookup, piece
    from consumer.cli.auth import dev_credentials, hash_password_command
    from consumer.cli.backfill import backfill_command
    from consumer.cli.campaigns import campaigns_command
    from consumer.cli.imb import imb
    from consumer.cli.schemas import schemas
    from consumer.cli.serve import serve, topics
    from consumer.cli.simulate import simulate
    from consumer.cli.tail import tail
    from consumer.cli.track import piece_status_command, track_command

    main.add_command(serve)
    main.add_command(topics)
    main.add_command(imb)
    main.add_command(hash_password_command)
    main.add_command(dev_credentials)
    main.add_command(piece)
    main.add_command(lookup)
    main.add_command(api_emulator)
    main.add_command(backfill_command)
    main.add_command(simulate)
    main.add_command(tail)
    main.add_command(campaigns_command)
    main.add_command(schemas)
    main.add_command(track_command)
    main.add_command(piece_status_command)


_register_subcommands()
