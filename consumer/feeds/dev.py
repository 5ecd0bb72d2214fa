"""Development credentials: a feeds file with one feed, ``demo``, and a random password.

Written by ``ivmtr-stream dev-credentials``; not for production (see
``examples/feeds.toml``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from consumer.feeds.passwords import hash_password

__all__ = ["DEV_FEED", "DEV_USER", "generate_dev_credentials", "password_file"]

DEV_FEED: Final = "demo"
DEV_USER: Final = "demo"


def password_file(feeds_path: str | os.PathLike[str]) -> Path:
    """Where ``generate_dev_credentials`` keeps the dev password: ``<feeds file>.password``."""
    path = Path(feeds_path)
    return path.with_name(path.name + ".password")


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    """Write ``text`` to a file only its owner can read (0600 whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the file may have existed with a wider mode
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def generate_dev_credentials(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Write a development feeds file with one feed ``demo`` and a fresh random password.

    The password is also kept in ``password_file(path)`` (mode 0600) so that a later
    run can show it again. FileExistsError when ``path`` exists; prints nothing.
    Returns (user, password).
    """
    target = Path(path)
    if target.exists():
        raise FileExistsError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    text = (
        "# Development feeds file written by `ivmtr-stream dev-credentials`.\n"
        f"# The password is in {password_file(target).name}. Not for production: see\n"
        "# examples/feeds.toml.\n"
        "\n"
        f"[feeds.{DEV_FEED}]\n"
        'kind = "auto"\n'
        f'user = "{DEV_USER}"\n'
        f'password_hash = "{hash_password(password)}"\n'
    )
    # The password file first: once the feeds file exists, its password is on disk.
    _write_private(password_file(target), password + "\n", exclusive=False)
    _write_private(target, text, exclusive=True)
    return DEV_USER, password
