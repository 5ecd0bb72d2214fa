"""An installed (non-editable) package carries the schemas and every module."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def locked(path: Path) -> dict[str, str]:
    """name -> version of a pip-compile lock file, for the packages this platform installs."""
    pins: dict[str, str] = {}
    for match in re.finditer(
        r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+?))?\s*\\?$",
        path.read_text(),
        re.MULTILINE,
    ):
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def test_the_environment_holds_exactly_the_locked_versions() -> None:
    """make install installs requirements-dev.lock and nothing else (the project aside)."""
    pins = locked(ROOT / "requirements-dev.lock")
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    ours = {"ivmtr-stream", "ivmtr-native", "pip"}
    assert {name: installed.get(name) for name in pins} == pins
    assert sorted(set(installed) - set(pins) - ours) == []


def test_the_locks_satisfy_pyproject_and_agree() -> None:
    """A dependency changed in pyproject.toml without `make lock` fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    service, dev = locked(ROOT / "requirements.lock"), locked(ROOT / "requirements-dev.lock")
    build = tomllib.loads((ROOT / "native" / "pyproject.toml").read_text())["build-system"]
    for lock, requirements in (
        (service, [*project["project"]["dependencies"], *project["build-system"]["requires"]]),
        (service, build["requires"]),
        (dev, project["project"]["optional-dependencies"]["dev"]),
    ):
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate():
                continue
            version = lock.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement.name} is not locked: make lock"
            assert requirement.specifier.contains(version, prereleases=True), (text, version)
    # The service's image and the dev environment run the same versions.
    assert {name: dev.get(name) for name in service} == service


def test_the_image_installs_the_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps" in dockerfile
