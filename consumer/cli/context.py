"""Settings for CLI commands: the root command's ``--config`` file plus the environment."""

from __future__ import annotations

from pathlib import Path

import click

from consumer.settings import Settings, SettingsError, load_settings

__all__ = ["cli_config_file", "cli_settings"]


def cli_config_file() -> Path | None:
    """The root command's ``--config`` file, if one was given."""
    context = click.get_current_context(silent=True)
    root = context.find_root() if context is not None else None
    config = root.params.get("config") if root is not None else None
    return Path(config) if config else None


def cli_settings(**overrides: object) -> Settings:
    """Settings of the running command; a bad setting ends the command naming it."""
    try:
        return load_settings(
            cli_config_file(),
            **{name: value for name, value in overrides.items() if value is not None},
        )
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
