"""Development credentials: the demo feeds file and its password file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from consumer.feeds import authorize, generate_dev_credentials, load_feeds, password_file
from tests.consumer.feeds.samples import basic


def test_generate_dev_credentials(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "feeds.toml"
    user, password = generate_dev_credentials(path)
    table = load_feeds(path)
    assert set(table.feeds) == {"demo"}
    assert table.feeds["demo"].kind is None
    assert authorize(table, "demo", basic(user, password), "127.0.0.1", None).name == "demo"
    secret = password_file(path)
    assert secret == tmp_path / "sub" / "feeds.toml.password"
    assert secret.read_text() == password + "\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password not in path.read_text()
    with pytest.raises(FileExistsError):
        generate_dev_credentials(path)
    assert generate_dev_credentials(tmp_path / "other.toml")[1] != password
