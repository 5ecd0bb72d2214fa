"""``ivmtr-stream hash-password`` and ``ivmtr-stream dev-credentials``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumer.cli.auth import dev_credentials, hash_password_command
from consumer.feeds import (
    authorize,
    clear_verification_cache,
    load_feeds,
    password_file,
    verify_password,
)
from tests.consumer.feeds.samples import TABLE_TOML, basic


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_verification_cache()
    yield
    clear_verification_cache()


STRONG = secrets.token_urlsafe(24)  # what the error message tells people to use


def test_hash_password_stdin() -> None:
    result = CliRunner().invoke(hash_password_command, ["--stdin"], input=f"{STRONG}\nmore\n")
    assert result.exit_code == 0, result.output
    encoded = result.stdout.strip()
    assert verify_password(STRONG, encoded)
    assert STRONG not in result.output


def test_hash_password_prompts_twice() -> None:
    runner = CliRunner()
    result = runner.invoke(hash_password_command, [], input=f"{STRONG}\n{STRONG}\n")
    assert result.exit_code == 0, result.output
    assert verify_password(STRONG, result.stdout.strip())
    assert STRONG not in result.output
    mismatch = runner.invoke(hash_password_command, [], input=f"{STRONG}\n{STRONG}x\n")
    assert mismatch.exit_code != 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "short\n",
        "a long password\n",  # the old minimum of 12 characters let these through
        "letters-secret-Pa55\n",
        "Tr0ub4dor&3Tr0ub4dor&3\n",
        "P@ssw0rd!Summer2026#usps\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
    ],
)
def test_hash_password_refuses_weak_passwords_saying_what_is_needed(text: str) -> None:
    result = CliRunner().invoke(hash_password_command, ["--stdin"], input=text)
    assert result.exit_code == 1
    assert result.stdout == ""
    message = " ".join(result.stderr.split())
    assert "too weak" in message and "at least 100 needed" in message
    assert "secrets.token_urlsafe(24)" in message and "ivmtr-stream dev-credentials" in message
    if text.strip():
        assert text.strip() not in result.output


def test_what_dev_credentials_generates_passes(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(dev_credentials, ["--out", str(tmp_path / "feeds.toml")])
    _, password = credentials(made.stdout)
    result = runner.invoke(hash_password_command, ["--stdin"], input=f"{password}\n")
    assert result.exit_code == 0, result.output
    assert verify_password(password, result.stdout.strip())


def credentials(output: str) -> tuple[str, str]:
    lines = dict(line.split(": ", 1) for line in output.splitlines())
    return lines["user"], lines["password"]


def test_dev_credentials(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "feeds.toml"
    runner = CliRunner()
    first = runner.invoke(dev_credentials, ["--out", str(path)])
    assert first.exit_code == 0, first.output
    assert "wrote" in first.stderr
    user, password = credentials(first.stdout)
    table = load_feeds(path)
    assert authorize(table, "demo", basic(user, password), "127.0.0.1", None).name == "demo"

    before = path.read_bytes()
    second = runner.invoke(dev_credentials, ["--out", str(path)])
    assert second.exit_code == 0, second.output
    assert "reusing" in second.stderr
    assert credentials(second.stdout) == (user, password)
    assert path.read_bytes() == before


def test_dev_credentials_without_the_password_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    runner = CliRunner()
    _, password = credentials(runner.invoke(dev_credentials, ["--out", str(path)]).stdout)
    os.remove(password_file(path))
    result = runner.invoke(dev_credentials, ["--out", str(path)])
    assert result.exit_code == 1
    assert "password is unknown" in result.stderr
    assert password not in result.output
    # A password file that does not match is not printed either.
    password_file(path).write_text("not-it\n")
    result = runner.invoke(dev_credentials, ["--out", str(path)])
    assert (result.exit_code, "not-it" in result.output) == (1, False)


def test_dev_credentials_leaves_other_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(TABLE_TOML)
    result = CliRunner().invoke(dev_credentials, ["--out", str(path)])
    assert result.exit_code == 1
    assert "no feed 'demo'" in result.stderr
    assert path.read_text() == TABLE_TOML
    path.write_text("[broken\n")
    assert CliRunner().invoke(dev_credentials, ["--out", str(path)]).exit_code == 1


def test_hash_password_refuses_a_password_with_nul() -> None:
    result = CliRunner().invoke(hash_password_command, ["--stdin"], input=f"{STRONG}\x00\n")
    assert result.exit_code == 1
    assert "NUL" in result.output and "Traceback" not in result.output
