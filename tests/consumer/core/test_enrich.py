"""Tests for consumer.core.enrich: a validated record becomes the event subscribers read."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consumer.core.enrich import Provenance, enrich, event_id
from consumer.core.records import RecordKind
from consumer.core.stid import lookup_stid
from consumer.core.validate import ValidRecord, validate_record
from consumer.ingest.routing import scan_topics
from consumer.service import record_shapes
from producer.topics import Topic, TopicTable
from producer.wire import SingleObjectDecoder
from tests.samples import LDE, PIECE

SHAPES = record_shapes()
TOPICS = TopicTable.build()
DECODE = SingleObjectDecoder(topic.schema for topic in TOPICS)
TOPIC_OF = scan_topics(TOPICS)

RECEIVED_MS = 1_736_787_718_179  # the epoch-ms prefix of the sample msgGrpId
PROVENANCE = Provenance(
    feed="pieces", msg_grp_id="17367877181793X9RM5Z", msg_ser_nbr=3, received_at_ms=RECEIVED_MS
)
IMTB = "999999123456789012345678"
IMCB = "99M012345005000030225"


def micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def validated(value: dict[str, Any], kind: RecordKind | None = None) -> ValidRecord:
    result = validate_record(value, SHAPES, kind)
    assert isinstance(result, ValidRecord), result
    return result


def event_of(
    value: dict[str, Any], index: int | None = 0, provenance: Provenance = PROVENANCE
) -> dict[str, Any]:
    return enrich(validated(value), provenance, index)


def full_record(kind: RecordKind, value: dict[str, Any]) -> dict[str, Any]:
    return {name: value.get(name) for name in SHAPES[kind].field_order}


def test_sample_piece_event() -> None:
    assert event_of(PIECE, 4) == {
        "event_id": "2f2980d0-1086-11e6-a904-e58664760ec6",  # the pieceId
        "provenance": {
            "source": "PUSH",
            "feed": "pieces",
            "msg_grp_id": "17367877181793X9RM5Z",
            "msg_ser_nbr": 3,
            "record_index": 4,
            "received_at": RECEIVED_MS,
        },
        "imb": "0004069951599001910222082810103",
        "barcode": {
            "barcode_id": "00",
            "service_type_id": "040",
            "mailer_id": "699515",  # first digit not 9: a 6-digit MID and a 9-digit serial
            "serial_number": "990019102",
            "routing_code": "22082810103",
            "zip5": "22082",
            "zip4": "8101",
            "delivery_point": "03",
            "tracking_code": "00040699515990019102",
        },
        "service_type": {  # ivmtr.md 4.5: First-Class, manual corrections, Basic, with IV MTR
            "stid": "040",
            "mail_class": "First-Class Mail",
            "service_level": "Basic",
            "address_correction": "Manual corrections",
            "acs_type": None,
            "iv_mtr_tracing": True,
            "reply_mail": None,
            "business_reply": False,
            "description": lookup_stid("040").description,  # wording is the table's own
        },
        "scan": {
            "scanned_at": micros(datetime(2016, 1, 23, 3, 29, 53, tzinfo=UTC)),
            "local_time": "2016-01-22T22:29:53",
            "utc_offset_minutes": -300,
            "raw_datetime": "2016-01-22 22:29:53-05:00",
            "event_code": "918",
            "handling_event_type": "A",
            "handling_event_meaning": "Actual",
            "mail_phase": "PHASE_3C_DESTINATION_SEQUENCED_CARRIER",
            "mail_phase_raw": "Phase 3c - Destination Sequenced Carrier Sortation",
            "logical_delivery": False,
            "facility": {
                "name": "MERRIFIELD",
                "city": "Merrifield",
                "state": "VA",
                "zip": "22116",
                "locale_key": "X27222",
            },
            "machine_name": "DBCS-016",
            "machine_id": "016",
            "scanner_type": None,
        },
        "record_state": "ENRICHED",  # edocJobId is set
        "job": {"job_id": "J123456", "mailing_group_id": None, "submitter_crid": "4614860"},
        "campaign": None,
        "record": full_record(RecordKind.PIECE, PIECE),
        "extra": {},
    }


def test_logical_delivery_event() -> None:
    event = event_of(LDE)
    assert event["scan"] == {
        "scanned_at": micros(datetime(2016, 1, 23, 16, 5, tzinfo=UTC)),
        "local_time": "2016-01-23T11:05:00",
        "utc_offset_minutes": -300,
        "raw_datetime": "2016-01-23 11:05:00-05:00",
        "event_code": "517",
        "handling_event_type": "L",
        "handling_event_meaning": "Logical",
        "mail_phase": "PHASE_4C_DELIVERY",
        "mail_phase_raw": "Phase 4c - Delivery",
        "logical_delivery": True,
        # empty for logical delivery; the ZIP is the IMb routing ZIP5 (ivmtr.md 1.1)
        "facility": {"name": None, "city": None, "state": None, "zip": "22082", "locale_key": None},
        "machine_name": None,
        "machine_id": None,
        "scanner_type": None,
    }
    assert (event["record_state"], event["job"]) == ("RAW", None)
    assert event["extra"] == {}  # lde* are PieceRecord fields
    assert event["record"]["ldeTriggerMethod"] == "ZIP+4 Entry"
    assert uuid.UUID(event["event_id"]).version == 5  # no pieceId: a hashed id


def test_empty_facility_strings_become_null() -> None:
    event = event_of(
        {
            **LDE,
            "scanFacilityName": "",
            "scanFacilityCity": "",
            "scanFacilityState": "",
            "scanLocaleKey": "",
        }
    )
    assert event["scan"]["facility"] == {
        "name": None,
        "city": None,
        "state": None,
        "zip": "22082",
        "locale_key": None,
    }
    assert event["record"]["scanFacilityName"] == ""  # the record stays as pushed


@pytest.mark.parametrize(
    ("imb", "barcode"),
    [
        (  # a 9-digit MID starts with 9 and leaves a 6-digit serial
            "0027091234567812345612345",
            (
                "00",
                "270",
                "912345678",
                "123456",
                "12345",
                "12345",
                None,
                None,
                "00270912345678123456",
            ),
        ),
        (
            "00270912345678123456123456789",
            (
                "00",
                "270",
                "912345678",
                "123456",
                "123456789",
                "12345",
                "6789",
                None,
                "00270912345678123456",
            ),
        ),
        (
            "42040699515990019102",
            ("42", "040", "699515", "990019102", None, None, None, None, "42040699515990019102"),
        ),
    ],
)
def test_barcode_split(imb: str, barcode: tuple[str | None, ...]) -> None:
    event = event_of(
        {
            **PIECE,
            "imb": imb,
            "imbTrackingCode": None,
            "imbStid": None,
            "imbMid": None,
            "imbSerialNumber": None,
        }
    )
    names = (
        "barcode_id",
        "service_type_id",
        "mailer_id",
        "serial_number",
        "routing_code",
        "zip5",
        "zip4",
        "delivery_point",
        "tracking_code",
    )
    assert event["barcode"] == dict(zip(names, barcode, strict=True))
    assert event["imb"] == imb


@pytest.mark.parametrize(
    ("stid", "service"),
    [
        # ivmtr.md 4.5 / imb.md 4: 270 = First-Class, Full-Service, no corrections, with IV MTR
        ("270", ("First-Class Mail", "Full-Service", "No address corrections", None, True)),
        ("040", ("First-Class Mail", "Basic", "Manual corrections", None, True)),
        ("310", ("First-Class Mail", "Basic", "No address corrections", None, True)),
        ("300", ("First-Class Mail", "Basic", "No address corrections", None, False)),
    ],
)
def test_service_type(stid: str, service: tuple[Any, ...]) -> None:
    event = event_of(
        {**PIECE, "imb": f"00{stid}699515990019102", "imbTrackingCode": None, "imbStid": None}
    )
    found = event["service_type"]
    assert found["stid"] == stid
    assert (
        found["mail_class"],
        found["service_level"],
        found["address_correction"],
        found["acs_type"],
        found["iv_mtr_tracing"],
    ) == service


@pytest.mark.parametrize("stid", ["999", "000", "123"])
def test_unknown_stid_has_no_service_type(stid: str) -> None:
    event = event_of(
        {**PIECE, "imb": f"00{stid}699515990019102", "imbTrackingCode": None, "imbStid": None}
    )
    assert event["service_type"] is None
    assert event["barcode"]["service_type_id"] == stid


@pytest.mark.parametrize(
    ("job_id", "group_id", "state", "job"),
    [
        (None, None, "RAW", None),
        ("", "", "RAW", None),
        ("", None, "RAW", None),
        (
            "J123456",
            None,
            "ENRICHED",
            {"job_id": "J123456", "mailing_group_id": None, "submitter_crid": "4614860"},
        ),
        (
            "",
            "MG0001",
            "ENRICHED",
            {"job_id": None, "mailing_group_id": "MG0001", "submitter_crid": "4614860"},
        ),
        (
            "J1",
            "MG0001",
            "ENRICHED",
            {"job_id": "J1", "mailing_group_id": "MG0001", "submitter_crid": "4614860"},
        ),
    ],
)
def test_raw_or_enriched(
    job_id: str | None, group_id: str | None, state: str, job: dict[str, Any] | None
) -> None:
    # IV-MTR: a record is Raw when both edocJobId and edocMailingGroupId are empty (ivmtr.md 1.1)
    event = event_of({**PIECE, "edocJobId": job_id, "edocMailingGroupId": group_id})
    assert (event["record_state"], event["job"]) == (state, job)


def test_campaign_and_extra() -> None:
    provenance = Provenance("spring", "G", 1, RECEIVED_MS, campaign="Spring 2026")
    event = event_of({**PIECE, "newField": "x", "n": 1}, None, provenance)
    assert event["campaign"] == "Spring 2026"
    assert event["extra"] == {"newField": "x", "n": "1"}
    assert event["provenance"]["record_index"] is None
    assert event["provenance"]["feed"] == "spring"


def test_handling_unit_event() -> None:
    tray = {
        "imtb": IMTB,
        "imtbMid": "999999",
        "scanDatetime": "2016-01-22T22:29:53-05:00",
        "scanEventCode": "",
        "pieceCount": "250",
        "scanFacilityZip": "22116",
        "mailPhase": "Miscellaenous",
    }
    event = event_of(tray)
    assert event["imtb"] == IMTB
    assert event["mailer_id"] == "999999"
    assert "imb" not in event and "barcode" not in event and "service_type" not in event
    assert event["scan"]["event_code"] is None  # empty opcode on trays
    assert event["scan"]["mail_phase"] is None  # trays have no mailPhase field (ivmtr.md 1.2)
    assert event["extra"] == {"mailPhase": "Miscellaenous"}
    assert event["record"]["pieceCount"] == 250
    assert uuid.UUID(event["event_id"]).version == 5


def test_container_event() -> None:
    event = event_of({"imcb": IMCB, "scanDatetime": "2016-01-22 22:29:53-05:00", "imcbMid": ""})
    assert event["imcb"] == IMCB
    assert event["mailer_id"] is None
    assert event["scan"]["handling_event_type"] is None
    assert event["scan"]["handling_event_meaning"] is None
    assert event["scan"]["mail_phase"] is None


# Event ids ----------------------------------------------------------------------------------------


def lde_id(**changes: Any) -> str:
    return event_id(validated({**LDE, **changes}))


def test_event_id_is_the_piece_id() -> None:
    assert event_id(validated(PIECE)) == "2f2980d0-1086-11e6-a904-e58664760ec6"
    assert event_id(validated({**PIECE, "pieceId": ""})) == event_id(
        validated({**PIECE, "pieceId": None})
    )


def test_event_id_is_the_documented_hash() -> None:
    # kind | object id | UTC micros | opcode | handling event type | locale key or ZIP | machine
    scanned = micros(datetime(2016, 1, 23, 16, 5, tzinfo=UTC))
    identity = f"piece|00040699515990019102|{scanned}|517|L|22082|"
    digest = hashlib.sha256(identity.encode()).digest()[:16]
    assert lde_id() == str(uuid.UUID(bytes=digest, version=5))


@pytest.mark.parametrize(
    "changes",
    [
        {"scanDatetime": "2016-01-23T11:05:00-05:00"},  # T instead of a space
        {"scanDatetime": "2016-01-23T11:05:00-0500"},
        {"scanDatetime": "2016-01-23 16:05:00Z"},  # the same instant
        {"scanDatetime": "2016-01-23 08:05:00-08:00"},
        {"imb": "00040699515990019102"},  # without routing code
        {"imb": "0004069951599001910222082"},
        {
            "mailPhase": "Phase 4c- Delivery",
            "ldeTriggerMethod": "Post Office Opening Time",
        },  # not identity
        {"newField": "x"},
    ],
)
def test_event_id_is_stable(changes: dict[str, Any]) -> None:
    assert lde_id(**changes) == lde_id()


@pytest.mark.parametrize(
    "changes",
    [
        {"scanEventCode": "918"},
        {"scanDatetime": "2016-01-23 11:05:01-05:00"},
        {"scanDatetime": "2016-01-23 11:05:00-06:00"},  # same wall time elsewhere
        {"handlingEventType": "AL"},
        {"scanFacilityZip": "22116"},
        {"scanLocaleKey": "X27222"},
        {"machineName": "DBCS-016"},
        {"imb": "0004069951599001910322082810103"},  # another piece
    ],
)
def test_event_id_differs_for_another_scan(changes: dict[str, Any]) -> None:
    assert lde_id(**changes) != lde_id()


def test_event_ids_of_different_kinds_differ() -> None:
    when = "2016-01-22 22:29:53-05:00"
    piece = event_id(
        validated({"imb": "00040699515990019102", "scanDatetime": when, "scanEventCode": "146"})
    )
    bundle = event_id(
        validated(
            {"imb": "00040699515990019102", "scanDatetime": when, "scanEventCode": "146"},
            RecordKind.BUNDLE,
        )
    )
    assert piece != bundle


# Avro --------------------------------------------------------------------------------------------


def decoded_form(event: dict[str, Any]) -> dict[str, Any]:
    """The event as fastavro reads it back: timestamps become aware datetimes."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    provenance = {**event["provenance"], "received_at": epoch + timedelta(milliseconds=RECEIVED_MS)}
    scan = {
        **event["scan"],
        "scanned_at": epoch + timedelta(microseconds=event["scan"]["scanned_at"]),
    }
    return {**event, "provenance": provenance, "scan": scan}


EVENTS = {
    "piece": (PIECE, None),
    "lde": (LDE, None),
    "piece with extras": (
        {
            **PIECE,
            "imb": "0027091234567812345612345",
            "imbTrackingCode": None,
            "imbStid": None,
            "imbMid": None,
            "imbSerialNumber": None,
            "x": {"y": [1]},
        },
        None,
    ),
    "unknown stid": ({**LDE, "imb": "00999699515990019102"}, None),
    "bundle": ({**PIECE, "pieceId": None, "mailPhase": None, "deviceId": "D-1"}, None),
    "bundle feed": (
        {"imb": "00040699515990019102", "scanDatetime": "2016-01-22T22:29:53.25+0000"},
        RecordKind.BUNDLE,
    ),
    "tray": (
        {
            "imtb": IMTB,
            "scanDatetime": "2016-01-22 22:29:53-05:00",
            "pieceCount": 250,
            "bundleCount": "3",
            "handlingEventType": "AA",
        },
        None,
    ),
    "container": (
        {
            "imcb": IMCB,
            "imcbMid": "012345",
            "scanDatetime": "2016-01-22 22:29:53-05:00",
            "trayCount": 40,
            "edocMailingGroupId": "MG1",
            "scanState": "Entered at USPS",
        },
        None,
    ),
}


@pytest.mark.parametrize(("value", "kind"), EVENTS.values(), ids=EVENTS.keys())
def test_events_serialise_with_their_topic_and_decode_back(
    value: dict[str, Any], kind: RecordKind | None
) -> None:
    record = validated(value, kind)
    event = enrich(record, Provenance("f", "G", 1, RECEIVED_MS, campaign="c"), 7)
    topic: Topic = TOPIC_OF[record.kind]
    message = topic.message(record.object_id, event)
    assert message.key == record.object_id.encode()
    assert DECODE.schema_of(message.value) is topic.schema
    assert DECODE(message.value) == decoded_form(event)
