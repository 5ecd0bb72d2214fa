"""Reading a message's coordinates from the first bytes of its body."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from consumer.core.coordinates import leading_coordinates


def test_the_envelope_before_the_events_gives_the_coordinates() -> None:
    body = b'{"msgGrpId": "G1", "msgSerNbr": 3, "totMsgCnt": 9, "events": [{"imb": "'
    assert leading_coordinates(body) == ("G1", 3)


def test_counts_are_read_as_the_pipeline_reads_them() -> None:
    assert leading_coordinates(b'{"msgSerNbr":"7","msgGrpId":"G","events":[') == ("G", 7)
    assert leading_coordinates(b'{"msgSerNbr":7.0,"msgGrpId":"G","events":[') == ("G", 7)


def test_no_coordinates_until_both_arrive_before_the_events() -> None:
    assert leading_coordinates(b'{"msgGrpId": "G1", "events": [], "msgSerNbr": 3}') is None
    assert leading_coordinates(b'{"events": [], "msgGrpId": "G1", "msgSerNbr": 3}') is None
    assert leading_coordinates(b'{"msgGrpId": "G1", "msgSer') is None
    assert leading_coordinates(b"") is None


def test_invalid_or_malformed_envelopes_are_left_to_the_pipeline() -> None:
    assert leading_coordinates(b'{"msgGrpId": "", "msgSerNbr": 3, "events": [') is None
    assert leading_coordinates(b'{"msgGrpId": "G", "msgSerNbr": 0, "events": [') is None
    assert leading_coordinates(b'{"msgGrpId": "G", "msgSerNbr": true, "events": [') is None
    assert leading_coordinates(b'["msgGrpId", "G"]') is None
    assert leading_coordinates(b'{"msgGrpId" "G", "msgSerNbr": 1, "events": [') is None


def test_a_head_cut_inside_a_character_still_reads() -> None:
    body = '{"msgGrpId": "G", "msgSerNbr": 2, "events": [{"x": "é'.encode()
    assert leading_coordinates(body[:-1]) == ("G", 2)


def test_the_last_of_repeated_members_counts_as_in_the_pipeline() -> None:
    body = b'{"msgGrpId": "A", "msgSerNbr": 2, "msgGrpId": "B", "events": ['
    assert leading_coordinates(body) == ("B", 2)


@given(
    group=st.text(min_size=1, max_size=64).filter(str.strip),
    serial=st.integers(1, 2**63 - 1),
    extra=st.dictionaries(st.sampled_from(["totMsgCnt", "recCnt", "x"]), st.integers(0, 99)),
)
def test_any_envelope_written_first_is_read_back(
    group: str, serial: int, extra: dict[str, int]
) -> None:
    body = orjson.dumps({"msgGrpId": group, **extra, "msgSerNbr": serial, "events": [{}]})
    assert leading_coordinates(body) == (group, serial)
