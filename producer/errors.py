"""Errors raised by the publishing side.

    PublishError                 anything that kept events from being committed to Kafka
    ├── KafkaUnavailable         the broker could not be reached or did not answer (retriable)
    ├── PublishTimeout           no producer or commit within the configured time (retriable)
    ├── TransactionAborted       the transaction was aborted; nothing of it is visible (retriable)
    ├── Fenced                   another producer took over the transactional id (retriable)
    ├── SlotElsewhere            another process owns the message's delivery slot (forward it)
    └── SerializationError       an event does not fit its Avro schema (a bug, not retriable)

Callers ask ``exc.retriable`` rather than keeping lists of classes.
"""

from __future__ import annotations

__all__ = [
    "Fenced",
    "KafkaUnavailable",
    "PublishError",
    "PublishTimeout",
    "SerializationError",
    "SlotElsewhere",
    "TransactionAborted",
]


class PublishError(Exception):
    """Events could not be committed to Kafka."""

    retriable: bool = True


class KafkaUnavailable(PublishError):
    """The broker could not be reached, or did not answer in time."""


class PublishTimeout(PublishError):
    """Publishing did not finish within the configured time."""


class TransactionAborted(PublishError):
    """The transaction was aborted: read_committed consumers see none of it."""


class Fenced(PublishError):
    """Another producer registered the same transactional id; this one's transaction is void."""


class SlotElsewhere(PublishError):
    """The delivery slot of the message is another process's: ``owner`` is its internal
    address (where the message can be forwarded), "" when the owner left none."""

    def __init__(self, slot: int, owner: str) -> None:
        super().__init__(f"delivery slot {slot} is owned by {owner or 'another process'}")
        self.slot = slot
        self.owner = owner


class SerializationError(PublishError):
    """An event does not fit its Avro schema."""

    retriable = False
