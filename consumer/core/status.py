"""What became of a pushed message, and the states the delivery log records.

``MessageStatus`` is the ``status`` of the answer to a push; ``ReceiptStatus`` holds the
symbols of the ``ivmtr.events.ReceiptStatus`` enum in ``schemas/`` (a test keeps them equal).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["MessageStatus", "ReceiptStatus"]


class MessageStatus(StrEnum):
    """The answer's ``status``: what happened to one pushed message."""

    PUBLISHED = "PUBLISHED"
    """Its events and dead letters are committed to Kafka."""
    DUPLICATE = "DUPLICATE"
    """The same coordinates and content were published before; nothing was published again."""
    CONFLICT = "CONFLICT"
    """Published, although the same coordinates were published before with other content."""
    SPOOLED = "SPOOLED"
    """Written to the local spool (ack_mode=spool); published in the background."""


class ReceiptStatus(StrEnum):
    """A receipt's ``status`` in the deliveries topic."""

    STARTED = "STARTED"
    PUBLISHED = "PUBLISHED"
    CONFLICT = "CONFLICT"
    GROUP_COMPLETE = "GROUP_COMPLETE"
    GROUP_INCOMPLETE = "GROUP_INCOMPLETE"
