"""The root ``ivmtr-stream`` command; each command group lives in a module of its own."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Final

import click

__all__ = ["COMMANDS", "CommandTable", "main"]

COMMANDS: Final[Mapping[str, tuple[str, str]]] = {
    "serve": ("consumer.cli.serve", "serve"),
    "topics": ("consumer.cli.serve", "topics"),
    "imb": ("consumer.cli.imb", "imb"),
    "hash-password": ("consumer.cli.auth", "hash_password_command"),
    "dev-credentials": ("consumer.cli.auth", "dev_credentials"),
    "piece": ("consumer.cli.api", "piece"),
    "lookup": ("consumer.cli.api", "lookup"),
    "api-emulator": ("consumer.cli.api", "api_emulator"),
    "backfill": ("consumer.cli.backfill", "backfill_command"),
    "simulate": ("consumer.cli.simulate", "simulate"),
    "tail": ("consumer.cli.tail", "tail"),
    "campaigns": ("consumer.cli.campaigns", "campaigns_command"),
    "schemas": ("consumer.cli.schemas", "schemas"),
    "track": ("consumer.cli.track", "track_command"),
    "piece-status": ("consumer.cli.track", "piece_status_command"),
}
"""Each command's name, and the module and attribute that define it."""


class CommandTable(click.Group):
    """A group that imports a command's module only when that command is asked for.

    Every command module pulls in what it works with (the HTTP app, aiokafka, the IMb
    tables, the simulator); importing all of them cost about 0.45 s before any command
    could start, which ``simulate`` and ``imb`` paid for nothing. ``--help`` still lists
    them all (and imports them, for their short help).
    """

    def __init__(
        self, *args: Any, commands_by_module: Mapping[str, tuple[str, str]], **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.commands_by_module = commands_by_module

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.commands_by_module})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.commands_by_module:
            module, attribute = self.commands_by_module[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=CommandTable, commands_by_module=COMMANDS)
@click.version_option(package_name="ivmtr-stream")
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file of settings (keys as in the README table, lower case, without IVMTR_).",
)
def main(config: str | None) -> None:
    """USPS IV-MTR push feeds in, validated and IMb-enriched Avro scan events out on Kafka."""
