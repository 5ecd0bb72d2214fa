"""End to end: IV-MTR messages pushed over HTTP to the running service, read back from Kafka."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.conftest import Service, consume, message_group_id

pytestmark = pytest.mark.kafka

PIECE = {  # ivmtr.md section 5: an eDoc-enriched piece scan
    "imb": "0004069951599001910222082810103",
    "imbTrackingCode": "00040699515990019102",
    "imbStid": "040",
    "imbMid": "699515",
    "imbSerialNumber": "990019102",
    "imbRoutingCode": "22082810103",
    "routingCodeImbMatchingPortion": "22082810103",
    "handlingEventType": "A",
    "handlingEventTypeDescription": "Actual",
    "scanDatetime": "2016-01-22 22:29:53-05:00",
    "scanEventCode": "918",
    "mailPhase": "Phase 3c - Destination Sequenced Carrier Sortation",
    "machineName": "DBCS-016",
    "machineId": "016",
    "scanFacilityName": "MERRIFIELD",
    "scanFacilityCity": "Merrifield",
    "scanFacilityState": "VA",
    "scanFacilityZip": "22116",
    "scanLocaleKey": "X27222",
    "edocJobId": "J123456",
    "edocSubmitterCrid": "4614860",
    "mailClassDescription": "First Class",
    "mailShapeDescription": "Letter",
    "pieceId": "2f2980d0-1086-11e6-a904-e58664760ec6",
    "predictedDeliveryDate": "2016-01-22",
    "startTheClockDate": "2016-01-21",
}
LDE = {  # logical delivery: no facility, raw (no eDoc ids), an unknown field
    "imb": "0004069951599001910222082810103",
    "handlingEventType": "L",
    "handlingEventTypeDescription": "Logical",
    "scanEventCode": "517",
    "scanDatetime": "2016-01-23T11:05:00-0500",
    "mailPhase": "Phase 4c - Delivery",
    "scanFacilityName": "",
    "scanFacilityCity": "",
    "scanFacilityState": "",
    "scanLocaleKey": "",
    "scanFacilityZip": "22082",
    "ldeDeliveryMode": "On-Street",
    "ldeInventoryMethod": "LPO 918",
    "ldeTriggerMethod": "ZIP+4 Entry",
    "futureField": {"nested": [1, 2]},
}
NINE_DIGIT_MID = {  # 9-digit MID, 6-digit serial, ZIP+4 routing, Business Reply Mail STID
    "imb": "01052" + "912345678" + "654321" + "123456789",
    "scanDatetime": "2016-01-20 07:00:00.250-08:00",
    "scanEventCode": "004",
    "handlingEventType": "A",
    "mailPhase": "Phase 0 - Origin Processing Cancellation of Postage",
    "edocMailingGroupId": "MG77",
}
BUNDLE = {
    "deviceId": "D0001",
    "edocPackageId": "PKG001",
    "imb": "00270123456789012345" + "22082",
    "scanDatetime": "2016-01-21 12:00:00-05:00",
    "scanEventCode": "146",
    "handlingEventType": "A",
}
TRAY = {
    "imtb": "999991234567890123456789",
    "imtbMid": "901234567",
    "scanDatetime": "2016-01-21 08:00:00-06:00",
    "scanEventCode": "",
    "scanState": "Enroute Arrive",
    "handlingEventType": "A",
    "pieceCount": "250",
    "edocJobId": "J9",
}
CONTAINER = {
    "imcb": "99M901234567000000123",
    "imcbMid": "901234567",
    "scanDatetime": "2016-01-21 06:30:00-06:00",
    "scanEventCode": "873",
    "scanState": "Entered at USPS",
    "trayCount": 12,
}
BAD_PIECE = {
    "imb": "0904069951599001910222082810103",
    "scanDatetime": "yesterday",
    "scanEventCode": "91",
}
NO_KIND = {"scanDatetime": "2016-01-21 06:30:00-06:00"}


def envelope(
    events: list[Any], msg_grp_id: str, serial: int = 1, total_messages: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "msgGrpId": msg_grp_id,
        "msgSerNbr": serial,
        "totMsgCnt": total_messages,
        "recCnt": len(events),
        "totRecCnt": len(events),
        "events": events,
        **extra,
    }


async def push(
    client: httpx.AsyncClient, body: bytes, feed: str = "demo", **headers: str
) -> httpx.Response:
    return await client.post(
        f"/v1/feeds/{feed}", content=body, headers={"content-type": "application/json", **headers}
    )


def micros(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return round((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


def as_utc(value: datetime) -> int:
    return round((value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


MIXED = [PIECE, LDE, NINE_DIGIT_MID, BUNDLE, TRAY, CONTAINER, BAD_PIECE, "not a record", NO_KIND]


async def test_mixed_message_lands_on_every_topic(
    client: httpx.AsyncClient, service: Service
) -> None:
    group = message_group_id()
    response = await push(client, orjson.dumps(envelope(MIXED, group)), **{"x-request-id": "req-1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "req-1"
    summary = response.json()
    assert summary["msgGrpId"] == group and summary["msgSerNbr"] == 1
    assert summary["received"] == 9 and summary["rejected"] == 3
    assert summary["published"] == {
        service.topic("piece-scans"): 3,
        service.topic("bundle-scans"): 1,
        service.topic("handling-unit-scans"): 1,
        service.topic("container-scans"): 1,
        service.topic("dead-letters"): 3,
    }

    pieces = await consume(service.topic("piece-scans"), msg_grp_id=group)
    assert len(pieces) == 3
    by_index = {p.value["provenance"]["record_index"]: p for p in pieces}
    assert sorted(by_index) == [0, 1, 2]
    for record in pieces:
        assert record.schema == "ivmtr.events.PieceScan"
        assert record.headers["ivmtr.schema"] == "ivmtr.events.PieceScan"
        assert record.headers["ivmtr.msg_grp_id"] == group
        assert record.headers["ivmtr.msg_ser_nbr"] == "1"
        assert record.headers["ivmtr.feed"] == "demo"
    # Both scans of one piece share its key, hence its partition and their order.
    assert by_index[0].key == by_index[1].key == "00040699515990019102"
    assert by_index[0].partition == by_index[1].partition

    first = by_index[0].value
    assert first["event_id"] == PIECE["pieceId"]
    provenance = first["provenance"]
    assert provenance["source"] == "PUSH" and provenance["feed"] == "demo"
    assert provenance["msg_grp_id"] == group and provenance["msg_ser_nbr"] == 1
    assert abs(provenance["received_at"].timestamp() - datetime.now(UTC).timestamp()) < 300
    assert first["imb"] == PIECE["imb"]
    assert first["barcode"] == {
        "barcode_id": "00",
        "service_type_id": "040",
        "mailer_id": "699515",
        "serial_number": "990019102",
        "routing_code": "22082810103",
        "zip5": "22082",
        "zip4": "8101",
        "delivery_point": "03",
        "tracking_code": "00040699515990019102",
    }
    service_type = first["service_type"]
    assert service_type["stid"] == "040" and service_type["mail_class"] == "First-Class Mail"
    assert service_type["service_level"] == "Basic" and service_type["iv_mtr_tracing"] is True
    assert service_type["business_reply"] is False
    scan = first["scan"]
    assert as_utc(scan["scanned_at"]) == micros("2016-01-22T22:29:53-05:00")
    assert scan["local_time"] == "2016-01-22T22:29:53" and scan["utc_offset_minutes"] == -300
    assert scan["raw_datetime"] == PIECE["scanDatetime"]
    assert scan["event_code"] == "918" and scan["handling_event_type"] == "A"
    assert scan["handling_event_meaning"] == "Actual"
    assert scan["mail_phase"] == "PHASE_3C_DESTINATION_SEQUENCED_CARRIER"
    assert scan["mail_phase_raw"] == PIECE["mailPhase"]
    assert scan["logical_delivery"] is False
    assert scan["facility"] == {
        "name": "MERRIFIELD",
        "city": "Merrifield",
        "state": "VA",
        "zip": "22116",
        "locale_key": "X27222",
    }
    assert scan["machine_name"] == "DBCS-016" and scan["machine_id"] == "016"
    assert first["record_state"] == "ENRICHED"
    assert first["job"] == {
        "job_id": "J123456",
        "mailing_group_id": None,
        "submitter_crid": "4614860",
    }
    assert first["campaign"] is None
    assert first["extra"] == {}
    # The record as pushed: every known field, null when absent.
    assert {k: v for k, v in first["record"].items() if v is not None} == PIECE
    assert first["record"]["ldeDeliveryMode"] is None

    lde = by_index[1].value
    assert lde["scan"]["logical_delivery"] is True
    assert (
        lde["scan"]["handling_event_type"] == "L"
        and lde["scan"]["handling_event_meaning"] == "Logical"
    )
    assert lde["scan"]["facility"] == {
        "name": None,
        "city": None,
        "state": None,
        "zip": "22082",
        "locale_key": None,
    }
    assert lde["scan"]["utc_offset_minutes"] == -300
    assert as_utc(lde["scan"]["scanned_at"]) == micros("2016-01-23T11:05:00-05:00")
    assert lde["record_state"] == "RAW" and lde["job"] is None
    assert lde["extra"] == {"futureField": '{"nested":[1,2]}'}
    assert lde["record"]["ldeInventoryMethod"] == "LPO 918"
    assert len(lde["event_id"]) == 36 and lde["event_id"] != first["event_id"]

    nine = by_index[2].value
    assert (
        nine["barcode"]["mailer_id"] == "912345678" and nine["barcode"]["serial_number"] == "654321"
    )
    assert nine["barcode"]["routing_code"] == "123456789"
    assert (nine["barcode"]["zip4"], nine["barcode"]["delivery_point"]) == ("6789", None)
    assert nine["service_type"]["business_reply"] is True
    assert nine["scan"]["utc_offset_minutes"] == -480
    assert as_utc(nine["scan"]["scanned_at"]) == micros("2016-01-20T07:00:00.250-08:00")
    assert nine["scan"]["mail_phase"] == "PHASE_0_ORIGIN_CANCELLATION"
    assert nine["record_state"] == "ENRICHED" and nine["job"]["mailing_group_id"] == "MG77"
    assert by_index[2].key == NINE_DIGIT_MID["imb"][:20]

    (bundle,) = await consume(service.topic("bundle-scans"), msg_grp_id=group)
    assert bundle.schema == "ivmtr.events.BundleScan" and bundle.key == "00270123456789012345"
    assert (
        bundle.value["barcode"]["zip5"] == "22082" and bundle.value["service_type"]["stid"] == "270"
    )
    assert (
        bundle.value["record"]["deviceId"] == "D0001"
        and bundle.value["scan"]["event_code"] == "146"
    )

    (tray,) = await consume(service.topic("handling-unit-scans"), msg_grp_id=group)
    assert tray.schema == "ivmtr.events.HandlingUnitScan" and tray.key == TRAY["imtb"]
    assert tray.value["imtb"] == TRAY["imtb"] and tray.value["mailer_id"] == "901234567"
    assert tray.value["scan"]["event_code"] is None
    assert tray.value["record"]["pieceCount"] == 250
    assert tray.value["record_state"] == "ENRICHED"

    (container,) = await consume(service.topic("container-scans"), msg_grp_id=group)
    assert container.schema == "ivmtr.events.ContainerScan" and container.key == CONTAINER["imcb"]
    assert container.value["record"]["trayCount"] == 12
    assert container.value["scan"]["utc_offset_minutes"] == -360

    letters = await consume(service.topic("dead-letters"), msg_grp_id=group)
    assert len(letters) == 3
    assert {letter.key for letter in letters} == {f"{group}/1"}
    by_index = {letter.value["provenance"]["record_index"]: letter.value for letter in letters}
    assert sorted(by_index) == [6, 7, 8]
    bad = by_index[6]
    assert bad["kind"] == "piece"
    fields = {reason["field"] for reason in bad["reasons"]}
    assert fields == {"imb", "scanDatetime", "scanEventCode"}
    assert orjson.loads(bad["raw"]) == BAD_PIECE
    assert by_index[7]["kind"] is None
    assert by_index[7]["reasons"] == [
        {"field": None, "problem": "a record must be a JSON object, got a string"}
    ]
    assert orjson.loads(by_index[7]["raw"]) == "not a record"
    assert by_index[8]["reasons"][0]["problem"].startswith("cannot tell the record kind")


async def test_gzip_and_deflate_bodies(client: httpx.AsyncClient, service: Service) -> None:
    for encoding, compress in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        group = message_group_id()
        body = compress(orjson.dumps(envelope([PIECE, TRAY], group)))
        response = await push(client, body, **{"content-encoding": encoding})
        assert response.status_code == 200, response.text
        assert response.json()["received"] == 2
        (piece,) = await consume(service.topic("piece-scans"), msg_grp_id=group)
        assert piece.value["imb"] == PIECE["imb"]


@pytest.mark.parametrize(
    ("body", "status", "error", "detail_part"),
    [
        (b"[1, 2]", 400, "malformed_message", "not a JSON object"),
        (
            b'{"msgGrpId": "G", "msgSerNbr": 1, "events": [{"imb": ',
            400,
            "malformed_message",
            "ends early",
        ),
        (b'{"msgSerNbr": 1, "events": []}', 400, "invalid_envelope", "msgGrpId"),
        (b'{"msgGrpId": "G", "events": []}', 400, "invalid_envelope", "msgSerNbr"),
        (b'{"msgGrpId": "G", "msgSerNbr": 1}', 400, "invalid_envelope", "events"),
        (
            b'{"msgGrpId": "G", "msgSerNbr": "one", "events": []}',
            400,
            "invalid_envelope",
            "msgSerNbr",
        ),
        (b'{"msgGrpId": "G", "msgSerNbr": 1, "events": {}}', 400, "malformed_message", "events"),
    ],
)
async def test_bad_bodies_are_refused_whole(
    client: httpx.AsyncClient,
    service: Service,
    body: bytes,
    status: int,
    error: str,
    detail_part: str,
) -> None:
    response = await push(client, body)
    assert response.status_code == status
    payload = response.json()
    assert payload["error"] == error and detail_part in payload["detail"]
    assert payload["request_id"]


async def test_a_refused_message_publishes_nothing(
    client: httpx.AsyncClient, service: Service
) -> None:
    # Valid records come first and are already in the open transaction when the body turns
    # out to be truncated: the abort must hide them from read_committed subscribers.
    group = message_group_id()
    body = orjson.dumps(envelope([PIECE] * 500, group))[:-40]
    response = await push(client, body)
    assert response.status_code == 400
    assert await consume(service.topic("piece-scans"), msg_grp_id=group) == []
    assert await consume(service.topic("dead-letters"), msg_grp_id=group) == []


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/feeds/demo", content=b"{}", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    response = await push(client, b"{}", **{"content-encoding": "br"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_content_encoding"


async def test_empty_events_is_200_with_zero_counts(client: httpx.AsyncClient) -> None:
    group = message_group_id()
    response = await push(client, orjson.dumps(envelope([], group)))
    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["rejected"], body["published"]) == (0, 0, {})


async def test_envelope_after_events_and_message_group_in_parts(
    client: httpx.AsyncClient, service: Service
) -> None:
    group = message_group_id()
    parts = [[PIECE, LDE], [TRAY], [CONTAINER, NINE_DIGIT_MID]]
    for serial, events in enumerate(parts, start=1):
        # Key order is not guaranteed by IV-MTR: put the events first.
        body = (
            b'{"events":'
            + orjson.dumps(events)
            + orjson.dumps(
                {
                    "msgGrpId": group,
                    "msgSerNbr": serial,
                    "totMsgCnt": 3,
                    "recCnt": len(events),
                    "totRecCnt": 5,
                }
            ).replace(b"{", b",", 1)
        )
        response = await push(client, body)
        assert response.status_code == 200, response.text
        assert response.json()["msgSerNbr"] == serial and response.json()["received"] == len(events)
    pieces = await consume(service.topic("piece-scans"), msg_grp_id=group)
    assert sorted(
        (p.value["provenance"]["msg_ser_nbr"], p.value["provenance"]["record_index"])
        for p in pieces
    ) == [
        (1, 0),
        (1, 1),
        (3, 1),
    ]
    (tray,) = await consume(service.topic("handling-unit-scans"), msg_grp_id=group)
    assert tray.headers["ivmtr.msg_ser_nbr"] == "2"


async def test_resent_scan_keeps_its_event_id(client: httpx.AsyncClient, service: Service) -> None:
    first, second = message_group_id(), message_group_id()
    await push(client, orjson.dumps(envelope([LDE], first)))
    resent = {**LDE, "scanDatetime": "2016-01-23 11:05:00-05:00"}  # same instant, other spelling
    await push(client, orjson.dumps(envelope([resent], second)))
    (a,) = await consume(service.topic("piece-scans"), msg_grp_id=first)
    (b,) = await consume(service.topic("piece-scans"), msg_grp_id=second)
    assert a.value["event_id"] == b.value["event_id"]


async def test_health_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200


async def test_imb_as_bars_is_decoded_and_bad_bars_are_dead_lettered(
    client: httpx.AsyncClient, service: Service
) -> None:
    from consumer.core.imb import encode_imb

    bars = encode_imb("01234567094987654321", "01234567891")
    damaged = ("D" if bars[9] != "D" else "A").join((bars[:9], bars[10:]))
    upside_down = bars[::-1].translate(str.maketrans("AD", "DA"))
    noise = "FADT" * 16 + "F"
    records = [{**LDE, "imb": value} for value in (bars, damaged, upside_down, noise)]
    group = message_group_id()
    response = await push(client, orjson.dumps(envelope(records, group)))
    assert response.status_code == 200
    assert response.json()["rejected"] == 1
    pieces = await consume(service.topic("piece-scans"), msg_grp_id=group)
    assert len(pieces) == 3
    for piece in pieces:
        assert piece.value["imb"] == "0123456709498765432101234567891"
        assert piece.key == "01234567094987654321"
        assert piece.value["barcode"]["zip5"] == "01234"
        assert (
            piece.value["record"]["imb"]
            == records[piece.value["provenance"]["record_index"]]["imb"]
        )
    (letter,) = await consume(service.topic("dead-letters"), msg_grp_id=group)
    assert letter.value["provenance"]["record_index"] == 3
    assert [reason["field"] for reason in letter.value["reasons"]] == ["imb"]
