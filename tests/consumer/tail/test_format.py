"""``tail`` without Kafka: filters and formats of records decoded exactly as tail decodes them.

The values come from the real pipeline (the records of test_pipeline.py), serialised by the
topics and decoded by `SingleObjectDecoder`, so the formatting sees what a broker would hold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from consumer.core.pipeline import DeadLetter, MessagePipeline, ScanEvent
from consumer.ingest.routing import scan_topics
from consumer.service import record_shapes
from consumer.tail.reader import (
    TailedRecord,
    TailFilter,
    json_line,
    resolve_topic,
    short_phase,
    table_header,
    table_row,
)
from producer import SingleObjectDecoder, Topic, TopicTable

TOPICS = TopicTable.build("t.")
DECODER = SingleObjectDecoder(t.schema for t in TOPICS)
RECEIVED_MS = 1_736_787_718_179
GROUP = "17367877181793X9RM5Z"

PIECE = {
    "imb": "0004069951599001910222082810103",
    "imbTrackingCode": "00040699515990019102",
    "imbStid": "040",
    "imbMid": "699515",
    "imbSerialNumber": "990019102",
    "imbRoutingCode": "22082810103",
    "handlingEventType": "A",
    "handlingEventTypeDescription": "Actual",
    "scanDatetime": "2016-01-22 22:29:53-05:00",
    "scanEventCode": "918",
    "mailPhase": "Phase 3c - Destination Sequenced Carrier Sortation",
    "machineName": "DBCS-016",
    "scanFacilityName": "MERRIFIELD",
    "scanFacilityCity": "Merrifield",
    "scanFacilityState": "VA",
    "scanFacilityZip": "22116",
    "scanLocaleKey": "X27222",
    "edocJobId": "J123456",
    "pieceId": "2f2980d0-1086-11e6-a904-e58664760ec6",
}
OTHER_ROUTING = {**PIECE, "imb": "0004069951599001910222082", "pieceId": "x-1"}
LDE = {
    "imb": "0004069951599001910222082810103",
    "handlingEventType": "L",
    "scanEventCode": "517",
    "scanDatetime": "2016-01-23 11:05:00-05:00",
    "mailPhase": "Phase 4c - Delivery",
    "scanFacilityZip": "22082",
}
NINE_DIGIT_MID = {
    "imb": "01052912345678654321123456789",
    "scanDatetime": "2016-01-20 07:00:00-08:00",
    "scanEventCode": "004",
    "handlingEventType": "A",
}
TRAY = {
    "imtb": "999991234567890123456789",
    "imtbMid": "901234567",
    "scanDatetime": "2016-01-21 08:00:00-06:00",
    "handlingEventType": "A",
    "scanFacilityName": "CHICAGO IL P&DC",
    "scanFacilityCity": "Chicago",
    "scanFacilityState": "IL",
}
CONTAINER = {
    "imcb": "99M901234567000000123",
    "imcbMid": "901234567",
    "scanDatetime": "2016-01-21 06:30:00-06:00",
    "scanEventCode": "873",
}
BAD_PIECE = {
    "imb": "0004069951599001910222082810103",
    "imbMid": "699515",
    "scanDatetime": "yesterday",
    "scanEventCode": "91",
}


def decoded(topic: Topic, key: str, value: dict[str, Any], offset: int = 0) -> TailedRecord:
    """Serialise like the service does, then decode like tail does."""
    message = topic.message(
        key,
        value,
        [("ivmtr.feed", b"letters"), ("ivmtr.msg_grp_id", GROUP.encode())],
    )
    return TailedRecord(
        topic=message.topic,
        partition=0,
        offset=offset,
        key=key,
        headers={name: raw.decode() for name, raw in message.headers},
        value=DECODER(message.value),
        schema=DECODER.schema_of(message.value).name,
    )


def pushed(*records: dict[str, Any], feed: str = "letters") -> list[TailedRecord]:
    """What the service publishes for one message holding `records`."""
    body = orjson.dumps({"msgGrpId": GROUP, "msgSerNbr": 2, "events": list(records)})
    pipeline = MessagePipeline(feed=feed, received_at_ms=RECEIVED_MS, shapes=record_shapes())
    outcomes = pipeline.feed(body) + pipeline.finish()
    topics = scan_topics(TOPICS)
    result = []
    for offset, outcome in enumerate(outcomes):
        if isinstance(outcome, ScanEvent):
            result.append(decoded(topics[outcome.kind], outcome.key, outcome.value, offset))
        else:
            assert isinstance(outcome, DeadLetter)
            result.append(decoded(TOPICS.dead_letters, outcome.key, outcome.value, offset))
    return result


def receipt(**changes: Any) -> TailedRecord:
    value: dict[str, Any] = {
        "kind": "MESSAGE",
        "status": "PUBLISHED",
        "feed": "letters",
        "msg_grp_id": GROUP,
        "msg_ser_nbr": 2,
        "tot_msg_cnt": 5,
        "rec_cnt": 3,
        "tot_rec_cnt": 15,
        "records_received": 3,
        "records_rejected": 1,
        "published": {"t.piece-scans": 2},
        "content_sha256": "ab" * 32,
        "messages_received": [],
        "problems": [],
        "replica": "r1",
        "written_at": datetime(2026, 11, 2, 14, 5, 6, tzinfo=UTC),
        **changes,
    }
    key = f"group:{GROUP}" if value["kind"] == "GROUP" else f"msg:{GROUP}/2"
    return decoded(TOPICS.deliveries, key, value)


@pytest.fixture(scope="module")
def records() -> dict[str, TailedRecord]:
    piece, lde, nine, other, tray, container, dead = pushed(
        PIECE, LDE, NINE_DIGIT_MID, OTHER_ROUTING, TRAY, CONTAINER, BAD_PIECE
    )
    return {
        "piece": piece,
        "lde": lde,
        "nine": nine,
        "other": other,
        "tray": tray,
        "container": container,
        "dead": dead,
        "receipt": receipt(),
        "group": receipt(
            kind="GROUP",
            status="GROUP_COMPLETE",
            msg_ser_nbr=None,
            messages_received=[1, 2, 3, 4, 5],
            records_received=15,
            problems=["totRecCnt says 16, 15 arrived"],
        ),
    }


# --- kinds and topic names ----------------------------------------------------------------


def test_each_kind_is_told_by_its_schema(records: dict[str, TailedRecord]) -> None:
    kinds = {name: record.kind for name, record in records.items()}
    assert kinds == {
        "piece": "piece",
        "lde": "piece",
        "nine": "piece",
        "other": "piece",
        "tray": "handling_unit",
        "container": "container",
        "dead": "dead",
        "receipt": "receipt",
        "group": "receipt",
    }


def test_resolve_topic_adds_the_prefix_only_when_that_names_one_of_ours() -> None:
    assert resolve_topic("piece-scans", TOPICS, "t.") == "t.piece-scans"
    assert resolve_topic("t.deliveries", TOPICS, "t.") == "t.deliveries"
    assert resolve_topic("other.piece-scans", TOPICS, "t.") == "other.piece-scans"


# --- filters ------------------------------------------------------------------------------


def matching(where: TailFilter, records: dict[str, TailedRecord]) -> set[str]:
    return {name for name, record in records.items() if where(record)}


def test_no_criteria_match_everything(records: dict[str, TailedRecord]) -> None:
    assert matching(TailFilter(), records) == set(records)


@pytest.mark.parametrize(
    ("imb", "expected"),
    [
        # the full IMb: its own scans, plus the same piece read with another routing code,
        # and the dead letter of the same IMb
        ("0004069951599001910222082810103", {"piece", "lde", "other", "dead"}),
        ("00040699515990019102", {"piece", "lde", "other", "dead"}),  # the tracking code
        ("0004069951599001910222082", {"piece", "lde", "other", "dead"}),
        ("01052912345678654321123456789", {"nine"}),
        ("01052912345678654321", {"nine"}),
        ("99999999999999999999", set()),
    ],
)
def test_imb_filter(imb: str, expected: set[str], records: dict[str, TailedRecord]) -> None:
    assert matching(TailFilter(imb=imb), records) == expected


@pytest.mark.parametrize(
    ("mid", "expected"),
    [
        ("699515", {"piece", "lde", "other", "dead"}),  # barcode, and the dead letter's imbMid
        ("912345678", {"nine"}),
        ("901234567", {"tray", "container"}),  # tray and container labels
        ("123456", set()),
    ],
)
def test_mid_filter(mid: str, expected: set[str], records: dict[str, TailedRecord]) -> None:
    assert matching(TailFilter(mid=mid), records) == expected


def test_feed_and_group_filters(records: dict[str, TailedRecord]) -> None:
    assert matching(TailFilter(feed="letters"), records) == set(records)
    assert matching(TailFilter(feed="flats"), records) == set()
    assert matching(TailFilter(group=GROUP), records) == set(records)
    assert matching(TailFilter(group="OTHER"), records) == set()
    assert matching(TailFilter(feed="letters", mid="901234567"), records) == {"tray", "container"}


def test_feed_comes_from_the_value_before_the_headers() -> None:
    (piece,) = pushed(PIECE, feed="flats")  # headers say "letters", provenance "flats"
    assert TailFilter(feed="flats")(piece)
    assert not TailFilter(feed="letters")(piece)
    assert TailFilter(feed="flats")(receipt(feed="flats"))


def test_undecodable_records_match_only_on_headers() -> None:
    broken = TailedRecord("t.x", 0, 0, None, {"ivmtr.feed": "letters"}, None, error="undecodable")
    assert TailFilter(feed="letters")(broken)
    assert not TailFilter(imb="00040699515990019102")(broken)
    assert not TailFilter(mid="699515")(broken)


# --- json ---------------------------------------------------------------------------------


def test_json_line_is_one_object_with_iso_datetimes(records: dict[str, TailedRecord]) -> None:
    line = json_line(records["piece"])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    view = orjson.loads(line)
    assert view.keys() == {"topic", "partition", "offset", "key", "headers", "value"}
    assert view["topic"] == "t.piece-scans" and view["key"] == "00040699515990019102"
    assert view["headers"]["ivmtr.schema"] == "ivmtr.events.PieceScan"
    assert view["value"]["scan"]["scanned_at"] == "2016-01-23T03:29:53+00:00"
    assert view["value"]["provenance"]["received_at"].startswith("2025-01-13T17:01:58.179")
    assert orjson.loads(json_line(records["receipt"]))["value"]["written_at"] == (
        "2026-11-02T14:05:06+00:00"
    )


def test_json_line_of_an_undecodable_record_says_why() -> None:
    broken = TailedRecord("t.x", 1, 9, "k", {}, None, error="undecodable: no C3 01 marker")
    assert orjson.loads(json_line(broken))["error"] == "undecodable: no C3 01 marker"


# --- table --------------------------------------------------------------------------------


def columns(line: str) -> list[int]:
    """Where each column of the header starts."""
    return [line.index(title) for title in ("KIND", "KEY", "OP", "HET", "FACILITY", "PHASE")]


def test_table_header_names_the_columns() -> None:
    header = table_header()
    assert header.startswith("TIME (UTC)")
    assert header.split() == [
        "TIME",
        "(UTC)",
        "KIND",
        "KEY",
        "OP",
        "HET",
        "FACILITY",
        "PHASE",
        "EVENT",
    ]


def test_scan_rows_line_up_under_the_header(records: dict[str, TailedRecord]) -> None:
    starts = columns(table_header())
    for name in ("piece", "lde", "nine", "tray", "container"):
        row = table_row(records[name])
        for start in starts:
            assert row[start - 1] == " ", (name, start, row)  # every column starts after a gap


def test_piece_row(records: dict[str, TailedRecord]) -> None:
    row = table_row(records["piece"])
    header = table_header()
    assert row.startswith("2016-01-23 03:29:53 piece         00040699515990019102 ")
    assert row[header.index("OP") :].startswith("918 A   MERRIFIELD, Merrifield VA")
    assert row[header.index("PHASE") :].startswith("3c    2f2980d0")


def test_logical_delivery_row_shows_the_delivery_zip(records: dict[str, TailedRecord]) -> None:
    row = table_row(records["lde"])
    assert "517 L   delivery ZIP 22082" in row
    assert row[table_header().index("PHASE") :].startswith("4c ")


def test_tray_row_without_opcode_or_phase(records: dict[str, TailedRecord]) -> None:
    row = table_row(records["tray"])
    assert row.startswith("2016-01-21 14:00:00 handling_unit 999991234567890123456789 ")
    assert " -   A   CHICAGO IL P&DC, Chicago IL" in row
    assert row[table_header().index("PHASE") :].startswith("-     ")


def test_long_facility_names_are_cut_to_the_column() -> None:
    (piece,) = pushed(
        {**PIECE, "scanFacilityName": "NORTHERN VIRGINIA PROCESSING AND DISTRIBUTION"}
    )
    row = table_row(piece)
    header = table_header()
    cell = row[header.index("FACILITY") : header.index("PHASE") - 1]
    assert len(cell) == 34 and cell.endswith("…")
    assert row[header.index("PHASE") :].startswith("3c ")


def test_dead_letter_row_lists_the_reasons(records: dict[str, TailedRecord]) -> None:
    row = table_row(records["dead"])
    assert row.startswith("2025-01-13 17:01:58 dead          17367877181793X9RM5Z/2 ")
    assert "reasons: " in row
    assert "scanDatetime: " in row and "scanEventCode: " in row


def test_receipt_rows_show_status_and_counts(records: dict[str, TailedRecord]) -> None:
    row = table_row(records["receipt"])
    assert row.startswith(f"2026-11-02 14:05:06 receipt       msg:{GROUP}/2")
    assert row.endswith("PUBLISHED message 2/5 records 3 rejected 1 piece-scans=2")
    group = table_row(records["group"])
    assert group.endswith(
        "GROUP_COMPLETE messages 5/5 records 15 rejected 1 piece-scans=2 "
        "(totRecCnt says 16, 15 arrived)"
    )


def test_undecodable_row() -> None:
    broken = TailedRecord("t.x", 0, 3, "k1", {}, None, error="undecodable: no C3 01 marker")
    assert table_row(broken).split() == ["-", "?", "k1", "undecodable:", "no", "C3", "01", "marker"]


@pytest.mark.parametrize(
    ("phase", "short"),
    [
        ("PHASE_0_ORIGIN_CANCELLATION", "0"),
        ("PHASE_3C_DESTINATION_SEQUENCED_CARRIER", "3c"),
        ("PHASE_4C_DELIVERY", "4c"),
        ("PARS", "PARS"),
        ("FPARS", "FPARS"),
        ("MISCELLANEOUS", "misc"),
        ("FOREIGN", "frgn"),
        (None, "-"),
    ],
)
def test_short_phase(phase: str | None, short: str) -> None:
    assert short_phase(phase) == short
