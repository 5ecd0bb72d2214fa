"""Validation of one record: against its Avro record schema, then semantically.

Every problem is collected, not just the first, so a dead letter says everything that is
wrong with a record. Validation never raises for bad data; it returns a ``Rejection``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from consumer.core.codes import HANDLING_EVENT_TYPES
from consumer.core.imb import IMb, IMbError, decode_imb, is_bar_string, split_imb
from consumer.core.records import RecordKind, RecordShape, detect_kind
from consumer.core.scantime import ScanTime, parse_scan_datetime

__all__ = ["Reason", "Rejection", "ValidRecord", "validate_record"]

_IMB_LENGTHS = (20, 25, 29, 31)
_OPCODE = re.compile(r"[0-9]{3}")
_IMTB = re.compile(r"[0-9]{24}")
# 99M + 6-digit MID + 12 characters, or 99M + 9-digit MID + 9 (padding may be '-').
_IMCB = re.compile(r"99M[0-9A-Z-]{18}")
# The IMb's own fields, when also sent, must agree with it.
_IMB_CROSS_CHECKS = (
    ("imbTrackingCode", "tracking_code"),
    ("imbStid", "service_type_id"),
    ("imbMid", "mailer_id"),
    ("imbSerialNumber", "serial_number"),
)


@dataclass(frozen=True, slots=True)
class Reason:
    """One problem: the field (None for the record as a whole) and what is wrong."""

    field: str | None
    problem: str


@dataclass(slots=True)
class Rejection:
    """A record that cannot be published, with every reason."""

    kind: RecordKind | None
    reasons: list[Reason]


@dataclass(slots=True)
class ValidRecord:
    """A record that passed validation, with what validation already worked out."""

    kind: RecordKind
    fields: dict[str, Any]
    scan_time: ScanTime
    object_id: str
    imb: IMb | None = None
    upside_down: bool = False
    repaired_bar: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def validate_record(
    value: Any,
    shapes: Mapping[RecordKind, RecordShape],
    kind: RecordKind | None = None,
    *,
    max_string_length: int = 4096,
) -> ValidRecord | Rejection:
    """Validate one element of ``events``; ``kind`` is the feed's kind, or None to detect it."""
    if not isinstance(value, dict):
        return Rejection(
            kind, [Reason(None, f"a record must be a JSON object, got {_json_type(value)}")]
        )
    kind = kind or detect_kind(value)
    if kind is None:
        return Rejection(None, [Reason(None, "cannot tell the record kind: no imb, imtb or imcb")])
    shape = shapes[kind]
    reasons: list[Reason] = []
    fields = shape.empty()
    extra: dict[str, str] = {}
    string_fields = shape.string_fields
    for name, item in value.items():
        # The hot loop of the service: exact type checks, the common case first.
        if name in string_fields:
            if type(item) is str:
                if len(item) > max_string_length:
                    reasons.append(
                        Reason(name, f"longer than max_string_length={max_string_length}")
                    )
                fields[name] = item
            elif item is None:
                fields[name] = None
            else:
                reasons.append(Reason(name, f"must be a string, got {_json_type(item)}"))
        elif name in shape.int_fields:
            number = _as_int(item)
            if number is _NOT_INT:
                reasons.append(Reason(name, f"must be an integer, got {_json_type(item)}"))
            else:
                fields[name] = number
        elif isinstance(item, str):
            if len(item) > max_string_length:
                reasons.append(Reason(name, f"longer than max_string_length={max_string_length}"))
            extra[name] = item
        else:
            extra[name] = orjson.dumps(item).decode()
    valid = _check_semantics(kind, fields, reasons)
    if valid is None or reasons:
        return Rejection(kind, reasons)
    valid.extra = extra
    return valid


def _check_semantics(
    kind: RecordKind, fields: dict[str, Any], reasons: list[Reason]
) -> ValidRecord | None:
    scan_time = _check_scan_time(fields, reasons)
    _check_handling_event_type(fields, reasons)
    if kind is RecordKind.PIECE or kind is RecordKind.BUNDLE:
        _check_opcode(fields, reasons, required=kind is RecordKind.PIECE)
        decoded = _check_imb(fields, reasons)
        if scan_time is None or decoded is None:
            return None
        imb, upside_down, repaired_bar = decoded
        return ValidRecord(
            kind, fields, scan_time, imb.tracking_code, imb, upside_down, repaired_bar
        )
    _check_opcode(fields, reasons, required=False)
    name, pattern, what = (
        ("imtb", _IMTB, "24 digits")
        if kind is RecordKind.HANDLING_UNIT
        else ("imcb", _IMCB, "21 characters starting 99M")
    )
    object_id = (fields.get(name) or "").strip()
    if not pattern.fullmatch(object_id):
        reasons.append(Reason(name, f"must be {what}" if object_id else "is missing"))
        return None
    if scan_time is None:
        return None
    return ValidRecord(kind, fields, scan_time, object_id)


def _check_scan_time(fields: dict[str, Any], reasons: list[Reason]) -> ScanTime | None:
    text = fields.get("scanDatetime")
    if not text:
        reasons.append(Reason("scanDatetime", "is missing"))
        return None
    try:
        return parse_scan_datetime(text)
    except ValueError as exc:
        reasons.append(Reason("scanDatetime", f"{text!r} {exc}"))
        return None


def _check_opcode(fields: dict[str, Any], reasons: list[Reason], *, required: bool) -> None:
    # Opcodes keep their leading zeros (004), so they are strings of exactly three digits.
    code = fields.get("scanEventCode")
    if not code:
        if required:
            reasons.append(Reason("scanEventCode", "is missing"))
    elif not _OPCODE.fullmatch(code):
        reasons.append(Reason("scanEventCode", f"{code!r} is not three digits"))


def _check_handling_event_type(fields: dict[str, Any], reasons: list[Reason]) -> None:
    code = fields.get("handlingEventType")
    if code and code not in HANDLING_EVENT_TYPES:
        reasons.append(Reason("handlingEventType", f"{code!r} is not one of A, AA, L, AL"))


def _check_imb(
    fields: dict[str, Any], reasons: list[Reason]
) -> tuple[IMb, bool, int | None] | None:
    text = (fields.get("imb") or fields.get("imbTrackingCode") or "").strip()
    source = "imb" if fields.get("imb") else "imbTrackingCode"
    if not text:
        reasons.append(Reason("imb", "is missing"))
        return None
    try:
        if is_bar_string(text):
            decoded = decode_imb(text)
            result = (decoded.imb, decoded.upside_down, decoded.repaired_bar)
        elif len(text) in _IMB_LENGTHS or not _is_ascii_digits(text):
            result = (split_imb(text), False, None)
        else:
            reasons.append(Reason(source, f"has {len(text)} digits; an IMb has 20, 25, 29 or 31"))
            return None
    except IMbError as exc:
        reasons.append(Reason(source, str(exc)))
        return None
    imb = result[0]
    for name, attribute in _IMB_CROSS_CHECKS:
        sent = fields.get(name)
        if sent and sent != getattr(imb, attribute):
            reasons.append(
                Reason(name, f"{sent!r} disagrees with the IMb ({getattr(imb, attribute)})")
            )
    return result


_NOT_INT = object()


def _as_int(item: Any) -> Any:
    # Counts are numbers in the data dictionary, but delimited-to-JSON converters send
    # digit strings; both mean the same count.
    if isinstance(item, str) and _is_ascii_digits(item.strip()):
        item = int(item)
    if item is None:
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return item if -(2**31) <= item < 2**31 else _NOT_INT
    if isinstance(item, str) and not item.strip():
        return None
    return _NOT_INT


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit() is also true for '²' or '٣', which int() refuses or reads as digits.
    return text.isascii() and text.isdigit()


def _json_type(item: Any) -> str:
    if item is None:
        return "null"
    if isinstance(item, bool):
        return "a boolean"
    if isinstance(item, int | float):
        return "a number"
    if isinstance(item, str):
        return "a string"
    if isinstance(item, list):
        return "an array"
    return "an object"
