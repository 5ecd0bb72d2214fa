"""Every option of every command says what it does; every argument is named in its help."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from consumer.cli.main import main


def commands(
    command: click.Command, path: str = "ivmtr-stream"
) -> Iterator[tuple[str, click.Command]]:
    """`command` and every command below it, nested groups included, with their full names."""
    yield path, command
    if isinstance(command, click.Group):
        # Through list_commands/get_command, as click does: the root imports its commands
        # only when asked for them.
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} lists {name} but cannot load it"
            yield from commands(sub, f"{path} {name}")


COMMANDS = list(commands(main))


def test_the_tree_is_walked_whole() -> None:
    names = {path for path, _ in COMMANDS}
    assert {"ivmtr-stream simulate", "ivmtr-stream backfill", "ivmtr-stream imb decode"} <= names
    assert any(
        isinstance(command, click.Group) for path, command in COMMANDS if path != "ivmtr-stream"
    )


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_option_has_help_text(path: str, command: click.Command) -> None:
    lacking = [
        "/".join(param.opts)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert not lacking, f"{path}: options without help=: {lacking}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_argument_is_named_in_the_command_help(path: str, command: click.Command) -> None:
    # click arguments take no help=; the command's docstring must say what each one is.
    text = command.help or ""
    unnamed = [
        param.human_readable_name
        for param in command.params
        if isinstance(param, click.Argument) and param.human_readable_name not in text
    ]
    assert not unnamed, f"{path}: arguments its help does not name: {unnamed}"
    assert text.strip(), f"{path}: no help text"


def test_help_shows_the_option_texts() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0
    assert "Mail pieces in the mailing" in result.output


def test_a_command_imports_only_its_own_module() -> None:
    """`simulate` and `imb` start without loading the service, Kafka or the other commands."""
    probe = (
        "import sys; from consumer.cli.main import main; "
        "main(['simulate', '--help'], standalone_mode=False); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiokafka', 'starlette', 'uvicorn') or m.startswith('consumer.cli.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "consumer.cli.simulate" in loaded
    assert [m for m in loaded if m.split(".")[0] in ("aiokafka", "starlette", "uvicorn")] == []
    assert "consumer.cli.serve" not in loaded and "consumer.cli.tail" not in loaded
