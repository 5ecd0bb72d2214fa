"""The IV-MTR simulator: deterministic, consistent IMbs, realistic journeys, valid envelopes."""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import islice

import pytest

from consumer.simulator import (
    DEFAULT_START,
    FACILITIES,
    LPO_OPCODES,
    Facility,
    MailingSpec,
    bundle_records,
    count_records,
    facility_by_locale_key,
    facility_for_zip,
    generate_records,
    message_group,
    message_stream,
    new_message_group_id,
    parse_scan_datetime,
    piece_records,
    record_kind,
)

Record = dict[str, object]

FIRST_CLASS_STIDS = {"270", "310", "314", "220", "040", "300"}
STANDARD_STIDS = {"271", "311", "042"}
WITHOUT_IV_MTR = {"300"}
PHASE_ORDER = [
    "Phase 0 - Origin Processing Cancellation of Postage",
    "Phase 1a - Origin Primary Processing",
    "Phase 1b - Origin Secondary Processing",
    "Phase 2c - Destination Primary Processing",
    "Phase 3a - Destination Secondary Processing",
    "Phase 3c - Destination Sequenced Carrier Sortation",
]
DESTINATION_PHASES = set(PHASE_ORDER[3:])
SCAN_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
DST_END_2026 = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)  # US DST ends 2026-11-01 02:00 local
DST_START_2027 = datetime(2027, 3, 13, 15, 0, tzinfo=UTC)  # US DST starts 2027-03-14


@cache
def mailing(
    pieces: int = 1000,
    seed: int = 0,
    *,
    bundles: bool = False,
    trays: bool = True,
    edoc_share: float = 0.7,
    start: datetime = DEFAULT_START,
) -> tuple[Record, ...]:
    spec = MailingSpec(
        pieces=pieces,
        seed=seed,
        bundles=bundles,
        trays=trays,
        edoc_share=edoc_share,
        start=start,
    )
    return tuple(generate_records(spec))


def big_mailing() -> tuple[Record, ...]:
    """Big enough for direct trays, bundles, rare values; still well under a second."""
    return mailing(5000, 3, bundles=True)


def s(record: Record, key: str) -> str:
    value = record[key]
    assert isinstance(value, str), (key, value)
    return value


def instant(record: Record) -> datetime:
    # Normalise the occasional "T" separator, then read the offset with the stdlib parser.
    return datetime.fromisoformat(s(record, "scanDatetime").replace("T", " "))


def pieces_of(records: tuple[Record, ...]) -> dict[str, list[Record]]:
    """Piece records grouped by IMb, in stream order."""
    journeys: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record_kind(record) == "piece":
            journeys[s(record, "imb")].append(record)
    return journeys


def is_enriched(record: Record) -> bool:
    return bool(record.get("edocJobId")) or bool(record.get("edocMailingGroupId"))


def scan_facility(record: Record) -> Facility:
    found = facility_by_locale_key(s(record, "scanLocaleKey"))
    if found is not None:
        return found
    assert record["scanEventCode"] == "517"
    return facility_for_zip(s(record, "scanFacilityZip"))


# --- determinism -------------------------------------------------------------------------------


def test_same_spec_gives_the_same_records() -> None:
    first = list(generate_records(MailingSpec(pieces=200, seed=7, bundles=True)))
    again = list(generate_records(MailingSpec(pieces=200, seed=7, bundles=True)))
    other = list(generate_records(MailingSpec(pieces=200, seed=8, bundles=True)))
    assert first == again
    assert first != other
    assert message_group(first, message_size=50) == message_group(again, message_size=50)


# --- IMb -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("records", [mailing, big_mailing], ids=["default", "bundles"])
def test_imb_splits_into_its_fields(records: object) -> None:
    assert callable(records)
    with_imb = [r for r in records() if record_kind(r) in ("piece", "bundle")]
    assert with_imb
    for record in with_imb:
        imb, mid, serial = s(record, "imb"), s(record, "imbMid"), s(record, "imbSerialNumber")
        assert imb.isdigit() and len(imb) in (20, 25, 29, 31)
        assert s(record, "imbTrackingCode") == imb[:20]
        assert s(record, "imbRoutingCode") == imb[20:]
        assert s(record, "routingCodeImbMatchingPortion") == imb[20:]
        assert imb[1] in "01234"  # Barcode ID: second digit 0-4
        assert s(record, "imbStid") == imb[2:5]
        assert (len(mid) == 9 and mid[0] == "9") or (len(mid) == 6 and mid[0] != "9")
        assert len(serial) == 15 - len(mid)
        assert imb[5:20] == mid + serial


def test_imb_values_are_realistic() -> None:
    journeys = pieces_of(big_mailing())
    first = [records[0] for records in journeys.values()]
    stids = Counter(s(r, "imbStid") for r in first)
    assert set(stids) <= FIRST_CLASS_STIDS | STANDARD_STIDS
    assert sum(n for stid, n in stids.items() if stid in WITHOUT_IV_MTR) < 0.05 * len(first)
    routing_lengths = Counter(len(s(r, "imbRoutingCode")) for r in first)
    assert set(routing_lengths) <= {0, 5, 9, 11}
    assert routing_lengths[11] > 0.85 * len(first)
    barcode_ids = Counter(s(r, "imb")[:2] for r in first)
    assert set(barcode_ids) <= {"00", "10", "20", "30", "40", "50"}  # flats: OEL level first
    assert barcode_ids["00"] > 0.8 * len(first)
    for record in first:
        if is_enriched(record):
            shape = record["mailShapeDescription"]
            assert (s(record, "imb")[:2] == "00") == (shape == "Letter")
            stid_class = "First Class" if s(record, "imbStid") in FIRST_CLASS_STIDS else "Standard"
            assert record["mailClassDescription"] == stid_class
    assert {r.get("mailClassDescription") for r in first} >= {"First Class", "Standard"}


def test_serials_are_unique_within_a_mailing() -> None:
    records = big_mailing()
    tracking_by_serial: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if record_kind(record) == "piece":
            tracking_by_serial[s(record, "imbSerialNumber")].add(s(record, "imbTrackingCode"))
    assert all(len(codes) == 1 for codes in tracking_by_serial.values())
    # Nearly every piece shows up (a piece could in principle lose every scan).
    assert len(tracking_by_serial) > 0.98 * 5000


# --- journeys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("records", [mailing, big_mailing], ids=["default", "bundles"])
def test_journey_times_strictly_increase(records: object) -> None:
    assert callable(records)
    for journey in pieces_of(records()).values():
        instants = [instant(r) for r in journey]
        assert instants == sorted(instants)
        assert len(set(instants)) == len(instants), "strictly increasing"
        actual_phases = [r["mailPhase"] for r in journey if r["handlingEventType"] == "A"]
        ranks = [PHASE_ORDER.index(str(p)) for p in actual_phases]
        assert ranks == sorted(ranks)


def test_journeys_go_through_realistic_plants_and_machines() -> None:
    records = big_mailing()
    origin_phases = set(PHASE_ORDER[:3])
    origins = {s(r, "scanLocaleKey") for r in records if r.get("mailPhase") in origin_phases}
    assert len(origins) == 1, "one mailing, one origin plant"
    opcodes = Counter(s(r, "scanEventCode") for r in records if record_kind(r) == "piece")
    for code in ("004", "891", "911", "918", "919", "517"):
        assert opcodes[code] > 0, code
    for record in records:
        if record_kind(record) != "piece":
            continue
        if record["scanEventCode"] == "004":
            assert record["mailPhase"] == "Phase 0 - Origin Processing Cancellation of Postage"
        if record["scanEventCode"] in ("918", "919"):
            assert record["mailPhase"] == "Phase 3c - Destination Sequenced Carrier Sortation"
            assert re.fullmatch(r"DBCS-\d{3}", s(record, "machineName"))
            assert s(record, "machineName").endswith("-" + s(record, "machineId"))
        if record["mailPhase"] in DESTINATION_PHASES and s(record, "imbRoutingCode"):
            # The delivering plant serves the piece's destination ZIP.
            assert scan_facility(record) is facility_for_zip(s(record, "imbRoutingCode"))
        if record["handlingEventType"] == "A":
            assert record["handlingEventTypeDescription"] == "Actual"
        if record["handlingEventType"] == "AA":
            assert record["handlingEventTypeDescription"] == "Assumed Actual"


@pytest.mark.parametrize("records", [mailing, big_mailing], ids=["default", "bundles"])
def test_logical_delivery_events(records: object) -> None:
    assert callable(records)
    journeys = pieces_of(records())
    delivered = 0
    for journey in journeys.values():
        ldes = [r for r in journey if r["scanEventCode"] == "517"]
        if not ldes:
            continue
        delivered += 1
        assert len(ldes) == 1 and ldes[0] is journey[-1], "517 comes last, once"
        lde = ldes[0]
        assert lde["handlingEventType"] == "L"
        assert lde["handlingEventTypeDescription"] == "Logical"
        assert lde["mailPhase"] == "Phase 4c - Delivery"
        for key in ("scanFacilityName", "scanFacilityCity", "scanFacilityState", "scanLocaleKey"):
            assert lde[key] == ""
        routing = s(lde, "imbRoutingCode")
        assert len(routing) >= 5 and lde["scanFacilityZip"] == routing[:5]
        assert is_enriched(lde), "logical events need eDoc"
        dest = facility_for_zip(routing)
        lpo = [
            s(r, "scanEventCode")
            for r in journey[:-1]
            if r["scanEventCode"] in LPO_OPCODES and r["scanLocaleKey"] == dest.locale_key
        ]
        assert lde["ldeInventoryMethod"] == f"LPO {lpo[-1]}"
        assert lde["ldeDeliveryMode"] in {"On-Street", "PO Box", "Delivery Unit", "Caller Service"}
        trigger = lde["ldeTriggerMethod"]
        if lde["ldeDeliveryMode"] == "PO Box":
            assert trigger == "PO Box Distribution Complete"
        else:
            assert trigger in {"ZIP+4 Entry", "Post Office Opening Time"}
        if journey[0].get("mailShapeDescription") == "Letter":
            assert lde["ldeInventoryMethod"] in {"LPO 918", "LPO 919"}
    # Most enriched, routable pieces are delivered; a few have no 517 yet.
    candidates = [
        j for j in journeys.values() if is_enriched(j[0]) and len(s(j[0], "imbRoutingCode")) >= 5
    ]
    assert 0.8 * len(candidates) < delivered < len(candidates)


# --- time stamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [DEFAULT_START, DST_END_2026, DST_START_2027])
def test_scan_datetimes_are_facility_local_with_the_right_offset(start: datetime) -> None:
    records = mailing(1500, 11, bundles=True, start=start)
    offsets_by_zone: dict[str, set[timedelta | None]] = defaultdict(set)
    separators = Counter[str]()
    for record in records:
        text = s(record, "scanDatetime")
        assert SCAN_DATETIME.match(text), text
        separators[text[10]] += 1
        local = instant(record)
        zone = scan_facility(record).zone
        assert local.utcoffset() == local.astimezone(zone).utcoffset(), (text, zone)
        offsets_by_zone[zone.key].add(local.utcoffset())
        assert parse_scan_datetime(text) == local
    assert 0 < separators["T"] < 0.05 * len(records), "mostly space, occasionally T"
    if start != DEFAULT_START:
        assert any(len(offsets) == 2 for offsets in offsets_by_zone.values()), "DST switch seen"


def test_parse_scan_datetime_is_lenient() -> None:
    expected = datetime(2016, 12, 13, 10, 15, 10, tzinfo=UTC)
    for text in (
        "2016-12-13 05:15:10-05:00",
        "2016-12-13T05:15:10-05:00",
        "2016-12-13 05:15:10-0500",
        "2016-12-13T05:15:10.000-05:00",
    ):
        assert parse_scan_datetime(text) == expected
    with pytest.raises(ValueError):
        parse_scan_datetime("2016-12-13 05:15:10")


# --- raw vs enriched, assumed events -----------------------------------------------------------


@pytest.mark.parametrize("share", [0.0, 0.3, 0.7, 1.0])
def test_raw_and_enriched_shares(share: float) -> None:
    journeys = pieces_of(mailing(800, 5, edoc_share=share))
    enriched = [imb for imb, j in journeys.items() if is_enriched(j[0])]
    assert abs(len(enriched) / len(journeys) - share) < 0.07
    raw_styles = Counter[str]()
    piece_ids: set[str] = set()
    for journey in journeys.values():
        assert len({is_enriched(r) for r in journey}) == 1, "a piece is raw or enriched throughout"
        for record in journey:
            if is_enriched(record):
                piece_id = s(record, "pieceId")
                assert str(uuid.UUID(piece_id)) == piece_id
                piece_ids.add(piece_id)
                assert len(s(record, "edocJobId")) <= 8
                assert len(s(record, "edocMailingGroupId")) <= 12
                assert record["mailShapeDescription"] in {"Letter", "Flat"}
                assert record["expectedDeliveryDate"]
            else:
                assert "pieceId" not in record and "mailClassDescription" not in record
                raw_styles["empty" if "edocJobId" in record else "absent"] += 1
                assert record.get("edocJobId", "") == record.get("edocMailingGroupId", "") == ""
                assert record["handlingEventType"] == "A", "raw pieces get actual scans only"
    enriched_records = sum(1 for j in journeys.values() for r in j if is_enriched(r))
    assert len(piece_ids) == enriched_records, "pieceId is unique per scan record"
    if 0 < share < 1:
        assert raw_styles["empty"] > raw_styles["absent"] > 0


def test_assumed_events_only_for_enriched_pieces_in_scanned_parents() -> None:
    records = big_mailing()
    parents = {
        (instant(r), s(r, "scanLocaleKey"), s(r, "scanEventCode"))
        for r in records
        if record_kind(r) != "piece"
    }
    assumed = [r for r in records if r.get("handlingEventType") == "AA"]
    assert assumed
    for record in assumed:
        assert is_enriched(record) and record["pieceId"]
        assert (instant(record), record["scanLocaleKey"], record["scanEventCode"]) in parents


def test_no_trays_means_no_handling_unit_records_and_no_assumed_events() -> None:
    records = mailing(600, 2, trays=False)
    assert {record_kind(r) for r in records} == {"piece"}
    assert {r["handlingEventType"] for r in records} == {"A", "L"}


# --- trays, containers, bundles -----------------------------------------------------------------


def test_tray_records_are_shaped_like_iv_mtr_handling_units() -> None:
    trays = [r for r in big_mailing() if record_kind(r) == "handling_unit"]
    assert trays
    for tray in trays:
        imtb, mid, serial = s(tray, "imtb"), s(tray, "imtbMid"), s(tray, "imtbSerialNumber")
        assert imtb.isdigit() and len(imtb) == 24
        assert imtb[:5] == tray["imtbDestinationZip"]
        assert imtb[5:8] == tray["imtbCin"]
        assert tray["imtbProcessingCode"] in {"1", "7"}
        assert imtb[8:11] == s(tray, "imtbProcessingCode").zfill(3)
        assert imtb[11:] == mid + serial and len(serial) <= 8
        assert tray["scanState"] in {"Enroute Arrive", "Enroute Depart"}
        assert tray["scannerType"] in {"SV", "IMDAS"}
        assert tray["scanEventCode"] in {"873", ""}
        assert tray["handlingEventType"] == "A"
        for key in ("pieceCount", "bundleCount"):
            assert type(tray[key]) is int
        assert s(tray, "edocParentContainerImcb").startswith("99M")
    assert any(t["scanEventCode"] == "" for t in trays)
    assert {t["scanState"] for t in trays} == {"Enroute Arrive", "Enroute Depart"}


def test_container_records_are_shaped_like_iv_mtr_containers() -> None:
    containers = [r for r in big_mailing() if record_kind(r) == "container"]
    assert containers
    for container in containers:
        imcb, mid, serial = (s(container, k) for k in ("imcb", "imcbMid", "imcbSerialNumber"))
        assert len(imcb) == 21 and imcb == f"99M{mid}{serial}"
        assert len(serial) == (12 if len(mid) == 6 else 9)
        assert container["scanState"] in {"Entered at USPS", "Enroute Arrive", "Enroute Depart"}
        assert container["scannerType"] in {"SV", "IMDAS"}
        for key in ("trayCount", "pieceCount", "bundleCount"):
            assert type(container[key]) is int
        assert isinstance(container["trayCount"], int) and container["trayCount"] > 0
    assert "Entered at USPS" in {c["scanState"] for c in containers}


def test_bundle_records() -> None:
    records = big_mailing()
    bundles = [r for r in records if record_kind(r) == "bundle"]
    assert bundles
    tracking_codes = {s(r, "imbTrackingCode") for r in records if record_kind(r) == "piece"}
    for bundle in bundles:
        assert bundle["scanEventCode"] == "146"
        assert 0 < len(s(bundle, "deviceId")) <= 20
        assert re.fullmatch(r"\d{6}", s(bundle, "edocPackageId"))
        assert bundle["mailShapeDescription"] == "Flat"
        assert "mailPhase" not in bundle and "pieceId" not in bundle
        assert bundle["imbTrackingCode"] in tracking_codes  # the top piece of the bundle
    lpo = Counter(r["ldeInventoryMethod"] for r in records if "ldeInventoryMethod" in r)
    assert lpo["LPO 146"] > 0 and lpo["LPO 538"] > 0
    # Without bundles, no 146 at all.
    assert not any(r.get("scanEventCode") == "146" for r in mailing())
    assert list(bundle_records(MailingSpec(pieces=300))) == []


def test_kind_filters_match_the_full_stream() -> None:
    spec = MailingSpec(pieces=150, seed=4)
    expected = [r for r in generate_records(spec) if record_kind(r) == "piece"]
    assert list(piece_records(spec)) == expected


# --- envelopes ----------------------------------------------------------------------------------


def test_message_group_envelopes() -> None:
    records = list(mailing()[:2500])
    envelopes = message_group(records, message_size=1000, seed=3)
    assert [e["msgSerNbr"] for e in envelopes] == [1, 2, 3]
    assert {e["totMsgCnt"] for e in envelopes} == {3}
    assert {e["totRecCnt"] for e in envelopes} == {2500}
    assert [e["recCnt"] for e in envelopes] == [1000, 1000, 500]
    events: list[object] = []
    for envelope in envelopes:
        assert isinstance(envelope["events"], list)
        assert envelope["recCnt"] == len(envelope["events"])
        events.extend(envelope["events"])
    assert events == records
    group_ids = {e["msgGrpId"] for e in envelopes}
    assert len(group_ids) == 1
    group_id = str(group_ids.pop())
    assert re.fullmatch(r"\d{13}[0-9A-Z]{7}", group_id)
    assert message_group(records, message_size=1000, seed=3)[0]["msgGrpId"] == group_id
    assert message_group(records, message_size=1000, seed=4)[0]["msgGrpId"] != group_id
    # The group is cut after its latest scan, not at wall-clock time.
    latest = max(instant(r) for r in records)
    cut = datetime.fromtimestamp(int(group_id[:13]) / 1000, tz=UTC)
    assert latest < cut < latest + timedelta(hours=1)


def test_message_group_edge_cases() -> None:
    [empty] = message_group([], message_size=10, msg_grp_id="G1")
    assert empty == {
        "msgGrpId": "G1",
        "msgSerNbr": 1,
        "totMsgCnt": 1,
        "recCnt": 0,
        "totRecCnt": 0,
        "events": [],
    }
    one = message_group(mailing()[:10], message_size=10)
    assert len(one) == 1 and one[0]["recCnt"] == 10
    with pytest.raises(ValueError):
        message_group([], message_size=0)


def test_new_message_group_id_looks_like_usps() -> None:
    now = datetime(2025, 1, 13, 17, 1, 58, 179000, tzinfo=UTC)
    group_id = new_message_group_id(random.Random(1), now)
    assert len(group_id) == 20
    assert group_id.startswith("1736787718179")
    assert group_id == new_message_group_id(random.Random(1), now)


# --- size and laziness --------------------------------------------------------------------------


def test_generation_is_lazy() -> None:
    stream = generate_records(MailingSpec(pieces=56_000, seed=9))  # about 300,000 records
    assert isinstance(stream, Iterator)
    assert sum(1 for _ in islice(stream, 20_000)) == 20_000


@pytest.mark.parametrize(
    "spec",
    [
        MailingSpec(pieces=0),
        MailingSpec(pieces=1000),
        MailingSpec(pieces=3000, seed=5, bundles=True, flats_share=0.5),
        MailingSpec(pieces=800, seed=2, trays=False),
        MailingSpec(pieces=700, seed=6, edoc_share=0.0),
        MailingSpec(pieces=900, seed=11, edoc_share=1.0, bundles=True, flats_share=1.0),
        MailingSpec(pieces=400, seed=8, mailer_ids=("902345678", "123456", "987654321")),
    ],
    ids=["empty", "default", "bundles", "no-trays", "raw", "all-flats", "three-mids"],
)
def test_count_records_knows_the_count_without_generating(spec: MailingSpec) -> None:
    assert count_records(spec) == sum(1 for _ in generate_records(spec))


def test_message_stream_is_lazy_and_states_the_totals_up_front() -> None:
    drawn: list[int] = []

    def records() -> Iterator[Record]:
        for n in range(25):
            drawn.append(n)
            yield {"n": n}

    stream = message_stream(records(), total_records=25, message_size=10, msg_grp_id="G")
    first = next(stream)
    assert len(drawn) == 10, "only the first message's records were drawn"
    assert (first["msgSerNbr"], first["totMsgCnt"], first["recCnt"]) == (1, 3, 10)
    rest = list(stream)
    assert [(m["msgSerNbr"], m["recCnt"], m["totRecCnt"]) for m in rest] == [
        (2, 10, 25),
        (3, 5, 25),
    ]
    assert [e for m in (first, *rest) for e in m["events"]] == [{"n": n} for n in range(25)]  # type: ignore[attr-defined]
    events = [{"n": n} for n in range(25)]
    assert message_group(events, message_size=10, msg_grp_id="G") == [first, *rest]


@pytest.mark.parametrize(("actual", "match"), [(24, "only 24 of the 25"), (26, "more than the 25")])
def test_message_stream_refuses_records_that_belie_the_totals(actual: int, match: str) -> None:
    records = ({"n": n} for n in range(actual))
    with pytest.raises(ValueError, match=match):
        list(message_stream(records, total_records=25, message_size=10, msg_grp_id="G"))


def test_a_thousand_piece_mailing() -> None:
    kinds = Counter(record_kind(r) for r in mailing())
    assert kinds["container"] > 0 and kinds["handling_unit"] > 0 and kinds["bundle"] == 0
    assert 4000 < kinds["piece"] < 12000


# --- facilities and spec -------------------------------------------------------------------------


def test_facility_table() -> None:
    assert 20 <= len(FACILITIES) <= 35
    assert len({f.locale_key for f in FACILITIES}) == len(FACILITIES)
    assert len({f.tz for f in FACILITIES}) >= 5
    seen: set[str] = set()
    for facility in FACILITIES:
        assert re.fullmatch(r"\d{6}", facility.locale_key)
        assert re.fullmatch(r"\d{5}", facility.zip5)
        assert re.fullmatch(r"[A-Z]{2}", facility.state)
        assert facility.zone.key == facility.tz
        assert not seen & set(facility.zip3s), "service areas do not overlap"
        seen |= set(facility.zip3s)
        assert facility_for_zip(facility.zip3s[0] + "01") is facility
        assert facility_by_locale_key(facility.locale_key) is facility
    assert facility_for_zip("99501") in FACILITIES  # outside the table: nearest area
    assert facility_by_locale_key("") is None
    with pytest.raises(ValueError):
        facility_for_zip("ABCDE")


@pytest.mark.parametrize(
    "bad",
    [
        {"mailer_ids": ("12345",)},
        {"mailer_ids": ("912345",)},
        {"mailer_ids": ("812345678",)},
        {"mailer_ids": ()},
        {"mailer_ids": ("123456", "123456")},
        {"start": datetime(2026, 11, 2, 14, 0)},
        {"edoc_share": 1.5},
        {"pieces": -1},
    ],
)
def test_spec_rejects_impossible_mailings(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MailingSpec(**bad)  # type: ignore[arg-type]
