"""A message's coordinates read from the start of its body, before any record is parsed.

IV-MTR writes the envelope (``msgGrpId``, ``msgSerNbr``, the counts) before ``events``.
Knowing the coordinates from the first bytes lets a process that does not own the
message's delivery slot hand the message on before spending any work on its records.
This is a look-ahead only: the pipeline still reads and checks the whole envelope, and a
message whose envelope comes after its events is simply decided later.
"""

from __future__ import annotations

import json
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from consumer.core.pipeline import envelope_value
from consumer.errors import InvalidEnvelope

__all__ = ["leading_coordinates"]

_DECODER = json.JSONDecoder()


def leading_coordinates(head: bytes) -> tuple[str, int] | None:
    """(msgGrpId, msgSerNbr) from the members before ``events`` in ``head``, the first
    bytes of a message; None when they are not both there, or not valid."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # the head may end inside a character
        text = head[: exc.start].decode("utf-8")
    found: dict[str, Any] = {}
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return None
    at += 1
    try:
        while True:
            at = _skip(text, at)
            if not text.startswith('"', at):
                return None
            name, at = scanstring(text, at + 1)
            at = _skip(text, at)
            if not text.startswith(":", at):
                return None
            if name == "events":
                break
            value, at = _DECODER.raw_decode(text, _skip(text, at + 1))
            if name in ("msgGrpId", "msgSerNbr"):
                found[name] = envelope_value(name, value)
            at = _skip(text, at)
            if not text.startswith(",", at):
                return None
            at += 1
    except (ValueError, InvalidEnvelope):  # cut off, malformed or invalid: decided later
        return None
    if "msgGrpId" in found and "msgSerNbr" in found:
        return found["msgGrpId"], found["msgSerNbr"]
    return None


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at
