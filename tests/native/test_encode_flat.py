"""``MessageContext.encode_flat`` is ``flat_records`` then ``encode_run``, in one call.

For any buffer, position and record size bound, the run must hold exactly what
``encode_run`` takes of the records ``flat_records`` finds there (record indexes from
``first_index`` on), and the stop must be ``flat_records``'s when every record was taken,
else the start of the record ``encode_run`` stopped at, with after_record False.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

import orjson
import pytest

from consumer.core.fastpath import ScanFastPath
from tests.native.test_encode_run import (
    FAST,
    LEFT,
    MAX_STRING,
    PROVENANCE,
    RECORDS,
    RULES,
    SCHEMAS,
    SHAPES,
    Refused,
    phase_records,
    refusing_context,
)

NATIVE = pytest.importorskip("ivmtr_native")

# Records the scan itself stops at (not flat), besides LEFT's nested one.
NOT_FLAT = [b'{"a":1.5}', b'{"imb":true}', b"[1]", b'"text"', b'{"a":12345678901234567890}']
SEPARATORS = [b",", b" , ", b",\n  ", b"\t,", b" ", b"]", b""]


def reference(context: Any, buf: bytes, pos: int, max_bytes: int, first: int) -> Any:
    """What encode_flat must give: flat_records, then encode_run on what it found."""
    records, end, after_record = NATIVE.flat_records(buf, pos, max_bytes)
    run, taken = context.encode_run(records, list(range(first, first + len(records))))
    if taken == len(records):
        return run, end, after_record
    # The records lie in order with only whitespace and one comma between them.
    start = pos
    for before, record in itertools.pairwise(records[: taken + 1]):
        start = buf.index(record, start + len(before))
    return run, start, False


def same(fused: Any, expected: Any) -> None:
    (run, stop, after_record), (want_run, want_stop, want_after) = fused, expected
    assert (stop, after_record) == (want_stop, want_after)
    assert len(run) == len(want_run)
    assert run.records() == want_run.records()
    assert run.kind_counts() == want_run.kind_counts()
    assert run.campaign_counts() == want_run.campaign_counts()


def random_body(rng: random.Random) -> tuple[bytes, list[int]]:
    """Records of every sort between separators (some of them wrong); their starts."""
    parts: list[bytes] = [b"["]
    starts = []
    at = 1
    for _ in range(rng.randint(0, 30)):
        record = rng.choice(
            [*RECORDS[:20]] * 3 + LEFT + NOT_FLAT + [orjson.dumps(orjson.loads(RECORDS[0]))]
        )
        if rng.random() < 0.1:
            record = record.replace(b",", b" ,\n\t", 3)  # flat still, with whitespace inside
        starts.append(at)
        separator = rng.choice(SEPARATORS[:4] * 6 + SEPARATORS[4:])
        parts += [record, separator]
        at += len(record) + len(separator)
    parts.append(b"]}")
    return b"".join(parts), starts


def random_cases(seed: int) -> list[tuple[bytes, int, int, int]]:
    """(buf, pos, max_record_bytes, first_index): chunks of random bodies."""
    rng = random.Random(seed)
    cases = []
    for _ in range(25):
        body, starts = random_body(rng)
        pos = rng.choice([*starts, *starts, rng.randint(0, len(body))]) if starts else 0
        # Cut anywhere, or where a record starts (its separator is in the chunk), or not.
        cuts = [rng.randint(pos, len(body)), *(start for start in starts if start > pos)]
        buf = body[: rng.choice(cuts)] if rng.random() < 0.6 else body
        max_bytes = rng.choice([1 << 20, 1 << 20, 1 << 20, 500, 1])
        cases.append((buf, pos, max_bytes, rng.choice([0, rng.randint(0, 10**6)])))
    return cases


@pytest.mark.parametrize("seed", range(40))
def test_encode_flat_is_flat_records_then_encode_run(seed: int) -> None:
    context = FAST.message(PROVENANCE, kind=None, rules=RULES)
    for buf, pos, max_bytes, first in random_cases(seed):
        fused = context.encode_flat(buf, pos, max_bytes, first)
        same(fused, reference(context, buf, pos, max_bytes, first))


def test_the_random_cases_stop_in_every_way() -> None:
    # The property above would hold for an encode_flat that took nothing: the cases must
    # hold runs that end in each way.
    context = FAST.message(PROVENANCE, kind=None, rules=RULES)
    ways: Counter[str] = Counter()
    for seed in range(40):
        for buf, pos, max_bytes, first in random_cases(seed):
            run, stop, after_record = context.encode_flat(buf, pos, max_bytes, first)
            records, _, _ = NATIVE.flat_records(buf, pos, max_bytes)
            if not run:
                ways["nothing taken"] += 1
            elif after_record:
                ways["after a record"] += 1
            elif len(run) < len(records):
                ways["at a record left to Python"] += 1
            elif stop == len(buf):
                ways["at the chunk's end"] += 1
            else:
                ways["where the scan stops"] += 1
    assert len(ways) == 5 and min(ways.values()) >= 10, ways


def test_a_record_left_first_gives_an_empty_run_at_its_own_position() -> None:
    context = FAST.message(PROVENANCE, kind=None, rules=RULES)
    for left in LEFT:
        buf = b'{"events":[' + left + b", " + RECORDS[0] + b"]}"
        run, stop, after_record = context.encode_flat(buf, 11, 1 << 20, 0)
        assert (len(run), stop, after_record) == (0, 11, False)
        # After it, the next record is taken, and the scan stops right after it, at ']'.
        after = buf.index(RECORDS[0])
        run, stop, after_record = context.encode_flat(buf, after, 1 << 20, 1)
        assert (len(run), stop, after_record) == (1, len(buf) - 2, True)


def test_indexes_count_from_first_index() -> None:
    context = FAST.message(PROVENANCE, kind=None, rules=RULES)
    buf = b",".join(RECORDS[:10]) + b"]"
    run, _, _ = context.encode_flat(buf, 0, 1 << 20, 500)
    expected, taken = context.encode_run(RECORDS[:10], list(range(500, 510)))
    assert taken == 10 and run.records() == expected.records()
    shifted, _ = context.encode_run(RECORDS[:10], list(range(501, 511)))
    assert run.records() != shifted.records()  # the index is in every body


def test_unseen_mail_phases_are_asked_of_python_and_the_run_goes_on() -> None:
    raws = phase_records()
    raws.insert(30, LEFT[3])
    buf = b"[" + b" , ".join(raws) + b"]"
    cached = FAST.message(PROVENANCE, kind=None, rules=RULES)
    cached.encode_many(raws, list(range(len(raws))))  # every phase cached
    fresh = ScanFastPath.build(NATIVE, SHAPES, SCHEMAS, max_string_length=MAX_STRING)
    context = fresh.message(PROVENANCE, kind=None, rules=RULES)
    fused = context.encode_flat(buf, 1, 1 << 20, 0)
    assert len(fused[0]) == 30
    same(fused, reference(cached, buf, 1, 1 << 20, 0))
    resumed = buf.index(raws[31])
    fused = context.encode_flat(buf, resumed, 1 << 20, 31)
    assert len(fused[0]) == len(raws) - 31
    same(fused, reference(cached, buf, resumed, 1 << 20, 31))


def test_an_exception_of_the_mail_phase_function_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = refusing_context(monkeypatch)
    raws = phase_records()
    with pytest.raises(Refused) as run_raised:
        context.encode_run(raws, list(range(len(raws))))
    with pytest.raises(Refused) as flat_raised:
        context.encode_flat(b",".join(raws) + b"]", 0, 1 << 20, 0)
    assert str(flat_raised.value) == str(run_raised.value)
