"""The operator tools against the real service and broker: ``simulate`` pushes, ``tail`` reads.

The commands run through click's CliRunner in a worker thread: each calls ``asyncio.run``,
which must not run on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator

import click
import orjson
import pytest
from click.testing import CliRunner, Result

from consumer.cli.simulate import simulate
from consumer.cli.tail import tail
from consumer.feeds import hash_password
from consumer.simulator import MailingSpec, generate_records, record_kind
from tests.integration.conftest import (
    BOOTSTRAP,
    Service,
    consume,
    require_broker,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.kafka

PIECES = 200
SEED = 11
USER, PASSWORD = "usps-simulator", "sim-secret-42"
TOPIC_OF_KIND = {
    "piece": "piece-scans",
    "bundle": "bundle-scans",
    "handling_unit": "handling-unit-scans",
    "container": "container-scans",
}


@pytest.fixture(scope="module")
def tools_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose one feed, "simulated", takes Basic auth as IV-MTR pushes do."""
    require_broker()
    tmp = tmp_path_factory.mktemp("tools")
    feeds = tmp / "feeds.toml"
    password_hash = hash_password(PASSWORD, n=2**10)
    feeds.write_text(f'[feeds.simulated]\nuser = "{USER}"\npassword_hash = "{password_hash}"\n')
    running = start_service(
        tmp,
        f"it-tools-{uuid.uuid4().hex[:8]}.",
        IVMTR_FEEDS_FILE=str(feeds),
        IVMTR_GROUP_CHECK_INTERVAL_S="0.2",  # so the group receipt comes soon
    )
    try:
        yield running
    finally:
        stop_service(running)


async def invoke(command: click.Command, args: list[str], service: Service) -> Result:
    env = {"IVMTR_TOPIC_PREFIX": service.prefix, "IVMTR_KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP}
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, command, args, env=env, catch_exceptions=False)


async def test_simulate_publishes_every_record_then_tail_reads_them(tools_service: Service) -> None:
    records = list(generate_records(MailingSpec(pieces=PIECES, seed=SEED)))
    expected = Counter(TOPIC_OF_KIND[record_kind(r)] for r in records)

    result = await invoke(
        simulate,
        [
            *("--url", f"{tools_service.url}/v1/feeds/simulated"),
            *("--pieces", str(PIECES), "--seed", str(SEED), "--message-size", "250"),
            *("--gzip", "--concurrency", "2", "--user", USER, "--password", PASSWORD, "--json"),
        ],
        tools_service,
    )
    assert result.exit_code == 0, result.output + tools_service.logs()[-3000:]
    summary = orjson.loads(result.stdout)
    messages = -(-len(records) // 250)
    assert summary["ok"] is True
    assert summary["messages"] == summary["delivered"] == messages
    assert summary["records"] == len(records)
    assert (summary["failures"], summary["not_sent"], summary["duplicates"]) == (0, 0, 0)
    assert summary["errors"] == []
    (group,) = summary["msg_grp_ids"]

    published = Counter[str]()
    for suffix in (*TOPIC_OF_KIND.values(), "dead-letters"):
        consumed = await consume(tools_service.topic(suffix), msg_grp_id=group)
        published[suffix] = len(consumed)
        assert {c.value["provenance"]["feed"] for c in consumed} <= {"simulated"}
    assert published == expected + Counter({"dead-letters": 0})
    assert published["dead-letters"] == 0

    # tail, JSON: the first five piece scans, all of this group, datetimes as ISO strings
    result = await invoke(
        tail,
        ["--topic", "piece-scans", "--from-beginning", "--format", "json", "--max", "5"],
        tools_service,
    )
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert line["topic"] == tools_service.topic("piece-scans")
        assert line["headers"]["ivmtr.schema"] == "ivmtr.events.PieceScan"
        assert line["value"]["provenance"]["msg_grp_id"] == group
        assert line["key"] == line["value"]["barcode"]["tracking_code"]
        assert line["value"]["scan"]["scanned_at"].endswith("+00:00")

    # tail, table, one IMb: exactly that piece's scans
    imb = str(next(r["imb"] for r in records if record_kind(r) == "piece"))
    scans = sum(1 for r in records if record_kind(r) == "piece" and r["imb"] == imb)
    result = await invoke(
        tail,
        ["--topic", "piece-scans", "--from-beginning", "--format", "table", "--imb", imb],
        tools_service,
    )
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.startswith("TIME (UTC)") and "FACILITY" in header
    assert len(rows) == scans > 0
    assert all(row.split()[2:4] == ["piece", imb[:20]] for row in rows)

    # tail, table, receipts of the group: one per message, then (from the group watcher,
    # in the background) the group's own
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        result = await invoke(
            tail,
            ["--topic", "deliveries", "--from-beginning", "--format", "table", "--group", group],
            tools_service,
        )
        assert result.exit_code == 0, result.output
        statuses = Counter(row.split()[4] for row in result.stdout.splitlines()[1:])
        if statuses["GROUP_COMPLETE"] or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.3)
    assert statuses["PUBLISHED"] == messages, result.stdout
    assert statuses["GROUP_COMPLETE"] == 1, result.stdout
    assert f"group:{group}" in result.stdout

    # and no dead letters: the table is its header alone
    result = await invoke(
        tail,
        ["--topic", "dead-letters", "--from-beginning", "--format", "table", "--feed", "simulated"],
        tools_service,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [result.stdout.splitlines()[0]]


async def test_simulate_stops_at_a_refusal(tools_service: Service) -> None:
    result = await invoke(
        simulate,
        [
            *("--url", f"{tools_service.url}/v1/feeds/simulated", "--pieces", "100"),
            *("--message-size", "100", "--user", USER, "--password", "wrong", "--json"),
        ],
        tools_service,
    )
    assert result.exit_code == 1
    summary = orjson.loads(result.stdout)
    assert (summary["delivered"], summary["failures"], summary["retries"]) == (0, 1, 0)
    assert summary["not_sent"] == summary["messages"] - 1 > 0
    assert "refused: HTTP 401" in result.stderr


async def test_tail_of_a_missing_topic_fails_cleanly(tools_service: Service) -> None:
    result = await invoke(tail, ["--topic", "no-such-topic"], tools_service)
    assert result.exit_code == 1
    assert "topic 'no-such-topic' does not exist" in result.output
