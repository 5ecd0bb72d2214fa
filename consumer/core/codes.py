"""IV-MTR code tables: handling event types and mail phases (ivmtr.md 4.1, 4.3)."""

from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType

__all__ = ["HANDLING_EVENT_TYPES", "LOGICAL_DELIVERY_OPCODE", "normalise_mail_phase"]

#: Code -> meaning. ``L`` is Logical, not "Letter" as some hobby receivers assume.
HANDLING_EVENT_TYPES = MappingProxyType(
    {"A": "Actual", "AA": "Assumed Actual", "L": "Logical", "AL": "Assumed Logical"}
)

#: The logical delivery event: rule-generated, with empty facility fields.
LOGICAL_DELIVERY_OPCODE = "517"

_PHASES = MappingProxyType(
    {
        "0": "PHASE_0_ORIGIN_CANCELLATION",
        "1": "PHASE_1_ORIGIN",
        "1a": "PHASE_1A_ORIGIN_PRIMARY",
        "1b": "PHASE_1B_ORIGIN_SECONDARY",
        "2": "PHASE_2_DESTINATION",
        "2a": "PHASE_2A_DESTINATION_MMP",
        "2b": "PHASE_2B_DESTINATION_SCF",
        "2c": "PHASE_2C_DESTINATION_PRIMARY",
        "3a": "PHASE_3A_DESTINATION_SECONDARY",
        "3b": "PHASE_3B_DESTINATION_BOX",
        "3c": "PHASE_3C_DESTINATION_SEQUENCED_CARRIER",
        "4c": "PHASE_4C_DELIVERY",
    }
)
_NAMED = MappingProxyType(
    {
        "pars processing": "PARS",
        "fpars processing": "FPARS",
        "miscellaneous": "MISCELLANEOUS",
        "foreign processing": "FOREIGN",
    }
)
# Misspellings seen in live USPS data (ivmtr.md 4.3).
_TYPOS = (("miscellaenous", "miscellaneous"), ("misc.", "miscellaneous"))
_PHASE_NUMBER = re.compile(r"phase\s*(\d[a-c]?)\b")


@lru_cache(maxsize=256)
def normalise_mail_phase(raw: str) -> str | None:
    """The MailPhase symbol for a raw ``mailPhase`` text, or None when it is not one we know.

    Tolerates case, spacing ("Phase 3c- ...") and the known misspellings.
    """
    text = " ".join(raw.lower().split())
    for wrong, right in _TYPOS:
        text = text.replace(wrong, right)
    match = _PHASE_NUMBER.match(text)
    if match:
        return _PHASES.get(match.group(1))
    return _NAMED.get(text)
