"""Every dashboard query returns data from a real Prometheus scraping the real service and
tracker.

The service and ``ivmtr-stream track`` run against the real broker; pushes include records
that are dead-lettered and a message that is refused; the Debian ``prometheus`` server
scrapes both every second with deploy/prometheus/prometheus.yml's jobs and alert rules;
then each panel query, with the dashboard's variables substituted as Grafana does, goes
through Prometheus's HTTP API.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from consumer.feeds import hash_password
from tests.deploy.files import (
    ALERT_RULES,
    PROMETHEUS_CONFIG,
    PanelQuery,
    debian_binary,
    load_dashboard,
    panel_queries,
    variable,
)
from tests.integration.conftest import (
    Service,
    TrackerProcess,
    free_port,
    message_group_id,
    require_broker,
    start_service,
    start_tracker,
    stop_service,
    stop_tracker,
    wait_ready,
    wait_until_answering,
)
from tests.integration.test_ingest import BAD_PIECE, LDE, PIECE, TRAY, envelope

pytestmark = pytest.mark.kafka

FEED = "dashboard"
USER = "dash"
PASSWORD = secrets.token_urlsafe(24)  # a generated secret, as a feed's password is
# Grafana's values for its built-in variables, as a 1 s scrape interval and a short time
# range would give them; wide enough that every rate() window holds the pushes.
BUILTINS = {"__rate_interval": "1m", "__range": "10m", "__interval": "1s"}


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]


def scrape_config(service: Service, tracker: TrackerProcess) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the running processes as targets, every 1 s."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(ALERT_RULES)]
    targets = {
        "ivmtr-stream": service.url.removeprefix("http://"),
        "ivmtr-tracker": tracker.url.removeprefix("http://"),
    }
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


def start_prometheus(tmp: Path, config: dict[str, Any]) -> Prometheus:
    """The Debian package's server on a free loopback port, once it answers /-/ready."""
    config_path = tmp / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp / "prometheus.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                debian_binary("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    wait_until_answering(process, f"{prometheus.url}/-/ready", log_path, "prometheus", within_s=30)
    return prometheus


def stop_prometheus(prometheus: Prometheus) -> None:
    prometheus.process.terminate()
    try:
        prometheus.process.wait(20)
    except subprocess.TimeoutExpired:
        prometheus.process.kill()
        prometheus.process.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Service, TrackerProcess, Prometheus]]:
    """The service, a tracker over its topics, and Prometheus scraping both."""
    require_broker()
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    # A feeds file as in production: credentials, and a campaign for the campaign panels.
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        f"""
[feeds.{FEED}]
user = "{USER}"
password_hash = "{hash_password(PASSWORD, n=2**10)}"
campaign = "spring"
"""
    )
    # The service creates the topics the tracker reads.
    service = start_service(tmp_path, prefix, IVMTR_FEEDS_FILE=str(feeds))
    tracker: TrackerProcess | None = None
    prometheus: Prometheus | None = None
    try:
        tracker = start_tracker(tmp_path, prefix, f"{prefix}tracker")
        wait_ready(tracker)
        prometheus = start_prometheus(tmp_path, scrape_config(service, tracker))
        yield service, tracker, prometheus
    finally:
        if prometheus is not None:
            stop_prometheus(prometheus)
        if tracker is not None:
            stop_tracker(tracker)
        stop_service(service)


def wait_for_targets_up(prometheus: Prometheus, within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        targets = prometheus.get("/api/v1/targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if health == {"ivmtr-stream": "up", "ivmtr-tracker": "up"}:
            return
        time.sleep(0.5)
    raise AssertionError(f"targets not up: {health}\n{prometheus.log_path.read_text()}")


async def push_a_round(service: Service) -> None:
    """What an IV-MTR feed sends: a message with a dead-lettered record (and a record count
    that disagrees), re-sent once, and a message refused as malformed."""
    async with httpx.AsyncClient(base_url=service.url, auth=(USER, PASSWORD), timeout=60) as client:
        body = orjson.dumps(envelope([PIECE, LDE, TRAY, BAD_PIECE], message_group_id(), recCnt=5))
        headers = {"content-type": "application/json"}
        for content, status in ((body, 200), (body, 200), (b"[]", 400)):
            response = await client.post(f"/v1/feeds/{FEED}", content=content, headers=headers)
            assert response.status_code == status, response.text


def empty_queries(prometheus: Prometheus, queries: list[PanelQuery], feed: str) -> list[str]:
    """The queries that return no series, as '<panel> [<refId>]: <query>'."""
    values = {"feed": feed, "datasource": "prometheus", **BUILTINS}
    empty = []
    for query in queries:
        expr = query.substituted(values)
        result = prometheus.get("/api/v1/query", query=expr)["result"]
        if not result:
            empty.append(f"{query.panel} [{query.ref_id}]: {expr}")
    return empty


async def test_every_dashboard_query_returns_data(
    stack: tuple[Service, TrackerProcess, Prometheus],
) -> None:
    service, _, prometheus = stack
    dashboard = load_dashboard()
    queries = panel_queries(dashboard)
    await asyncio.to_thread(wait_for_targets_up, prometheus)

    # Two rounds a few scrapes apart, so that every counter the pushes touch has risen
    # between two samples (a rate of a series that appeared once is 0, not data missing).
    await push_a_round(service)
    await asyncio.sleep(3)
    await push_a_round(service)

    all_feeds = variable(dashboard, "feed")["allValue"]
    empty: list[str] = []
    deadline = time.monotonic() + 20  # the tracker, then a scrape, then the query
    while time.monotonic() < deadline:
        empty = await asyncio.to_thread(empty_queries, prometheus, queries, FEED)
        empty += await asyncio.to_thread(empty_queries, prometheus, queries, all_feeds)
        if not empty:
            break
        await asyncio.sleep(1)
    assert not empty, "panels without data:\n" + "\n".join(empty)

    # The feed variable's own query lists the feed pushed to.
    feeds = prometheus.get("/api/v1/label/feed/values", **{"match[]": "ivmtr_messages_total"})
    assert FEED in feeds

    # The data is the pushes', not just present: records published, dead letters by field.
    def scalar(expr: str) -> float:
        (sample,) = prometheus.get("/api/v1/query", query=expr)["result"]
        return float(sample["value"][1])

    assert scalar(f'sum(ivmtr_records_total{{feed="{FEED}", outcome="published"}})') == 6
    assert scalar(f'sum(ivmtr_dead_letters_total{{feed="{FEED}", field="scanDatetime"}})') == 2
    assert scalar('sum(ivmtr_tracker_alerts_total{kind="DELIVERED"})') >= 1

    # The alert rules loaded and evaluate without error against the real series.
    loaded = [
        rule for group in prometheus.get("/api/v1/rules")["groups"] for rule in group["rules"]
    ]
    written = [
        rule
        for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]
        for rule in group["rules"]
    ]
    assert [rule["name"] for rule in loaded] == [rule["alert"] for rule in written]
    assert all(rule["health"] in ("ok", "unknown") for rule in loaded), loaded
