"""Tests for consumer.core.validate: a record against its Avro record schema, then semantically."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from consumer.core.imb import IMbError, decode_imb, encode_imb, split_imb
from consumer.core.records import RecordKind, detect_kind
from consumer.core.validate import Reason, Rejection, ValidRecord, validate_record
from consumer.service import record_shapes
from tests.samples import LDE, PIECE

SHAPES = record_shapes()

TRACKING = "00040699515990019102"
ROUTING = "22082810103"
WHEN = "2016-01-22 22:29:53-05:00"
WHEN_MICROS = int(datetime(2016, 1, 23, 3, 29, 53, tzinfo=UTC).timestamp()) * 1_000_000
IMTB = "999999123456789012345678"  # 24 digits (ivmtr.md 1.2)
IMCB = "99M012345005000030225"  # ivmtr.md 1.3 sample
BUNDLE = {"imb": TRACKING + ROUTING, "deviceId": "D1", "scanDatetime": WHEN, "scanEventCode": "146"}
TRAY = {"imtb": IMTB, "scanDatetime": WHEN, "scanEventCode": "", "pieceCount": 250}
CONTAINER = {"imcb": IMCB, "scanDatetime": WHEN, "scanState": "Entered at USPS"}


def piece(**changes: Any) -> dict[str, Any]:
    record = {**PIECE, **changes}
    return {name: value for name, value in record.items() if value is not ...}


def reasons(value: Any, kind: RecordKind | None = None, **kwargs: Any) -> list[Reason]:
    result = validate_record(value, SHAPES, kind, **kwargs)
    assert isinstance(result, Rejection), result
    return result.reasons


def valid(value: Any, kind: RecordKind | None = None, **kwargs: Any) -> ValidRecord:
    result = validate_record(value, SHAPES, kind, **kwargs)
    assert isinstance(result, ValidRecord), result
    return result


# Valid records ---------------------------------------------------------------------------------


def test_sample_piece_record_is_valid() -> None:
    record = valid(PIECE)
    assert record.kind is RecordKind.PIECE
    assert record.object_id == TRACKING
    assert record.imb == split_imb(TRACKING + ROUTING)
    assert (record.imb.mailer_id, record.imb.serial_number) == ("699515", "990019102")
    assert (record.upside_down, record.repaired_bar, record.extra) == (False, None, {})
    assert record.scan_time.utc_micros == WHEN_MICROS
    # every field of the schema is present, the ones the record has with their values
    assert list(record.fields) == list(SHAPES[RecordKind.PIECE].field_order)
    assert {name: value for name, value in record.fields.items() if value is not None} == PIECE


def test_sample_lde_record_is_valid() -> None:
    record = valid(LDE)
    assert record.kind is RecordKind.PIECE
    assert record.object_id == TRACKING
    assert record.fields["scanFacilityName"] is None
    assert record.fields["scanFacilityZip"] == "22082"
    assert (
        record.scan_time.utc_micros
        == int(datetime(2016, 1, 23, 16, 5, tzinfo=UTC).timestamp()) * 1_000_000
    )


@pytest.mark.parametrize(
    ("record", "kind", "object_id"),
    [
        (PIECE, RecordKind.PIECE, TRACKING),
        (
            {"imbTrackingCode": TRACKING, "scanDatetime": WHEN, "scanEventCode": "918"},
            RecordKind.PIECE,
            TRACKING,
        ),
        (BUNDLE, RecordKind.BUNDLE, TRACKING),
        ({**BUNDLE, "deviceId": None, "edocPackageId": "000123"}, RecordKind.BUNDLE, TRACKING),
        ({**BUNDLE, "scanEventCode": ""}, RecordKind.BUNDLE, TRACKING),  # optional on bundles
        (TRAY, RecordKind.HANDLING_UNIT, IMTB),
        ({**TRAY, "scanEventCode": None}, RecordKind.HANDLING_UNIT, IMTB),
        (CONTAINER, RecordKind.CONTAINER, IMCB),
        (
            {**CONTAINER, "imcb": "99M912345678000030225"},
            RecordKind.CONTAINER,
            "99M912345678000030225",
        ),
        (
            {**CONTAINER, "imcb": "99M012345-----0030225"},
            RecordKind.CONTAINER,
            "99M012345-----0030225",
        ),
        ({**CONTAINER, "imtb": IMTB}, RecordKind.CONTAINER, IMCB),  # imcb wins
        ({**TRAY, "imb": TRACKING}, RecordKind.HANDLING_UNIT, IMTB),  # imtb wins over imb
    ],
)
def test_kind_detection(record: dict[str, Any], kind: RecordKind, object_id: str) -> None:
    assert detect_kind(record) is kind
    result = valid(record)
    assert (result.kind, result.object_id) == (kind, object_id)


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"scanDatetime": WHEN},
        {"imb": "", "imtb": "", "imcb": None},
        {"deviceIdx": "1"},
        piece(imb=..., imbTrackingCode=...),  # imbStid/imbMid alone do not make a piece
    ],
)
def test_unknown_kind_is_rejected(record: dict[str, Any]) -> None:
    assert detect_kind(record) is None
    result = validate_record(record, SHAPES)
    assert result == Rejection(
        None, [Reason(None, "cannot tell the record kind: no imb, imtb or imcb")]
    )


def test_feed_kind_overrides_detection() -> None:
    # A bundle record carries the top piece's IMb: a bundle feed says what it is.
    result = valid(piece(pieceId=..., mailPhase=...), RecordKind.BUNDLE)
    assert result.kind is RecordKind.BUNDLE
    assert list(result.fields) == list(SHAPES[RecordKind.BUNDLE].field_order)
    # and a piece record on a tray feed has no imtb; its piece fields are unknown there
    result = validate_record(
        {"imb": TRACKING, "scanDatetime": WHEN}, SHAPES, RecordKind.HANDLING_UNIT
    )
    assert result == Rejection(RecordKind.HANDLING_UNIT, [Reason("imtb", "is missing")])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([PIECE], "a record must be a JSON object, got an array"),
        ("imb", "a record must be a JSON object, got a string"),
        (5, "a record must be a JSON object, got a number"),
        (1.5, "a record must be a JSON object, got a number"),
        (True, "a record must be a JSON object, got a boolean"),
        (None, "a record must be a JSON object, got null"),
    ],
)
def test_record_that_is_not_an_object(value: Any, problem: str) -> None:
    assert validate_record(value, SHAPES) == Rejection(None, [Reason(None, problem)])
    assert validate_record(value, SHAPES, RecordKind.PIECE) == Rejection(
        RecordKind.PIECE, [Reason(None, problem)]
    )


# Reasons ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # wrong JSON types
        (piece(machineName=16), [Reason("machineName", "must be a string, got a number")]),
        (
            piece(scanFacilityZip=22116.0),
            [Reason("scanFacilityZip", "must be a string, got a number")],
        ),
        (piece(machineId=True), [Reason("machineId", "must be a string, got a boolean")]),
        (piece(scannerType=["IMDAS"]), [Reason("scannerType", "must be a string, got an array")]),
        (
            piece(mailClassDescription={}),
            [Reason("mailClassDescription", "must be a string, got an object")],
        ),
        ({**TRAY, "pieceCount": True}, [Reason("pieceCount", "must be an integer, got a boolean")]),
        ({**TRAY, "pieceCount": 2.5}, [Reason("pieceCount", "must be an integer, got a number")]),
        ({**TRAY, "pieceCount": "12a"}, [Reason("pieceCount", "must be an integer, got a string")]),
        ({**TRAY, "pieceCount": "-5"}, [Reason("pieceCount", "must be an integer, got a string")]),
        ({**TRAY, "bundleCount": [1]}, [Reason("bundleCount", "must be an integer, got an array")]),
        # 32-bit ints (Avro int)
        ({**TRAY, "pieceCount": 2**31}, [Reason("pieceCount", "must be an integer, got a number")]),
        (
            {**TRAY, "pieceCount": -(2**31) - 1},
            [Reason("pieceCount", "must be an integer, got a number")],
        ),
        (
            {**TRAY, "pieceCount": "2147483648"},
            [Reason("pieceCount", "must be an integer, got a string")],
        ),
        # scanDatetime
        (piece(scanDatetime=...), [Reason("scanDatetime", "is missing")]),
        (piece(scanDatetime=""), [Reason("scanDatetime", "is missing")]),
        (piece(scanDatetime=None), [Reason("scanDatetime", "is missing")]),
        (
            piece(scanDatetime="garbage"),
            [
                Reason(
                    "scanDatetime",
                    "'garbage' is not a date and time like 2016-01-22 22:29:53-05:00",
                )
            ],
        ),
        (
            piece(scanDatetime="2016-01-22 22:29:53"),
            [Reason("scanDatetime", "'2016-01-22 22:29:53' has no UTC offset")],
        ),
        (
            {**TRAY, "scanDatetime": "2016-01-22"},
            [
                Reason(
                    "scanDatetime",
                    "'2016-01-22' is not a date and time like 2016-01-22 22:29:53-05:00",
                ),
            ],
        ),
        # scanEventCode: required on pieces, three digits when present
        (piece(scanEventCode=...), [Reason("scanEventCode", "is missing")]),
        (piece(scanEventCode=""), [Reason("scanEventCode", "is missing")]),
        (piece(scanEventCode="91"), [Reason("scanEventCode", "'91' is not three digits")]),
        (piece(scanEventCode="9180"), [Reason("scanEventCode", "'9180' is not three digits")]),
        (piece(scanEventCode="91A"), [Reason("scanEventCode", "'91A' is not three digits")]),
        (piece(scanEventCode=" 918"), [Reason("scanEventCode", "' 918' is not three digits")]),
        ({**BUNDLE, "scanEventCode": "14"}, [Reason("scanEventCode", "'14' is not three digits")]),
        ({**TRAY, "scanEventCode": "87"}, [Reason("scanEventCode", "'87' is not three digits")]),
        ({**CONTAINER, "scanEventCode": "x"}, [Reason("scanEventCode", "'x' is not three digits")]),
        # handlingEventType
        (
            piece(handlingEventType="X"),
            [Reason("handlingEventType", "'X' is not one of A, AA, L, AL")],
        ),
        (
            piece(handlingEventType="a"),
            [Reason("handlingEventType", "'a' is not one of A, AA, L, AL")],
        ),
        (
            piece(handlingEventType="Actual"),
            [Reason("handlingEventType", "'Actual' is not one of A, AA, L, AL")],
        ),
        (
            {**TRAY, "handlingEventType": "LL"},
            [Reason("handlingEventType", "'LL' is not one of A, AA, L, AL")],
        ),
        # imb length
        (
            piece(imb="123456789012345678901", imbTrackingCode=...),
            [Reason("imb", "has 21 digits; an IMb has 20, 25, 29 or 31")],
        ),
        (
            piece(imb="0004069951599001910", imbTrackingCode=...),
            [Reason("imb", "has 19 digits; an IMb has 20, 25, 29 or 31")],
        ),
        (
            piece(imb=..., imbTrackingCode="0004069951599001910222"),
            [Reason("imbTrackingCode", "has 22 digits; an IMb has 20, 25, 29 or 31")],
        ),
        # IMb fields disagreeing with the IMb
        (
            piece(imbTrackingCode="00040699515990019103"),
            [
                Reason(
                    "imbTrackingCode",
                    "'00040699515990019103' disagrees with the IMb (00040699515990019102)",
                ),
            ],
        ),
        (piece(imbStid="270"), [Reason("imbStid", "'270' disagrees with the IMb (040)")]),
        (piece(imbMid="699516"), [Reason("imbMid", "'699516' disagrees with the IMb (699515)")]),
        (
            piece(imbSerialNumber="990019103"),
            [
                Reason("imbSerialNumber", "'990019103' disagrees with the IMb (990019102)"),
            ],
        ),
        # handling unit and container barcodes
        ({**TRAY, "imtb": IMTB[:-1]}, [Reason("imtb", "must be 24 digits")]),
        ({**TRAY, "imtb": IMTB + "0"}, [Reason("imtb", "must be 24 digits")]),
        ({**TRAY, "imtb": IMTB[:-1] + "X"}, [Reason("imtb", "must be 24 digits")]),
        (
            {**TRAY, "imtb": 999999123456789012345678},
            [
                Reason("imtb", "must be a string, got a number"),
                Reason("imtb", "is missing"),
            ],
        ),
        (
            {**CONTAINER, "imcb": "98M012345005000030225"},
            [Reason("imcb", "must be 21 characters starting 99M")],
        ),
        (
            {**CONTAINER, "imcb": "99M01234500500003022"},
            [Reason("imcb", "must be 21 characters starting 99M")],
        ),
        (
            {**CONTAINER, "imcb": "99m012345005000030225"},
            [Reason("imcb", "must be 21 characters starting 99M")],
        ),
        (
            {**CONTAINER, "imcb": "99M0123450050000302_5"},
            [Reason("imcb", "must be 21 characters starting 99M")],
        ),
    ],
)
def test_reasons(record: dict[str, Any], expected: list[Reason]) -> None:
    assert reasons(record) == expected


@pytest.mark.parametrize(
    "imb",
    [
        "0504069951599001910222082810103",  # barcode identifier 05: second digit above 4
        "0904069951599001910222082810103",
        "0004069951599001910A",  # 20 characters, not digits
        "000406995159900191022208281010X",
        "00040699515990019102220828101",  # 29 digits, but a 9-digit routing code is fine
    ],
)
def test_imb_payload_problems_carry_the_imb_error(imb: str) -> None:
    try:
        split_imb(imb)
    except IMbError as exc:
        assert reasons(piece(imb=imb, imbTrackingCode=...)) == [Reason("imb", str(exc))]
    else:
        assert valid(piece(imb=imb, imbTrackingCode=...)).imb == split_imb(imb)


def test_barcode_identifier_second_digit_above_4_is_rejected() -> None:
    with pytest.raises(IMbError) as caught:
        split_imb("0504069951599001910222082810103")
    assert caught.value.code == "barcode_id"
    assert reasons(piece(imb="0504069951599001910222082810103", imbTrackingCode=...)) == [
        Reason("imb", str(caught.value))
    ]


def flip(bars: str, position: int) -> str:
    """Change the bar at 1-based ``position`` to another bar letter."""
    index = position - 1
    return bars[:index] + ("F" if bars[index] != "F" else "T") + bars[index + 1 :]


BARS = encode_imb(TRACKING, ROUTING)


def test_bar_string_that_decodes_is_valid() -> None:
    assert len(BARS) == 65
    record = valid(piece(imb=BARS))
    assert record.imb == split_imb(TRACKING + ROUTING)
    assert (record.object_id, record.upside_down, record.repaired_bar) == (TRACKING, False, None)


def test_bar_string_read_upside_down_is_valid() -> None:
    upside_down = "".join({"A": "D", "D": "A"}.get(bar, bar) for bar in reversed(BARS))
    record = valid(piece(imb=upside_down))
    assert (record.object_id, record.upside_down) == (TRACKING, True)


def test_bar_string_with_one_damaged_bar_is_repaired() -> None:
    record = valid(piece(imb=flip(BARS, 11)))
    assert (record.object_id, record.repaired_bar) == (TRACKING, 11)


def test_bar_string_that_does_not_decode_is_rejected() -> None:
    damaged = flip(flip(BARS, 11), 41)
    with pytest.raises(IMbError) as caught:
        decode_imb(damaged)
    assert reasons(piece(imb=damaged, imbTrackingCode=...)) == [Reason("imb", str(caught.value))]


def test_bar_string_disagreeing_with_imb_fields_is_rejected() -> None:
    other = encode_imb("00270123456123456789")
    assert reasons(piece(imb=other, imbStid=..., imbMid=..., imbSerialNumber=...)) == [
        Reason(
            "imbTrackingCode",
            "'00040699515990019102' disagrees with the IMb (00270123456123456789)",
        )
    ]


def test_several_problems_are_all_reported() -> None:
    record = piece(
        machineName=16,
        scanDatetime="yesterday",
        handlingEventType="X",
        scanEventCode="91",
        imbStid="270",
        imbMid="699516",
        mailPhase="x" * 65,
    )
    assert reasons(record, max_string_length=64) == [
        Reason("mailPhase", "longer than max_string_length=64"),
        Reason("machineName", "must be a string, got a number"),
        Reason("scanDatetime", "'yesterday' is not a date and time like 2016-01-22 22:29:53-05:00"),
        Reason("handlingEventType", "'X' is not one of A, AA, L, AL"),
        Reason("scanEventCode", "'91' is not three digits"),
        Reason("imbStid", "'270' disagrees with the IMb (040)"),
        Reason("imbMid", "'699516' disagrees with the IMb (699515)"),
    ]


def test_missing_everything_on_a_piece_feed() -> None:
    assert reasons({"pieceId": "x"}, RecordKind.PIECE) == [
        Reason("scanDatetime", "is missing"),
        Reason("scanEventCode", "is missing"),
        Reason("imb", "is missing"),
    ]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (piece(machineName="x" * 65), "machineName"),
        (piece(someNewField="x" * 65), "someNewField"),  # unknown fields too
        ({**TRAY, "facAddr": "x" * 65}, "facAddr"),
    ],
)
def test_strings_longer_than_max_string_length(record: dict[str, Any], field: str) -> None:
    assert reasons(record, max_string_length=64) == [
        Reason(field, "longer than max_string_length=64")
    ]
    valid({**record, field: "x" * 64}, max_string_length=64)


def test_unknown_fields_go_to_extra() -> None:
    record = valid(
        piece(
            newField="text",
            count=5,
            ratio=1.5,
            flag=True,
            nothing=None,
            nested={"a": [1, "}"], "b": {}},
            unicode="Zürich ☃",
        )
    )
    assert record.extra == {
        "newField": "text",
        "count": "5",
        "ratio": "1.5",
        "flag": "true",
        "nothing": "null",
        "nested": '{"a":[1,"}"],"b":{}}',
        "unicode": "Zürich ☃",
    }
    assert "newField" not in record.fields


@pytest.mark.parametrize(
    ("count", "value"),
    [
        ("12", 12),
        (" 12 ", 12),
        ("007", 7),
        ("0", 0),
        (12, 12),
        (0, 0),
        (2**31 - 1, 2**31 - 1),
        (-(2**31), -(2**31)),
        ("2147483647", 2**31 - 1),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_counts(count: Any, value: int | None) -> None:
    record = valid({**TRAY, "pieceCount": count, "bundleCount": count})
    assert (record.fields["pieceCount"], record.fields["bundleCount"]) == (value, value)
    record = valid({**CONTAINER, "trayCount": count})
    assert record.fields["trayCount"] == value


@pytest.mark.parametrize("count", ["²", "¹²", "①"])
def test_non_decimal_digit_count_is_rejected_not_raised(count: str) -> None:
    assert reasons({**TRAY, "pieceCount": count}) == [
        Reason("pieceCount", "must be an integer, got a string")
    ]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (piece(scanEventCode="٩١٨"), "scanEventCode"),
        ({**TRAY, "scanEventCode": "٨٧٣"}, "scanEventCode"),
        ({**TRAY, "imtb": "٩" * 24}, "imtb"),
        ({**TRAY, "pieceCount": "٣"}, "pieceCount"),
    ],
)
def test_non_ascii_digits_are_rejected(record: dict[str, Any], field: str) -> None:
    assert [reason.field for reason in reasons(record)] == [field]
