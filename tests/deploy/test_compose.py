"""docker-compose.yml validates against the compose specification's JSON schema (vendored
by check-jsonschema; no Docker engine runs here), and its observability profile mounts the
deploy/ files that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.files import COMPOSE, ROOT


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return loaded


def test_compose_file_validates_against_the_compose_spec() -> None:
    checked = check_compose_schema(COMPOSE)
    assert "No module named check_jsonschema" not in checked.stderr, (
        "check-jsonschema is missing: `make install` (the dev extra) installs it"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_refuses_a_wrong_compose_file(tmp_path: Path) -> None:
    wrong = tmp_path / "docker-compose.yml"
    wrong.write_text(
        COMPOSE.read_text().replace("profiles: [observability]", "profile: observability", 1)
    )
    checked = check_compose_schema(wrong)
    assert checked.returncode != 0
    assert "profile" in checked.stdout + checked.stderr


def test_the_observability_profile_adds_prometheus_and_grafana_only() -> None:
    profiled = {name for name, service in services().items() if "profiles" in service}
    assert profiled == {"prometheus", "grafana"}
    for name in profiled:
        assert services()[name]["profiles"] == ["observability"]


def test_official_images_pinned_to_a_version() -> None:
    # Prometheus 2.x, as the Debian 2.42 that the tests run the rules and queries on.
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", services()["prometheus"]["image"])
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services()["grafana"]["image"])


def test_the_deploy_files_are_mounted_read_only_and_exist() -> None:
    for name in ("prometheus", "grafana"):
        mounts = [v for v in services()[name]["volumes"] if v.startswith("./")]
        assert mounts, name
        for mount in mounts:
            source, _, mode = mount.split(":")
            assert source.startswith("./deploy/") and mode == "ro", mount
            assert (ROOT / source).exists(), mount
    prometheus = services()["prometheus"]
    config = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    targets = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    assert targets[config.removeprefix("--config.file=")] == "./deploy/prometheus/prometheus.yml"
    # The rule file sits beside the config, where its relative rule_files entry points.
    assert targets["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"
