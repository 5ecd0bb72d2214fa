"""The service with a schema registry: Confluent wire format that subscribers decode with their
standard deserializers, stable ids across restarts, and a clear failure without the registry."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from examples.consume_confluent import read_events
from tests.integration.conftest import (
    BOOTSTRAP,
    consume_raw,
    message_group_id,
    require_broker,
    start_service,
    stop_service,
)
from tests.integration.test_ingest import BAD_PIECE, CONTAINER, PIECE, TRAY, envelope

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

REGISTRY = os.environ.get("IVMTR_TEST_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")


def require_registry() -> None:
    try:
        httpx.get(f"{REGISTRY}/subjects", timeout=3).raise_for_status()
    except httpx.HTTPError:
        pytest.fail(
            f"no schema registry at {REGISTRY}: run `scripts/registry start` (make test does)"
        )


async def test_events_in_confluent_format_decode_with_standard_deserializers(
    tmp_path: Path,
) -> None:
    require_broker()
    require_registry()
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    service = start_service(tmp_path, prefix, IVMTR_SCHEMA_REGISTRY_URL=REGISTRY)
    try:
        group = message_group_id()
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            answer = await client.post(
                "/v1/feeds/demo",
                content=orjson.dumps(envelope([PIECE, TRAY, CONTAINER, BAD_PIECE], group)),
                headers={"content-type": "application/json"},
            )
        assert answer.status_code == 200, answer.text
        raw = await consume_raw(service.topic("piece-scans"))
        assert raw and all(value[:1] == b"\x00" for _, value in raw)
        assert all(headers["ivmtr.encoding"] == "confluent-avro" for headers, _ in raw)
        first_id = int.from_bytes(raw[0][1][1:5], "big")
        for suffix, field, expected in (
            ("piece-scans", "imb", PIECE["imb"]),
            ("handling-unit-scans", "imtb", TRAY["imtb"]),
            ("container-scans", "imcb", CONTAINER["imcb"]),
            ("dead-letters", "kind", "piece"),
        ):
            events = await asyncio.to_thread(
                read_events,
                BOOTSTRAP,
                REGISTRY,
                service.topic(suffix),
                f"g-{uuid.uuid4().hex[:6]}",
                1,
            )
            assert events and events[0][field] == expected
        receipts = await asyncio.to_thread(
            read_events,
            BOOTSTRAP,
            REGISTRY,
            service.topic("deliveries"),
            f"g-{uuid.uuid4().hex[:6]}",
            2,
        )
        assert {receipt["status"] for receipt in receipts} == {"STARTED", "PUBLISHED"}
    finally:
        stop_service(service)

    # A restart registers the same schemas again: the same ids.
    service = start_service(tmp_path, prefix, IVMTR_SCHEMA_REGISTRY_URL=REGISTRY)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            answer = await client.post(
                "/v1/feeds/demo",
                content=orjson.dumps(envelope([PIECE], message_group_id())),
                headers={"content-type": "application/json"},
            )
        assert answer.status_code == 200
        raw = await consume_raw(service.topic("piece-scans"))
        assert {int.from_bytes(value[1:5], "big") for _, value in raw} == {first_id}
    finally:
        stop_service(service)


def test_start_up_fails_clearly_without_the_registry(tmp_path: Path) -> None:
    require_broker()
    with pytest.raises(RuntimeError) as caught:
        start_service(
            tmp_path,
            f"it-{uuid.uuid4().hex[:8]}.",
            IVMTR_SCHEMA_REGISTRY_URL="http://127.0.0.1:9/apis/ccompat/v7",
        )
    assert "schema registry refused or unreachable" in str(caught.value)
