"""Tests for consumer.core.scantime: scanDatetime in the formats of ivmtr.md 4.6."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from consumer.core.scantime import ScanTime, parse_scan_datetime


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, by integer arithmetic (no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


D = datetime

# text, the facility-local wall time it names, its UTC offset in minutes
ACCEPTED = [
    # Delimited / online format (the IV-MTR samples)
    ("2016-12-13 05:15:10-05:00", D(2016, 12, 13, 5, 15, 10), -300),
    ("2016-01-22 22:29:53-05:00", D(2016, 1, 22, 22, 29, 53), -300),
    # with a T
    ("2016-12-13T05:15:10-05:00", D(2016, 12, 13, 5, 15, 10), -300),
    # Mail.XML: +-hhmm, no colon
    ("2016-12-13T05:15:10-0500", D(2016, 12, 13, 5, 15, 10), -300),
    ("2016-12-13 05:15:10+0530", D(2016, 12, 13, 5, 15, 10), 330),
    # fractions of a second, 1 to 9 digits (beyond microseconds truncated)
    ("2016-12-13 05:15:10.5-05:00", D(2016, 12, 13, 5, 15, 10, 500_000), -300),
    ("2016-12-13T05:15:10.123-05:00", D(2016, 12, 13, 5, 15, 10, 123_000), -300),
    ("2016-12-13T05:15:10.123456789-05:00", D(2016, 12, 13, 5, 15, 10, 123_456), -300),
    # Z, and offsets on both sides of UTC
    ("2016-12-13T05:15:10Z", D(2016, 12, 13, 5, 15, 10), 0),
    ("2016-12-13 05:15:10+00:00", D(2016, 12, 13, 5, 15, 10), 0),
    ("2016-07-04 23:59:59-10:00", D(2016, 7, 4, 23, 59, 59), -600),
    ("2016-07-04 00:00:00+10:00", D(2016, 7, 4, 0, 0, 0), 600),
    ("2016-07-04 00:00:00-03:30", D(2016, 7, 4, 0, 0, 0), -210),
    # offsets up to +-14:00 (Kiribati) are real
    ("2016-12-13 05:15:10+14:00", D(2016, 12, 13, 5, 15, 10), 840),
    ("2016-12-13 05:15:10-14:00", D(2016, 12, 13, 5, 15, 10), -840),
    # minutes only, a space before the offset, surrounding whitespace
    ("2016-12-13 05:15-05:00", D(2016, 12, 13, 5, 15), -300),
    ("2016-12-13 05:15:10 -05:00", D(2016, 12, 13, 5, 15, 10), -300),
    ("  2016-12-13 05:15:10-05:00\n", D(2016, 12, 13, 5, 15, 10), -300),
    # a leap day, and local times whose UTC instant falls on the next day or year
    ("2016-02-29 12:00:00-05:00", D(2016, 2, 29, 12, 0, 0), -300),
    ("2016-12-31 23:30:00-05:00", D(2016, 12, 31, 23, 30, 0), -300),
    ("2017-01-01 01:00:00+05:00", D(2017, 1, 1, 1, 0, 0), 300),
]


@pytest.mark.parametrize(("text", "local", "offset"), ACCEPTED, ids=[row[0] for row in ACCEPTED])
def test_accepted_formats(text: str, local: datetime, offset: int) -> None:
    instant = local.replace(tzinfo=timezone(timedelta(minutes=offset)))
    assert parse_scan_datetime(text) == ScanTime(micros(instant), local.isoformat(), offset)


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("2016-01-22 22:29:53-05:00", "2016-01-22T22:29:53"),
        ("2016-12-13 05:15-05:00", "2016-12-13T05:15:00"),
        ("2016-12-13 05:15:10.5-05:00", "2016-12-13T05:15:10.500000"),
    ],
)
def test_local_time_is_iso_8601_without_offset(text: str, local: str) -> None:
    # Scan.local_time in the Avro schema: "ISO 8601 without offset (e.g. 2016-01-22T22:29:53)"
    assert parse_scan_datetime(text).local_time == local


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2016-01-22 22:29:53-05:00", datetime(2016, 1, 23, 3, 29, 53, tzinfo=UTC)),
        ("2016-12-31 23:30:00-05:00", datetime(2017, 1, 1, 4, 30, tzinfo=UTC)),
        ("2016-12-13T05:15:10.25+0530", datetime(2016, 12, 12, 23, 45, 10, 250_000, tzinfo=UTC)),
    ],
)
def test_utc_instant(text: str, utc: datetime) -> None:
    scan = parse_scan_datetime(text)
    assert scan.utc_micros == int(utc.timestamp()) * 1_000_000 + utc.microsecond
    assert scan.utc == utc


def test_same_instant_however_it_is_written() -> None:
    texts = [
        "2016-12-13 05:15:10-05:00",
        "2016-12-13T05:15:10-05:00",
        "2016-12-13T05:15:10-0500",
        "2016-12-13T05:15:10.000-05:00",
        "2016-12-13T10:15:10Z",
        "2016-12-13 02:15:10-08:00",
    ]
    assert len({parse_scan_datetime(text).utc_micros for text in texts}) == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2016-12-13 05:15:10", "has no UTC offset"),
        ("2016-12-13T05:15:10", "has no UTC offset"),
        ("2016-12-13 05:15:10.5", "has no UTC offset"),
        ("2016-12-13 05:15", "has no UTC offset"),
        ("2016-12-13", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        ("garbage", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        ("", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        ("12/13/2016 05:15:10", "is not a date and time like 2016-01-22 22:29:53-05:00"),  # PKG
        ("2016-12-13 05:15:10 EST", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        ("2016-12-13 05:15:10-5:00", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        ("2016-12-13 05:15:10-05", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        ("2016-12-13 05:15:10.-05:00", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        (
            "2016-12-13 05:15:10.1234567890-05:00",
            "is not a date and time like 2016-01-22 22:29:53-05:00",
        ),
        ("2016-12-13 05:15:10-05:00 x", "is not a date and time like 2016-01-22 22:29:53-05:00"),
        ("2016-12-13 05:15:10+14:01", "has a UTC offset beyond ±14:00"),
        ("2016-12-13 05:15:10-15:00", "has a UTC offset beyond ±14:00"),
        ("2016-12-13 05:15:10+2359", "has a UTC offset beyond ±14:00"),
        (
            "2016-02-30 05:15:10-05:00",
            "is not a valid date and time (day is out of range for month)",
        ),
        ("2016-12-13 24:00:00-05:00", "is not a valid date and time (hour must be in 0..23)"),
        ("2016-13-13 05:15:10-05:00", "is not a valid date and time (month must be in 1..12)"),
        ("2016-12-13 05:60:10-05:00", "is not a valid date and time (minute must be in 0..59)"),
    ],
)
def test_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_scan_datetime(text)
    assert str(caught.value) == problem


@pytest.mark.parametrize("text", ["2016-12-13 05:15:10-05:60", "2016-12-13 05:15:10+0199"])
def test_offset_minutes_beyond_59_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_scan_datetime(text)
