"""producer.errors: what each error says and carries, for the callers that act on it."""

from __future__ import annotations

import pytest

from producer.errors import SlotElsewhere


@pytest.mark.parametrize(
    ("owner", "says"),
    [
        ("10.0.0.7:8443", "delivery slot 12 is owned by 10.0.0.7:8443"),
        ("", "delivery slot 12 is owned by another process"),
    ],
)
def test_slot_elsewhere_names_the_slot_and_its_owner(owner: str, says: str) -> None:
    error = SlotElsewhere(12, owner)
    assert (str(error), error.slot, error.owner, error.retriable) == (says, 12, owner, True)
