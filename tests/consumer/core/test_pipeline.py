"""Tests for consumer.core.pipeline: one message from body bytes to events and dead letters."""

from __future__ import annotations

import gc
import json
import warnings
from typing import Any

import pytest

from consumer.core.pipeline import DeadLetter, Limits, MessagePipeline, ScanEvent
from consumer.core.records import RecordKind
from consumer.errors import (
    IngestError,
    InvalidEnvelope,
    LimitExceeded,
    MalformedMessage,
    RecordTooLarge,
)
from consumer.http.errors import status_of
from consumer.service import record_shapes
from producer.topics import TopicTable
from producer.wire import SingleObjectDecoder
from tests.samples import LDE_JSON as LDE
from tests.samples import PIECE_JSON as PIECE

SHAPES = record_shapes()
TOPICS = TopicTable.build()
RECEIVED_MS = 1_736_787_718_179

UNKNOWN = b'{"scanDatetime":"2016-01-22 22:29:53-05:00", "note":"Z\xc3\xbcrich"}'
BAD_PIECE = b'{"imb":"00040699515990019102","scanEventCode":"91","handlingEventType":"X"}'
TRAY = (
    b'{"imtb":"999999123456789012345678","scanDatetime":"2016-01-22 22:29:53-05:00",'
    b'"pieceCount":"250"}'
)
CONTAINER = b'{"imcb":"99M012345005000030225","scanDatetime":"2016-01-22 22:29:53-05:00"}'
BUNDLE = (
    b'{"imb":"00040699515990019102","deviceId":"D-1","scanDatetime":"2016-01-22 22:29:53-05:00"}'
)
RECORDS = [PIECE, LDE, UNKNOWN, BAD_PIECE, TRAY, CONTAINER, BUNDLE, b"[1]"]

# kind, key, record_index: what each of RECORDS becomes
EXPECTED = [
    ("event", RecordKind.PIECE, "00040699515990019102"),
    ("event", RecordKind.PIECE, "00040699515990019102"),
    ("dead", None, "G1/7"),
    ("dead", RecordKind.PIECE, "G1/7"),
    ("event", RecordKind.HANDLING_UNIT, "999999123456789012345678"),
    ("event", RecordKind.CONTAINER, "99M012345005000030225"),
    ("event", RecordKind.BUNDLE, "00040699515990019102"),
    ("dead", None, "G1/7"),
]


def body(
    before: bytes = b'"msgGrpId":"G1","msgSerNbr":7,',
    after: bytes = b"",
    records: list[bytes] = RECORDS,
) -> bytes:
    return b"{" + before + b'"events":[' + b",".join(records) + b"]" + after + b"}"


def pipeline(**kwargs: Any) -> MessagePipeline:
    return MessagePipeline(feed="pieces", received_at_ms=RECEIVED_MS, shapes=SHAPES, **kwargs)


def run(data: bytes, chunk: int | None = None, **kwargs: Any) -> list[ScanEvent | DeadLetter]:
    pipe = pipeline(**kwargs)
    size = chunk or len(data)
    outcomes: list[ScanEvent | DeadLetter] = []
    for start in range(0, len(data), size):
        outcomes.extend(pipe.feed(data[start : start + size]))
    outcomes.extend(pipe.finish())
    return outcomes


def summary(outcomes: list[ScanEvent | DeadLetter]) -> list[tuple[str, RecordKind | None, str]]:
    return [("event" if isinstance(o, ScanEvent) else "dead", o.kind, o.key) for o in outcomes]


def index_of(outcome: ScanEvent | DeadLetter) -> int:
    return outcome.value["provenance"]["record_index"]


ORDERS = {
    "envelope first": body(),
    "envelope last": body(b"", b',"msgGrpId":"G1","msgSerNbr":7,"totMsgCnt":1'),
    "envelope around": body(b'"msgSerNbr":7,', b',"msgGrpId":"G1"'),
    "counts as strings": body(b'"msgGrpId":"G1","msgSerNbr":"7",'),
}


@pytest.mark.parametrize("data", ORDERS.values(), ids=ORDERS.keys())
@pytest.mark.parametrize("chunk", [None, 1, 13, 512])
def test_outcomes_of_a_mixed_message(data: bytes, chunk: int | None) -> None:
    outcomes = run(data, chunk)
    assert summary(outcomes) == EXPECTED
    assert [index_of(outcome) for outcome in outcomes] == list(range(len(RECORDS)))
    for outcome in outcomes:
        assert outcome.value["provenance"] == {
            "source": "PUSH",
            "feed": "pieces",
            "msg_grp_id": "G1",
            "msg_ser_nbr": 7,
            "record_index": index_of(outcome),
            "received_at": RECEIVED_MS,
        }


def test_records_before_the_envelope_are_kept_aside_then_replayed() -> None:
    pipe = pipeline()
    assert pipe.feed(b'{"events":[' + PIECE + b"," + LDE + b",") == []
    assert pipe.records == 2
    assert pipe.feed(b"{}]") == []
    assert pipe.feed(b',"msgSerNbr":7') == []
    replayed = pipe.feed(b',"msgGrpId":"G1"')  # both coordinates known now
    assert summary(replayed) == [
        ("event", RecordKind.PIECE, "00040699515990019102"),
        ("event", RecordKind.PIECE, "00040699515990019102"),
        ("dead", None, "G1/7"),
    ]
    assert [index_of(outcome) for outcome in replayed] == [0, 1, 2]
    assert replayed[2].value["raw"] == "{}"
    assert pipe.feed(b"}") == []
    assert pipe.finish() == []


def test_replayed_events_equal_events_processed_at_once() -> None:
    assert run(ORDERS["envelope last"], 7) == run(ORDERS["envelope first"])


def test_records_after_the_envelope_come_out_as_they_complete() -> None:
    pipe = pipeline()
    assert pipe.feed(b'{"msgGrpId":"G1","msgSerNbr":7,"events":[') == []
    (event,) = pipe.feed(PIECE + b",")
    assert isinstance(event, ScanEvent)
    assert event.value["event_id"] == "2f2980d0-1086-11e6-a904-e58664760ec6"
    (event,) = pipe.feed(TRAY)
    assert event.key == "999999123456789012345678"
    assert pipe.feed(b"]}") == []
    assert pipe.finish() == []
    assert (pipe.records, pipe.bytes_parsed) == (
        2,
        len(b'{"msgGrpId":"G1","msgSerNbr":7,"events":[') + len(PIECE) + 1 + len(TRAY) + 2,
    )


def test_envelope_counts() -> None:
    pipe = pipeline()
    pipe.feed(
        b'{"msgGrpId":"G","msgSerNbr":2,"totMsgCnt":"3","recCnt":0,"totRecCnt":10,"future":[1],"events":[]}'
    )
    pipe.finish()
    envelope = pipe.envelope
    assert (
        envelope.msg_grp_id,
        envelope.msg_ser_nbr,
        envelope.tot_msg_cnt,
        envelope.rec_cnt,
        envelope.tot_rec_cnt,
    ) == ("G", 2, 3, 0, 10)


def test_feed_kind_and_campaign() -> None:
    (outcome,) = run(body(records=[PIECE]), kind=RecordKind.BUNDLE, campaign="Spring 2026")
    assert isinstance(outcome, ScanEvent)
    assert outcome.kind is RecordKind.BUNDLE
    assert outcome.value["campaign"] == "Spring 2026"
    assert "pieceId" in outcome.value["extra"]  # not a bundle field


def test_dead_letter() -> None:
    raw = (
        b'{ "imb" : "00040699515990019102" ,"scanEventCode":"91","handlingEventType":"X", "n": 1 }'
    )
    outcomes = run(body(b'"msgGrpId":"17367877181793X9RM5Z","msgSerNbr":12,', records=[PIECE, raw]))
    dead = outcomes[1]
    assert isinstance(dead, DeadLetter)
    assert dead.key == "17367877181793X9RM5Z/12"
    assert dead.kind is RecordKind.PIECE
    assert dead.reasons == [
        ("scanDatetime", "is missing"),
        ("handlingEventType", "'X' is not one of A, AA, L, AL"),
        ("scanEventCode", "'91' is not three digits"),
    ]
    assert dead.value == {
        "provenance": {
            "source": "PUSH",
            "feed": "pieces",
            "msg_grp_id": "17367877181793X9RM5Z",
            "msg_ser_nbr": 12,
            "record_index": 1,
            "received_at": RECEIVED_MS,
        },
        "kind": "piece",
        "reasons": [
            {"field": "scanDatetime", "problem": "is missing"},
            {"field": "handlingEventType", "problem": "'X' is not one of A, AA, L, AL"},
            {"field": "scanEventCode", "problem": "'91' is not three digits"},
        ],
        "raw": raw.decode(),  # exactly as sent, whitespace included
    }
    # and it fits the DeadLetter schema
    message = TOPICS.dead_letters.message(dead.key, dead.value)
    decoded = SingleObjectDecoder([TOPICS.dead_letters.schema])(message.value)
    assert (decoded["kind"], decoded["reasons"], decoded["raw"]) == (
        "piece",
        dead.value["reasons"],
        raw.decode(),
    )


def test_dead_letter_of_a_record_without_kind_keeps_unicode_raw() -> None:
    (dead,) = run(body(b"", b',"msgSerNbr":1,"msgGrpId":"G"', records=[UNKNOWN]))
    assert isinstance(dead, DeadLetter)
    assert dead.value["kind"] is None
    assert dead.value["reasons"] == [
        {"field": None, "problem": "cannot tell the record kind: no imb, imtb or imcb"}
    ]
    assert dead.value["raw"] == UNKNOWN.decode()
    assert json.loads(dead.value["raw"])["note"] == "Zürich"


# Refused messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"msgSerNbr":1,"events":[]}', "msgGrpId"),
        (b'{"msgGrpId":"G","events":[]}', "msgSerNbr"),
        (b'{"events":[]}', "msgGrpId"),
        (b'{"msgGrpId":"G","msgSerNbr":1}', "events"),
        (b"{}", "msgGrpId"),
    ],
)
def test_missing_envelope_fields(data: bytes, field: str) -> None:
    with pytest.raises(InvalidEnvelope) as caught:
        run(data)
    assert caught.value.detail == f"{field}: is missing"
    assert caught.value.context == {"field": field}
    assert (status_of(caught.value), caught.value.code) == (400, "invalid_envelope")


@pytest.mark.parametrize(
    ("member", "detail"),
    [
        (b'"msgSerNbr":"x"', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":"-1"', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":" 1"', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":true', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":1.5', "msgSerNbr: must be a non-negative integer"),  # 1.0 is the integer 1
        (b'"msgSerNbr":-1', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":null', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":[1]', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":9223372036854775808', "msgSerNbr: must be a non-negative integer"),
        (b'"msgSerNbr":0', "msgSerNbr: must be 1 or more"),
        (b'"msgSerNbr":"0"', "msgSerNbr: must be 1 or more"),
        (b'"totMsgCnt":"many"', "totMsgCnt: must be a non-negative integer"),
        (b'"recCnt":-2', "recCnt: must be a non-negative integer"),
        (b'"totRecCnt":false', "totRecCnt: must be a non-negative integer"),
        (b'"msgGrpId":5', "msgGrpId: must be a non-empty string"),
        (b'"msgGrpId":null', "msgGrpId: must be a non-empty string"),
        (b'"msgGrpId":""', "msgGrpId: must be a non-empty string"),
        (b'"msgGrpId":"  "', "msgGrpId: must be a non-empty string"),
        (b'"msgGrpId":"' + b"G" * 65 + b'"', "msgGrpId: is longer than 64 characters"),
    ],
)
def test_invalid_envelope_values(member: bytes, detail: str) -> None:
    with pytest.raises(InvalidEnvelope) as caught:
        run(b"{" + member + b',"events":[]}')
    assert caught.value.detail == detail


def test_largest_accepted_envelope_values() -> None:
    pipe = pipeline()
    pipe.feed(b'{"msgGrpId":"' + b"G" * 64 + b'","msgSerNbr":9223372036854775807,"events":[]}')
    pipe.finish()
    assert (pipe.envelope.msg_grp_id, pipe.envelope.msg_ser_nbr) == ("G" * 64, 2**63 - 1)


def test_non_decimal_digits_in_msg_ser_nbr_are_an_invalid_envelope() -> None:
    with pytest.raises(InvalidEnvelope):
        run('{"msgGrpId":"G","msgSerNbr":"²","events":[]}'.encode())


def test_max_events() -> None:
    limits = Limits(max_events=2)
    assert len(run(body(records=[PIECE, LDE]), limits=limits)) == 2
    with pytest.raises(LimitExceeded) as caught:
        run(body(records=[PIECE, LDE, TRAY]), limits=limits)
    assert (status_of(caught.value), caught.value.code) == (413, "limit_exceeded")
    assert caught.value.context == {"limit": "max_events_per_message", "value": 2}


def refuse(data: bytes, **kwargs: Any) -> tuple[IngestError | None, list[str]]:
    """Run a message that is refused; the error and the ResourceWarnings of what it left open."""
    error: IngestError | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe = pipeline(**kwargs)
        try:
            pipe.feed(data)
            pipe.finish()
        except IngestError as exc:
            error = exc
            exc.__traceback__ = None  # frames would keep the pipeline alive
        del pipe
        gc.collect()
    return error, [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


KEPT_ASIDE_THEN_REFUSED = {
    "no msgGrpId": (b'{"msgSerNbr":1,"events":[' + PIECE + b"]}", {}, InvalidEnvelope),
    "too many events": (b'{"events":[{},{},{}]}', {"limits": Limits(max_events=2)}, LimitExceeded),
    "truncated": (b'{"events":[{},{', {}, MalformedMessage),
}


@pytest.mark.parametrize(
    ("data", "kwargs", "error"),
    KEPT_ASIDE_THEN_REFUSED.values(),
    ids=KEPT_ASIDE_THEN_REFUSED.keys(),
)
def test_refused_after_records_were_kept_aside(
    data: bytes, kwargs: dict[str, Any], error: type
) -> None:
    raised, _ = refuse(data, **kwargs)
    assert type(raised) is error


@pytest.mark.parametrize(
    ("data", "kwargs", "error"),
    KEPT_ASIDE_THEN_REFUSED.values(),
    ids=KEPT_ASIDE_THEN_REFUSED.keys(),
)
def test_refused_message_leaves_no_file_open(
    data: bytes, kwargs: dict[str, Any], error: type
) -> None:
    raised, unclosed = refuse(data, **kwargs)
    assert type(raised) is error
    assert unclosed == []


def test_max_record_bytes() -> None:
    with pytest.raises(RecordTooLarge) as caught:
        run(
            body(records=[TRAY, b'{"x":"' + b"x" * 2000 + b'"}']),
            100,
            limits=Limits(max_record_bytes=1024),
        )
    assert caught.value.context == {"limit": "max_record_bytes", "value": 1024, "index": 1}


def test_max_string_length() -> None:
    long_name = (
        b'{"imtb":"999999123456789012345678","scanDatetime":"2016-01-22 22:29:53-05:00","facAddr":"'
        + b"a" * 65
        + b'"}'
    )
    (dead,) = run(body(records=[long_name]), limits=Limits(max_string_length=64))
    assert isinstance(dead, DeadLetter)
    assert dead.reasons == [("facAddr", "longer than max_string_length=64")]


def test_malformed_body_is_refused_at_finish() -> None:
    pipe = pipeline()
    pipe.feed(b'{"msgGrpId":"G","msgSerNbr":1,"events":[' + PIECE)
    with pytest.raises(MalformedMessage):
        pipe.finish()
