"""Delivery guarantees against the real broker and real service processes: exactly once
per pushed message, across retries, concurrent pushes, restarts and two replicas."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from consumer.simulator import MailingSpec, generate_records, message_group
from tests.integration.conftest import (
    Service,
    consume,
    message_group_id,
    require_broker,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.kafka


def mailing(pieces: int, message_size: int, seed: int) -> list[dict[str, object]]:
    """A realistic message group from the simulator, with a fresh msgGrpId."""
    records = list(generate_records(MailingSpec(pieces=pieces, seed=seed)))
    return message_group(records, message_size=message_size, msg_grp_id=message_group_id())


async def push_until_answered(
    client: httpx.AsyncClient, url: str, body: bytes, attempts: int = 40
) -> httpx.Response:
    """Push like IV-MTR: retry on 503/429 and on network errors, honouring Retry-After."""
    for _ in range(attempts):
        try:
            response = await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        if response.status_code not in (429, 503):
            return response
        await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 2.0))
    raise AssertionError(f"no answer after {attempts} attempts")


async def event_ids(service: Service, group: str) -> Counter[str]:
    """How often each event id of a group is visible to read_committed subscribers."""
    ids: Counter[str] = Counter()
    for suffix in ("piece-scans", "handling-unit-scans", "container-scans", "bundle-scans"):
        for record in await consume(service.topic(suffix), msg_grp_id=group):
            ids[record.value["event_id"]] += 1
    return ids


def expected_ids(messages: list[dict[str, object]]) -> int:
    return sum(len(message["events"]) for message in messages)  # type: ignore[arg-type]


async def receipts(service: Service, group: str) -> list[dict[str, object]]:
    records = await consume(service.topic("deliveries"))
    return [r.value for r in records if r.value["msg_grp_id"] == group]


async def test_a_resent_message_is_a_duplicate(client: httpx.AsyncClient, service: Service) -> None:
    (message,) = mailing(40, 10_000, seed=11)
    body = orjson.dumps(message)
    first = await client.post(
        "/v1/feeds/demo", content=body, headers={"content-type": "application/json"}
    )
    second = await client.post(
        "/v1/feeds/demo", content=body, headers={"content-type": "application/json"}
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["duplicate"] is False and first.json()["status"] == "PUBLISHED"
    assert second.json()["duplicate"] is True and second.json()["status"] == "DUPLICATE"
    assert second.json()["published"] == first.json()["published"]
    ids = await event_ids(service, message["msgGrpId"])  # type: ignore[arg-type]
    assert len(ids) == expected_ids([message]) and set(ids.values()) == {1}
    statuses = [
        r["status"] for r in await receipts(service, message["msgGrpId"]) if r["kind"] == "MESSAGE"
    ]  # type: ignore[arg-type]
    assert statuses == ["STARTED", "PUBLISHED"]


async def test_concurrent_pushes_of_one_message_publish_once(
    client: httpx.AsyncClient, service: Service
) -> None:
    (message,) = mailing(60, 10_000, seed=12)
    body = orjson.dumps(message)
    url = f"{service.url}/v1/feeds/demo"
    answers = await asyncio.gather(*(push_until_answered(client, url, body) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    ids = await event_ids(service, message["msgGrpId"])  # type: ignore[arg-type]
    assert len(ids) == expected_ids([message]) and set(ids.values()) == {1}


async def test_same_coordinates_other_content_is_a_conflict(
    client: httpx.AsyncClient, service: Service
) -> None:
    """README "Delivery guarantees": published again, with a CONFLICT receipt, a warning log
    line and the ivmtr_message_problems_total{problem="conflict"} metric."""
    from tests.integration.test_observability import scrape, value

    (message,) = mailing(20, 10_000, seed=13)
    events: list[object] = message["events"]  # type: ignore[assignment]
    changed = {**message, "events": events[:-1], "recCnt": len(events) - 1}
    group, serial = str(message["msgGrpId"]), message["msgSerNbr"]
    bodies = orjson.dumps(message), orjson.dumps(changed)
    before = await scrape(client)
    first = await client.post(
        "/v1/feeds/conflict", content=bodies[0], headers={"content-type": "application/json"}
    )
    request_id = f"conflict-{group}"
    second = await client.post(
        "/v1/feeds/conflict",
        content=bodies[1],
        headers={"content-type": "application/json", "x-request-id": request_id},
    )
    after = await scrape(client)
    first_sha, second_sha = (hashlib.sha256(body).hexdigest() for body in bodies)

    assert first.json()["status"] == "PUBLISHED"
    assert second.status_code == 200
    assert second.json()["status"] == "CONFLICT" and second.json()["duplicate"] is False
    assert second.json()["problems"] == [
        f"msgGrpId/msgSerNbr published before with other content (sha256 {first_sha})"
    ]
    # Published again: the new content's scans once more (they keep their event_id), so
    # every scan but the dropped last one is on the topics twice.
    assert sum(second.json()["published"].values()) == len(events) - 1
    ids = await event_ids(service, group)
    assert sorted(Counter(ids.values()).items()) == [(1, 1), (2, len(events) - 1)]

    # The receipt: key msg:<msgGrpId>/<msgSerNbr>, the new content's hash and counts, the
    # problem; after the first content's PUBLISHED one, on the same partition.
    records = [
        record
        for record in await consume(service.topic("deliveries"))
        if record.value["msg_grp_id"] == group and record.value["kind"] == "MESSAGE"
    ]
    assert [record.value["status"] for record in records] == [
        "STARTED",
        "PUBLISHED",
        "STARTED",
        "CONFLICT",
    ]
    assert {record.key for record in records} == {f"msg:{group}/{serial}"}
    assert len({record.partition for record in records}) == 1
    published, conflict = records[1].value, records[3].value
    assert published["content_sha256"] == first_sha
    assert conflict["content_sha256"] == second_sha
    assert conflict["problems"] == second.json()["problems"]
    assert conflict["records_received"] == conflict["rec_cnt"] == len(events) - 1
    assert conflict["published"] == second.json()["published"]
    assert conflict["feed"] == "conflict" and conflict["msg_ser_nbr"] == serial

    # The warning, in the second request's context.
    lines = [orjson.loads(line) for line in service.logs().split("\n") if line.startswith("{")]
    (warning,) = [
        line
        for line in lines
        if line["event"] == "message published again with other content"
        and line.get("key") == f"msg:{group}/{serial}"
    ]
    assert warning["level"] == "warning" and warning["request_id"] == request_id

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("ivmtr_message_problems_total", feed="conflict", problem="conflict") == 1
    assert delta("ivmtr_messages_total", feed="conflict", outcome="conflict") == 1
    assert delta("ivmtr_messages_total", feed="conflict", outcome="published") == 1
    assert delta("ivmtr_messages_total", feed="conflict", outcome="duplicate") == 0


async def test_rec_cnt_mismatch_is_reported_and_published(
    client: httpx.AsyncClient, service: Service
) -> None:
    (message,) = mailing(10, 10_000, seed=14)
    lying = {**message, "recCnt": len(message["events"]) + 5}  # type: ignore[arg-type]
    answer = await client.post(
        "/v1/feeds/demo", content=orjson.dumps(lying), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200
    assert answer.json()["problems"] == [
        f"recCnt {lying['recCnt']} != {len(message['events'])} records received"
    ]  # type: ignore[arg-type]
    (receipt,) = [
        r for r in await receipts(service, message["msgGrpId"]) if r["status"] == "PUBLISHED"
    ]  # type: ignore[arg-type]
    assert receipt["problems"] == answer.json()["problems"]
    assert receipt["records_received"] == len(message["events"])  # type: ignore[arg-type]


@pytest.fixture
def own_service(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    require_broker()
    yield tmp_path, f"it-{uuid.uuid4().hex[:8]}."


async def test_duplicates_are_recognised_after_a_restart(own_service: tuple[Path, str]) -> None:
    tmp, prefix = own_service
    messages = mailing(80, 100, seed=15)
    service = start_service(tmp, prefix)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            for message in messages:
                assert (
                    await push_until_answered(client, "/v1/feeds/demo", orjson.dumps(message))
                ).status_code == 200
    finally:
        stop_service(service)
    service = start_service(tmp, prefix)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            for message in messages:
                answer = await push_until_answered(client, "/v1/feeds/demo", orjson.dumps(message))
                assert answer.json()["duplicate"] is True
        ids = await event_ids(service, messages[0]["msgGrpId"])  # type: ignore[arg-type]
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
    finally:
        stop_service(service)


async def test_two_replicas_receiving_the_same_messages_publish_each_once(
    own_service: tuple[Path, str],
) -> None:
    tmp, prefix = own_service
    messages = mailing(150, 60, seed=16)
    replicas = [start_service(tmp, prefix), start_service(tmp, prefix)]
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            pushes = [
                push_until_answered(client, f"{replica.url}/v1/feeds/demo", orjson.dumps(message))
                for message in messages
                for replica in replicas
            ]
            answers = await asyncio.gather(*pushes)
        assert {a.status_code for a in answers} == {200}
        duplicates = Counter(a.json()["duplicate"] for a in answers)
        assert duplicates == {False: len(messages), True: len(messages)}
        ids = await event_ids(replicas[0], messages[0]["msgGrpId"])  # type: ignore[arg-type]
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
    finally:
        for replica in replicas:
            stop_service(replica)


def assigned_slots(service: Service) -> list[int]:
    """The slots the service's last "delivery slots assigned" log line gave it."""
    lines = [orjson.loads(line) for line in service.logs().splitlines() if line.startswith("{")]
    return [line["slots"] for line in lines if line.get("event") == "delivery slots assigned"][-1]


async def wait_for_owned(service: Service, slots: int, within_s: float = 30) -> dict:  # type: ignore[type-arg]
    """The service's metrics once it owns ``slots`` delivery slots."""
    from tests.integration.test_observability import scrape, value

    deadline = asyncio.get_running_loop().time() + within_s
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        while True:
            samples = await scrape(client)
            if value(samples, "ivmtr_owned_delivery_slots") == slots:
                return samples
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{service.url} never owned {slots} slots")
            await asyncio.sleep(0.2)


async def test_replicas_share_the_slots_and_forward_instead_of_taking_them(
    own_service: tuple[Path, str],
) -> None:
    from producer.kafka import partition_for
    from tests.integration.test_observability import scrape, value

    tmp, prefix = own_service
    slots = 16  # IVMTR_DELIVERY_SLOTS' default
    first = start_service(tmp, prefix)
    await wait_for_owned(first, slots)
    # The second replica joins the slot group: the group deals it half the slots, from
    # the first, whose producers for them stop; nobody is fenced.
    second = start_service(tmp, prefix)
    try:
        await wait_for_owned(first, slots // 2)
        await wait_for_owned(second, slots // 2)
        mine = set(assigned_slots(first))
        assert len(mine) == slots // 2 and not mine & set(assigned_slots(second))
        messages = mailing(200, 20, seed=17)
        elsewhere = sum(
            partition_for(f"msg:{m['msgGrpId']}/{m['msgSerNbr']}".encode(), slots) not in mine
            for m in messages
        )
        assert 0 < elsewhere < len(messages)
        async with httpx.AsyncClient(base_url=first.url, timeout=60) as client:
            for attempt in range(2):
                for message in messages:
                    answer = await push_until_answered(
                        client, "/v1/feeds/demo", orjson.dumps(message)
                    )
                    assert answer.status_code == 200
                    assert answer.json()["duplicate"] is (attempt == 1)
            samples = await scrape(client)
        async with httpx.AsyncClient(base_url=second.url, timeout=60) as client:
            other = await scrape(client)
        ids = await event_ids(first, messages[0]["msgGrpId"])  # type: ignore[arg-type]
        assert len(ids) == expected_ids(messages) and set(ids.values()) == {1}
        # Every message of the second's slots went there, twice; the rest stayed.
        assert value(samples, "ivmtr_forwarded_messages_total", feed="demo", status="200") == (
            2 * elsewhere
        )
        assert value(other, "ivmtr_forwarded_messages_total", feed="demo", status="200") == 0
        # Producers: the first started one per slot at start and none since; the second
        # one per slot it was dealt. No transaction was fenced or failed.
        assert value(samples, "ivmtr_delivery_slot_takeovers_total", reason="start") == slots
        assert value(samples, "ivmtr_delivery_slot_takeovers_total", reason="assigned") == 0
        assert value(other, "ivmtr_delivery_slot_takeovers_total", reason="start") == slots // 2
        for process in (samples, other):
            assert value(process, "ivmtr_delivery_slot_takeovers_total", reason="replaced") == 0
            assert value(process, "ivmtr_fenced_transactions_total") == 0
            assert value(process, "ivmtr_aborted_transactions_total", reason="failed") == 0
        # Each re-sent message was recognised by its slot's owner.
        duplicates = value(samples, "ivmtr_aborted_transactions_total", reason="duplicate")
        assert duplicates == len(messages) - elsewhere
        assert value(other, "ivmtr_aborted_transactions_total", reason="duplicate") == elsewhere
        assert value(samples, "ivmtr_slot_rebalances_total") == 2
        assert value(other, "ivmtr_slot_rebalances_total") == 1
    finally:
        stop_service(first)
        stop_service(second)


async def test_a_process_outside_the_group_taking_slots_is_fenced_back_and_counted(
    own_service: tuple[Path, str],
) -> None:
    """A zombie, or a tool publishing on the same transactional ids, takes every slot."""
    from producer import KafkaConfig, Publisher, TopicTable
    from tests.integration.conftest import BOOTSTRAP
    from tests.integration.test_observability import scrape, value

    tmp, prefix = own_service
    slots = 16
    service = start_service(tmp, prefix)
    zombie = Publisher(KafkaConfig(bootstrap_servers=BOOTSTRAP), TopicTable.build(prefix))
    try:
        await wait_for_owned(service, slots)
        await zombie.start()  # no address: it takes every slot, fencing the service
        message = orjson.dumps(mailing(5, 500, seed=17)[0])
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            published = await push_until_answered(client, "/v1/feeds/demo", message)
            again = await push_until_answered(client, "/v1/feeds/demo", message)
            samples = await scrape(client)
        assert published.json()["duplicate"] is False and again.json()["duplicate"] is True
        # The service found its slot taken, was fenced, took it back and went on.
        assert value(samples, "ivmtr_delivery_slot_takeovers_total", reason="start") == slots
        assert value(samples, "ivmtr_delivery_slot_takeovers_total", reason="replaced") == 1
        assert value(samples, "ivmtr_fenced_transactions_total") == 1
        assert value(samples, "ivmtr_aborted_transactions_total", reason="failed") == 1
        assert value(samples, "ivmtr_aborted_transactions_total", reason="duplicate") == 1
        assert value(samples, "ivmtr_owned_delivery_slots") == slots
    finally:
        await zombie.stop()
        stop_service(service)


async def test_message_groups_complete_incomplete_and_mismatched(
    own_service: tuple[Path, str],
) -> None:
    tmp, prefix = own_service
    service = start_service(
        tmp, prefix, IVMTR_GROUP_TIMEOUT_S="2", IVMTR_GROUP_CHECK_INTERVAL_S="0.3"
    )
    try:
        complete = mailing(30, 50, seed=17)
        incomplete = mailing(30, 50, seed=18)
        mismatched = mailing(30, 50, seed=19)
        assert len(complete) >= 3 and len(incomplete) >= 3
        # The last message lies about the group's record total.
        mismatched[-1] = {**mismatched[-1], "totRecCnt": 7}
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            for message in complete + incomplete[:-1] + mismatched:
                answer = await push_until_answered(client, "/v1/feeds/demo", orjson.dumps(message))
                assert answer.status_code == 200
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            groups = {}
            for receipt in await consume(service.topic("deliveries")):
                if receipt.value["kind"] == "GROUP" and receipt.value["status"] != "STARTED":
                    groups.setdefault(receipt.value["msg_grp_id"], []).append(receipt.value)
            wanted = [m[0]["msgGrpId"] for m in (complete, incomplete, mismatched)]
            if (
                all(group in groups for group in wanted)
                or asyncio.get_running_loop().time() > deadline
            ):
                break
            await asyncio.sleep(0.5)
        (done,) = groups[complete[0]["msgGrpId"]]
        assert done["status"] == "GROUP_COMPLETE" and done["problems"] == []
        assert done["messages_received"] == list(range(1, len(complete) + 1))
        assert done["records_received"] == expected_ids(complete) == done["tot_rec_cnt"]
        (late,) = groups[incomplete[0]["msgGrpId"]]
        assert late["status"] == "GROUP_INCOMPLETE"
        assert late["problems"] == [f"missing msgSerNbr [{len(incomplete)}]"]
        (odd,) = groups[mismatched[0]["msgGrpId"]]
        assert odd["status"] == "GROUP_COMPLETE"
        assert any("disagree on totRecCnt" in problem for problem in odd["problems"])
        assert "message group complete" in service.logs()
    finally:
        stop_service(service)


async def test_overload_is_refused_at_once_with_retry_after(own_service: tuple[Path, str]) -> None:
    tmp, prefix = own_service
    service = start_service(
        tmp,
        prefix,
        IVMTR_MAX_CONCURRENT_REQUESTS="1",
        IVMTR_MAX_INFLIGHT_RECORDS="1000",
        IVMTR_RETRY_AFTER_S="7",
    )
    try:
        (small,) = mailing(30, 10_000, seed=31)
        (large,) = mailing(1200, 100_000, seed=32)
        assert len(large["events"]) > 1000  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            gate = asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                body = orjson.dumps(small)
                yield body[:100]
                await gate.wait()
                yield body[100:]

            slow = asyncio.create_task(
                client.post(
                    "/v1/feeds/demo",
                    content=slow_body(),
                    headers={"content-type": "application/json"},
                )
            )
            await asyncio.sleep(0.5)
            started = asyncio.get_running_loop().time()
            refused = await client.post(
                "/v1/feeds/demo",
                content=orjson.dumps(small),
                headers={"content-type": "application/json"},
            )
            assert asyncio.get_running_loop().time() - started < 2
            assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
            assert refused.json()["error"] == "overloaded"
            gate.set()
            assert (await slow).status_code == 200
            too_many = await client.post(
                "/v1/feeds/demo",
                content=orjson.dumps(large),
                headers={"content-type": "application/json"},
            )
            assert too_many.status_code == 503
            assert "max_inflight_records=1000" in too_many.json()["detail"]
        assert await event_ids(service, str(large["msgGrpId"])) == {}
        ids = await event_ids(service, str(small["msgGrpId"]))
        assert len(ids) == expected_ids([small])
    finally:
        stop_service(service)
