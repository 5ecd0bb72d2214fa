"""``MessageContext.encode_run`` is ``encode_many`` up to the first record it leaves.

The run must hold exactly the (kind, key, Avro body) ``encode_many`` gives for the records
before the first one it returns None for, stop there, and tally kinds and campaigns as
those results do; a mailPhase not yet cached is asked of Python, as ``encode_many`` asks.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

import consumer.core.fastpath
from consumer.core.campaigns import CampaignRule
from consumer.core.enrich import Provenance
from consumer.core.fastpath import KINDS, ScanFastPath
from consumer.ingest.routing import scan_topics
from consumer.service import record_shapes
from consumer.simulator.generate import MailingSpec, generate_records
from producer.topics import TopicTable
from tests.samples import LDE, LDE_JSON, PIECE, PIECE_JSON

NATIVE = pytest.importorskip("ivmtr_native")

SHAPES = record_shapes()
SCHEMAS = {kind: topic.schema for kind, topic in scan_topics(TopicTable.build()).items()}
MAX_STRING = 100
FAST = ScanFastPath.build(NATIVE, SHAPES, SCHEMAS, max_string_length=MAX_STRING)
PROVENANCE = Provenance(
    feed="er", msg_grp_id="G-2", msg_ser_nbr=11, received_at_ms=1_700_000_000_456, campaign="feed"
)
RULES = (
    CampaignRule(
        "by-serial", mailer_ids=frozenset({"902345678"}), serial_ranges=((52_900, 52_972),)
    ),
    CampaignRule("by-stid", stids=frozenset({"040", "300"})),
    CampaignRule("by-tray", mailer_ids=frozenset({"123456"})),
)
# Records the fast path leaves to the Python path, each for another reason.
LEFT = [
    b'{"not": "a scan"}',
    orjson.dumps({**PIECE, "routing": {"nested": True}}),
    orjson.dumps({**PIECE, "scanDatetime": "22/01/2016"}),
    orjson.dumps({**PIECE, "scanEventCode": "12"}),
    b'{"imb": "1", "imb": "2"}',
]


def mailing_records(pieces: int, seed: int) -> list[bytes]:
    spec = MailingSpec(pieces=pieces, seed=seed, bundles=True, flats_share=0.5)
    return [orjson.dumps(record) for record in generate_records(spec)]


RECORDS = [*mailing_records(pieces=80, seed=6), PIECE_JSON, LDE_JSON, orjson.dumps(LDE)]


def expected(
    many: list[Any],
) -> tuple[int, list[tuple[int, str, bytes]], list[int], dict[str, tuple[int, int]]]:
    """What encode_run must give, from encode_many's results: taken, records, tallies."""
    taken = next((at for at, result in enumerate(many) if result is None), len(many))
    records = [(kind, key, body) for kind, key, body, _, _ in many[:taken]]
    kinds = Counter(kind for kind, _, _ in records)
    campaigns: dict[str, list[int]] = {}
    for _, _, _, logical_delivery, campaign in many[:taken]:
        if campaign is not None:
            tally = campaigns.setdefault(campaign, [0, 0])
            tally[0] += 1
            tally[1] += logical_delivery
    counts = {campaign: (events, lde) for campaign, (events, lde) in campaigns.items()}
    return taken, records, [kinds[kind] for kind in range(4)], counts


def check_run(context: Any, raws: list[bytes], indexes: list[int], many: list[Any]) -> int:
    run, taken = context.encode_run(raws, indexes)
    want_taken, records, kinds, campaigns = expected(many)
    assert taken == want_taken == len(run)
    assert run.records() == records
    assert run.kind_counts() == kinds
    assert run.campaign_counts() == campaigns
    return taken


@pytest.mark.parametrize("rules", [(), RULES])
@pytest.mark.parametrize("campaign", [None, "feed"])
def test_a_clean_message_is_taken_whole(
    rules: tuple[CampaignRule, ...], campaign: str | None
) -> None:
    provenance = Provenance(
        feed="er", msg_grp_id="G", msg_ser_nbr=1, received_at_ms=5, campaign=campaign
    )
    context = FAST.message(provenance, kind=None, rules=rules)
    indexes = list(range(7, 7 + len(RECORDS)))
    many = context.encode_many(RECORDS, indexes)
    assert None not in many
    assert check_run(context, RECORDS, indexes, many) == len(RECORDS)
    run, _ = context.encode_run(RECORDS, indexes)
    assert all(run.kind_counts())  # every kind is in the mailing
    if rules or campaign:
        counts = run.campaign_counts()
        assert counts and sum(lde for _, lde in counts.values()) >= 2  # the LDE samples
    else:
        assert run.campaign_counts() == {}


@pytest.mark.parametrize("seed", range(8))
def test_a_run_stops_at_the_first_record_encode_many_leaves(seed: int) -> None:
    rng = random.Random(seed)
    raws = list(RECORDS)
    for _ in range(rng.randint(1, 4)):
        raws.insert(rng.randint(0, len(raws)), rng.choice(LEFT))
    indexes = [rng.randint(0, 10**6) for _ in raws]
    context = FAST.message(PROVENANCE, kind=None, rules=RULES)
    many = context.encode_many(raws, indexes)
    # From every start: the Python path takes raws[taken], then the next run starts after it.
    start = 0
    runs = 0
    while start < len(raws):
        taken = check_run(context, raws[start:], indexes[start:], many[start:])
        runs += 1
        if start + taken < len(raws):
            assert many[start + taken] is None
        start += taken + 1
    assert runs >= 2


@pytest.mark.parametrize("at", [0, 1, 5])
def test_a_record_of_the_python_path_ends_the_run_where_it_is(at: int) -> None:
    context = FAST.message(PROVENANCE, kind=None, rules=RULES)
    raws = [*RECORDS[:at], LEFT[0], *RECORDS[at:]]
    run, taken = context.encode_run(raws, list(range(len(raws))))
    assert taken == len(run) == at
    assert raws[taken] == LEFT[0]


def test_a_feed_of_one_kind_stops_at_a_record_of_another() -> None:
    raws = RECORDS[:40]
    context = FAST.message(PROVENANCE, kind=KINDS[0], rules=RULES)
    many = context.encode_many(raws, list(range(len(raws))))
    assert None in many[1:]
    taken = check_run(context, raws, list(range(len(raws))), many)
    assert taken < len(raws)


def test_nothing_to_take() -> None:
    context = FAST.message(PROVENANCE, kind=None, rules=RULES)
    run, taken = context.encode_run([], [])
    assert (taken, len(run), run.records()) == (0, 0, [])
    assert run.kind_counts() == [0, 0, 0, 0]
    assert run.campaign_counts() == {}
    with pytest.raises(ValueError, match="differ in length"):
        context.encode_run([PIECE_JSON], [])


def phase_records() -> list[bytes]:
    # Mail phases no encoder has seen: each is asked of Python holding the GIL.
    bases = [orjson.loads(raw) for raw in RECORDS[:60]]
    return [
        orjson.dumps({**base, "mailPhase": f"Phase {1 + number % 4}a - Run {number}"})
        for number, base in enumerate(bases)
    ]


def test_unseen_mail_phases_are_asked_of_python_and_the_run_goes_on() -> None:
    raws = phase_records()
    indexes = list(range(len(raws)))
    fresh = ScanFastPath.build(NATIVE, SHAPES, SCHEMAS, max_string_length=MAX_STRING)
    many = FAST.message(PROVENANCE, kind=None, rules=RULES).encode_many(raws, indexes)
    assert None not in many
    context = fresh.message(PROVENANCE, kind=None, rules=RULES)
    assert check_run(context, raws, indexes, many) == len(raws)
    # A first record that needs Python, and one after the other.
    pieces = [
        orjson.dumps({**PIECE, "mailPhase": f"Phase 3c - First {n}", "pieceId": str(n)})
        for n in range(3)
    ]
    fresh = ScanFastPath.build(NATIVE, SHAPES, SCHEMAS, max_string_length=MAX_STRING)
    context = fresh.message(PROVENANCE, kind=None, rules=RULES)
    first = FAST.message(PROVENANCE, kind=None, rules=RULES).encode_many(pieces, [0, 1, 2])
    assert check_run(context, pieces, [0, 1, 2], first) == 3
    # And with a record for the Python path after them.
    fresh = ScanFastPath.build(NATIVE, SHAPES, SCHEMAS, max_string_length=MAX_STRING)
    context = fresh.message(PROVENANCE, kind=None, rules=RULES)
    raws = [*raws[:30], LEFT[3], *raws[30:]]
    indexes = list(range(len(raws)))
    assert check_run(context, raws, indexes, [*many[:30], None, *many[30:]]) == 30


class Refused(Exception):
    """What the mail phase function of ``refusing_context`` raises."""


def refusing_context(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A message's encoder whose mail phase function raises Refused for every phase."""

    def refuse(raw: str) -> str | None:
        raise Refused(raw)

    monkeypatch.setattr(consumer.core.fastpath, "normalise_mail_phase", refuse)
    refusing = ScanFastPath.build(NATIVE, SHAPES, SCHEMAS, max_string_length=MAX_STRING)
    return refusing.message(PROVENANCE, kind=None, rules=RULES)


def test_an_exception_of_the_mail_phase_function_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = refusing_context(monkeypatch)
    raws = phase_records()
    indexes = list(range(len(raws)))
    with pytest.raises(Refused) as many_raised:
        context.encode_many(raws, indexes)
    # The first record whose mail phase is looked up (a record schema without the field,
    # a handling unit's, never looks it up).
    assert str(many_raised.value).startswith("Phase ")
    with pytest.raises(Refused) as run_raised:
        context.encode_run(raws, indexes)
    assert str(run_raised.value) == str(many_raised.value)
    # A piece without a mail phase needs no call: it is encoded and the next one raises.
    bare = orjson.dumps({key: value for key, value in PIECE.items() if key != "mailPhase"})
    assert context.encode_run([bare], [0])[1] == 1
    with pytest.raises(Refused) as run_raised:
        context.encode_run([bare, *raws], [0, *indexes])
    assert str(run_raised.value) == str(many_raised.value)
