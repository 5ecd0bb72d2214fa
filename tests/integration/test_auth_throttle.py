"""A client that keeps failing is locked out, against the running service; others publish."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import (
    consume,
    message_group_id,
    require_broker,
    start_service,
    stop_service,
)
from tests.integration.test_ingest import PIECE, envelope
from tests.integration.test_security import JSON, feeds_file, post

pytestmark = pytest.mark.kafka

RIGHT = ("usps-letters", "letters-secret-1")
WRONG = ("usps-letters", "letters-secret-2")


def auth_metrics(url: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("ivmtr_auth_"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


async def test_a_failing_address_gets_429_and_another_still_publishes(tmp_path: Path) -> None:
    require_broker()
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    # 127.0.0.1 is a trusted proxy: X-Forwarded-For says which client each push is from.
    feeds = feeds_file(tmp_path / f"th{uuid.uuid4().hex[:6]}.toml", trusted="127.0.0.0/8")
    service = start_service(
        tmp_path,
        prefix,
        IVMTR_FEEDS_FILE=str(feeds),
        IVMTR_AUTH_FAILURE_LIMIT="3",
        IVMTR_AUTH_REFUSAL_DELAY_S="0.2",
    )
    try:
        attacker = {**JSON, "x-forwarded-for": "198.51.100.7"}
        body = orjson.dumps(envelope([PIECE], message_group_id()))
        statuses = [
            (await post(service, "letters", body, auth=WRONG, headers=attacker)).status_code
            for _ in range(3)
        ]
        assert statuses == [401, 401, 401]
        # Locked out now: even the right password is refused, without a check.
        for auth in (WRONG, RIGHT):
            refused = await post(service, "letters", body, auth=auth, headers=attacker)
            assert refused.status_code == 429, refused.text
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            assert refused.json()["error"] == "too_many_failures"
            assert refused.json()["request_id"] == refused.headers["x-request-id"]

        group = message_group_id()
        valid = await post(
            service,
            "letters",
            orjson.dumps(envelope([PIECE], group)),
            auth=RIGHT,
            headers={**JSON, "x-forwarded-for": "198.51.100.8"},
        )
        assert valid.status_code == 200, valid.text
        (piece,) = await consume(service.topic("piece-scans"), msg_grp_id=group)
        assert piece.value["imb"] == PIECE["imb"]

        values = auth_metrics(service.url)
        assert values["ivmtr_auth_failures_total{feed=letters}"] == 3  # scrypt ran 3 times
        assert values["ivmtr_auth_throttled_total"] == 2
        assert values["ivmtr_auth_lockouts_total"] == 1
        assert values["ivmtr_auth_tracked_clients"] == 1
        assert "client locked out after failed password checks" in service.logs()
        assert "letters-secret" not in service.logs()
    finally:
        stop_service(service)
