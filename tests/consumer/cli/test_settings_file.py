"""Settings from a TOML file (`ivmtr-stream --config FILE`), below the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumer.cli import main
from consumer.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("IVMTR_"):
            monkeypatch.delenv(name)


def test_file_values_apply_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ivmtr.toml"
    config.write_text('port = 9123\ntopic_prefix = "acme."\nfeeds_file = "/etc/feeds.toml"\n')
    settings = load_settings(config)
    assert (settings.port, settings.topic_prefix) == (9123, "acme.")
    assert settings.feeds_file == Path("/etc/feeds.toml")
    monkeypatch.setenv("IVMTR_PORT", "9999")
    assert load_settings(config).port == 9999
    assert load_settings(config, port=1).port == 1


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('port = "eighty"\n', "IVMTR_PORT"),
        ("no_such_setting = 1\n", "IVMTR_NO_SUCH_SETTING"),
        ("port = \n", "ivmtr.toml"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, named: str) -> None:
    config = tmp_path / "ivmtr.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=named):
        load_settings(config)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_cli_config_option_reaches_the_command(tmp_path: Path) -> None:
    config = tmp_path / "ivmtr.toml"
    config.write_text('compression = "brotli"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "serve"])
    assert result.exit_code != 0 and "IVMTR_COMPRESSION" in result.output
