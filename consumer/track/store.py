"""The statuses of one partition, as the compacted status topic holds them.

Each piece's status is kept as its encoded value, the bytes the topic holds: restoring a
partition is reading it back, and a piece costs its encoded size, not a tree of Python
objects. Pieces the wall clock can still change are indexed by the instant it will.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from consumer.track.alerts import AlertRules, next_change
from consumer.track.scans import ValueReader

__all__ = ["PartitionStore"]


class PartitionStore:
    """Tracking code -> encoded status, for the pieces of one partition."""

    def __init__(self, reader: ValueReader, rules: AlertRules) -> None:
        self._reader = reader
        self._rules = rules
        self._values: dict[str, bytes] = {}
        self._due: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._values)

    def status(self, key: str) -> dict[str, Any] | None:
        """The decoded status of a piece; None for a piece not seen yet."""
        value = self._values.get(key)
        if value is None:
            return None
        status: dict[str, Any] = self._reader.read(value)[1]
        return status

    def put(self, key: str, value: bytes, status: dict[str, Any]) -> None:
        """Hold a status just committed (``value`` encodes ``status``)."""
        self._values[key] = value
        due = next_change(status, self._rules)
        if due is None:
            self._due.pop(key, None)
        else:
            self._due[key] = due

    def reindex(self, key: str, status: dict[str, Any]) -> None:
        """Index a piece anew after the rules found nothing to change in it."""
        self.put(key, self._values[key], status)

    def restore(self, key: str, value: bytes | None) -> None:
        """Take one record of the status topic, read from its beginning (None: a tombstone)."""
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = value

    def index(self) -> None:
        """Index the restored pieces by when the wall clock changes them."""
        self._due.clear()
        for key in self._values:
            status = self.status(key)
            assert status is not None
            due = next_change(status, self._rules)
            if due is not None:
                self._due[key] = due

    def due(self, now_micros: int) -> Iterator[str]:
        """Pieces whose status the wall clock may have changed by ``now_micros``."""
        return iter([key for key, at in self._due.items() if at <= now_micros])

    @property
    def watched(self) -> int:
        """Pieces the wall clock can still change."""
        return len(self._due)
