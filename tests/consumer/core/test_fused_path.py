"""Flat records encoded where the parser finds them (``MessageEncoder.encode_flat``).

Once a message's coordinates are known, the pipeline hands its native encoder to the
parser, which encodes runs of flat records straight from the body's bytes: a run comes as
one ``EncodedScans`` item, and a record the encoder leaves comes as a ``RawRecord`` for the
Python path. Whatever the chunking and wherever the envelope is, the outcomes, expanded
per record, must be those of the pipeline without the fast path.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import fastavro
import pytest

from consumer.core.campaigns import CampaignRule
from consumer.core.enrich import Provenance
from consumer.core.fastpath import KINDS, MessageEncoder, ScanFastPath
from consumer.core.parse import EnvelopeField, MessageParser, RawRecord
from consumer.core.pipeline import DeadLetter, Limits, MessagePipeline, ScanEvent, outcome_count
from consumer.core.records import RecordKind
from consumer.errors import LimitExceeded, RecordTooLarge
from tests.consumer.core.test_fastpath import (
    ENCODERS,
    FAST,
    MAX_STRING,
    NATIVE,
    RULES,
    SCAN,
    SCHEMAS,
    SHAPES,
    mailing_records,
)
from tests.samples import PIECE

READERS = {kind: fastavro.parse_schema(schema.parsed) for kind, schema in SCHEMAS.items()}
BAR_IMB = "ATTFAATTFTADADATDFDFAAFDTFDDDDAFFATDATADTFDFFATDAFFTAFFDAAFAFFDTFTFTDTFAT"

# Records the encoder leaves to the Python path, each for another reason.
LEFT = [
    json.dumps({**PIECE, "futureField": {"nested": [1, 2]}}).encode(),  # not flat
    json.dumps({**PIECE, "imb": BAR_IMB}).encode(),  # a bar-string IMb
    b'{"imb":"00040699515990019102","scanEventCode":"918","scanEventCode":"919",'
    b'"scanDatetime":"2016-01-22 22:29:53-05:00"}',  # a repeated key
    json.dumps({**PIECE, "scanDatetime": "yesterday"}).encode(),  # invalid values
    json.dumps({**PIECE, "scanEventCode": "12", "handlingEventType": "X"}).encode(),
    json.dumps({**PIECE, "scanDatetime": "2016-01-22T22:29:53.5Z"}).encode(),  # unusual time
    json.dumps({**PIECE, "containerCount": 1.5}).encode(),  # a float: not flat
    b'{"something":"else"}',
]
SEPARATORS = [b",", b" , ", b",\n  "]


def message_records(seed: int, pieces: int) -> list[bytes]:
    """Generated records with Python-path ones mixed in: first, last, in pairs, and some
    with a mail phase no encoder has seen (asked of Python, then encoded)."""
    rng = random.Random(seed)
    records = mailing_records(pieces=pieces, seed=seed)
    for number in range(0, len(records), 9):
        record = json.loads(records[number])
        if "mailPhase" in record:
            record["mailPhase"] = f"Phase 3c - Run {seed}-{number}"
            records[number] = json.dumps(record).encode()
    for left in rng.sample(LEFT, 5):
        records.insert(rng.randint(0, len(records)), left)
    records.insert(0, rng.choice(LEFT))
    at = rng.randint(1, len(records))
    records[at:at] = rng.sample(LEFT, 2)
    records.append(rng.choice(LEFT))
    return records


def message_body(records: Sequence[bytes], envelope: str, seed: int) -> bytes:
    """The message, its coordinates before the events, after them, or one on each side."""
    rng = random.Random(seed)
    events = b'"events":[' + b"".join(
        record + (rng.choice(SEPARATORS) if at < len(records) - 1 else b"")
        for at, record in enumerate(records)
    )
    events += b"]"
    if envelope == "first":
        return b'{"msgGrpId":"G-9","msgSerNbr":3,"totMsgCnt":4,\n' + events + b"}"
    if envelope == "after":
        return b"{" + events + b',"msgGrpId":"G-9","msgSerNbr":3}'
    return b'{"msgGrpId":"G-9",' + events + b',"msgSerNbr":3,"recCnt":5}'


class CountingFastPath:
    """A ScanFastPath whose message encoders count the records each of their calls took."""

    def __init__(self, fast: ScanFastPath) -> None:
        self.fast = fast
        self.flat = 0  # taken by encode_flat, where the parser found them
        self.run = 0  # taken by encode_run, from RawRecords

    def message(
        self, provenance: Provenance, *, kind: RecordKind | None, rules: Sequence[CampaignRule]
    ) -> Any:
        encoder = self.fast.message(provenance, kind=kind, rules=rules)
        counts = self

        class Counting:
            def encode_flat(self, *args: Any) -> Any:
                result = encoder.encode_flat(*args)
                counts.flat += len(result[0])
                return result

            def encode_run(self, raws: list[bytes], indexes: list[int]) -> Any:
                result = encoder.encode_run(raws, indexes)
                counts.run += result[1]
                return result

        return Counting()


def fresh_fast_path() -> CountingFastPath:
    # A new encoder each time: its mail phase cache is empty.
    return CountingFastPath(ScanFastPath.build(NATIVE, SHAPES, SCHEMAS, max_string_length=100))


def run_pipeline(
    body: bytes, size: int, fast: CountingFastPath | None, limits: Limits | None = None
) -> tuple[list[Any], MessagePipeline]:
    pipeline = MessagePipeline(
        feed="fused",
        received_at_ms=1_700_000_000_000,
        shapes=SHAPES,
        campaign="feed",
        campaigns=RULES,
        limits=limits or Limits(),
        fast_path=fast,  # type: ignore[arg-type]
        flat_records=None if fast is None else SCAN,
    )
    outcomes: list[Any] = []
    for start in range(0, len(body), size):
        outcomes += pipeline.feed(body[start : start + size])
    outcomes += pipeline.finish()
    return outcomes, pipeline


def per_record(outcomes: list[Any]) -> tuple[list[tuple[Any, ...]], Counter[Any]]:
    """Each record's outcome, in order (a native run's events one by one), and the tallies
    (events per kind and campaign, logical deliveries per campaign)."""
    records: list[tuple[Any, ...]] = []
    tallies: Counter[Any] = Counter()
    for outcome in outcomes:
        if isinstance(outcome, ScanEvent):
            value = outcome.value
            body = ENCODERS[outcome.kind](value)
            records.append(("event", outcome.kind, outcome.key, body))
            tallies[outcome.kind] += 1
            if outcome.campaign:
                tallies[outcome.campaign, "events"] += 1
                tallies[outcome.campaign, "deliveries"] += outcome.logical_delivery
        elif isinstance(outcome, DeadLetter):
            records.append(("dead", outcome.key, outcome.value, outcome.kind, outcome.reasons))
        else:
            records += [("event", KINDS[kind], key, body) for kind, key, body in outcome.records()]
            for kind, count in zip(KINDS, outcome.kind_counts(), strict=True):
                tallies[kind] += count
            for campaign, (events, deliveries) in outcome.campaign_counts().items():
                tallies[campaign, "events"] += events
                tallies[campaign, "deliveries"] += deliveries
    return records, +tallies


def record_index(outcome: tuple[Any, ...]) -> int:
    if outcome[0] == "dead":
        index: int = outcome[2]["provenance"]["record_index"]
        return index
    event = fastavro.schemaless_reader(io.BytesIO(outcome[3]), READERS[outcome[1]], None)
    assert isinstance(event, dict)
    index = event["provenance"]["record_index"]
    return index


def taken_by_the_encoder(records: Sequence[bytes]) -> int:
    provenance = Provenance(feed="fused", msg_grp_id="G-9", msg_ser_nbr=3, received_at_ms=0)
    encoder = FAST.message(provenance, kind=None, rules=RULES)
    return sum(encoder.encode(raw, index) is not None for index, raw in enumerate(records))


WHOLE = 1 << 30
CASES = [
    *(
        (seed, size, envelope)
        for seed in range(3)
        for size in (4096, WHOLE)
        for envelope in ("first", "after", "split")
    ),
    *((seed, size, "first") for seed in range(3, 9) for size in (100, 4096, WHOLE)),
    (9, 1, "first"),
    (10, 7, "first"),
    (11, 7, "split"),
]


@pytest.mark.parametrize(("seed", "size", "envelope"), CASES)
def test_fused_outcomes_are_the_python_paths(seed: int, size: int, envelope: str) -> None:
    records = message_records(seed, pieces=8 if size < 100 else 40)
    body = message_body(records, envelope, seed)
    fast = fresh_fast_path()
    fused, pipeline = run_pipeline(body, size, fast)
    python, _ = run_pipeline(body, size, None)
    fused_records, fused_tallies = per_record(fused)
    assert fused_records == per_record(python)[0]
    assert fused_tallies == per_record(python)[1]
    assert [record_index(outcome) for outcome in fused_records] == list(range(len(records)))
    assert outcome_count(fused) == pipeline.records == len(records)
    taken = taken_by_the_encoder(records)
    assert pipeline.fast_records == fast.flat + fast.run == taken
    if envelope != "first":
        assert fast.flat == 0  # every record was kept aside until the coordinates came
    elif size == WHOLE:
        # The records after the coordinates, in the same chunk, are encoded where they lie.
        assert (fast.flat, fast.run) == (taken, 0)
    elif size == 4096:
        assert fast.flat > taken // 2  # records cut by a chunk's end take the general path


def test_the_parser_hands_back_runs_and_the_records_the_encoder_leaves() -> None:
    records = message_records(seed=21, pieces=40)
    body = b'{"events":[' + b",".join(records) + b"]}"
    provenance = Provenance(feed="fused", msg_grp_id="G-9", msg_ser_nbr=3, received_at_ms=0)
    encoder: MessageEncoder = FAST.message(provenance, kind=None, rules=RULES)
    asked_at: list[int] = []
    runs_stopped_at: set[int] = set()

    class Asked:
        def encode_flat(self, buf: bytes, pos: int, max_bytes: int, first: int) -> Any:
            asked_at.append(pos)
            run, stop, after_record = encoder.encode_flat(buf, pos, max_bytes, first)
            if run and not after_record:
                runs_stopped_at.add(stop)
            return run, stop, after_record

    parser = MessageParser(flat_records=SCAN)
    parser.encode_flat_with(Asked())  # type: ignore[arg-type]
    items = parser.feed(body) + parser.close()
    # The record a run stopped at is the general path's at once: the encoder is not asked
    # about it again.
    assert runs_stopped_at and not runs_stopped_at & set(asked_at)
    # Runs in their places: as many records as the runs and raw records stand for.
    index = 0
    left = []
    for item in items:
        if isinstance(item, RawRecord):
            assert item.index == index
            left.append(item.raw)
            index += 1
        else:
            assert not isinstance(item, EnvelopeField) and len(item)
            expected, taken = encoder.encode_run(
                records[index : index + len(item)], list(range(index, index + len(item)))
            )
            assert taken == len(item) and item.records() == expected.records()
            index += len(item)
    assert index == len(records)
    assert left == [raw for raw in records if encoder.encode(raw, 0) is None]


def test_the_parser_pauses_after_envelope_members_until_it_has_an_encoder() -> None:
    records = mailing_records(pieces=3)
    body = b'{"totMsgCnt":2,"msgGrpId":"G","events":[' + b",".join(records) + b"],"
    body += b'"msgSerNbr":1}'
    parser = MessageParser(flat_records=SCAN, pause_for_encoder=True)
    assert parser.feed(body) == [EnvelopeField("totMsgCnt", 2)] and parser.paused
    assert parser.resume() == [EnvelopeField("msgGrpId", "G")] and parser.paused
    provenance = Provenance(feed="fused", msg_grp_id="G", msg_ser_nbr=1, received_at_ms=0)
    parser.encode_flat_with(FAST.message(provenance, kind=None, rules=()))
    run, member = parser.resume()
    assert len(run) == len(records) and member == EnvelopeField("msgSerNbr", 1)  # type: ignore[arg-type]
    assert not parser.paused and parser.close() == []
    # Without pause_for_encoder, one call gives everything, as it always did.
    unpaused = MessageParser(flat_records=SCAN)
    items = unpaused.feed(body)
    assert [type(item) for item in items] == [EnvelopeField] * 2 + [RawRecord] * len(records) + [
        EnvelopeField
    ]
    assert not unpaused.paused


@pytest.mark.parametrize("size", [4096, WHOLE])
def test_max_events_counts_the_records_of_fused_runs(size: int) -> None:
    records = mailing_records(pieces=30, seed=4)
    body = message_body(records, "first", seed=4)
    fast = fresh_fast_path()
    outcomes, _ = run_pipeline(body, size, fast, Limits(max_events=len(records)))
    assert outcome_count(outcomes) == len(records) and fast.flat > len(records) // 2
    fast = fresh_fast_path()
    with pytest.raises(LimitExceeded, match="max_events_per_message"):
        run_pipeline(body, size, fast, Limits(max_events=len(records) - 1))
    if size == WHOLE:
        assert (fast.flat, fast.run) == (len(records), 0)  # only fused runs were counted


def test_a_message_left_whole_to_python_by_a_feed_of_another_kind() -> None:
    # A feed of containers: every generated piece is the Python path's (a dead letter).
    records = mailing_records(pieces=10, seed=8)
    body = message_body(records, "first", seed=8)
    results = []
    for fast in (fresh_fast_path(), None):
        pipeline = MessagePipeline(
            feed="fused",
            received_at_ms=5,
            shapes=SHAPES,
            kind=RecordKind.CONTAINER,
            limits=Limits(max_string_length=MAX_STRING),
            fast_path=fast,  # type: ignore[arg-type]
        )
        outcomes = pipeline.feed(body) + pipeline.finish()
        results.append(per_record(outcomes))
    assert results[0] == results[1]
    assert any(outcome[0] == "dead" for outcome in results[0][0])


@pytest.mark.parametrize("size", [4096, WHOLE])
def test_a_record_too_large_after_fused_runs_is_reported_with_its_index(size: int) -> None:
    records = mailing_records(pieces=20, seed=6)
    at = len(records) - 3
    records.insert(at, json.dumps({**PIECE, "note": "x" * 3000}).encode())
    body = message_body(records, "first", seed=6)
    limits = Limits(max_record_bytes=2000)
    errors = []
    for fast in (fresh_fast_path(), None):
        with pytest.raises(RecordTooLarge) as raised:
            run_pipeline(body, size, fast, limits)
        errors.append(str(raised.value))
        if fast is not None and size == WHOLE:
            assert fast.flat == at  # the run before it was encoded where it lay
    assert errors[0] == errors[1] == (f"record {at} of events is larger than max_record_bytes=2000")
