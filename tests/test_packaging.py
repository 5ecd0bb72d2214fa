"""An installed (non-editable) package carries the schemas and every module."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from click.testing import CliRunner

from consumer.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_schemas_and_packages(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ivmtr_stream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {f"schemas/{path.name}" for path in (ROOT / "schemas").glob("*.avsc")}
    assert schemas and schemas <= names
    for package in (
        "consumer",
        "consumer/api",
        "consumer/core",
        "consumer/http",
        "consumer/simulator",
        "producer",
    ):
        modules = {f"{package}/{path.name}" for path in (ROOT / package).glob("*.py")}
        assert modules <= names, modules - names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "ivmtr-stream = consumer.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_a_bad_setting_stops_start_up_naming_it(monkeypatch: object) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["serve"], env={"IVMTR_PORT": "eighty"})
    assert result.exit_code != 0
    assert "IVMTR_PORT" in result.output
    result = runner.invoke(main, ["serve"], env={"IVMTR_COMPRESSION": "brotli"})
    assert result.exit_code != 0 and "IVMTR_COMPRESSION" in result.output
