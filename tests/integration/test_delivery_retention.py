"""The delivery log's cap against the real broker and a real service process: a message
evicted from the log and pushed again is published again, as a new message; one still
held is a duplicate. The log's size and evictions show in the metrics and the log."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.conftest import require_broker, start_service, stop_service
from tests.integration.test_delivery import event_ids, expected_ids, mailing, push_until_answered
from tests.integration.test_observability import scrape, value

pytestmark = pytest.mark.kafka


async def test_past_the_cap_an_evicted_message_is_published_again_a_held_one_is_not(
    tmp_path: Path,
) -> None:
    require_broker()
    service = start_service(
        tmp_path, f"it-{uuid.uuid4().hex[:8]}.", IVMTR_DELIVERY_LOG_MAX_KEYS="3"
    )
    try:
        # Five messages, each its own group (one message of about 20 records).
        messages = [mailing(4, 1000, seed=40 + n)[0] for n in range(5)]
        assert len({m["msgGrpId"] for m in messages}) == 5
        url = f"{service.url}/v1/feeds/demo"
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            for message in messages:
                answer = await push_until_answered(client, url, orjson.dumps(message))
                assert answer.status_code == 200 and answer.json()["duplicate"] is False
            samples = await scrape(client)
            assert value(samples, "ivmtr_delivery_log_entries") == 3
            assert value(samples, "ivmtr_delivery_log_evictions_total", reason="cap") == 2
            assert value(samples, "ivmtr_delivery_log_evictions_total", reason="retention") == 0

            # The first message was evicted: pushed again, it is a new message, not a
            # duplicate, and not a conflict either (nothing is known of it).
            again = await push_until_answered(client, url, orjson.dumps(messages[0]))
            assert again.status_code == 200
            assert again.json()["duplicate"] is False and again.json()["status"] == "PUBLISHED"
            # The last one is still held: a duplicate, answered with what it published.
            last = await push_until_answered(client, url, orjson.dumps(messages[-1]))
            assert last.json()["duplicate"] is True and last.json()["status"] == "DUPLICATE"
            assert sum(last.json()["published"].values()) == expected_ids([messages[-1]])

            samples = await scrape(client)
            assert value(samples, "ivmtr_delivery_log_entries") == 3
            assert value(samples, "ivmtr_delivery_log_evictions_total", reason="cap") == 3

        evicted = await event_ids(service, str(messages[0]["msgGrpId"]))
        assert len(evicted) == expected_ids([messages[0]]) and set(evicted.values()) == {2}
        held = await event_ids(service, str(messages[-1]["msgGrpId"]))
        assert len(held) == expected_ids([messages[-1]]) and set(held.values()) == {1}

        lines = [json.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
        (full,) = [line for line in lines if line["event"].startswith("delivery log full")]
        assert full["level"] == "info" and full["max_keys"] == 3 and full["evicted"] == 1
    finally:
        stop_service(service)
