"""Play USPS IV-MTR for one mailing: plan it, move its pieces through the network, emit the records.

Everything here is pure and deterministic: two random streams seeded from ``spec.seed`` drive
every choice (UUIDs included) and no wall clock is read, so the same `MailingSpec` always yields
the same records. The *fates* stream decides what happens (which scans each container, tray,
bundle and piece gets); the main stream decides the plan and everything else (times, machines,
identifiers). Because fates draw from their own stream, `count_records` can replay them alone,
a few draws per piece, and know a mailing's record count without generating its records: an
IV-MTR message group states ``totRecCnt`` in its first message.

How a mailing is modelled (ivmtr.md §1, §4; imb.md §1.1, §4):

* One eDoc job per mailer ID. Its pieces get sequential serials in presort order.
* Pieces are sorted by destination plant. A plant with enough pieces gets its own direct trays,
  which travel unopened from the origin plant to the destination; the rest go into mixed trays
  that the origin plant opens and sorts (origin cancellation / primary / secondary scans).
* Trays sit on pallets (containers). Flats sit in bundles inside their trays.
* At the destination a letter goes through incoming primary, maybe secondary, then the two DPS
  passes 918/919 in the night window, then the logical delivery event 517 the next morning.
  Flats go through AFSM and FSS (538), or stay in their carrier-route bundle (LPO 146).
* Scans go missing at realistic rates; some pieces have no 517 yet.

Records are generated lazily, one container at a time: first the container's own records, then
each tray's records together with its bundles' and pieces' records, sorted by scan time. So each
object's records come in scan-time order, the stream looks like a feed that interleaves objects,
and memory holds one container's fates and one tray's records, whatever the mailing's size.

Opcodes other than 004, 146, 517, 538, 918 and 919 (confirmed in ivmtr.md §4.2) are background
knowledge (LOW confidence), as are the tray label layout, CINs and the 873 handling-unit opcode.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import accumulate, islice
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from consumer.core.records import RecordKind
from consumer.simulator.facilities import FACILITIES, Facility

__all__ = [
    "DEFAULT_START",
    "HANDLING_EVENT_DESCRIPTIONS",
    "LPO_OPCODES",
    "MailingSpec",
    "bundle_records",
    "container_records",
    "count_records",
    "format_scan_datetime",
    "generate_records",
    "handling_unit_records",
    "message_group",
    "message_stream",
    "new_message_group_id",
    "parse_scan_datetime",
    "piece_records",
    "record_kind",
]

_T = TypeVar("_T")

DEFAULT_START = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)

HANDLING_EVENT_DESCRIPTIONS: dict[str, str] = {
    "A": "Actual",
    "AA": "Assumed Actual",
    "L": "Logical",
    "AL": "Assumed Logical",
}

# Last processing operations that put a piece into logical-delivery inventory (ivmtr.md §1.1).
LPO_OPCODES = frozenset({"918", "919", "538", "146"})
LOGICAL_DELIVERY = "517"
BUNDLE_SCAN = "146"
HANDLING_UNIT_SCAN = "873"  # S1's sample opcode for container/tray scans

PHASE_0 = "Phase 0 - Origin Processing Cancellation of Postage"
PHASE_1 = "Phase 1 - Origin Processing"
PHASE_1A = "Phase 1a - Origin Primary Processing"
PHASE_1B = "Phase 1b - Origin Secondary Processing"
PHASE_2 = "Phase 2 - Destination Processing"
PHASE_2C = "Phase 2c - Destination Primary Processing"
PHASE_3A = "Phase 3a - Destination Secondary Processing"
PHASE_3C = "Phase 3c - Destination Sequenced Carrier Sortation"
PHASE_4C = "Phase 4c - Delivery"

FIRST_CLASS = "First Class"
STANDARD = "Standard"
LETTER = "Letter"
FLAT = "Flat"


class _Op(NamedTuple):
    code: str
    machine: str  # machine type, the prefix of machineName
    phase: str
    machines: int  # how many of these a plant has, for machine numbers


_CANCEL = _Op("004", "AFCS200", PHASE_0, 8)
_LETTER_OUT_PRIMARY = _Op("891", "DBCS", PHASE_1A, 24)
_LETTER_OUT_SECONDARY = _Op("892", "DBCS", PHASE_1B, 24)
_LETTER_IN_PRIMARY = _Op("911", "DBCS", PHASE_2C, 24)
_LETTER_IN_SECONDARY = _Op("912", "DBCS", PHASE_3A, 24)
_DPS_FIRST_PASS = _Op("918", "DBCS", PHASE_3C, 24)
_DPS_SECOND_PASS = _Op("919", "DBCS", PHASE_3C, 24)
_FLAT_OUT_PRIMARY = _Op("461", "AFSM100", PHASE_1A, 6)
_FLAT_IN_PRIMARY = _Op("463", "AFSM100", PHASE_2C, 6)
_FLAT_IN_SECONDARY = _Op("465", "AFSM100", PHASE_3A, 6)
_FSS = _Op("538", "FSS", PHASE_3C, 4)

# STID mix per (mail class, enriched). Only "with IV-MTR" STIDs give tracing data, so they
# dominate; 300 (without) shows up rarely. Full-Service STIDs (270/271/314) need eDoc, so raw
# pieces never carry them.
_STIDS: dict[tuple[str, bool], tuple[tuple[str, int], ...]] = {
    (FIRST_CLASS, True): (
        ("270", 50),
        ("314", 14),
        ("310", 18),
        ("220", 10),
        ("040", 6),
        ("300", 2),
    ),
    (FIRST_CLASS, False): (("310", 62), ("220", 20), ("040", 14), ("300", 4)),
    (STANDARD, True): (("271", 60), ("311", 28), ("042", 12)),
    (STANDARD, False): (("311", 75), ("042", 25)),
}
_ROUTING_LENGTHS = ((11, 93), (9, 4), (5, 2), (0, 1))
# Flats Barcode ID: the first digit carries the OEL presort level (imb.md §1.1).
_FLAT_BI_DIRECT = (("10", 4), ("20", 4), ("30", 2))  # carrier route, 5-digit, 3-digit
_FLAT_BI_MIXED = (("40", 1), ("50", 1))  # ADC, mixed ADC
_CARRIER_ROUTE_BI = "10"
# Content identifier numbers on tray labels, per (class, shape, mixed tray). Illustrative.
_CINS: dict[tuple[str, str, bool], str] = {
    (FIRST_CLASS, LETTER, False): "222",
    (FIRST_CLASS, LETTER, True): "227",
    (FIRST_CLASS, FLAT, False): "322",
    (FIRST_CLASS, FLAT, True): "327",
    (STANDARD, LETTER, False): "522",
    (STANDARD, LETTER, True): "527",
    (STANDARD, FLAT, False): "562",
    (STANDARD, FLAT, True): "567",
}
_LDE_MODES = (("On-Street", 85), ("PO Box", 8), ("Delivery Unit", 5), ("Caller Service", 2))
_REGION_BY_TZ = {
    "America/New_York": 0,
    "America/Detroit": 0,
    "America/Indiana/Indianapolis": 0,
    "America/Chicago": 1,
    "America/Denver": 2,
    "America/Phoenix": 2,
    "America/Los_Angeles": 3,
}

# Presort: a destination needs this many pieces for its own trays (FCM automation tray minimum).
_DIRECT_MIN = {LETTER: 150, FLAT: 40}
_TRAY_CAPACITY = {LETTER: 350, FLAT: 60}
_TRAYS_PER_CONTAINER = 30

# Probability that a scan happens at all; the rest are the gaps real feeds show.
_P_CANCEL = 0.12
_P_OUT_PRIMARY = 0.92
_P_OUT_SECONDARY = 0.55
_P_IN_PRIMARY = 0.9
_P_IN_SECONDARY = 0.3
_P_DPS_FIRST = 0.93
_P_DPS_SECOND = 0.9
_P_FSS = 0.88
_P_LDE = 0.94  # of pieces that could get one: the rest have "no 517 yet"
_P_CONTAINER_ENTERED = 0.92
_P_CONTAINER_ARRIVE = 0.5
_P_TRAY_SCAN = 0.72
_P_BUNDLE_SCAN = 0.85
_P_EMPTY_TRAY_OPCODE = 0.15
_P_EMPTY_CONTAINER_OPCODE = 0.1
_P_T_SEPARATOR = 0.02
_P_RAW_FIELDS_EMPTY = 0.8  # raw pieces: edoc fields present but empty, else absent

_SUFFIX_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = 60


@dataclass(frozen=True)
class MailingSpec:
    """What to simulate: one mailing, its mailers and how much of it IV-MTR can enrich.

    With the defaults a piece yields about 5.5 records (about 6.2 for a 1000-piece mailing,
    whose trays are mostly mixed), so 300,000 records take about 56,000 pieces.
    """

    pieces: int = 1000
    mailer_ids: tuple[str, ...] = ("902345678", "123456")
    seed: int = 0
    start: datetime = DEFAULT_START  # induction time (aware)
    edoc_share: float = 0.7  # share of pieces matched to eDoc (enriched records)
    trays: bool = True  # emit tray and container records, and the AA piece events they cause
    bundles: bool = False  # emit flats bundle records (146) and their AA piece events
    flats_share: float = 0.1  # share of pieces that are flats

    def __post_init__(self) -> None:
        if self.pieces < 0:
            raise ValueError("pieces must be >= 0")
        if not self.mailer_ids:
            raise ValueError("need at least one mailer ID")
        if len(set(self.mailer_ids)) != len(self.mailer_ids):
            raise ValueError("mailer IDs must be distinct")
        for mid in self.mailer_ids:
            _check_mid(mid)
        if self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        for name in ("edoc_share", "flats_share"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")


def _check_mid(mid: str) -> None:
    nine = len(mid) == 9 and mid[0] == "9"
    six = len(mid) == 6 and mid[0] != "9"
    if not mid.isdigit() or not (nine or six):
        raise ValueError(f"bad mailer ID {mid!r}: 9 digits starting with 9, or 6 starting 0-8")


# ---------------------------------------------------------------------------------------------
# Public API


def generate_records(spec: MailingSpec) -> Iterator[dict[str, object]]:
    """Yield the IV-MTR JSON records (camelCase, ivmtr.md §1) USPS would push for `spec`.

    Piece, tray, container and bundle records come mixed, lazily, one container at a time;
    each object's own records are in scan-time order.
    """
    rng = random.Random(spec.seed)
    mailing = _plan(spec, rng)
    bases = _serial_bases(mailing.jobs, rng)
    counters = {job.mid: _new_counters(job, bases[job.mid], rng) for job in mailing.jobs}
    fates = _container_fates(spec, mailing)
    for container, fate in zip(mailing.containers, fates, strict=True):
        yield from _container_chunk(
            spec, mailing, container, fate, counters[container.job.mid], rng
        )


def count_records(spec: MailingSpec) -> int:
    """How many records `generate_records(spec)` yields, without generating them.

    Replays only the fates (which scans happen), so it costs a small fraction of generating.
    """
    mailing = _plan(spec, random.Random(spec.seed))
    return sum(fate.records for fate in _container_fates(spec, mailing))


def record_kind(record: dict[str, object]) -> RecordKind:
    """Which object a generated record describes (its fields say so without ambiguity)."""
    if "imcb" in record:
        return RecordKind.CONTAINER
    if "imtb" in record:
        return RecordKind.HANDLING_UNIT
    if "edocPackageId" in record or "deviceId" in record:
        return RecordKind.BUNDLE
    return RecordKind.PIECE


def piece_records(spec: MailingSpec) -> Iterator[dict[str, object]]:
    """Only the piece records (A, AA and L events) of `generate_records(spec)`."""
    return (r for r in generate_records(spec) if record_kind(r) is RecordKind.PIECE)


def handling_unit_records(spec: MailingSpec) -> Iterator[dict[str, object]]:
    """Only the handling-unit (tray) records of `generate_records(spec)`."""
    return (r for r in generate_records(spec) if record_kind(r) is RecordKind.HANDLING_UNIT)


def container_records(spec: MailingSpec) -> Iterator[dict[str, object]]:
    """Only the container (pallet) records of `generate_records(spec)`."""
    return (r for r in generate_records(spec) if record_kind(r) is RecordKind.CONTAINER)


def bundle_records(spec: MailingSpec) -> Iterator[dict[str, object]]:
    """Only the flats bundle records of `generate_records(spec)`."""
    return (r for r in generate_records(spec) if record_kind(r) is RecordKind.BUNDLE)


def message_group(
    records: Iterable[dict[str, object]],
    *,
    message_size: int,
    msg_grp_id: str | None = None,
    seed: int = 0,
) -> list[dict[str, object]]:
    """Split `records` into the push envelopes of one message group (ivmtr.md §2.1).

    Each envelope holds up to `message_size` events; msgSerNbr runs 1..totMsgCnt. With no
    records there is one empty message. Without `msg_grp_id` one is made from `seed` and the
    latest scan time (so it stays deterministic).
    """
    events = list(records)
    if msg_grp_id is None:
        msg_grp_id = new_message_group_id(random.Random(seed), _group_time(events))
    return list(
        message_stream(
            events, total_records=len(events), message_size=message_size, msg_grp_id=msg_grp_id
        )
    )


def message_stream(
    records: Iterable[dict[str, object]],
    *,
    total_records: int,
    message_size: int,
    msg_grp_id: str,
) -> Iterator[dict[str, object]]:
    """The envelopes of one message group, made lazily as `records` are drawn.

    Every envelope states totMsgCnt and totRecCnt, so `total_records` (see `count_records`)
    must be known up front; records beyond it, or fewer, raise ValueError (a group whose
    envelopes lied about their totals would be no test of the service).
    """
    if message_size < 1:
        raise ValueError("message_size must be >= 1")
    if total_records < 0:
        raise ValueError("total_records must be >= 0")
    total_messages = max(1, -(-total_records // message_size))
    events = iter(records)
    sent = 0
    for number in range(1, total_messages + 1):
        wanted = min(message_size, total_records - sent)
        chunk = list(islice(events, wanted))
        sent += len(chunk)
        if len(chunk) < wanted:
            raise ValueError(f"only {sent} of the {total_records} records promised")
        if number == total_messages and next(events, None) is not None:
            raise ValueError(f"more than the {total_records} records promised")
        yield {
            "msgGrpId": msg_grp_id,
            "msgSerNbr": number,
            "totMsgCnt": total_messages,
            "recCnt": len(chunk),
            "totRecCnt": total_records,
            "events": chunk,
        }


def new_message_group_id(rng: random.Random, now: datetime) -> str:
    """A 20-character msgGrpId like "17367877181793X9RM5Z": epoch milliseconds, random suffix."""
    millis = str((now - _EPOCH) // timedelta(milliseconds=1))
    suffix = "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(max(1, 20 - len(millis))))
    return millis + suffix


def format_scan_datetime(instant: datetime, zone: ZoneInfo, *, t_separator: bool = False) -> str:
    """`instant` as facility-local "YYYY-MM-DD hh:mm:ss±hh:mm" (ivmtr.md §4.6), or with a "T"."""
    return instant.astimezone(zone).isoformat(sep="T" if t_separator else " ", timespec="seconds")


def parse_scan_datetime(text: str) -> datetime:
    """Parse a scanDatetime leniently: "T" or space, optional fraction, ±hh:mm or ±hhmm."""
    text = text.strip()
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = datetime.fromisoformat(text)
    if parsed.utcoffset() is None:
        raise ValueError(f"scanDatetime without UTC offset: {text!r}")
    return parsed


# ---------------------------------------------------------------------------------------------
# The plan: jobs, trays and containers (small; pieces are made later, tray by tray)


@dataclass(frozen=True)
class _Job:
    """One eDoc job: a mailer ID with its eDoc identifiers."""

    mid: str
    pieces: int
    mail_class: str
    edoc_job_id: str
    mailing_group_id: str
    submitter_crid: str
    owner_crid: str
    user_license_code: str


@dataclass(frozen=True)
class _TrayPlan:
    shape: str
    mixed: bool  # mixed-ADC tray: the origin plant opens it and sorts its pieces
    dests: tuple[tuple[Facility, int], ...]  # destination plant, piece count

    @property
    def pieces(self) -> int:
        return sum(n for _, n in self.dests)


@dataclass(frozen=True)
class _ContainerPlan:
    job: _Job
    trays: tuple[_TrayPlan, ...]
    offset_s: int  # seconds after spec.start when it is entered


@dataclass(frozen=True)
class _Mailing:
    start: datetime
    origin: Facility
    jobs: tuple[_Job, ...]
    containers: tuple[_ContainerPlan, ...]


def _plan(spec: MailingSpec, rng: random.Random) -> _Mailing:
    start = spec.start.astimezone(UTC).replace(microsecond=0)
    origin = rng.choice(FACILITIES)
    weights = _destination_weights(rng)
    counts = _split(spec.pieces, len(spec.mailer_ids), rng)
    jobs: list[_Job] = []
    containers: list[_ContainerPlan] = []
    for index, (mid, count) in enumerate(zip(spec.mailer_ids, counts, strict=True)):
        job = _make_job(mid, count, index, rng)
        jobs.append(job)
        flats = min(count, int(count * spec.flats_share + rng.random()))
        trays: list[_TrayPlan] = []
        for shape, n in ((LETTER, count - flats), (FLAT, flats)):
            trays.extend(_presort(shape, n, weights, rng))
        for first in range(0, len(trays), _TRAYS_PER_CONTAINER):
            offset = rng.randint(0, 90 * _MINUTE) + len(containers) * rng.randint(5, 20) * _MINUTE
            containers.append(
                _ContainerPlan(job, tuple(trays[first : first + _TRAYS_PER_CONTAINER]), offset)
            )
    return _Mailing(start, origin, tuple(jobs), tuple(containers))


def _destination_weights(rng: random.Random) -> list[float]:
    # Mailings are regional: a Zipf-like weight over a shuffled plant order.
    order = list(range(len(FACILITIES)))
    rng.shuffle(order)
    weights = [0.0] * len(FACILITIES)
    for rank, index in enumerate(order):
        weights[index] = 1.0 / (rank + 1) ** 1.5
    return weights


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    base, extra = divmod(total, parts)
    lucky = set(rng.sample(range(parts), extra))
    return [base + (1 if i in lucky else 0) for i in range(parts)]


def _make_job(mid: str, pieces: int, index: int, rng: random.Random) -> _Job:
    # The first mailer is First-Class, the second Marketing ("Standard"), then at random.
    mail_class = (
        (FIRST_CLASS, STANDARD)[index] if index < 2 else rng.choice((FIRST_CLASS, STANDARD))
    )
    return _Job(
        mid=mid,
        pieces=pieces,
        mail_class=mail_class,
        edoc_job_id="".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(8)),
        mailing_group_id=str(rng.randint(10**8, 10**12 - 1)),
        submitter_crid=str(rng.randint(10**6, 10**8 - 1)),
        owner_crid=str(rng.randint(10**6, 10**8 - 1)),
        user_license_code="".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(4)),
    )


def _presort(shape: str, pieces: int, weights: list[float], rng: random.Random) -> list[_TrayPlan]:
    """Trays for one shape: direct trays for each big destination, mixed trays for the rest."""
    if pieces == 0:
        return []
    drawn = Counter(rng.choices(range(len(FACILITIES)), weights=weights, k=pieces))
    capacity = _TRAY_CAPACITY[shape]
    trays: list[_TrayPlan] = []
    residue: list[tuple[Facility, int]] = []
    for index in sorted(drawn):
        facility, n = FACILITIES[index], drawn[index]
        if n < _DIRECT_MIN[shape]:
            residue.append((facility, n))
            continue
        for size in _even_sizes(n, capacity):
            trays.append(_TrayPlan(shape, False, ((facility, size),)))
    current: list[tuple[Facility, int]] = []
    room = capacity
    for facility, n in residue:
        while n:
            take = min(n, room)
            current.append((facility, take))
            n -= take
            room -= take
            if room == 0:
                trays.append(_TrayPlan(shape, True, tuple(current)))
                current, room = [], capacity
    if current:
        trays.append(_TrayPlan(shape, True, tuple(current)))
    return trays


def _even_sizes(total: int, capacity: int) -> list[int]:
    count = -(-total // capacity)
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


# ---------------------------------------------------------------------------------------------
# Per-job running numbers


@dataclass
class _Counters:
    """A job's running numbers: piece serials, eDoc container and package IDs, label serials."""

    serial: int
    edoc_container: int
    package: int
    tray_serial: int
    container_serial: int


def _serial_bases(jobs: Sequence[_Job], rng: random.Random) -> dict[str, int]:
    """Where each job's serials start: consecutive blocks, so no serial repeats in a mailing."""
    bases: dict[str, int] = {}
    for digits in (6, 9):
        group = [job for job in jobs if 15 - len(job.mid) == digits]
        total = sum(job.pieces for job in group)
        if total >= 10**digits:
            raise ValueError(f"{total} pieces do not fit {digits}-digit serials")
        start = rng.randrange(0, 10**digits - total)
        for job in group:
            bases[job.mid] = start
            start += job.pieces
    return bases


def _new_counters(job: _Job, serial_base: int, rng: random.Random) -> _Counters:
    tray_digits = 13 - len(job.mid)  # IMtb: MID + serial is 13 digits
    return _Counters(
        serial=serial_base,
        edoc_container=0,
        package=0,
        # Half the label serial space is left above the start: far more trays than any test needs.
        tray_serial=rng.randrange(0, 10**tray_digits // 2),
        container_serial=rng.randrange(0, 10**6),
    )


# ---------------------------------------------------------------------------------------------
# Fates: what happens to each container, tray, bundle and piece, drawn from their own stream

# A container or tray scan: None when it does not happen, else its opcode ("" when unassigned).
_UnitScan = str | None


class _BundleFate(NamedTuple):
    size: int
    bi: str  # Flats Barcode ID: its first digit is the presort level
    scanned: bool  # gets a 146 bundle scan

    @property
    def carrier_route(self) -> bool:
        return self.bi == _CARRIER_ROUTE_BI


class _PieceFate(NamedTuple):
    enriched: bool  # matched to eDoc
    routing_length: int  # digits of routing code in its IMb
    operations: frozenset[_Op]  # the machine scans (A events) it gets
    logical_delivery: bool  # gets a 517
    assumed: int  # AA events it inherits from its container's, tray's and bundle's scans

    @property
    def records(self) -> int:
        return len(self.operations) + self.logical_delivery + self.assumed


@dataclass(frozen=True)
class _TrayFate:
    # mixed: (arrive at origin,); direct: (depart, arrive), or () when it stays at the origin
    scans: tuple[_UnitScan, ...]
    bundles: tuple[_BundleFate, ...]  # flats only
    pieces: tuple[_PieceFate, ...]  # in `_tray_slots` order

    @property
    def records(self) -> int:
        bundles = sum(bundle.scanned for bundle in self.bundles)
        return _happening(self.scans) + bundles + sum(piece.records for piece in self.pieces)


@dataclass(frozen=True)
class _ContainerFate:
    scans: tuple[_UnitScan, _UnitScan]  # entered at USPS, enroute arrive
    trays: tuple[_TrayFate, ...]

    @property
    def records(self) -> int:
        return _happening(self.scans) + sum(tray.records for tray in self.trays)


def _container_fates(spec: MailingSpec, mailing: _Mailing) -> Iterator[_ContainerFate]:
    """Each container's fate in plan order, drawn lazily from the mailing's fates stream."""
    rng = random.Random(f"{spec.seed}:fates")  # str seeds hash with SHA-512: stable across runs
    for plan in mailing.containers:
        scans = (
            _unit_scan(spec, _P_CONTAINER_ENTERED, _P_EMPTY_CONTAINER_OPCODE, rng),
            _unit_scan(spec, _P_CONTAINER_ARRIVE, _P_EMPTY_CONTAINER_OPCODE, rng),
        )
        parents = _with_opcode(scans)
        trays = tuple(_tray_fate(spec, mailing.origin, tray, parents, rng) for tray in plan.trays)
        yield _ContainerFate(scans, trays)


def _tray_fate(
    spec: MailingSpec, origin: Facility, tray: _TrayPlan, parents: int, rng: random.Random
) -> _TrayFate:
    if tray.mixed:
        possible = 1
    elif tray.dests[0][0] is origin:
        possible = 0  # a direct tray for the origin plant never leaves it
    else:
        possible = 2
    scans = tuple(
        _unit_scan(spec, _P_TRAY_SCAN, _P_EMPTY_TRAY_OPCODE, rng) for _ in range(possible)
    )
    parents += _with_opcode(scans)
    bundles = _bundle_fates(spec, tray, rng)
    pieces = tuple(
        _piece_fate(
            spec, tray, dest, origin, bundles[index] if index is not None else None, parents, rng
        )
        for dest, index, _ in _tray_slots(tray, bundles)
    )
    return _TrayFate(scans, bundles, pieces)


def _bundle_fates(
    spec: MailingSpec, tray: _TrayPlan, rng: random.Random
) -> tuple[_BundleFate, ...]:
    if tray.shape != FLAT:
        return ()
    sizes: list[int] = []
    left = tray.pieces
    while left:
        size = min(left, rng.randint(8, 25))
        sizes.append(size)
        left -= size
    levels: tuple[tuple[str, int], ...]
    if tray.mixed:
        levels = _FLAT_BI_MIXED
    else:
        levels = _FLAT_BI_DIRECT if spec.bundles else _FLAT_BI_DIRECT[1:]
    return tuple(
        _BundleFate(size, _weighted(rng, levels), spec.bundles and rng.random() < _P_BUNDLE_SCAN)
        for size in sizes
    )


def _piece_fate(
    spec: MailingSpec,
    tray: _TrayPlan,
    dest: Facility,
    origin: Facility,
    bundle: _BundleFate | None,
    parents: int,
    rng: random.Random,
) -> _PieceFate:
    """Which scans one piece gets; `parents` counts its container's and tray's scans with an op."""
    enriched = rng.random() < spec.edoc_share
    routing_length = _weighted(rng, _ROUTING_LENGTHS)
    chances = _ORIGIN_CHANCES[tray.shape] if tray.mixed else ()
    if not _skips_destination_sort(spec, tray.mixed, bundle):
        chances += _DESTINATION_CHANCES[tray.shape]
    operations = frozenset(op for op, chance in chances if rng.random() < chance)
    bundle_scanned = bundle is not None and bundle.scanned
    # A 517 needs a last processing operation at the delivering plant: a DPS pass or FSS (always
    # there), or the AA event of a 146 bundle scan made there (direct trays, or mixed trays whose
    # pieces stay at the origin).
    lpo_at_dest = bool(operations & _LPO_OPERATIONS) or (
        enriched and bundle_scanned and (not tray.mixed or dest is origin)
    )
    logical = enriched and lpo_at_dest and routing_length >= 5 and rng.random() < _P_LDE
    assumed = parents + bundle_scanned if enriched else 0
    return _PieceFate(enriched, routing_length, operations, logical, assumed)


# Each operation a piece may get, with its chance, in the order the fates draw them: the origin
# plant's (mixed trays only), then the destination plant's.
_ORIGIN_CHANCES: dict[str, tuple[tuple[_Op, float], ...]] = {
    LETTER: (
        (_CANCEL, _P_CANCEL),
        (_LETTER_OUT_PRIMARY, _P_OUT_PRIMARY),
        (_LETTER_OUT_SECONDARY, _P_OUT_SECONDARY),
    ),
    FLAT: ((_FLAT_OUT_PRIMARY, _P_OUT_PRIMARY),),
}
_DESTINATION_CHANCES: dict[str, tuple[tuple[_Op, float], ...]] = {
    LETTER: (
        (_LETTER_IN_PRIMARY, _P_IN_PRIMARY),
        (_LETTER_IN_SECONDARY, _P_IN_SECONDARY),
        (_DPS_FIRST_PASS, _P_DPS_FIRST),
        (_DPS_SECOND_PASS, _P_DPS_SECOND),
    ),
    FLAT: (
        (_FLAT_IN_PRIMARY, _P_IN_PRIMARY),
        (_FLAT_IN_SECONDARY, _P_IN_SECONDARY),
        (_FSS, _P_FSS),
    ),
}
_LPO_OPERATIONS = frozenset(
    op for ops in _DESTINATION_CHANCES.values() for op, _ in ops if op.code in LPO_OPCODES
)


def _skips_destination_sort(spec: MailingSpec, mixed: bool, bundle: _BundleFate | None) -> bool:
    # A carrier-route bundle in a direct tray goes to the carrier unopened.
    return spec.bundles and bundle is not None and bundle.carrier_route and not mixed


def _tray_slots(
    tray: _TrayPlan, bundles: Sequence[_BundleFate]
) -> Iterator[tuple[Facility, int | None, bool]]:
    """Each piece's place in `tray`: destination, bundle index (flats), whether it tops it."""
    index, left = -1, 0
    for dest, count in tray.dests:
        for _ in range(count):
            if tray.shape != FLAT:
                yield dest, None, False
                continue
            top = left == 0
            if top:
                index += 1
                left = bundles[index].size
            left -= 1
            yield dest, index, top


def _unit_scan(spec: MailingSpec, p_scan: float, p_empty: float, rng: random.Random) -> _UnitScan:
    if not (spec.trays and rng.random() < p_scan):
        return None
    return _opcode(rng, p_empty)


def _opcode(rng: random.Random, p_empty: float) -> str:
    # Unassigned operations leave scanEventCode empty on trays and containers (ivmtr.md §1.2).
    return "" if rng.random() < p_empty else HANDLING_UNIT_SCAN


def _happening(scans: Iterable[_UnitScan]) -> int:
    return sum(scan is not None for scan in scans)


def _with_opcode(scans: Iterable[_UnitScan]) -> int:
    # Assumed events need a parent scan with an operation: a blank opcode gives pieces nothing.
    return sum(bool(scan) for scan in scans)


# ---------------------------------------------------------------------------------------------
# Scans: the in-memory form of one event before it becomes a JSON record


class _Scan(NamedTuple):
    instant: datetime  # UTC, whole seconds
    het: str  # handlingEventType
    opcode: str
    phase: str
    machine_name: str
    machine_id: str
    scanner_type: str
    facility: Facility | None  # None for logical events (517)
    lde: tuple[str, str, str] | None = None  # (deliveryMode, inventoryMethod, triggerMethod)


class _ParentScan(NamedTuple):
    """A container, tray or bundle scan; the enriched pieces inside get an AA event from it."""

    instant: datetime
    facility: Facility
    opcode: str
    scan_state: str
    scanner_type: str
    piece_phase: str


def _seconds(rng: random.Random, low_min: float, high_min: float) -> timedelta:
    # Whole seconds, at least a minute apart between steps: journeys stay strictly increasing.
    return timedelta(seconds=rng.randint(int(low_min * _MINUTE), int(high_min * _MINUTE)))


def _in_window(
    after: datetime, zone: ZoneInfo, start_hour: int, hours: int, rng: random.Random
) -> datetime:
    """A time after `after` inside the next daily local window [start_hour, start_hour + hours)."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(4):
        # Build the window on the local calendar, then do all arithmetic in UTC: adding a
        # timedelta to a zoned datetime is wall-clock arithmetic and goes wrong across DST.
        opens = datetime.combine(day, time(start_hour), tzinfo=zone).astimezone(UTC)
        closes = opens + timedelta(hours=hours)
        if after < closes - timedelta(minutes=2):
            earliest = max(after, opens)
            room = int((closes - earliest).total_seconds())
            return earliest + timedelta(seconds=rng.randint(_MINUTE, max(_MINUTE, room * 2 // 3)))
        day += timedelta(days=1)
    raise AssertionError("a daily window always opens within four days")


def _transit(origin: Facility, dest: Facility, rng: random.Random) -> timedelta:
    if origin is dest:
        return timedelta(0)
    distance = abs(_REGION_BY_TZ[origin.tz] - _REGION_BY_TZ[dest.tz])
    if distance == 0:
        return _seconds(rng, 4 * 60, 12 * 60)
    return _seconds(rng, (10 + 8 * distance) * 60, (18 + 8 * distance) * 60)


def _weighted(rng: random.Random, table: tuple[tuple[_T, int], ...]) -> _T:
    values, cumulative = _cumulative(table)
    # The same draw as choices(weights=...), which accumulates the weights on every call.
    choice: _T = rng.choices(values, cum_weights=cumulative)[0]
    return choice


@cache
def _cumulative(table: tuple[tuple[_T, int], ...]) -> tuple[tuple[_T, ...], tuple[int, ...]]:
    return tuple(v for v, _ in table), tuple(accumulate(w for _, w in table))


def _actual(
    op: _Op, instant: datetime, facility: Facility, rng: random.Random, number: int | None = None
) -> _Scan:
    machine_id = f"{number if number is not None else rng.randint(1, op.machines):03d}"
    return _Scan(
        instant, "A", op.code, op.phase, f"{op.machine}-{machine_id}", machine_id, "", facility
    )


def _assumed(parent: _ParentScan) -> _Scan:
    return _Scan(
        parent.instant,
        "AA",
        parent.opcode,
        parent.piece_phase,
        "",
        "",
        parent.scanner_type,
        parent.facility,
    )


def _local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


# ---------------------------------------------------------------------------------------------
# One container: its scans and records, then its trays


@dataclass(frozen=True)
class _ContainerContext:
    job: _Job
    imcb: str
    edoc_container_id: str
    scans: tuple[_ParentScan, ...]
    entered: datetime
    at_plant: datetime  # when its trays are inside the origin plant


@dataclass(frozen=True)
class _TrayIds:
    imtb: str
    serial: str
    cin: str
    dest_zip: str
    processing_code: str
    edoc_container_id: str


def _container_chunk(
    spec: MailingSpec,
    mailing: _Mailing,
    plan: _ContainerPlan,
    fate: _ContainerFate,
    counters: _Counters,
    rng: random.Random,
) -> Iterator[dict[str, object]]:
    job, origin = plan.job, mailing.origin
    entered = mailing.start + timedelta(seconds=plan.offset_s)
    at_plant = entered + _seconds(rng, 40, 150)
    counters.container_serial += 1
    imcb_serial = f"{counters.container_serial:0{12 if len(job.mid) == 6 else 9}d}"
    counters.edoc_container += 1
    container_id = f"{counters.edoc_container:06d}"
    imcb = f"99M{job.mid}{imcb_serial}"

    scans: list[_ParentScan] = []
    entered_op, arrive_op = fate.scans
    if entered_op is not None:
        scans.append(_ParentScan(entered, origin, entered_op, "Entered at USPS", "SV", PHASE_1))
    if arrive_op is not None:
        scans.append(_ParentScan(at_plant, origin, arrive_op, "Enroute Arrive", "IMDAS", PHASE_1))
    tray_ids = [_next_tray_ids(mailing, job, tray, counters, rng) for tray in plan.trays]

    if scans:
        letters = sum(t.pieces for t in plan.trays if t.shape == LETTER)
        flats = sum(t.pieces for t in plan.trays if t.shape == FLAT)
        edoc = _edoc_fields(spec, job)
        fixed: dict[str, object] = {
            "imcb": imcb,
            "imcbMid": job.mid,
            "imcbSerialNumber": imcb_serial,
            "edocContainerId": container_id if edoc else "",
            "edocContainerZip": origin.zip5,
            **edoc,
            "appointmentId": str(rng.randint(10**9, 10**10 - 1)),
            "bundleCount": sum(len(tray.bundles) for tray in fate.trays),
            "trayCount": len(plan.trays),
            "pieceCount": letters + flats,
            "mailClassDescription": job.mail_class,
            "mailShapeDescription": LETTER if letters >= flats else FLAT,
        }
        for scan in scans:
            yield {
                **fixed,
                **_handling_unit_scan_fields(scan, rng),
                **_start_the_clock(spec, origin, entered),
            }

    context = _ContainerContext(job, imcb, container_id, tuple(scans), entered, at_plant)
    for tray, ids, tray_fate in zip(plan.trays, tray_ids, fate.trays, strict=True):
        yield from _tray_chunk(spec, mailing, tray, ids, tray_fate, context, counters, rng)


def _next_tray_ids(
    mailing: _Mailing, job: _Job, tray: _TrayPlan, counters: _Counters, rng: random.Random
) -> _TrayIds:
    counters.tray_serial += 1
    counters.edoc_container += 1
    serial = f"{counters.tray_serial:0{13 - len(job.mid)}d}"
    # A direct tray is labelled for its destination's ZIP3 ("ZIP3 + 00", ivmtr.md §1.2); a mixed
    # tray goes to the origin plant, which sorts it.
    dest_zip = mailing.origin.zip5 if tray.mixed else tray.dests[0][0].zip5[:3] + "00"
    cin = _CINS[(job.mail_class, tray.shape, tray.mixed)]
    processing_code = "1" if rng.random() < 0.95 else "7"
    # LOW-confidence layout (imb.md §5): ZIP5 + CIN + 3-digit processing code + MID + serial.
    imtb = f"{dest_zip}{cin}{processing_code:0>3}{job.mid}{serial}"
    return _TrayIds(imtb, serial, cin, dest_zip, processing_code, f"{counters.edoc_container:06d}")


def _edoc_fields(spec: MailingSpec, job: _Job) -> dict[str, object]:
    # Trays and containers come from the eDoc; with no eDoc at all there is nothing to match.
    if spec.edoc_share == 0:
        return {}
    return {
        "edocJobId": job.edoc_job_id,
        "edocMailingGroupId": job.mailing_group_id,
        "edocSubmitterCrid": job.submitter_crid,
        "edocUserLicenseCode": job.user_license_code,
    }


def _handling_unit_scan_fields(scan: _ParentScan, rng: random.Random) -> dict[str, object]:
    facility = scan.facility
    return {
        "handlingEventType": "A",
        "handlingEventTypeDescription": HANDLING_EVENT_DESCRIPTIONS["A"],
        "scanDatetime": _stamp(scan.instant, facility.zone, rng),
        "scanEventCode": scan.opcode,
        "facAddr": facility.address,
        "scanFacilityName": facility.name,
        "scanFacilityCity": facility.city,
        "scanFacilityState": facility.state,
        "scanFacilityZip": facility.zip5,
        "scanLocaleKey": facility.locale_key,
        "scanState": scan.scan_state,
        "scannerType": scan.scanner_type,
    }


def _start_the_clock(spec: MailingSpec, origin: Facility, entered: datetime) -> dict[str, object]:
    if spec.edoc_share == 0:
        return {}
    return {
        "startTheClockDate": _local_date(entered, origin.zone).isoformat(),
        "startTheClockFacilityName": origin.name,
        "startTheClockFacilityAddress": origin.address,
        "startTheClockFacilityCity": origin.city,
        "startTheClockFacilityState": origin.state,
        "startTheClockFacilityZip": origin.zip5,
        "startTheClockFacilityLocaleKey": origin.locale_key,
    }


def _stamp(instant: datetime, zone: ZoneInfo, rng: random.Random) -> str:
    return format_scan_datetime(instant, zone, t_separator=rng.random() < _P_T_SEPARATOR)


# ---------------------------------------------------------------------------------------------
# One tray: its scans, its bundles and its pieces


@dataclass(frozen=True)
class _Piece:
    bi: str
    stid: str
    mid: str
    serial: str
    routing: str
    zip5: str  # true destination ZIP5, also when the IMb carries no routing code
    dest: Facility
    shape: str
    mail_class: str
    enriched: bool

    @property
    def tracking(self) -> str:
        return f"{self.bi}{self.stid}{self.mid}{self.serial}"

    def imb_fields(self) -> dict[str, object]:
        return {
            "imb": self.tracking + self.routing,
            "imbTrackingCode": self.tracking,
            "imbStid": self.stid,
            "imbMid": self.mid,
            "imbSerialNumber": self.serial,
            "imbRoutingCode": self.routing,
            "routingCodeImbMatchingPortion": self.routing,
        }


@dataclass(frozen=True)
class _Bundle:
    fate: _BundleFate
    package_id: str
    scan: _ParentScan | None
    machine: int


class _Stop(NamedTuple):
    """Where a piece is when its tray's trip ends: ready for sorting at `ready` in `facility`."""

    facility: Facility
    ready: datetime


def _tray_chunk(
    spec: MailingSpec,
    mailing: _Mailing,
    tray: _TrayPlan,
    ids: _TrayIds,
    fate: _TrayFate,
    ctx: _ContainerContext,
    counters: _Counters,
    rng: random.Random,
) -> Iterator[dict[str, object]]:
    origin = mailing.origin
    scans: list[_ParentScan] = []
    scanner = "SV" if rng.random() < 0.5 else "IMDAS"
    opened = ctx.at_plant + _seconds(rng, 10, 40)  # mixed trays: opened at origin
    arrival = opened  # direct trays: when they reach the destination plant
    if tray.mixed:
        (arrive_op,) = fate.scans
        if arrive_op is not None:
            at = ctx.at_plant + _seconds(rng, 2, 9)
            scans.append(_ParentScan(at, origin, arrive_op, "Enroute Arrive", scanner, PHASE_1))
    else:
        dest = tray.dests[0][0]
        if dest is origin:
            arrival = ctx.at_plant + _seconds(rng, 15, 90)
        else:
            depart = ctx.at_plant + _seconds(rng, 60, 240)
            arrival = depart + _transit(origin, dest, rng)
            depart_op, arrive_op = fate.scans
            if depart_op is not None:
                scans.append(
                    _ParentScan(depart, origin, depart_op, "Enroute Depart", scanner, PHASE_1)
                )
            if arrive_op is not None:
                scans.append(
                    _ParentScan(arrival, dest, arrive_op, "Enroute Arrive", scanner, PHASE_2)
                )

    out: list[tuple[datetime, dict[str, object]]] = []
    job = ctx.job
    edoc = _edoc_fields(spec, job)
    for scan in scans:
        record: dict[str, object] = {
            "imtb": ids.imtb,
            "imtbMid": job.mid,
            "imtbSerialNumber": ids.serial,
            "imtbCin": ids.cin,
            "imtbDestinationZip": ids.dest_zip,
            "imtbProcessingCode": ids.processing_code,
            "edocContainerId": ids.edoc_container_id if edoc else "",
            "edocParentContainerId": ctx.edoc_container_id if edoc else "",
            "edocParentContainerImcb": ctx.imcb if edoc else "",
            **edoc,
            "bundleCount": len(fate.bundles),
            "pieceCount": tray.pieces,
            "mailClassDescription": job.mail_class,
            "mailShapeDescription": tray.shape,
            **_handling_unit_scan_fields(scan, rng),
            **_start_the_clock(spec, origin, ctx.entered),
        }
        out.append((scan.instant, record))

    # Assumed events need a parent scan with an operation; a blank opcode gives the piece nothing
    # to show, so we only derive AA events from scans that carry one.
    parents = tuple(s for s in (*ctx.scans, *scans) if s.opcode)
    bundles = _bundles(tray, fate.bundles, origin, opened, arrival, counters, rng)
    stops: dict[Facility, _Stop] = {}
    slots = _tray_slots(tray, fate.bundles)
    for (dest, index, top), piece_fate in zip(slots, fate.pieces, strict=True):
        if dest not in stops:
            if tray.mixed:
                # Origin processing takes up to ~5.5 hours, then the pieces travel in USPS trays.
                stops[dest] = _Stop(dest, opened + timedelta(hours=6) + _transit(origin, dest, rng))
            else:
                stops[dest] = _Stop(dest, arrival)
        bundle = bundles[index] if index is not None else None
        piece = _make_piece(job, tray, dest, counters, bundle, piece_fate, rng)
        if top and bundle is not None and bundle.scan is not None:
            out.append((bundle.scan.instant, _bundle_record(spec, piece, bundle, ids, ctx, rng)))
        journey = _journey(
            spec, piece, piece_fate, tray.mixed, origin, opened, stops[dest], parents, bundle, rng
        )
        out.extend(_piece_records(spec, piece, journey, ids, ctx, origin, rng))
    out.sort(key=lambda item: item[0])
    for _, record in out:
        yield record


def _bundles(
    tray: _TrayPlan,
    fates: Sequence[_BundleFate],
    origin: Facility,
    opened: datetime,
    arrival: datetime,
    counters: _Counters,
    rng: random.Random,
) -> list[_Bundle]:
    bundles: list[_Bundle] = []
    for fate in fates:
        counters.package += 1
        scan: _ParentScan | None = None
        machine = rng.randint(1, 4)
        if fate.scanned:
            # Mixed trays: bundles are broken at origin before the pieces are sorted (70+ min);
            # direct trays: on the bundle sorter at the destination.
            if tray.mixed:
                scan = _ParentScan(
                    opened + _seconds(rng, 1, 4), origin, BUNDLE_SCAN, "", "", PHASE_1
                )
            else:
                where = tray.dests[0][0]
                scan = _ParentScan(
                    arrival + _seconds(rng, 20, 60), where, BUNDLE_SCAN, "", "", PHASE_2
                )
        bundles.append(_Bundle(fate, f"{counters.package:06d}", scan, machine))
    return bundles


def _make_piece(
    job: _Job,
    tray: _TrayPlan,
    dest: Facility,
    counters: _Counters,
    bundle: _Bundle | None,
    fate: _PieceFate,
    rng: random.Random,
) -> _Piece:
    stid = _weighted(rng, _STIDS[(job.mail_class, fate.enriched)])
    counters.serial += 1
    zip5 = rng.choice(dest.zip3s) + f"{rng.randint(1, 99):02d}"
    full_routing = f"{zip5}{rng.randint(1, 9999):04d}{rng.randint(0, 99):02d}"
    return _Piece(
        bi=bundle.fate.bi if bundle is not None else "00",
        stid=stid,
        mid=job.mid,
        serial=f"{counters.serial:0{15 - len(job.mid)}d}",
        routing=full_routing[: fate.routing_length],
        zip5=zip5,
        dest=dest,
        shape=tray.shape,
        mail_class=job.mail_class,
        enriched=fate.enriched,
    )


def _journey(
    spec: MailingSpec,
    piece: _Piece,
    fate: _PieceFate,
    mixed: bool,
    origin: Facility,
    opened: datetime,
    stop: _Stop,
    parents: tuple[_ParentScan, ...],
    bundle: _Bundle | None,
    rng: random.Random,
) -> tuple[list[_Scan], datetime]:
    """The piece's scans in time order, and when it is (or would be) delivered."""
    # Assumed and logical events need eDoc (IV-MTR API FAQ, Q4): raw pieces get neither.
    scans = [_assumed(p) for p in parents] if piece.enriched else []
    letter = piece.shape == LETTER
    happens = fate.operations
    if mixed:
        if _CANCEL in happens:
            scans.append(_actual(_CANCEL, opened + _seconds(rng, 5, 60), origin, rng))
        primary = _LETTER_OUT_PRIMARY if letter else _FLAT_OUT_PRIMARY
        if primary in happens:
            scans.append(_actual(primary, opened + _seconds(rng, 70, 180), origin, rng))
        if _LETTER_OUT_SECONDARY in happens:
            scans.append(
                _actual(_LETTER_OUT_SECONDARY, opened + _seconds(rng, 200, 330), origin, rng)
            )
    if bundle is not None and bundle.scan is not None and piece.enriched:
        scans.append(_assumed(bundle.scan))

    dest, zone = stop.facility, stop.facility.zone
    last = stop.ready
    if bundle is not None and _skips_destination_sort(spec, mixed, bundle.fate):
        # A carrier-route bundle goes to the carrier unopened: its 146 scan is the last operation.
        last = bundle.scan.instant if bundle.scan is not None else stop.ready
    elif letter:
        primary_at = stop.ready + _seconds(rng, 90, 360)
        if _LETTER_IN_PRIMARY in happens:
            scans.append(_actual(_LETTER_IN_PRIMARY, primary_at, dest, rng))
        secondary_at = primary_at + _seconds(rng, 30, 180)
        if _LETTER_IN_SECONDARY in happens:
            scans.append(_actual(_LETTER_IN_SECONDARY, secondary_at, dest, rng))
        first_pass = _in_window(secondary_at + timedelta(minutes=30), zone, 20, 6, rng)
        machine = rng.randint(1, _DPS_FIRST_PASS.machines)  # both DPS passes run on one DBCS
        if _DPS_FIRST_PASS in happens:
            scans.append(_actual(_DPS_FIRST_PASS, first_pass, dest, rng, machine))
        last = first_pass + _seconds(rng, 90, 200)
        if _DPS_SECOND_PASS in happens:
            scans.append(_actual(_DPS_SECOND_PASS, last, dest, rng, machine))
    else:
        primary_at = stop.ready + _seconds(rng, 90, 360)
        if _FLAT_IN_PRIMARY in happens:
            scans.append(_actual(_FLAT_IN_PRIMARY, primary_at, dest, rng))
        secondary_at = primary_at + _seconds(rng, 30, 180)
        if _FLAT_IN_SECONDARY in happens:
            scans.append(_actual(_FLAT_IN_SECONDARY, secondary_at, dest, rng))
        last = _in_window(secondary_at + timedelta(minutes=30), zone, 19, 7, rng)
        if _FSS in happens:
            scans.append(_actual(_FSS, last, dest, rng))
    scans.sort(key=lambda s: s.instant)

    delivered = _in_window(last + timedelta(hours=3), zone, 7, 3, rng)
    if fate.logical_delivery:
        # The last processing operation at the delivering plant decides the LDE inventory method;
        # `_piece_fate` grants a 517 only to pieces that have one.
        lpo = next(
            s.opcode for s in reversed(scans) if s.opcode in LPO_OPCODES and s.facility is dest
        )
        mode = _weighted(rng, _LDE_MODES)
        if mode == "PO Box":
            trigger = "PO Box Distribution Complete"
        else:
            trigger = "ZIP+4 Entry" if rng.random() < 0.65 else "Post Office Opening Time"
        scans.append(
            _Scan(
                delivered,
                "L",
                LOGICAL_DELIVERY,
                PHASE_4C,
                "",
                "",
                "",
                None,
                (mode, f"LPO {lpo}", trigger),
            )
        )
    return scans, delivered


def _piece_records(
    spec: MailingSpec,
    piece: _Piece,
    journey: tuple[list[_Scan], datetime],
    ids: _TrayIds,
    ctx: _ContainerContext,
    origin: Facility,
    rng: random.Random,
) -> Iterator[tuple[datetime, dict[str, object]]]:
    scans, delivered = journey
    head = piece.imb_fields()
    tail = _piece_tail(spec, piece, delivered, ids, ctx, origin, rng)
    dest_zone = piece.dest.zone
    for scan in scans:
        facility = scan.facility
        record: dict[str, object] = {
            **head,
            "handlingEventType": scan.het,
            "handlingEventTypeDescription": HANDLING_EVENT_DESCRIPTIONS[scan.het],
            "scanDatetime": _stamp(scan.instant, facility.zone if facility else dest_zone, rng),
            "scanEventCode": scan.opcode,
            "mailPhase": scan.phase,
            "machineName": scan.machine_name,
            "machineId": scan.machine_id,
            "scannerType": scan.scanner_type,
        }
        if facility is None:
            # Logical delivery: no facility, and scanFacilityZip is the IMb routing ZIP5.
            record["scanFacilityName"] = ""
            record["scanFacilityCity"] = ""
            record["scanFacilityState"] = ""
            record["scanFacilityZip"] = piece.routing[:5]
            record["scanLocaleKey"] = ""
        else:
            record["scanFacilityName"] = facility.name
            record["scanFacilityCity"] = facility.city
            record["scanFacilityState"] = facility.state
            record["scanFacilityZip"] = facility.zip5
            record["scanLocaleKey"] = facility.locale_key
        if scan.lde is not None:
            record["ldeDeliveryMode"], record["ldeInventoryMethod"], record["ldeTriggerMethod"] = (
                scan.lde
            )
        record.update(tail)
        if piece.enriched:
            record["pieceId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield scan.instant, record


def _piece_tail(
    spec: MailingSpec,
    piece: _Piece,
    delivered: datetime,
    ids: _TrayIds,
    ctx: _ContainerContext,
    origin: Facility,
    rng: random.Random,
) -> dict[str, object]:
    """Per-piece attributes repeated on each of its records: delivery dates and eDoc data."""
    delivery_day = _local_date(delivered, piece.dest.zone)
    predicted = delivery_day + timedelta(days=_weighted(rng, ((0, 80), (1, 12), (-1, 8))))
    tail: dict[str, object] = {
        "anticipatedDeliveryDate": delivery_day.isoformat(),
        "predictedDeliveryDate": predicted.isoformat(),
    }
    if not piece.enriched:
        # Raw: both eDoc IDs empty. Feeds differ in whether empty fields are sent at all.
        if rng.random() < _P_RAW_FIELDS_EMPTY:
            tail["edocJobId"] = ""
            tail["edocMailingGroupId"] = ""
        return tail
    job = ctx.job
    distance = abs(_REGION_BY_TZ[origin.tz] - _REGION_BY_TZ[piece.dest.tz])
    if piece.mail_class == FIRST_CLASS:
        standard_days = 2 if piece.dest is origin else 3 + min(distance, 2)
    else:
        standard_days = 3 + 2 * distance + rng.randint(0, 2)
    tail.update(
        {
            "expectedDeliveryDate": (
                _local_date(ctx.entered, origin.zone) + timedelta(days=standard_days)
            ).isoformat(),
            "edocJobId": job.edoc_job_id,
            "edocMailingGroupId": job.mailing_group_id,
            "edocSubmitterCrid": job.submitter_crid,
            "mailClassDescription": piece.mail_class,
            "mailShapeDescription": piece.shape,
            "parentContainerEdocContainerId": ctx.edoc_container_id,
            "parentTrayEdocContainerId": ids.edoc_container_id,
            # (sic) the JSON name S1 prints for the parent container's IMcb (ivmtr.md §1.1)
            "parentContainerEdocImtb": ctx.imcb,
            "parentTrayEdocImtb": ids.imtb,
            **_start_the_clock(spec, origin, ctx.entered),
            "recipientCridOfMidOnPiece": job.owner_crid,
        }
    )
    return tail


def _bundle_record(
    spec: MailingSpec,
    top: _Piece,
    bundle: _Bundle,
    ids: _TrayIds,
    ctx: _ContainerContext,
    rng: random.Random,
) -> dict[str, object]:
    assert bundle.scan is not None
    facility = bundle.scan.facility
    job = ctx.job
    edoc = spec.edoc_share > 0
    imb = top.imb_fields()
    return {
        "deviceId": f"APBS{facility.locale_key}{bundle.machine:03d}",
        "edocJobId": job.edoc_job_id if edoc else "",
        "edocMailingGroupId": job.mailing_group_id if edoc else "",
        "edocPackageId": bundle.package_id if edoc else "",
        "edocSubmitterCrid": job.submitter_crid if edoc else "",
        "handlingEventType": "A",
        "handlingEventTypeDescription": HANDLING_EVENT_DESCRIPTIONS["A"],
        "imb": imb["imb"],
        "imbMid": top.mid,
        "imbRoutingCode": top.routing,
        "imbSerialNumber": top.serial,
        "imbStid": top.stid,
        "imbTrackingCode": top.tracking,
        "machineName": f"APBS-{bundle.machine:03d}",
        "mailClassDescription": job.mail_class,
        "mailShapeDescription": FLAT,
        "parentContainerEdocContainerId": ctx.edoc_container_id if edoc else "",
        "parentTrayEdocContainerId": ids.edoc_container_id if edoc else "",
        "routingCodeImbMatchingPortion": top.routing,
        "scanDatetime": _stamp(bundle.scan.instant, facility.zone, rng),
        "scanEventCode": BUNDLE_SCAN,
        "scanFacilityName": facility.name,
        "scanFacilityCity": facility.city,
        "scanFacilityState": facility.state,
        "scanFacilityZip": facility.zip5,
        "scanLocaleKey": facility.locale_key,
        "scannerType": "",
    }


# ---------------------------------------------------------------------------------------------
# Envelopes


def _group_time(events: list[dict[str, object]]) -> datetime:
    """When USPS would cut the message group: shortly after the latest scan in it."""
    latest: datetime | None = None
    for event in events:
        stamp = event.get("scanDatetime")
        if not isinstance(stamp, str):
            continue
        try:
            instant = parse_scan_datetime(stamp)
        except ValueError:
            continue
        if latest is None or instant > latest:
            latest = instant
    return (latest or DEFAULT_START).astimezone(UTC) + timedelta(minutes=7)
