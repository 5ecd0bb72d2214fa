"""Scan times: facility-local time with a UTC offset, normalised to a UTC instant.

IV-MTR writes ``YYYY-MM-DD hh:mm:ss±hh:mm``; other USPS outputs use a ``T``, fractions
of a second or ``±hhmm`` (ivmtr.md 4.6). All of those are accepted; a time without an
offset is refused, since the facility's zone cannot be guessed safely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["ScanTime", "parse_scan_datetime"]

_FORMAT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)? ?(?:Z|[+-]\d{2}:?[0-5]\d)",
    re.ASCII,
)
_NO_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ScanTime:
    """A scan time: UTC instant (microseconds since the epoch), local wall time and offset."""

    utc_micros: int
    local_time: str
    utc_offset_minutes: int

    @property
    def utc(self) -> datetime:
        """The instant as an aware UTC datetime."""
        return datetime.fromtimestamp(self.utc_micros / 1_000_000, UTC)


def parse_scan_datetime(text: str) -> ScanTime:
    """Parse a scan time; ValueError names what is wrong."""
    text = text.strip()
    if not _FORMAT.fullmatch(text):
        if _NO_OFFSET.fullmatch(text):
            raise ValueError("has no UTC offset")
        raise ValueError("is not a date and time like 2016-01-22 22:29:53-05:00")
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1).replace(" ", ""))
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from exc
    offset = moment.utcoffset()
    assert offset is not None  # the pattern demands an offset
    if abs(offset.total_seconds()) > 14 * 3600:
        raise ValueError("has a UTC offset beyond ±14:00")
    try:
        moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc
    delta = moment - _EPOCH
    utc_micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return ScanTime(
        utc_micros=utc_micros,
        local_time=moment.replace(tzinfo=None).isoformat(),
        utc_offset_minutes=int(offset.total_seconds()) // 60,
    )
