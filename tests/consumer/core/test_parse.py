"""Tests for consumer.core.parse: the incremental parser of one pushed message (ivmtr.md 2.1)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.core.parse import EnvelopeField, FlatRecords, MessageParser, RawRecord
from consumer.errors import LimitExceeded, MalformedMessage, NestingTooDeep, RecordTooLarge
from consumer.http.errors import status_of
from consumer.native import record_scanner
from tests.samples import LDE_JSON as LDE
from tests.samples import PIECE_JSON as PIECE

# The record scanner the parsers of the running test get (see the fixture below).
_SCANNER: list[FlatRecords | None] = [None]


@pytest.fixture(autouse=True, scope="module", params=["python", "native"])
def scanner(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test runs twice: the Python parser alone, then with the native record scanner."""
    if request.param == "native":
        _SCANNER[0] = record_scanner("auto")
        if _SCANNER[0] is None:
            pytest.skip("the native module is not installed")
    yield
    _SCANNER[0] = None


def new_parser(**kwargs: int) -> MessageParser:
    return MessageParser(flat_records=_SCANNER[0], **kwargs)


# Closers, quotes and backslashes inside strings; nested values in unknown fields; unicode.
TRICKY = [
    rb'{"note":"}]}]","q":"say \"}\" twice","path":"C:\\dir\\","end":"\\"}',
    rb'{"nested":{"a":[1,{"b":"]}"},[]],"c":{}},"list":[[["}"]]]}',
    '{"city":"Zürich ☃ \U0001f4ec","esc":"\\u00e9\\ud83d\\udce8\\n\\t\\/"}'.encode(),
    # more closers inside strings than the parser's candidate budget
    b'{"x":"' + b"}" * 20 + b'","y":"' + b"]" * 20 + b'"}',
    b"{}",
    b'{ "spaced" : [ 1 , 2 ] ,\n\t"k" : "v" }',
]
RECORDS = [PIECE, LDE, *TRICKY]


def message(records: list[bytes], before: bytes, after: bytes) -> bytes:
    return b'{%s"events":[%s]%s}' % (before, b",".join(records), after)


# Envelope members before, after and between (around) the events array.
MESSAGES = {
    "envelope first": message(
        RECORDS,
        b'"msgGrpId":"17367877181793X9RM5Z","msgSerNbr":1,"totMsgCnt":1,"recCnt":8,"totRecCnt":8,',
        b"",
    ),
    "envelope last": message(
        RECORDS, b"", b',"msgGrpId":"17367877181793X9RM5Z","msgSerNbr":1,"totMsgCnt":1'
    ),
    "envelope around": message(
        RECORDS, b'"msgGrpId":"17367877181793X9RM5Z",', b',"msgSerNbr":12,"meta":{"a":[1,"}"]}'
    ),
    "whitespace everywhere": (
        b' \r\n\t{ \n"msgGrpId" \t: \r"G" ,\n "events"\n:\n[\n'
        + b" ,\r\n ".join(RECORDS)
        + b'\n]\t,\t"msgSerNbr"  :  7  \n}\n\t \r\n'
    ),
}


def expected_items(body: bytes) -> list[EnvelopeField | RawRecord]:
    """The items, worked out with orjson from the whole document (not with the parser)."""
    document = orjson.loads(body)
    items: list[EnvelopeField | RawRecord] = []
    for name, value in document.items():
        if name == "events":
            items.extend(
                RawRecord(index, raw, orjson.loads(raw)) for index, raw in enumerate(RECORDS)
            )
        else:
            items.append(EnvelopeField(name, value))
    return items


def parse(body: bytes, chunk: int | None = None, **kwargs: int) -> list[EnvelopeField | RawRecord]:
    parser = new_parser(**kwargs)
    size = chunk or max(len(body), 1)
    items: list[EnvelopeField | RawRecord] = []
    for start in range(0, len(body), size):
        items.extend(parser.feed(body[start : start + size]))
    items.extend(parser.close())
    return items


def parse_split(body: bytes, cuts: list[int]) -> list[EnvelopeField | RawRecord]:
    parser = new_parser()
    items: list[EnvelopeField | RawRecord] = []
    bounds = [0, *sorted(set(cuts)), len(body)]
    for start, end in itertools.pairwise(bounds):
        items.extend(parser.feed(body[start:end]))
    items.extend(parser.close())
    return items


@pytest.mark.parametrize("body", MESSAGES.values(), ids=MESSAGES.keys())
def test_one_feed_gives_every_item_in_order(body: bytes) -> None:
    assert parse(body) == expected_items(body)


@pytest.mark.parametrize("body", MESSAGES.values(), ids=MESSAGES.keys())
def test_every_chunk_size_gives_the_same_items(body: bytes) -> None:
    expected = expected_items(body)
    for size in range(1, len(body) + 1):
        assert parse(body, size) == expected, f"chunk size {size}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(MESSAGES)),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=60),
)
def test_random_split_points_give_the_same_items(name: str, cuts: list[int]) -> None:
    body = MESSAGES[name]
    assert parse_split(body, [cut % (len(body) + 1) for cut in cuts]) == expected_items(body)


_TEXT = st.text(alphabet=st.sampled_from('ab}]{["\\\x00\x1f é☃\U0001f4ec'), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(
    records=st.lists(st.dictionaries(_TEXT, _JSON, max_size=4), max_size=5),
    grp=_TEXT,
    ser=st.integers(0, 2**40),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_generated_messages_parse_to_their_parts(
    records: list[dict[str, object]], grp: str, ser: int, cuts: list[int]
) -> None:
    raws = [orjson.dumps(record) for record in records]
    body = b'{"msgGrpId":%s,"events":[%s],"msgSerNbr":%d}' % (
        orjson.dumps(grp),
        b",".join(raws),
        ser,
    )
    expected = [
        EnvelopeField("msgGrpId", grp),
        *(
            RawRecord(index, raw, record)
            for index, (raw, record) in enumerate(zip(raws, records, strict=True))
        ),
        EnvelopeField("msgSerNbr", ser),
    ]
    assert parse_split(body, [cut % (len(body) + 1) for cut in cuts]) == expected


@pytest.mark.parametrize(
    ("body", "items"),
    [
        (b'{"events":[]}', []),
        (b'{"events":[ \n ]}', []),
        (b"{}", []),
        (b" { } ", []),
        (b'{"msgGrpId":"G","events":[]}', [EnvelopeField("msgGrpId", "G")]),
        (
            b'{"meta":{"x":[1,2,{"y":"]"}]},"events":[]}',
            [EnvelopeField("meta", {"x": [1, 2, {"y": "]"}]})],
        ),
        (b'{"msgGrpId":"a\\\\","events":[]}', [EnvelopeField("msgGrpId", "a\\")]),
        (b'{"msgGrpId":"a\\"b","events":[]}', [EnvelopeField("msgGrpId", 'a"b')]),
        (b'{"msg\\u0047rpId":"G"}', [EnvelopeField("msgGrpId", "G")]),
        # a record that is not an object is still a record: validation refuses it later
        (
            b'{"events":[[1],"s",{}]}',
            [RawRecord(0, b"[1]", [1]), RawRecord(1, b'"s"', "s"), RawRecord(2, b"{}", {})],
        ),
    ],
)
def test_small_messages(body: bytes, items: list[object]) -> None:
    assert parse(body) == items
    assert parse(body, 1) == items


def test_records_come_out_as_soon_as_they_are_complete() -> None:
    parser = new_parser()
    assert parser.feed(b'{"msgGrpId":"G","events":[' + PIECE[:-1]) == [
        EnvelopeField("msgGrpId", "G")
    ]
    assert parser.feed(b"}") == [RawRecord(0, PIECE, orjson.loads(PIECE))]
    assert parser.feed(b",") == []
    assert parser.feed(LDE + b"]") == [RawRecord(1, LDE, orjson.loads(LDE))]
    assert parser.feed(b"}") == []
    assert parser.close() == []
    assert parser.members == frozenset({"msgGrpId", "events"})


def test_record_indexes_are_zero_based_positions_in_events() -> None:
    body = message([b"{}"] * 5, b'"a":1,', b',"b":2')
    assert [item.index for item in parse(body, 3) if isinstance(item, RawRecord)] == [0, 1, 2, 3, 4]


def test_bytes_parsed_counts_what_was_fed() -> None:
    parser = new_parser()
    parser.feed(b'{"events":[{"a"')
    parser.feed(b":1}]}  ")
    assert parser.bytes_parsed == len(b'{"events":[{"a":1}]}  ')


# Errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail", "offset"),
    [
        (b"[]", "the body is not a JSON object", 0),
        (b'  "text"', "the body is not a JSON object", 2),
        (b"42", "the body is not a JSON object", 0),
        (b"null", "the body is not a JSON object", 0),
        (b'{"events":[]} x', "data after the end of the message", 14),
        (b'{"events":[]}{}', "data after the end of the message", 13),
        (b'{"msgGrpId":"a","msgGrpId":"b"}', "member 'msgGrpId' appears twice", 16),
        (b'{"events":[],"events":[]}', "member 'events' appears twice", 13),
        (b'{"events":{}}', "'events' is not an array", 10),
        (b'{"events":"[]"}', "'events' is not an array", 10),
        (b'{"events":null}', "'events' is not an array", 10),
        (b'{"a":NaN}', "invalid JSON value", 5),
        (b'{"a":Infinity}', "invalid JSON value", 5),
        (b'{"a":-Infinity}', "invalid JSON value", 5),
        (b"{'a':1}", "expected a member name or '}'", 1),
        (b'{"a" 1}', "expected ':'", 5),
        (b'{"a":1 "b":2}', "expected ',' or '}'", 7),
        (b'{"a":1,}', "expected a member name", 7),
        (b'{"events":[{} {}]}', "expected ',' or ']' in events", 14),
        (b'{"events":[{},]}', "invalid JSON value", 14),
        (b"", "message ends early (expected a JSON object)", 0),
        (b"   ", "message ends early (expected a JSON object)", 3),
        (b'{"events":[{"a":1}', "message ends early (expected ',' or ']' in events)", 18),
        (b'{"msgGrpId":', "message ends early (expected the value of 'msgGrpId')", 12),
    ],
)
def test_malformed_messages(body: bytes, detail: str, offset: int) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse(body)
    assert caught.value.detail == detail
    assert caught.value.context == {"offset": offset}
    assert (status_of(caught.value), caught.value.code) == (400, "malformed_message")


@pytest.mark.parametrize(
    "body",
    [
        b'{"events":[{"a":NaN}]}',
        b'{"events":[{"a":Infinity}]}',
        b'{"events":[{"a":"\xff"}]}',  # invalid UTF-8 inside a record
        b'{"events":[{"a":"\xc3"}]}',  # a truncated 2-byte sequence
        b'{"events":[{"a":"\\ud800"}]}',  # a lone surrogate escape
        b'{"\xff":1}',  # invalid UTF-8 in a member name
        b'{"msgGrpId":"\xed\xa0\x80"}',  # an encoded surrogate
        b'{"events":[{"a":01}]}',
        b'{"events":[{"a":1,}]}',
    ],
)
def test_invalid_json_inside_values_is_malformed(body: bytes) -> None:
    for chunk in (None, 1, 7):
        with pytest.raises(MalformedMessage, match=r"^invalid JSON: "):
            parse(body, chunk)


SMALL = message([LDE, rb'{"a":"}\"]","b":[{"c":null}]}'], b'"msgGrpId":"G",', b',"msgSerNbr":12')


def test_every_proper_prefix_is_refused_at_close() -> None:
    assert len(parse(SMALL)) == 4  # the whole message is fine
    for length in range(len(SMALL)):
        for chunk in (length or 1, 1):
            parser = new_parser()
            for start in range(0, length, chunk):
                parser.feed(SMALL[start : min(start + chunk, length)])
            with pytest.raises(MalformedMessage) as caught:
                parser.close()
            assert caught.value.detail.startswith("message ends early (expected "), length
            # the offset is where the incomplete part starts
            assert 0 <= caught.value.context["offset"] <= length


def test_close_reports_where_the_truncated_record_starts() -> None:
    parser = new_parser()
    parser.feed(b'{"events":[{},{"a":"never closed')
    with pytest.raises(MalformedMessage) as caught:
        parser.close()
    assert caught.value.detail == "message ends early (expected a record in events)"
    assert caught.value.context == {"offset": 14}


# Record size limit ---------------------------------------------------------------------------


def big_record(size: int) -> bytes:
    record = b'{"x":"' + b"a" * (size - 8) + b'"}'
    assert len(record) == size
    return record


@pytest.mark.parametrize("chunk", [1, 100, 1000])
def test_record_over_max_record_bytes_is_refused_while_it_streams(chunk: int) -> None:
    body = message([b"{}", big_record(3000)], b"", b"")
    with pytest.raises(RecordTooLarge) as caught:
        parse(body, chunk, max_record_bytes=1024)
    error = caught.value
    assert isinstance(error, LimitExceeded)
    assert (status_of(error), error.code) == (413, "limit_exceeded")
    assert error.context == {"limit": "max_record_bytes", "value": 1024, "index": 1}
    assert error.detail == "record 1 of events is larger than max_record_bytes=1024"


@pytest.mark.parametrize("chunk", [None, 1, 64])
def test_record_of_exactly_max_record_bytes_is_accepted(chunk: int | None) -> None:
    record = big_record(1024)
    assert parse(message([record], b"", b""), chunk, max_record_bytes=1024) == [
        RawRecord(0, record, orjson.loads(record))
    ]


def test_record_over_max_record_bytes_is_refused_when_it_arrives_whole() -> None:
    with pytest.raises(RecordTooLarge):
        parse(message([big_record(3000)], b"", b""), None, max_record_bytes=1024)


@pytest.mark.parametrize("chunk", [1, 16])
def test_invalid_small_record_is_malformed_whatever_the_chunking(chunk: int) -> None:
    body = message([b'{"a":NaN}', *[b'{"b":"' + b"x" * 100 + b'"}'] * 30], b"", b"")
    with pytest.raises(MalformedMessage):
        parse(body, None, max_record_bytes=1024)  # fed whole: refused as malformed
    with pytest.raises(MalformedMessage):
        parse(body, chunk, max_record_bytes=1024)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"true", True),
        (b"false", False),
        (b"null", None),
        (b"-5", -5),
        (b"1.5", 1.5),
        (b"1e5", 1e5),
    ],
)
def test_scalar_envelope_values_split_across_chunks(text: bytes, value: object) -> None:
    body = b'{"extra":' + text + b',"events":[]}'
    assert parse(body, 1) == [EnvelopeField("extra", value)]


def test_oversized_envelope_member_is_named() -> None:
    body = b'{"events":[{}],"msgGrpId":"' + b"x" * 3000 + b'"}'
    with pytest.raises(LimitExceeded) as caught:
        parse(body, 100, max_record_bytes=1024)
    assert "msgGrpId" in caught.value.detail


# --------------------------------------------------------------------------- nesting depth


def reference_depth(value: object) -> int:
    """Depth of a JSON document worked out on its own (recursive): ``{}`` and ``[]`` are 1."""
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


def nested(depth: int, leaf: object = "]}[{") -> object:
    """A value ``depth`` deep, objects and arrays alternating, brackets in its strings."""
    value = leaf
    for level in range(depth):
        value = {"k": value, "s": "[{"} if level % 2 else [value, "}]"]
    return value


# Where the deep value sits: a record of events (two levels in), an envelope member
# before or after events (one level in).
PLACES = {
    "record": lambda value: {"msgGrpId": "G", "events": [{"a": 1}, value]},
    "member before events": lambda value: {"msgGrpId": "G", "meta": value, "events": []},
    "member after events": lambda value: {"events": [], "meta": value},
}
PLACE_LEVELS = {"record": 2, "member before events": 1, "member after events": 1}


def parses(body: bytes, chunk: int | None, max_depth: int) -> bool:
    """Whether the parser takes ``body``; any refusal but NestingTooDeep fails the test."""
    try:
        parse(body, chunk, max_depth=max_depth)
    except NestingTooDeep as exc:
        assert (exc.context["limit"], exc.context["value"]) == ("max_json_depth", max_depth)
        assert f"max_json_depth={max_depth}" in exc.detail
        assert (status_of(exc), exc.code) == (400, "limit_exceeded")
        return False
    return True


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("max_depth", [2, 3, 4, 5, 16, 17, 40])
def test_a_message_nested_exactly_at_the_limit_is_accepted_one_deeper_refused(
    place: str, max_depth: int
) -> None:
    for total in (max_depth, max_depth + 1):
        inner = total - PLACE_LEVELS[place]
        if inner < 1:
            continue  # the place alone is deeper than the limit
        document = PLACES[place](nested(inner))
        assert reference_depth(document) == total
        body = orjson.dumps(document)
        for chunk in (None, 1, 5):
            assert parses(body, chunk, max_depth) is (total <= max_depth), (total, chunk)


@pytest.mark.parametrize("max_depth", [2, 3, 4])
def test_flat_records_count_their_own_level(max_depth: int) -> None:
    # {"events":[{...}]} is 3 deep: under a limit of 2 even a flat record is too deep,
    # whichever path (Python, native scanner) takes it.
    body = message([PIECE, LDE], b'"msgGrpId":"G",', b"")
    assert reference_depth(orjson.loads(body)) == 3
    for chunk in (None, 1, 64):
        assert parses(body, chunk, max_depth) is (max_depth >= 3)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(alphabet='[]{}"\\a', max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet="[{a", max_size=2), children, max_size=3)
    ),
    max_leaves=30,
)


@given(
    value=json_values,
    place=st.sampled_from(sorted(PLACES)),
    max_depth=st.integers(min_value=2, max_value=9),
    chunk=st.sampled_from([None, 1, 3]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_depth_limit_agrees_with_a_reference(
    value: object, place: str, max_depth: int, chunk: int | None
) -> None:
    document = PLACES[place](value)
    body = orjson.dumps(document)
    assert parses(body, chunk, max_depth) is (reference_depth(document) <= max_depth)
