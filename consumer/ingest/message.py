"""Ingest of one pushed message: the pipeline's outcomes into one Kafka transaction.

CPU work (parsing, validation, enrichment, Avro) runs in a worker thread chunk by
chunk, so the event loop stays free for other requests and health checks. The
transaction is opened once the message's coordinates (msgGrpId, msgSerNbr) are known.
Any error aborts it: nothing of the message is visible to read_committed subscribers.

A message whose coordinates were published before with the same content (SHA-256 of
the decompressed body) is a duplicate: its transaction is aborted and the answer says
``"duplicate": true``. The same coordinates with other content are published again, with
a CONFLICT receipt and a warning: IV-MTR regenerated the file, and dropping it could
lose scans; subscribers can de-duplicate scans by ``event_id``.

All of a message's waits for Kafka draw on one ``WaitBudget`` of ``kafka_timeout_s``
(the caller's, when it waited for Kafka before): past it the answer is 503, however the
time was spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from consumer.core.fastpath import KINDS, ScanFastPath
from consumer.core.parse import FlatRecords
from consumer.core.pipeline import (
    DeadLetter,
    Envelope,
    Limits,
    MessagePipeline,
    Outcome,
    ScanEvent,
    outcome_count,
)
from consumer.core.records import RecordKind, RecordShape
from consumer.core.status import MessageStatus, ReceiptStatus
from consumer.errors import Unavailable
from consumer.ingest.routing import FeedRoute
from producer import KafkaMessage, Publisher, PublishError, Topic
from producer.budget import WaitBudget
from producer.deliveries import message_key
from producer.errors import SlotElsewhere
from producer.publisher import Delivery
from producer.topics import EncodedEvents, EventRoute

__all__ = ["WORK_BYTES", "IngestSummary", "MessageIngest", "coalesced"]

# Body bytes handed to the worker thread at a time. The server delivers a body in pieces of
# tens of kB; each hand-over costs a thread hop, a parser and a native call whatever its
# size, so pieces are joined up to this (measured: bench/run.py, issue 14's note).
WORK_BYTES = 1 << 20

log = structlog.get_logger()


@dataclass
class IngestSummary:
    """What happened to one message; the body of the 200 answer."""

    feed: str
    msg_grp_id: str | None = None
    msg_ser_nbr: int | None = None
    received: int = 0
    published: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    rejected_by_field: Counter[str] = field(default_factory=Counter)
    records_by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, outcome)
    problem_codes: list[str] = field(default_factory=list)
    campaign_scans: Counter[str] = field(default_factory=Counter)
    campaign_deliveries: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0
    fast_path_records: int = 0
    duplicate: bool = False
    status: MessageStatus = MessageStatus.PUBLISHED
    problems: list[str] = field(default_factory=list)
    commit_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The JSON answer to IV-MTR."""
        return {
            "feed": self.feed,
            "msgGrpId": self.msg_grp_id,
            "msgSerNbr": self.msg_ser_nbr,
            "received": self.received,
            "published": dict(self.published),
            "rejected": self.rejected,
            "duplicate": self.duplicate,
            "status": self.status.value,
            "problems": self.problems,
        }


class MessageIngest:
    """Publishes pushed messages: one call of ``ingest`` per message."""

    def __init__(
        self,
        publisher: Publisher,
        deliveries: Topic,
        shapes: Mapping[RecordKind, RecordShape],
        *,
        limits: Limits,
        kafka_timeout_s: float,
        replica_id: str,
        fast_path: ScanFastPath | None = None,
        flat_records: FlatRecords | None = None,
    ) -> None:
        self.publisher = publisher
        self.fast_path = fast_path
        self.flat_records = flat_records
        self.deliveries = deliveries
        self.kafka_timeout_s = kafka_timeout_s
        self.replica_id = replica_id
        self._shapes = shapes
        self._limits = limits

    async def ingest(
        self,
        body: AsyncIterator[bytes],
        route: FeedRoute,
        *,
        received_at_ms: int | None = None,
        on_records: Callable[[int], None] | None = None,
        on_open: Callable[[], None] | None = None,
        budget: WaitBudget | None = None,
    ) -> IngestSummary:
        """Read, process and publish one message; returns only after Kafka committed it.

        ``route`` says where the feed's records go. ``on_records`` is told how many records
        each chunk brought (admission control), ``on_open`` when the transaction is open.
        ``budget`` bounds every wait for Kafka together (a fresh one of ``kafka_timeout_s``
        by default). SlotElsewhere when the message's slot is another process's;
        Unavailable when Kafka did not commit it within the budget.
        """
        pipeline = MessagePipeline(
            feed=route.feed,
            received_at_ms=received_at_ms or time.time_ns() // 1_000_000,
            shapes=self._shapes,
            kind=route.kind,
            campaign=route.campaign,
            campaigns=route.campaigns,
            limits=self._limits,
            fast_path=self.fast_path,
            flat_records=self.flat_records,
        )
        budget = budget or WaitBudget(self.kafka_timeout_s)
        run = _MessageRun(self, pipeline, IngestSummary(feed=route.feed), route, budget, on_open)
        try:
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(pipeline.close)
                async for chunk in coalesced(body, WORK_BYTES):
                    received = run.summary.received
                    messages = await asyncio.to_thread(run.process, chunk)
                    if on_records is not None:
                        on_records(run.summary.received - received)
                    await run.publish(stack, messages)
                await run.publish(stack, await asyncio.to_thread(run.process, b"", True), last=True)
                await run.finish()
                commit_started = time.perf_counter()
            run.summary.commit_seconds = time.perf_counter() - commit_started
        except SlotElsewhere:
            raise
        except PublishError as exc:
            raise Unavailable(f"Kafka did not commit the message: {exc}") from exc
        except TimeoutError as exc:
            raise Unavailable("Kafka did not commit the message in time") from exc
        return run.summary

    async def check(self, body: AsyncIterator[bytes], route: FeedRoute) -> IngestSummary:
        """Parse and validate a message without publishing it (spool mode answers after this)."""
        pipeline = MessagePipeline(
            feed=route.feed,
            received_at_ms=0,
            shapes=self._shapes,
            kind=route.kind,
            limits=self._limits,
            fast_path=self.fast_path,
            flat_records=self.flat_records,
        )
        summary = IngestSummary(feed=route.feed, status=MessageStatus.SPOOLED)

        def count(outcomes: list[Outcome]) -> None:
            summary.received += outcome_count(outcomes)
            summary.rejected += sum(1 for outcome in outcomes if isinstance(outcome, DeadLetter))

        try:
            async for chunk in coalesced(body, WORK_BYTES):
                count(await asyncio.to_thread(pipeline.feed, chunk))
            count(await asyncio.to_thread(pipeline.finish))
        finally:
            pipeline.close()
        summary.msg_grp_id = pipeline.envelope.msg_grp_id
        summary.msg_ser_nbr = pipeline.envelope.msg_ser_nbr
        summary.body_bytes = pipeline.bytes_parsed
        return summary


async def coalesced(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The same bytes in pieces of at least ``size`` (the last one may be shorter)."""
    pending: list[bytes] = []
    pending_bytes = 0
    async for chunk in chunks:
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= size:
            yield pending[0] if len(pending) == 1 else b"".join(pending)
            pending, pending_bytes = [], 0
    if pending:
        yield b"".join(pending)


def coordinate_headers(envelope: Envelope, feed: str) -> tuple[tuple[str, bytes], ...]:
    """The headers every event of a message carries: its feed and coordinates."""
    return (
        ("ivmtr.feed", feed.encode()),
        ("ivmtr.msg_grp_id", (envelope.msg_grp_id or "").encode()),
        ("ivmtr.msg_ser_nbr", str(envelope.msg_ser_nbr).encode()),
    )


class _MessageRun:
    """The state of one message on its way: hash, counts, the open delivery."""

    def __init__(
        self,
        ingest: MessageIngest,
        pipeline: MessagePipeline,
        summary: IngestSummary,
        route: FeedRoute,
        budget: WaitBudget,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self.ingest = ingest
        self.budget = budget
        self.on_open = on_open
        self.topic_of = dict(route.scans)  # a plain dict: looked up once per record
        self.dead_letters = route.dead_letters
        self.pipeline = pipeline
        self.summary = summary
        self.sha256 = hashlib.sha256()
        self.delivery: Delivery | None = None

    def process(self, chunk: bytes, last: bool = False) -> list[KafkaMessage | EncodedEvents]:
        # Runs in a worker thread: pure computation over this message's own state.
        # The loop runs once per Python-path record or native run: topics, headers and
        # routes are looked up once per chunk.
        self.sha256.update(chunk)
        outcomes = self.pipeline.finish() if last else self.pipeline.feed(chunk)
        summary = self.summary
        headers = coordinate_headers(self.pipeline.envelope, self.pipeline.feed_name)
        topic_of = self.topic_of
        routes: tuple[EventRoute, ...] | None = None
        events_by_kind: dict[RecordKind, int] = {}
        messages: list[KafkaMessage | EncodedEvents] = []
        for outcome in outcomes:
            if type(outcome) is ScanEvent:
                kind = outcome.kind
                message = topic_of[kind].message(outcome.key, outcome.value, headers)
                events_by_kind[kind] = events_by_kind.get(kind, 0) + 1
                if outcome.campaign:
                    summary.campaign_scans[outcome.campaign] += 1
                    if outcome.logical_delivery:
                        summary.campaign_deliveries[outcome.campaign] += 1
                messages.append(message)
                summary.received += 1
            elif type(outcome) is DeadLetter:
                messages.append(self.dead_letter(outcome, headers))
                summary.received += 1
            else:
                assert not isinstance(outcome, ScanEvent | DeadLetter)
                if routes is None:
                    routes = tuple(topic_of[kind].route(headers) for kind in KINDS)
                messages.append(EncodedEvents(outcome, routes))
                for kind, count in zip(KINDS, outcome.kind_counts(), strict=True):
                    if count:
                        events_by_kind[kind] = events_by_kind.get(kind, 0) + count
                for campaign, (scans, deliveries) in outcome.campaign_counts().items():
                    summary.campaign_scans[campaign] += scans
                    if deliveries:
                        summary.campaign_deliveries[campaign] += deliveries
                summary.received += len(outcome)
        for kind, count in events_by_kind.items():
            summary.records_by_kind[kind.value, "published"] += count
            name = topic_of[kind].name
            summary.published[name] = summary.published.get(name, 0) + count
        return messages

    def dead_letter(
        self, outcome: DeadLetter, headers: Sequence[tuple[str, bytes]]
    ) -> KafkaMessage:
        """The dead letter's Kafka message; counts it in the summary."""
        summary = self.summary
        summary.rejected += 1
        summary.records_by_kind[outcome.kind.value if outcome.kind else "unknown", "rejected"] += 1
        for field_name, _problem in outcome.reasons:
            summary.rejected_by_field[field_name or "record"] += 1
        log.debug("record dead-lettered", kind=outcome.kind, reasons=outcome.reasons)
        message = self.dead_letters.message(outcome.key, outcome.value, headers)
        summary.published[message.topic] = summary.published.get(message.topic, 0) + 1
        return message

    async def publish(
        self,
        stack: contextlib.AsyncExitStack,
        messages: list[KafkaMessage | EncodedEvents],
        last: bool = False,
    ) -> None:
        """Add a chunk's messages to the transaction, opening it first if need be."""
        if self.delivery is None and (messages or last):
            # The first chunk's messages go to Kafka together with the claim.
            self.delivery = await self._open(stack, messages)
            return
        if not messages:
            return
        assert self.delivery is not None
        await self.delivery.add_many(messages)  # within the message's budget

    async def _open(
        self, stack: contextlib.AsyncExitStack, first: Sequence[KafkaMessage | EncodedEvents]
    ) -> Delivery:
        envelope = self.pipeline.envelope
        assert envelope.msg_grp_id is not None and envelope.msg_ser_nbr is not None
        self.summary.msg_grp_id, self.summary.msg_ser_nbr = (
            envelope.msg_grp_id,
            envelope.msg_ser_nbr,
        )
        key = message_key(envelope.msg_grp_id, envelope.msg_ser_nbr)
        started = self.receipt(ReceiptStatus.STARTED, content_sha256=None)
        delivery = await stack.enter_async_context(
            self.ingest.publisher.delivery(key, started, first, budget=self.budget)
        )
        if self.on_open is not None:
            self.on_open()
        log.debug(
            "message transaction open",
            key=key,
            slot=delivery.slot,
            prior=delivery.prior is not None,
        )
        return delivery

    async def finish(self) -> None:
        """Decide duplicate / conflict / published and add the message's receipt."""
        delivery = self.delivery
        assert delivery is not None
        summary, envelope = self.summary, self.pipeline.envelope
        summary.body_bytes = self.pipeline.bytes_parsed
        summary.fast_path_records = self.pipeline.fast_records
        digest = self.sha256.hexdigest()
        prior = delivery.prior
        if prior is not None and prior["content_sha256"] == digest:
            delivery.discard = True
            summary.duplicate, summary.status = True, MessageStatus.DUPLICATE
            summary.published = dict(prior["published"])
            return
        if envelope.rec_cnt is not None and envelope.rec_cnt != summary.received:
            summary.problems.append(
                f"recCnt {envelope.rec_cnt} != {summary.received} records received"
            )
            summary.problem_codes.append("rec_cnt_mismatch")
            log.warning(
                "recCnt does not match the records received",
                rec_cnt=envelope.rec_cnt,
                received=summary.received,
            )
        if prior is not None:
            summary.status = MessageStatus.CONFLICT
            summary.problems.append(
                "msgGrpId/msgSerNbr published before with other content "
                f"(sha256 {prior['content_sha256']})"
            )
            summary.problem_codes.append("conflict")
            log.warning("message published again with other content", key=delivery.key)
        receipt = self.receipt(ReceiptStatus(summary.status), content_sha256=digest)
        delivery.receipt = receipt
        deliveries = self.ingest.deliveries
        await delivery.add(deliveries.message(delivery.key, receipt, partition=delivery.slot))

    def receipt(self, status: ReceiptStatus, *, content_sha256: str | None) -> dict[str, Any]:
        envelope, summary = self.pipeline.envelope, self.summary
        assert envelope.msg_grp_id is not None
        return {
            "kind": "MESSAGE",
            "status": status,
            "feed": self.pipeline.feed_name,
            "msg_grp_id": envelope.msg_grp_id,
            "msg_ser_nbr": envelope.msg_ser_nbr,
            "tot_msg_cnt": envelope.tot_msg_cnt,
            "rec_cnt": envelope.rec_cnt,
            "tot_rec_cnt": envelope.tot_rec_cnt,
            "records_received": summary.received,
            "records_rejected": summary.rejected,
            "published": dict(summary.published),
            "content_sha256": content_sha256,
            "messages_received": [],
            "problems": list(summary.problems),
            "replica": self.ingest.replica_id,
            "written_at": time.time_ns() // 1_000_000,
        }
