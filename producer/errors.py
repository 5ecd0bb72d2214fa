"""Errors raised by the publishing side.

    PublishError                 anything that kept events from being committed to Kafka
    ├── KafkaUnavailable         the broker could not be reached or did not answer (retriable)
    ├── PublishTimeout           no producer or commit within the configured time (retriable)
    ├── TransactionAborted       the transaction was aborted; nothing of it is visible (retriable)
    ├── Fenced                   another producer took over the transactional id (retriable)
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


class SerializationError(PublishError):
    """An event does not fit its Avro schema."""

    retriable = False
