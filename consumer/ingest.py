"""Ingest of one pushed message: the pipeline's outcomes into one Kafka transaction.

CPU work (parsing, validation, enrichment, Avro) runs in a worker thread chunk by
chunk, so the event loop stays free for other requests and health checks. The
transaction is opened only when the first output is ready, so a slow or malformed
body does not hold a producer. Any error aborts it: nothing of the message is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from consumer.core.pipeline import DeadLetter, Limits, MessagePipeline, Outcome, ScanEvent
from consumer.core.records import RecordKind, RecordShape
from consumer.errors import Unavailable
from producer import KafkaMessage, PartitionedBatches, Publisher, PublishError, TopicTable

__all__ = ["IngestSummary", "MessageIngest"]

log = structlog.get_logger()


@dataclass
class IngestSummary:
    """What happened to one message; the body of the 200 answer."""

    feed: str
    msg_grp_id: str | None = None
    msg_ser_nbr: int | None = None
    tot_msg_cnt: int | None = None
    rec_cnt: int | None = None
    tot_rec_cnt: int | None = None
    received: int = 0
    published: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0

    def as_json(self) -> dict[str, Any]:
        """The JSON answer to IV-MTR."""
        return {
            "feed": self.feed,
            "msgGrpId": self.msg_grp_id,
            "msgSerNbr": self.msg_ser_nbr,
            "received": self.received,
            "published": dict(self.published),
            "rejected": self.rejected,
            "recCntMatches": None if self.rec_cnt is None else self.rec_cnt == self.received,
        }


class MessageIngest:
    """Publishes pushed messages: one call of ``ingest`` per message."""

    def __init__(
        self,
        publisher: Publisher,
        topics: TopicTable,
        shapes: Mapping[RecordKind, RecordShape],
        *,
        limits: Limits,
        kafka_timeout_s: float,
    ) -> None:
        self._publisher = publisher
        self._topics = topics
        self._shapes = shapes
        self._limits = limits
        self._kafka_timeout_s = kafka_timeout_s
        self._topic_of = {
            RecordKind.PIECE: topics.piece_scans,
            RecordKind.BUNDLE: topics.bundle_scans,
            RecordKind.HANDLING_UNIT: topics.handling_unit_scans,
            RecordKind.CONTAINER: topics.container_scans,
        }

    async def ingest(
        self,
        body: AsyncIterator[bytes],
        *,
        feed: str,
        kind: RecordKind | None = None,
        campaign: str | None = None,
    ) -> IngestSummary:
        """Read, process and publish one message; returns only after Kafka committed it."""
        pipeline = MessagePipeline(
            feed=feed,
            received_at_ms=time.time_ns() // 1_000_000,
            shapes=self._shapes,
            kind=kind,
            campaign=campaign,
            limits=self._limits,
        )
        summary = IngestSummary(feed=feed)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(pipeline.close)
            batches: PartitionedBatches | None = None
            async for chunk in body:
                messages = await asyncio.to_thread(
                    self._serialise, pipeline, pipeline.feed, chunk, summary
                )
                if messages:
                    batches = batches or await self._open(stack)
                    await self._add(batches, messages)
            messages = await asyncio.to_thread(
                self._serialise, pipeline, lambda _: pipeline.finish(), b"", summary
            )
            batches = batches or await self._open(stack)
            await self._add(batches, messages)
            summary.body_bytes = pipeline.bytes_parsed
            envelope = pipeline.envelope
            summary.msg_grp_id, summary.msg_ser_nbr = envelope.msg_grp_id, envelope.msg_ser_nbr
            summary.tot_msg_cnt, summary.rec_cnt, summary.tot_rec_cnt = (
                envelope.tot_msg_cnt,
                envelope.rec_cnt,
                envelope.tot_rec_cnt,
            )
            try:
                await asyncio.wait_for(stack.aclose(), self._kafka_timeout_s)
            except TimeoutError as exc:
                raise Unavailable("Kafka did not commit the message in time") from exc
            except PublishError as exc:
                raise Unavailable(f"Kafka did not commit the message: {exc}") from exc
        return summary

    async def _open(self, stack: contextlib.AsyncExitStack) -> PartitionedBatches:
        try:
            return await asyncio.wait_for(
                stack.enter_async_context(self._publisher.transaction()), self._kafka_timeout_s
            )
        except (PublishError, TimeoutError) as exc:
            raise Unavailable(f"Kafka is not available: {exc or 'timed out'}") from exc

    async def _add(self, batches: PartitionedBatches, messages: list[KafkaMessage]) -> None:
        try:
            # One deadline per chunk: wait_for per record would create a task for each.
            async with asyncio.timeout(self._kafka_timeout_s):
                for message in messages:
                    await batches.add(message)
        except (PublishError, TimeoutError) as exc:
            raise Unavailable(f"Kafka did not take the message: {exc or 'timed out'}") from exc

    def _serialise(
        self, pipeline: MessagePipeline, step: Any, chunk: bytes, summary: IngestSummary
    ) -> list[KafkaMessage]:
        # Runs in a worker thread: pure computation over this message's own state.
        outcomes: list[Outcome] = step(chunk)
        return [self._message(outcome, pipeline, summary) for outcome in outcomes]

    def _message(
        self, outcome: Outcome, pipeline: MessagePipeline, summary: IngestSummary
    ) -> KafkaMessage:
        summary.received += 1
        envelope = pipeline.envelope
        headers = (
            ("ivmtr.feed", pipeline.feed_name.encode()),
            ("ivmtr.msg_grp_id", (envelope.msg_grp_id or "").encode()),
            ("ivmtr.msg_ser_nbr", str(envelope.msg_ser_nbr).encode()),
            ("ivmtr.encoding", b"avro-single-object"),
        )
        if isinstance(outcome, ScanEvent):
            topic = self._topic_of[outcome.kind]
        else:
            topic = self._topics.dead_letters
            summary.rejected += 1
            for field_name, _problem in outcome.reasons:
                summary.rejected_by_reason[field_name or "record"] += 1
            _log_dead_letter(outcome)
        summary.published[topic.name] = summary.published.get(topic.name, 0) + 1
        return topic.message(outcome.key, outcome.value, headers)


def _log_dead_letter(letter: DeadLetter) -> None:
    log.debug("record dead-lettered", kind=letter.kind, reasons=letter.reasons)
