"""``ivmtr-stream hash-password`` and ``ivmtr-stream dev-credentials``.

``hash-password`` prints the ``password_hash`` value of a feed in the feeds file, for
passwords strong enough to be generated secrets (``password_weakness``);
``dev-credentials`` writes a development feeds file with one feed, ``demo``, and
prints its user and password. Prompts and notes go to stderr, so stdout carries
only the result and can be captured by scripts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from consumer.feeds import (
    DEV_FEED,
    FeedsFileError,
    generate_dev_credentials,
    hash_password,
    load_feeds,
    password_file,
    verify_password,
)
from consumer.feeds.passwords import password_weakness

__all__ = ["dev_credentials", "hash_password_command"]


@click.command("hash-password")
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read the password from the first line of stdin instead of prompting.",
)
def hash_password_command(from_stdin: bool) -> None:
    """Print the hash of a feed password, for password_hash in the feeds file.

    Without --stdin, prompts twice with hidden input. The password itself is never
    printed or stored. Refuses a password estimated at fewer than 100 bits: feed
    passwords are generated secrets (e.g. `python -c 'import secrets;
    print(secrets.token_urlsafe(24))'`), and the hash only protects a leaked feeds file
    from a password that cannot be guessed.
    """
    if from_stdin:
        # Only the line ending goes: spaces may be part of the password.
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True, type=str
        )
    weakness = password_weakness(password)
    if weakness is not None:
        raise click.ClickException(weakness)
    try:
        encoded = hash_password(password)
    except ValueError as exc:  # a password with NUL, which scrypt cannot tell apart
        raise click.ClickException(str(exc)) from None
    click.echo(encoded)


@click.command("dev-credentials")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".local/feeds.toml"),
    show_default=True,
    help="The feeds file to write (its password goes to OUT.password, mode 0600).",
)
def dev_credentials(out: Path) -> None:
    """Write a dev feeds file (feed "demo"); print its user and password.

    When OUT exists it is reused, and the password is read back from OUT.password;
    delete OUT to get new credentials. For development only.
    """
    if not out.exists():
        try:
            user, password = generate_dev_credentials(out)
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from exc
        click.echo(
            f"wrote {out} (feed {DEV_FEED!r}); password kept in {password_file(out)}", err=True
        )
        _print_credentials(user, password)
        return

    try:
        table = load_feeds(out)
    except FeedsFileError as exc:
        raise click.ClickException(f"{out} exists but is not a valid feeds file: {exc}") from exc
    feed = table.feeds.get(DEV_FEED)
    if feed is None:
        raise click.ClickException(
            f"{out} exists and has no feed {DEV_FEED!r}; not overwriting it (use another --out)"
        )
    secret = password_file(out)
    try:
        stored: str | None = secret.read_text(encoding="utf-8").removesuffix("\n")
    except FileNotFoundError:
        stored = None
    # Print only a password that is known to work: the files may have been edited.
    if stored is None or not verify_password(stored, feed.password_hash):
        raise click.ClickException(
            f"{out} exists, but its password is unknown ({secret} is missing or does not "
            f"match); delete {out} to generate new credentials"
        )
    click.echo(f"reusing existing {out} (feed {DEV_FEED!r})", err=True)
    _print_credentials(feed.user, stored)


def _print_credentials(user: str, password: str) -> None:
    click.echo(f"user: {user}")
    click.echo(f"password: {password}")
