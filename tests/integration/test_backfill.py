"""Backfill from the Mail Tracking API (a local emulator at the network edge) into Kafka."""

from __future__ import annotations

from collections import defaultdict

import httpx
import orjson
import pytest

from consumer.api.client import ApiConfig, MailTrackingClient
from consumer.ingest.backfill import backfill
from consumer.ingest.routing import Routing
from consumer.service import kafka_config, record_shapes
from consumer.settings import load_settings
from consumer.simulator import MailingSpec, generate_records, message_group
from consumer.simulator.api_emulator import ApiEmulator, api_pieces_for
from producer import Publisher, TopicTable
from tests.integration.conftest import BOOTSTRAP, Service, consume, message_group_id

pytestmark = pytest.mark.kafka


async def test_backfilled_scans_carry_the_event_ids_of_pushed_ones(
    client: httpx.AsyncClient, service: Service
) -> None:
    spec = MailingSpec(pieces=40, seed=41, trays=False)
    records = list(generate_records(spec))
    (message,) = message_group(records, message_size=100_000, msg_grp_id=message_group_id())
    pushed = await client.post(
        "/v1/feeds/demo",
        content=orjson.dumps(message),
        headers={"content-type": "application/json"},
    )
    assert pushed.status_code == 200 and pushed.json()["rejected"] == 0

    pieces = api_pieces_for(spec)
    imbs = sorted(pieces)[:15]
    emulator = ApiEmulator(pieces, username="bcg-user", password="bcg-pass")
    auth_url, api_url = ApiEmulator.urls("http://usps.test")
    config = ApiConfig(username="bcg-user", password="bcg-pass", auth_url=auth_url, api_url=api_url)
    settings = load_settings(
        kafka_bootstrap_servers=BOOTSTRAP, topic_prefix=service.prefix, insecure_dev_mode=True
    )
    topics = TopicTable.build(service.prefix)
    publisher = Publisher(kafka_config(settings), topics, timeout_s=20)
    async with (
        publisher,
        MailTrackingClient(config, transport=httpx.ASGITransport(app=emulator.app)) as api,
    ):
        summary = await backfill(
            [*imbs, "00270" + "9" * 15, "not-an-imb"],
            client=api,
            publisher=publisher,
            route=Routing(topics).route("backfill"),
            shapes=record_shapes(),
        )
    assert summary.published_pieces == len(imbs)
    assert summary.not_found == ["00270" + "9" * 15]
    assert list(summary.refused) == ["not-an-imb"]
    assert summary.dead_letters == 0 and not summary.failed

    by_source: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record in await consume(service.topic("piece-scans")):
        value = record.value
        if value["provenance"]["source"] == "API" and value["provenance"]["feed"] == "backfill":
            by_source["API"][value["barcode"]["tracking_code"]].add(value["event_id"])
        elif value["provenance"]["msg_grp_id"] == message["msgGrpId"]:
            by_source["PUSH"][value["barcode"]["tracking_code"]].add(value["event_id"])
    backfilled = {imb[:20] for imb in imbs}
    assert set(by_source["API"]) == backfilled
    for tracking_code in backfilled:
        assert by_source["API"][tracking_code] == by_source["PUSH"][tracking_code]
