"""Tests for consumer.core.codes: handling event types (ivmtr.md 4.1) and mail phases (4.3)."""

from __future__ import annotations

import json

import pytest

from consumer.core.codes import HANDLING_EVENT_TYPES, LOGICAL_DELIVERY_OPCODE, normalise_mail_phase
from producer.schemas import schema_dir

# The 16 phases of ivmtr.md 4.3, as USPS writes them, and the MailPhase symbol for each.
PHASES = [
    ("Phase 0 - Origin Processing Cancellation of Postage", "PHASE_0_ORIGIN_CANCELLATION"),
    ("Phase 1 - Origin Processing", "PHASE_1_ORIGIN"),
    ("Phase 1a - Origin Primary Processing", "PHASE_1A_ORIGIN_PRIMARY"),
    ("Phase 1b - Origin Secondary Processing", "PHASE_1B_ORIGIN_SECONDARY"),
    ("Phase 2 - Destination Processing", "PHASE_2_DESTINATION"),
    ("Phase 2a - Destination MMP Processing", "PHASE_2A_DESTINATION_MMP"),
    ("Phase 2b - Destination SCF Processing", "PHASE_2B_DESTINATION_SCF"),
    ("Phase 2c - Destination Primary Processing", "PHASE_2C_DESTINATION_PRIMARY"),
    ("Phase 3a - Destination Secondary Processing", "PHASE_3A_DESTINATION_SECONDARY"),
    ("Phase 3b - Destination Box Mail Processing", "PHASE_3B_DESTINATION_BOX"),
    (
        "Phase 3c - Destination Sequenced Carrier Sortation",
        "PHASE_3C_DESTINATION_SEQUENCED_CARRIER",
    ),
    ("Phase 4c - Delivery", "PHASE_4C_DELIVERY"),
    ("PARS Processing", "PARS"),
    ("FPARS Processing", "FPARS"),
    ("Miscellaneous", "MISCELLANEOUS"),
    ("Foreign Processing", "FOREIGN"),
]


@pytest.mark.parametrize(("raw", "symbol"), PHASES)
def test_every_phase_of_the_data_dictionary(raw: str, symbol: str) -> None:
    assert normalise_mail_phase(raw) == symbol


def test_the_phases_are_exactly_the_mail_phase_enum() -> None:
    enum = json.loads((schema_dir() / "ivmtr.events.MailPhase.avsc").read_text())
    assert [symbol for _, symbol in PHASES] == enum["symbols"]


@pytest.mark.parametrize(
    ("raw", "symbol"),
    [
        # case and spacing
        (
            "PHASE 3C - DESTINATION SEQUENCED CARRIER SORTATION",
            "PHASE_3C_DESTINATION_SEQUENCED_CARRIER",
        ),
        ("phase 4c - delivery", "PHASE_4C_DELIVERY"),
        ("  Phase   1a  -  Origin Primary Processing ", "PHASE_1A_ORIGIN_PRIMARY"),
        ("Phase\t2b\n- Destination SCF Processing", "PHASE_2B_DESTINATION_SCF"),
        ("Phase3a - Destination Secondary Processing", "PHASE_3A_DESTINATION_SECONDARY"),
        ("Phase 0", "PHASE_0_ORIGIN_CANCELLATION"),
        ("Phase 2c", "PHASE_2C_DESTINATION_PRIMARY"),
        ("pars processing", "PARS"),
        ("  FPARS   PROCESSING ", "FPARS"),
        ("MISCELLANEOUS", "MISCELLANEOUS"),
        ("foreign  processing", "FOREIGN"),
        # USPS typos seen in live data (ivmtr.md 4.3)
        ("Miscellaenous", "MISCELLANEOUS"),
        ("MISCELLAENOUS", "MISCELLANEOUS"),
        (
            "Phase 3c- Destination Sequenced Carrier Sortation",
            "PHASE_3C_DESTINATION_SEQUENCED_CARRIER",
        ),
        (
            "Phase 3c-Destination Sequenced Carrier Sortation",
            "PHASE_3C_DESTINATION_SEQUENCED_CARRIER",
        ),
        ("Phase 1b -Origin Secondary Processing", "PHASE_1B_ORIGIN_SECONDARY"),
    ],
)
def test_variants(raw: str, symbol: str) -> None:
    assert normalise_mail_phase(raw) == symbol


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "Phase",
        "Phase 5 - Somewhere",
        "Phase 3d - Destination",
        "Phase 4a - Delivery",
        "Phase 12 - Origin",
        "Phase x",
        "Delivery",
        "Origin Processing",
        "PARS",
        "Foreign",
        "Miscellaneous Processing",
        "Processing PARS",
        "3c - Destination Sequenced Carrier Sortation",
    ],
)
def test_unknown_phases(raw: str) -> None:
    assert normalise_mail_phase(raw) is None


def test_handling_event_types() -> None:
    assert dict(HANDLING_EVENT_TYPES) == {
        "A": "Actual",
        "AA": "Assumed Actual",
        "L": "Logical",  # not "Letter" (ivmtr.md 4.1)
        "AL": "Assumed Logical",
    }
    enum = json.loads((schema_dir() / "ivmtr.events.HandlingEventType.avsc").read_text())
    assert list(HANDLING_EVENT_TYPES) == enum["symbols"]


def test_logical_delivery_opcode() -> None:
    assert LOGICAL_DELIVERY_OPCODE == "517"
