"""deploy/prometheus: the scrape config and the alert rules are valid for the real promtool,
and every rule is unit-tested firing and staying quiet."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.files import ALERT_RULES, ALERT_TESTS, COMPOSE, PROMETHEUS_CONFIG

SEVERITIES = {"critical", "warning", "info"}


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_scrape_config_and_the_rules_it_loads(promtool: str) -> None:
    checked = run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The config names the rule file, and promtool followed it.
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_promtool_checks_the_rules(promtool: str) -> None:
    checked = run(promtool, "check", "rules", str(ALERT_RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_runs_the_rules_unit_tests(promtool: str) -> None:
    tested = run(promtool, "test", "rules", str(ALERT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_broken_rule_fails_its_unit_test(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: the README's old no-data rule (no `or vector(0)`) never
    fires after a restart, and its test says so."""
    broken = ALERT_RULES.read_text().replace(" or vector(0)", "")
    assert broken != ALERT_RULES.read_text()
    (tmp_path / "alerts.yml").write_text(broken)
    (tmp_path / "alerts_test.yml").write_text(ALERT_TESTS.read_text())
    tested = run(promtool, "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert tested.returncode != 0
    assert "IvmtrNoMessagesPublished" in tested.stdout + tested.stderr


def test_every_alert_has_a_severity_and_says_what_and_why() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules), "alert names repeat"
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    assert tests["rule_files"] == [ALERT_RULES.name]
    cases: dict[str, set[str]] = defaultdict(set)
    for group in tests["tests"]:
        for case in group["alert_rule_test"]:
            cases[case["alertname"]].add("fires" if case.get("exp_alerts") else "quiet")
    for rule in alert_rules():
        assert cases[rule["alert"]] == {"fires", "quiet"}, rule["alert"]


def test_the_scrape_jobs_are_the_ones_the_rules_and_compose_name() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [ALERT_RULES.name]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"ivmtr-stream", "ivmtr-tracker"}
    rules_text = ALERT_RULES.read_text()
    for name in jobs:
        assert f'job="{name}"' in rules_text
    # The targets are the compose services, on the ports they listen on.
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    service_env = services["ivmtr-stream"]["environment"]
    tracker_env = services["ivmtr-tracker"]["environment"]
    assert jobs["ivmtr-stream"]["static_configs"][0]["targets"] == [
        f"ivmtr-stream:{service_env['IVMTR_PORT']}"
    ]
    assert jobs["ivmtr-tracker"]["static_configs"][0]["targets"] == [
        f"ivmtr-tracker:{tracker_env['IVMTR_TRACK_PORT']}"
    ]
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())
