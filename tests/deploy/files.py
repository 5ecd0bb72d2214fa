"""The files of deploy/ and the tools that check them, shared by tests/deploy and the
dashboard-queries integration test."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERT_RULES = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "ivmtr-stream.json"
COMPOSE = ROOT / "docker-compose.yml"

_METRIC = re.compile(r"\bivmtr_[a-z0-9_]+\b")


def debian_binary(name: str) -> str:
    """The path of ``name`` from the Debian package ``prometheus`` (promtool, prometheus).

    Missing, the test fails rather than skips: the tool is a real peer of these tests, and
    CI must not pass without running them.
    """
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        pytest.fail(
            f"{name} not found: install the Debian package `prometheus` "
            "(scripts/system-packages does, and `make test` runs it)"
        )
    return found


@dataclass(frozen=True)
class PanelQuery:
    """One query of one dashboard panel."""

    panel: str
    ref_id: str
    expr: str
    instant: bool

    def metrics(self) -> set[str]:
        """The ivmtr_* series names the query reads."""
        return set(_METRIC.findall(self.expr))

    def substituted(self, variables: dict[str, str]) -> str:
        """The query as Grafana sends it, with the dashboard's variables replaced."""
        expr = self.expr
        # Longest first: $__rate_interval before $__range, $feed before $f...
        for name in sorted(variables, key=len, reverse=True):
            expr = expr.replace(f"${{{name}}}", variables[name]).replace(
                f"${name}", variables[name]
            )
        return expr


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows are headings), collapsed rows' panels included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(panel["title"], target["refId"], target["expr"], bool(target.get("instant")))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    return found
