"""deploy/grafana: the dashboard is a well-formed Grafana dashboard whose every query reads
metrics the service or the tracker exports, and the provisioning finds it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from consumer.http.app import create_app
from consumer.service import IngestService
from consumer.settings import Settings
from consumer.track.metrics import tracker_registry
from consumer.track.tracker import TrackerStats
from tests.deploy.files import (
    DASHBOARD,
    DEPLOY,
    load_dashboard,
    panel_queries,
    panels,
    variable,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names(registry: CollectorRegistry) -> set[str]:
    """The series names a scrape of ``registry`` can show (counters with _total, ...)."""
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


class _IdleTracker:
    """What the tracker's metrics read, before it owns anything."""

    def __init__(self) -> None:
        self.stats = TrackerStats()
        self.owned: list[int] = []

    def pieces(self) -> dict[int, int]:
        return {}

    def watched(self) -> int:
        return 0

    def lag(self) -> dict[tuple[str, int], int]:
        return {}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every series name the service (spool mode: its spool gauge too) and the tracker export."""
    spool = tmp_path_factory.mktemp("spool")
    service = IngestService(Settings(insecure_dev_mode=True, ack_mode="spool", spool_dir=spool))
    create_app(service.settings, service)  # registers the in-flight gauges
    return exported_names(service.metrics.registry) | exported_names(
        tracker_registry(_IdleTracker())
    )


def test_the_dashboard_is_a_grafana_dashboard_with_a_datasource_and_a_feed_variable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "ivmtr-stream" and dashboard["title"]
    assert 39 <= dashboard["schemaVersion"] < 42
    datasource = variable(dashboard, "datasource")
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    feed = variable(dashboard, "feed")
    assert feed["type"] == "query" and feed["datasource"] == DATASOURCE
    assert feed["includeAll"] and feed["multi"] and feed["allValue"] == ".*"
    assert (
        feed["query"]["query"] == feed["definition"] == "label_values(ivmtr_messages_total, feed)"
    )


def test_every_panel_has_a_query_on_the_datasource_variable() -> None:
    dashboard = load_dashboard()
    shown = panels(dashboard)
    assert len(shown) >= 20
    rows = [panel for panel in dashboard["panels"] if panel["type"] == "row"]
    ids = [panel["id"] for panel in rows + shown]
    assert len(set(ids)) == len(ids), "panel ids repeat"
    for panel in shown:
        assert panel["title"] and panel.get("description"), panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in load_dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[x, y]}"
                cells[x, y] = panel["title"]


def test_the_dashboard_shows_what_an_operator_looks_at() -> None:
    titles = " | ".join(panel["title"].lower() for panel in panels(load_dashboard()))
    for topic in (
        "scans published /s by feed",
        "dead-letter ratio",
        "dead letters by field",
        "fast-path share",
        "push latency",
        "kafka errors",
        "kafka connected",
        "in-flight requests",
        "in-flight bytes",
        "in-flight records",
        "spool entries",
        "incomplete message groups",
        "owned delivery slots",
        "fenced",
        "tracker lag",
        "alerts raised",
        "pieces tracked",
        "tracker transactions",
    ):
        assert topic in titles


def test_every_metric_a_query_reads_is_exported(exported: set[str]) -> None:
    queries = panel_queries(load_dashboard())
    used = set().union(*(query.metrics() for query in queries))
    assert used, "no ivmtr_* metric in the queries"
    assert not used - exported, f"not exported by the service or the tracker: {used - exported}"
    # The check can fail: a metric renamed in consumer/metrics.py is missing from ``exported``.
    assert "ivmtr_records_total" in exported and "ivmtr_records" not in exported
    assert "ivmtr_tracker_lag_scans" in exported and "ivmtr_spool_entries" in exported


def test_only_known_variables_are_used() -> None:
    dashboard = load_dashboard()
    names = {v["name"] for v in dashboard["templating"]["list"]}
    builtins = {"__rate_interval", "__range", "__interval"}
    for query in panel_queries(dashboard):
        left = query.substituted({name: "X" for name in names | builtins})
        assert "$" not in left, f"{query.panel}: unknown variable in {query.expr}"


def _provisioning(name: str) -> dict[str, Any]:
    (path,) = (DEPLOY / "grafana" / "provisioning" / name).glob("*.yml")
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_provisioning_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    mounts = dict(
        (volume.split(":")[1], volume.split(":")[0])
        for volume in compose["services"]["grafana"]["volumes"]
    )
    (provider,) = _provisioning("dashboards")["providers"]
    assert provider["type"] == "file"
    source = mounts[provider["options"]["path"]]
    assert (DEPLOY.parent / source).resolve() == DASHBOARD.parent
    (datasource,) = _provisioning("datasources")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
