"""Development credentials: cases found by ``make mutation MODULE=feeds`` that no test held.

- The files were checked for mode 0600 only once written: here they are never wider,
  not even between creation and ``fchmod``, whatever the umask.
- The feeds file is created exclusively (never written through a symlink planted in
  its place), while a password file left over from an earlier run is replaced.
- The feeds file's text, the password's length, the parent directories, and the
  message of the refusal when the file exists.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.feeds import generate_dev_credentials, password_file, verify_password
from consumer.feeds.passwords import password_weakness


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Umask 0: the files' modes are then what the code asks for, nothing masked out."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_the_files_are_private_from_the_moment_they_exist(
    tmp_path: Path, no_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another user who opens a file while it is readable can read what is written to it
    # later, so the mode matters when the file is created, before fchmod narrows it.
    created: dict[str, int] = {}
    real_fchmod = os.fchmod

    def recording_fchmod(fd: int, mode: int) -> None:
        created[os.readlink(f"/proc/self/fd/{fd}")] = stat.S_IMODE(os.fstat(fd).st_mode)
        real_fchmod(fd, mode)

    monkeypatch.setattr(os, "fchmod", recording_fchmod)
    path = tmp_path / "feeds.toml"
    generate_dev_credentials(path)
    assert created == {str(password_file(path)): 0o600, str(path): 0o600}


def test_a_leftover_password_file_is_replaced_and_made_private(tmp_path: Path) -> None:
    # The feeds file was deleted, its password file was not (and was made readable).
    path = tmp_path / "feeds.toml"
    secret = password_file(path)
    secret.write_text("an old password that was much longer than the new one\n")
    secret.chmod(0o644)
    _, password = generate_dev_credentials(path)
    assert secret.read_text() == password + "\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert verify_password(password, _stored_hash(path))


def test_a_symlink_in_place_of_the_feeds_file_is_not_written_through(tmp_path: Path) -> None:
    # A dangling symlink: Path.exists() is False for it, the exclusive open still fails.
    elsewhere = tmp_path / "elsewhere.toml"
    path = tmp_path / "feeds.toml"
    path.symlink_to(elsewhere)
    with pytest.raises(FileExistsError):
        generate_dev_credentials(path)
    assert not elsewhere.exists()
    assert path.is_symlink()


def test_an_existing_feeds_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text("# mine\n")
    with pytest.raises(FileExistsError) as caught:
        generate_dev_credentials(path)
    assert str(path) in str(caught.value)
    assert path.read_text() == "# mine\n"
    assert not password_file(path).exists()


def test_missing_parent_directories_are_made(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "feeds.toml"
    generate_dev_credentials(path)
    assert path.is_file() and password_file(path).is_file()


def test_the_password_is_24_random_bytes(tmp_path: Path) -> None:
    # secrets.token_urlsafe(24): 32 URL-safe base64 characters, the 192 bits that
    # MIN_PASSWORD_BITS's documentation promises for it.
    _, password = generate_dev_credentials(tmp_path / "feeds.toml")
    assert len(password) == 32
    assert len(base64.urlsafe_b64decode(password)) == 24
    assert password_weakness(password) is None


def test_the_feeds_file_says_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "dev.toml"
    user, password = generate_dev_credentials(path)
    assert user == "demo"
    lines = path.read_text(encoding="utf-8").splitlines()
    # The header: what wrote it, where the password is, where production files are
    # described (a path: its case matters).
    assert lines[:4] == [
        "# Development feeds file written by `ivmtr-stream dev-credentials`.",
        "# The password is in dev.toml.password. Not for production: see",
        "# examples/feeds.toml.",
        "",
    ]
    assert lines[4:7] == ["[feeds.demo]", 'kind = "auto"', 'user = "demo"']
    assert lines[7].startswith('password_hash = "scrypt$') and len(lines) == 8
    assert verify_password(password, _stored_hash(path))


def _stored_hash(path: Path) -> str:
    (line,) = (x for x in path.read_text().splitlines() if x.startswith("password_hash = "))
    return line.removeprefix('password_hash = "').removesuffix('"')
