"""The IV-MTR API's business rules, checked before any request is sent.

From the IV-MTR API FAQ (v3.0, 2023-05-01):

* Q3: the single-piece query needs the full IMb. A partial IMb is looked up by mailer ID and
  serial number, optionally narrowed by STID or routing code.
* Q5: the single-piece query returns no data for the STIDs the FAQ calls Business Reply Mail
  (``NO_SINGLE_PIECE_DATA_STIDS``), so such queries are refused instead of sent.
* Q7: the API has data for 30 days after the scan date; the IV-MTR web application's One-Time
  Query reaches back 120 days. ``data_window_warnings`` reports (never raises) dates past that.

Refusals raise ``RuleViolation`` with a message a person can act on. Pure module: no I/O and no
clock (callers pass ``today``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from consumer.api.models import RuleViolation
from consumer.core.imb import IMb, IMbError, split_imb
from consumer.core.stid import NO_SINGLE_PIECE_DATA_STIDS

__all__ = [
    "API_DATA_DAYS",
    "IMB_LENGTHS",
    "ONE_TIME_QUERY_DAYS",
    "DataWindowWarning",
    "LookupQuery",
    "check_lookup_query",
    "check_piece_query",
    "data_window_warnings",
    "matches_routing",
    "no_single_piece_data",
]

IMB_LENGTHS: Final = (20, 25, 29, 31)
API_DATA_DAYS: Final = 30
ONE_TIME_QUERY_DAYS: Final = 120

_BRM_LIST: Final = ", ".join(sorted(NO_SINGLE_PIECE_DATA_STIDS))
_BAR_LETTERS: Final = frozenset("FADTfadt")


def _digits(value: str) -> bool:
    # str.isdigit() alone also accepts "²" or "٣".
    return value.isascii() and value.isdigit()


def no_single_piece_data(stid: str) -> bool:
    """True for the STIDs the single-piece query returns no data for (FAQ Q5)."""
    return stid in NO_SINGLE_PIECE_DATA_STIDS


def _brm_message(what: str, stid: str) -> str:
    return (
        f"{what} has STID {stid}: the IV-MTR single-piece IMb query does not provide data for "
        f"Business Reply Mail (STIDs {_BRM_LIST}; IV-MTR API FAQ, question 5), "
        "so the query was not sent"
    )


def check_piece_query(imb: str) -> IMb:
    """Check an IMb for the single-piece query; return its fields.

    Raises RuleViolation: ``imb_not_digits``, ``imb_partial`` (fewer than 31 digits and not
    20, 25 or 29: use the MID + serial lookup), ``imb_invalid`` (too long, or a payload the
    IMb specification forbids) or ``stid_no_single_piece_data`` (FAQ Q5).
    """
    text = imb.strip()
    if not text:
        raise RuleViolation("imb_partial", "no IMb given: the single-piece query needs a full IMb")
    if not _digits(text):
        hint = (
            "; this looks like barcode bars: decode them to digits first (`ivmtr-stream imb "
            "decode`)"
            if len(text) == 65 and set(text) <= _BAR_LETTERS
            else ""
        )
        raise RuleViolation("imb_not_digits", f"IMb {text!r} must be digits only{hint}")
    if len(text) not in IMB_LENGTHS:
        if len(text) > IMB_LENGTHS[-1]:
            raise RuleViolation(
                "imb_invalid",
                f"IMb {text!r} has {len(text)} digits; a full IMb has 20, 25, 29 or 31",
            )
        raise RuleViolation(
            "imb_partial",
            f"IMb {text!r} has {len(text)} digits: the single-piece query needs the full IMb "
            "(20, 25, 29 or 31 digits: barcode ID, STID, mailer ID, serial number, routing "
            "code). For a partial IMb use the lookup command (`lookup MID SERIAL "
            "[--stid S | --routing R]`, MailTrackingClient.lookup), which returns the full "
            "IMbs scanned for a mailer ID and serial number",
        )
    try:
        fields = split_imb(text)
    except IMbError as exc:
        raise RuleViolation("imb_invalid", f"IMb {text!r}: {exc}") from exc
    if no_single_piece_data(fields.service_type_id):
        raise RuleViolation(
            "stid_no_single_piece_data", _brm_message(f"IMb {text}", fields.service_type_id)
        )
    return fields


@dataclass(frozen=True, slots=True)
class LookupQuery:
    """A checked partial-IMb lookup: MID and serial, optional STID and routing code."""

    mid: str
    serial: str
    stid: str | None = None
    routing: str | None = None


def check_lookup_query(
    mid: str, serial: str, *, stid: str | None = None, routing: str | None = None
) -> LookupQuery:
    """Check a MID + serial lookup (FAQ Q3); return it with surrounding blanks removed.

    The MID has 9 digits when it starts with 9, else 6; the serial has 6 or 9 digits to make
    15 with it. ``stid`` has 3 digits, ``routing`` 5, 9 or 11. Raises RuleViolation
    (``mid_invalid``, ``serial_invalid``, ``stid_invalid``, ``routing_invalid``).

    A Business Reply Mail STID is not refused here: FAQ Q5 restricts only the single-piece
    query, which is then refused for the IMbs the lookup returns.
    """
    mid, serial = mid.strip(), serial.strip()
    if not _digits(mid) or len(mid) != (9 if mid.startswith("9") else 6):
        raise RuleViolation(
            "mid_invalid",
            f"mailer ID {mid!r} must be 9 digits starting with 9, or 6 digits starting 0-8",
        )
    want = 15 - len(mid)
    if not _digits(serial) or len(serial) != want:
        raise RuleViolation(
            "serial_invalid",
            f"serial number {serial!r} must be {want} digits with the {len(mid)}-digit "
            f"mailer ID {mid} (mailer ID and serial number make 15 digits)",
        )
    if stid is not None:
        stid = stid.strip()
        if not _digits(stid) or len(stid) != 3:
            raise RuleViolation("stid_invalid", f"STID {stid!r} must be 3 digits")
    if routing is not None:
        routing = routing.strip()
        if not _digits(routing) or len(routing) not in (5, 9, 11):
            raise RuleViolation(
                "routing_invalid",
                f"routing code {routing!r} must be 5, 9 or 11 digits (ZIP, ZIP+4, "
                "ZIP+4 + delivery point)",
            )
    return LookupQuery(mid, serial, stid, routing)


def matches_routing(imb: str, routing: str) -> bool:
    """True when the IMb's routing code starts with ``routing`` (a ZIP matches its ZIP+4s).

    The API has no routing-code variant of the lookup, so the client filters with this.
    """
    return imb[20:].startswith(routing)


@dataclass(frozen=True, slots=True)
class DataWindowWarning:
    """Scans of one date that the API no longer has (FAQ Q7)."""

    scan_date: date
    age_days: int
    count: int
    message: str

    def __str__(self) -> str:
        return self.message


def data_window_warnings(
    scan_dates: Iterable[date | datetime], *, today: date
) -> list[DataWindowWarning]:
    """Warn about scans more than 30 days old, one warning per scan date, oldest first.

    The API has data for 30 days after the scan date. Up to 120 days the IV-MTR web
    application's One-Time Query still finds it; after that neither does. A datetime counts
    by its own (facility-local) date. Returns an empty list when every scan is in reach.
    """
    counts: dict[date, int] = {}
    for value in scan_dates:
        day = value.date() if isinstance(value, datetime) else value
        counts[day] = counts.get(day, 0) + 1
    warnings = []
    for day in sorted(counts):
        age = (today - day).days
        if age <= API_DATA_DAYS:
            continue
        scans = f"{counts[day]} scan{'s' if counts[day] != 1 else ''} of {day.isoformat()}"
        if age <= ONE_TIME_QUERY_DAYS:
            message = (
                f"{scans} {age} days old: the API keeps data for {API_DATA_DAYS} days after "
                "the scan date; run a One-Time Query in the IV-MTR web application, which "
                f"reaches back {ONE_TIME_QUERY_DAYS} days"
            )
        else:
            message = (
                f"{scans} {age} days old: past the API's {API_DATA_DAYS} days and the "
                f"{ONE_TIME_QUERY_DAYS} days of the IV-MTR web application's One-Time Query"
            )
        warnings.append(DataWindowWarning(day, age, counts[day], message))
    return warnings
