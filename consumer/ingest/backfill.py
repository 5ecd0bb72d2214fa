"""Backfill: scans fetched from the Mail Tracking API, published as ordinary scan events.

Each piece's scans go through the same validation and enrichment as pushed records, with
``provenance.source = API``. Event ids are computed the same way, so a scan that also
arrived by push has the same ``event_id`` and subscribers can drop the repeat. Each piece
is one Kafka transaction: its scans appear together or not at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import orjson
import structlog

from consumer.api.client import MailTrackingClient
from consumer.api.models import ApiError, ApiUnavailable, PieceNotFound, RuleViolation
from consumer.core.enrich import Provenance, enrich
from consumer.core.pipeline import DeadLetter
from consumer.core.records import RecordKind, RecordShape
from consumer.core.validate import Rejection, validate_record
from consumer.ingest.routing import FeedRoute
from producer import Publisher, PublishError

__all__ = ["BackfillSummary", "backfill"]

log = structlog.get_logger()

_ATTEMPTS = 3


@dataclass
class BackfillSummary:
    """What a backfill run did."""

    pieces: int = 0
    published_pieces: int = 0
    events: int = 0
    dead_letters: int = 0
    not_found: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "pieces": self.pieces,
            "published_pieces": self.published_pieces,
            "events": self.events,
            "dead_letters": self.dead_letters,
            "not_found": self.not_found,
            "refused": self.refused,
            "failed": self.failed,
        }


async def backfill(
    imbs: Iterable[str],
    *,
    client: MailTrackingClient,
    publisher: Publisher,
    route: FeedRoute,
    shapes: Mapping[RecordKind, RecordShape],
    concurrency: int = 4,
    on_piece: Callable[[str], None] | None = None,
) -> BackfillSummary:
    """Fetch every IMb's scans and publish them by ``route`` (its feed names them as their
    source feed); never raises for one piece's trouble."""
    summary = BackfillSummary()
    slots = asyncio.Semaphore(concurrency)
    feed = route.feed

    async def one(imb: str) -> None:
        async with slots:
            try:
                await _piece(imb)
            finally:
                if on_piece is not None:
                    on_piece(imb)

    async def _piece(imb: str) -> None:
        summary.pieces += 1
        try:
            piece = await client.piece(imb)
        except PieceNotFound:
            summary.not_found.append(imb)
            return
        except RuleViolation as exc:
            summary.refused[imb] = str(exc)
            return
        except (ApiUnavailable, ApiError) as exc:
            summary.failed[imb] = str(exc)
            return
        provenance = Provenance(
            feed=feed,
            msg_grp_id=None,
            msg_ser_nbr=None,
            received_at_ms=time.time_ns() // 1_000_000,
            source="API",
        )
        messages = []
        dead = 0
        for index, record in enumerate(piece.push_records()):
            result = validate_record(record, shapes, RecordKind.PIECE)
            if isinstance(result, Rejection):
                dead += 1
                letter = DeadLetter.of(
                    f"api:{imb}", provenance, index, orjson.dumps(record).decode(), result
                )
                messages.append(route.dead_letters.message(letter.key, letter.value))
                continue
            value = enrich(result, provenance, index)
            messages.append(
                route.scans[result.kind].message(
                    result.object_id,
                    value,
                    (("ivmtr.feed", feed.encode()), ("ivmtr.source", b"api")),
                )
            )
        for attempt in range(_ATTEMPTS):
            try:
                async with publisher.transaction(f"api:{imb}") as batches:
                    for message in messages:
                        await batches.add(message)
                break
            except PublishError as exc:
                if attempt == _ATTEMPTS - 1:
                    summary.failed[imb] = f"Kafka: {exc}"
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
        summary.published_pieces += 1
        summary.events += len(messages) - dead
        summary.dead_letters += dead

    await asyncio.gather(*(one(imb.strip()) for imb in imbs if imb.strip()))
    return summary
