"""Parser limits: cases found by ``make mutation MODULE=http-limits`` that no test held.

- a value still arriving is measured by what has arrived: a record or envelope member
  past ``max_record_bytes`` is refused while it streams, before it ends (the existing
  tests sent whole bodies, so refusing only complete values passed them too);
- a member past the limit is refused with the limit's name and value in the 413 body;
- ``nesting_depth`` of a scalar is 0, as documented.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.core.parse import FlatRecords, MessageParser, nesting_depth
from consumer.errors import LimitExceeded, RecordTooLarge
from consumer.native import record_scanner

LIMIT = 1024


@pytest.fixture(params=["python", "native"])
def scanner(request: pytest.FixtureRequest) -> Iterator[FlatRecords | None]:
    """The Python parser alone, then with the native record scanner."""
    if request.param == "python":
        yield None
        return
    native = record_scanner("auto")
    if native is None:
        pytest.skip("the native module is not installed")
    yield native


def feed_in_pieces(parser: MessageParser, data: bytes, size: int = 100) -> None:
    for start in range(0, len(data), size):
        parser.feed(data[start : start + size])


@pytest.mark.parametrize(
    "opening",
    [b'{"events":[{"x":"', b'{"events":[["', b'{"events":["'],
    ids=["object", "array", "string"],
)
def test_a_record_past_the_limit_is_refused_before_it_ends(
    scanner: FlatRecords | None, opening: bytes
) -> None:
    parser = MessageParser(flat_records=scanner, max_record_bytes=LIMIT)
    with pytest.raises(RecordTooLarge) as caught:
        feed_in_pieces(parser, opening + b"a" * (2 * LIMIT))  # never closed
    assert caught.value.context == {"limit": "max_record_bytes", "value": LIMIT, "index": 0}


@pytest.mark.parametrize(
    ("member", "opening"),
    [("msgGrpId", b'"'), ("extra", b'{"a":"'), ("list", b'["'), ("number", b"1")],
)
def test_an_envelope_member_past_the_limit_is_refused_before_it_ends(
    scanner: FlatRecords | None, member: str, opening: bytes
) -> None:
    parser = MessageParser(flat_records=scanner, max_record_bytes=LIMIT)
    filler = b"1" if opening == b"1" else b"a"
    with pytest.raises(LimitExceeded) as caught:
        feed_in_pieces(parser, b'{"%s":%s%s' % (member.encode(), opening, filler * 2 * LIMIT))
    error = caught.value
    assert type(error) is LimitExceeded  # not RecordTooLarge: no record index
    assert error.context == {"limit": "max_record_bytes", "value": LIMIT}
    assert error.detail == f"member {member!r} is larger than max_record_bytes={LIMIT}"


@pytest.mark.parametrize("value", [0, 1.5, "text", "", None, True])
def test_the_depth_of_a_scalar_is_zero(value: object) -> None:
    assert nesting_depth(value) == 0


def test_the_depth_of_containers_counts_each_level() -> None:
    assert nesting_depth({}) == 1
    assert nesting_depth([1, "a", None]) == 1
    assert nesting_depth({"a": [1, {"b": []}], "c": "x"}) == 4  # {, [, {, [
