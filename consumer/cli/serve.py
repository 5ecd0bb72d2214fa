"""``serve`` runs the ingest service; ``topics create`` makes its Kafka topics."""

from __future__ import annotations

import asyncio

import click

from consumer.cli.context import cli_config_file
from consumer.cli.context import cli_settings as _settings
from consumer.settings import SettingsError

__all__ = ["serve", "topics"]


@click.command()
@click.option("--host", default=None, help="Listen address (IVMTR_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (IVMTR_PORT).")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes serving the port, each a replica of its own (IVMTR_WORKERS, 1).",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the ingest service."""
    from consumer.cli.workers import serve_one, serve_workers
    from consumer.http.app import create_app
    from consumer.logging import configure_logging

    overrides = {
        name: value
        for name, value in (("host", host), ("port", port), ("workers", workers))
        if value is not None
    }
    settings = _settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    try:
        # With workers too: a bad setting or feeds file ends the command here, once,
        # instead of every worker dying of it and being restarted.
        app = create_app(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.workers == 1:
        serve_one(app, settings)
    else:
        del app  # it was built to check the settings; each worker builds its own
        serve_workers(settings, cli_config_file(), overrides)


@click.group()
def topics() -> None:
    """Manage the service's Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the topics that do not exist yet (idempotent)."""
    from consumer.service import topic_specs
    from producer import TopicTable, ensure_topics

    settings = _settings()
    specs = topic_specs(settings, TopicTable.build(settings.topic_prefix))
    created = asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, specs))
    for spec in specs:
        click.echo(f"{spec.name}\t{'created' if spec.name in created else 'exists'}")
