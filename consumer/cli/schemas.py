"""``ivmtr-stream schemas``: register the topics' value schemas, check their evolution.

``register`` puts every topic's value schema into the schema registry under
``<topic>-value`` with the compatibility level BACKWARD_TRANSITIVE, and prints the ids.
``check`` holds today's ``schemas/*.avsc`` against every release in
``schemas/released/`` (our rule, see ``producer.compatibility``) and, given a registry,
against what it has; it exits with status 1 listing the problems when there are any.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

import click
import fastavro.schema

from producer.compatibility import check_backward, check_evolution, load_releases
from producer.registry import (
    CompatibilityLevel,
    NotFound,
    RegistryClient,
    RegistryConfig,
    RegistryError,
    register_schemas,
    schema_json,
    subject_name,
)
from producer.schemas import schema_dir
from producer.topics import Topic, TopicTable, TrackTopics

__all__ = ["all_topics", "registry_config", "registry_problems", "release_problems", "schemas"]

F = TypeVar("F", bound=Callable[..., Any])

_LEVELS: tuple[str, ...] = get_args(CompatibilityLevel)


def registry_config(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    ca_file: Path | str | None = None,
    verify: bool = True,
    timeout_s: float = 10.0,
) -> RegistryConfig:
    """The registry client settings; click.BadParameter when they do not go together."""
    try:
        return RegistryConfig(
            url=url,
            username=username or None,
            password=password or None,
            bearer_token=token or None,
            ca_file=ca_file or None,
            verify=verify,
            timeout_s=timeout_s,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def all_topics(prefix: str, schema_directory: Path | None = None) -> list[Topic]:
    """The topics the service writes, then the tracker's."""
    return [
        *TopicTable.build(prefix, schema_directory),
        *TrackTopics.build(prefix, schema_directory),
    ]


def release_problems(topics: Iterable[Topic], released: Path) -> dict[str, list[str]]:
    """Problems of each topic's value schema against every release it was in."""
    releases = load_releases(released)
    problems: dict[str, list[str]] = {}
    for topic in topics:
        olds = {
            release.name: schema
            for release in releases
            if (schema := release.schema(topic.schema.name)) is not None
        }
        problems[topic.name] = check_evolution(topic.schema, olds)
    return problems


async def registry_problems(
    client: RegistryClient, topics: Iterable[Topic]
) -> dict[str, list[str]]:
    """Problems of each topic's value schema against the registry's latest version.

    Two opinions: our checker against the latest version, and the registry's own
    compatibility test under the subject's level. A subject not registered yet is fine.
    """
    problems: dict[str, list[str]] = {}
    for topic in topics:
        subject = subject_name(topic.name)
        found: list[str] = []
        try:
            latest = await client.latest(subject)
        except NotFound:
            problems[topic.name] = []
            continue
        try:
            parsed = fastavro.schema.parse_schema(json.loads(latest.schema), _write_hint=False)
        except (ValueError, fastavro.schema.SchemaParseException) as exc:
            found.append(f"{subject} version {latest.version}: cannot parse it: {exc}")
        else:
            found.extend(
                f"{subject} version {latest.version}: {problem}"
                for problem in check_backward(topic.schema.parsed, parsed)
            )
        if not await client.is_compatible(subject, schema_json(topic.schema)):
            level = await client.get_compatibility(subject)
            found.append(f"{subject}: the registry finds it incompatible under {level}")
        problems[topic.name] = found
    return problems


def _registry_options(required: bool) -> Callable[[F], F]:
    def decorate(command: F) -> F:
        options = [
            click.option(
                "--registry-url",
                envvar="IVMTR_SCHEMA_REGISTRY_URL",
                required=required,
                default=None,
                help="Base URL of the Confluent-compatible API, e.g. "
                "http://127.0.0.1:8081/apis/ccompat/v7 (IVMTR_SCHEMA_REGISTRY_URL).",
            ),
            click.option(
                "--user",
                envvar="IVMTR_SCHEMA_REGISTRY_USER",
                default=None,
                help="Basic-auth user (IVMTR_SCHEMA_REGISTRY_USER).",
            ),
            click.option(
                "--password",
                envvar="IVMTR_SCHEMA_REGISTRY_PASSWORD",
                default=None,
                help="Basic-auth password (IVMTR_SCHEMA_REGISTRY_PASSWORD).",
            ),
            click.option(
                "--token",
                envvar="IVMTR_SCHEMA_REGISTRY_TOKEN",
                default=None,
                help="Bearer token instead of basic auth (IVMTR_SCHEMA_REGISTRY_TOKEN).",
            ),
            click.option(
                "--ca-file",
                envvar="IVMTR_SCHEMA_REGISTRY_CA_FILE",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help="CA bundle to verify the registry's TLS certificate with.",
            ),
            click.option(
                "--insecure",
                is_flag=True,
                help="Do not verify the registry's TLS certificate (tests only).",
            ),
            click.option(
                "--prefix",
                envvar="IVMTR_TOPIC_PREFIX",
                default="ivmtr.",
                show_default=True,
                help="Topic name prefix (IVMTR_TOPIC_PREFIX).",
            ),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.group("schemas")
def schemas() -> None:
    """Register the topics' Avro schemas and check how they evolve."""


@schemas.command("register")
@_registry_options(required=True)
@click.option(
    "--compatibility",
    type=click.Choice(_LEVELS),
    default="BACKWARD_TRANSITIVE",
    show_default=True,
    help="Compatibility level set on each subject before registering.",
)
def register(
    registry_url: str,
    user: str | None,
    password: str | None,
    token: str | None,
    ca_file: Path | None,
    insecure: bool,
    prefix: str,
    compatibility: str,
) -> None:
    """Register every topic's value schema; print topic, subject and schema id."""
    config = registry_config(
        registry_url, username=user, password=password, token=token, ca_file=ca_file,
        verify=not insecure,
    )  # fmt: skip
    topics = all_topics(prefix)

    async def run() -> dict[str, int]:
        async with RegistryClient(config) as client:
            return await register_schemas(
                client,
                {topic.name: topic.schema for topic in topics},
                cast(CompatibilityLevel, compatibility),
            )

    try:
        ids = asyncio.run(run())
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from exc
    for topic in topics:
        click.echo(f"{topic.name}\t{subject_name(topic.name)}\t{ids[topic.name]}")


@schemas.command("check")
@_registry_options(required=False)
@click.option(
    "--schemas",
    "schema_directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of the schemas to check [default: the installed schemas/].",
)
@click.option(
    "--released",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the released schemas [default: schemas/released].",
)
@click.pass_context
def check(
    ctx: click.Context,
    registry_url: str | None,
    user: str | None,
    password: str | None,
    token: str | None,
    ca_file: Path | None,
    insecure: bool,
    prefix: str,
    schema_directory: Path | None,
    released: Path | None,
) -> None:
    """Check schemas/*.avsc against every release (and the registry, given one).

    Exit status 1, with every problem listed, when a schema breaks our evolution rule.
    """
    try:
        topics = all_topics(prefix, schema_directory)
    except (OSError, ValueError, fastavro.schema.SchemaParseException) as exc:
        raise click.ClickException(f"cannot load the schemas: {exc}") from exc
    released = released or schema_dir() / "released"
    if not load_releases(released):
        raise click.ClickException(f"no released schemas in {released}")
    problems = release_problems(topics, released)
    if registry_url:
        config = registry_config(
            registry_url,
            username=user,
            password=password,
            token=token,
            ca_file=ca_file,
            verify=not insecure,
        )

        async def run() -> dict[str, list[str]]:
            async with RegistryClient(config) as client:
                return await registry_problems(client, topics)

        try:
            for name, found in asyncio.run(run()).items():
                problems[name] = problems[name] + found
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from exc
    failed = False
    for topic in topics:
        found = problems[topic.name]
        click.echo(f"{topic.name}\t{topic.schema.name}\t{'ok' if not found else 'INCOMPATIBLE'}")
        for problem in found:
            failed = True
            click.echo(f"  {problem}")
    if failed:
        ctx.exit(1)
