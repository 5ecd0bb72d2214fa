"""Admission: bounds on what is in flight across requests, so overload is refused, not queued.

Requests, decompressed body bytes and records count against shared budgets while a
message is being published. Past a bound the request is answered 503 with Retry-After at
once; its transaction is aborted, so nothing of it is published.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from consumer.errors import Unavailable

__all__ = ["Admission", "Overloaded"]


class Overloaded(Unavailable):
    """A bound on work in flight was reached; retry later."""

    code = "overloaded"


@dataclass
class Admission:
    """Shared in-flight budgets (one per service)."""

    max_requests: int
    max_bytes: int
    max_records: int
    retry_after_s: int = 5
    requests: int = 0
    body_bytes: int = 0
    records: int = 0

    @contextlib.contextmanager
    def request(self) -> Iterator[_Ticket]:
        """Admit one request, or raise Overloaded; releases its budget when it ends."""
        if self.requests >= self.max_requests:
            raise Overloaded(
                f"{self.requests} requests in flight (max_concurrent_requests={self.max_requests})",
                self.retry_after_s,
            )
        self.requests += 1
        ticket = _Ticket(self)
        try:
            yield ticket
        finally:
            self.requests -= 1
            self.body_bytes -= ticket.body_bytes
            self.records -= ticket.records


@dataclass
class _Ticket:
    admission: Admission
    body_bytes: int = 0
    records: int = 0

    def take_bytes(self, count: int) -> None:
        admission = self.admission
        if admission.body_bytes + count > admission.max_bytes:
            raise Overloaded(
                f"too much data in flight (max_inflight_bytes={admission.max_bytes})",
                admission.retry_after_s,
            )
        admission.body_bytes += count
        self.body_bytes += count

    def take_records(self, count: int) -> None:
        admission = self.admission
        if admission.records + count > admission.max_records:
            raise Overloaded(
                f"too many records in flight (max_inflight_records={admission.max_records})",
                admission.retry_after_s,
            )
        admission.records += count
        self.records += count

    async def metered(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Pass chunks through, counting their bytes against the budget."""
        async for chunk in chunks:
            self.take_bytes(len(chunk))
            yield chunk
