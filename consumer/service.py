"""The ingest service: its parts wired together, with explicit start and stop.

Built from the settings alone. The HTTP app authenticates, decodes and meters a push,
then hands ``accept`` the body as a stream of plain bytes; nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import structlog
from pydantic import SecretStr

from consumer.core.content import decoded_body
from consumer.core.fastpath import FastPathUnavailable, ScanFastPath
from consumer.core.pipeline import Limits
from consumer.core.records import RecordKind, RecordShape
from consumer.errors import Unavailable
from consumer.feeds import FeedsFileError, FeedTable, load_feeds
from consumer.ingest.group_watch import GroupWatcher
from consumer.ingest.message import IngestSummary, MessageIngest
from consumer.ingest.routing import Routing, override_schemas, scan_topics
from consumer.ingest.spool import Spool, SpoolEntry, SpoolWorker
from consumer.metrics import Metrics
from consumer.native import load_native, record_scanner
from consumer.settings import Settings, SettingsError
from producer import (
    KafkaConfig,
    Publisher,
    PublishError,
    Schema,
    Topic,
    TopicSpec,
    TopicTable,
    ensure_topics,
    load_schema,
    missing_topics,
)
from producer.budget import WaitBudget
from producer.deliveries import DeliveryLogLimits, message_key
from producer.registry import (
    NotFound,
    RegistryClient,
    RegistryConfig,
    RegistryError,
    register_schemas,
    schema_json,
    subject_name,
)

__all__ = ["IngestService", "ingest_limits", "kafka_config", "record_shapes", "topic_specs"]

log = structlog.get_logger()

_RECORD_SCHEMAS = {
    RecordKind.PIECE: "ivmtr.records.PieceRecord",
    RecordKind.BUNDLE: "ivmtr.records.BundleRecord",
    RecordKind.HANDLING_UNIT: "ivmtr.records.HandlingUnitRecord",
    RecordKind.CONTAINER: "ivmtr.records.ContainerRecord",
}


def record_shapes() -> dict[RecordKind, RecordShape]:
    """The field shape of each record kind, from the Avro record schemas in ``schemas/``."""
    return {
        kind: RecordShape.from_avro(kind, load_schema(name).parsed)
        for kind, name in _RECORD_SCHEMAS.items()
    }


def kafka_config(settings: Settings) -> KafkaConfig:
    """The producer settings out of the service settings (with the native key hash and
    record batches unless ``fast_path`` is off or the module is not installed)."""
    native = load_native(settings.fast_path)
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        linger_ms=settings.linger_ms,
        max_batch_bytes=settings.max_batch_bytes,
        compression=None if settings.compression == "none" else settings.compression,
        request_timeout_ms=int(settings.kafka_timeout_s * 1000),
        transaction_timeout_ms=int(settings.transaction_timeout_s * 1000),
        key_hash=None if native is None else native.key_hash,
        record_batches=None if native is None else native.RecordBatches,
    )


def registry_config(settings: Settings) -> RegistryConfig | None:
    """The schema registry client settings, or None when no registry is configured."""
    if settings.schema_registry_url is None:
        return None
    return RegistryConfig(
        url=settings.schema_registry_url,
        username=settings.schema_registry_user,
        password=_secret(settings.schema_registry_password),
        bearer_token=_secret(settings.schema_registry_token),
        ca_file=settings.schema_registry_ca_file,
    )


async def registered_schemas(settings: Settings, topics: Iterable[Topic]) -> dict[int, Schema]:
    """Registry id -> schema of every topic's value schema (for readers); {} without a
    registry. A topic whose schema is not registered (nothing wrote it yet) is left out."""
    config = registry_config(settings)
    if config is None:
        return {}
    found = {}
    async with RegistryClient(config) as client:
        for topic in topics:
            try:
                registered = await client.lookup(
                    subject_name(topic.name), schema_json(topic.schema)
                )
            except NotFound:
                continue
            found[registered.id] = topic.schema
    return found


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _load_feeds(settings: Settings) -> FeedTable | None:
    if settings.feeds_file is None:
        if not settings.insecure_dev_mode:
            raise SettingsError(
                "invalid settings: IVMTR_FEEDS_FILE: no feeds file; write one "
                "(examples/feeds.toml, `ivmtr-stream dev-credentials`) "
                "or set IVMTR_INSECURE_DEV_MODE=true for development"
            )
        return None
    try:
        return load_feeds(settings.feeds_file)
    except FeedsFileError as exc:
        raise SettingsError(f"invalid settings: IVMTR_FEEDS_FILE: {exc}") from exc


def topic_specs(settings: Settings, topics: TopicTable) -> list[TopicSpec]:
    """How to create each topic: the deliveries topic is compacted, one partition per slot."""
    feeds = _load_feeds(settings) if settings.feeds_file else None
    names = {topic.name for topic in topics if topic is not topics.deliveries}
    names |= set(override_schemas(feeds, topics))
    specs = [
        TopicSpec(name, settings.topic_partitions, settings.topic_replication_factor)
        for name in sorted(names)
    ]
    specs.append(
        TopicSpec(
            topics.deliveries.name,
            settings.delivery_slots,
            settings.topic_replication_factor,
            (("cleanup.policy", "compact"), ("min.compaction.lag.ms", "3600000")),
        )
    )
    return specs


def ingest_limits(settings: Settings) -> Limits:
    """The pipeline's limits on one message, from the settings."""
    return Limits(
        max_record_bytes=settings.max_record_bytes,
        max_events=settings.max_events_per_message,
        max_string_length=settings.max_string_length,
        max_json_depth=settings.max_json_depth,
    )


def _fast_path(settings: Settings, topics: TopicTable) -> ScanFastPath | None:
    """The native fast path as the settings ask for it; None runs the Python path alone."""
    native = load_native(settings.fast_path)  # require without the module: NativeUnavailable
    if native is None:
        if settings.fast_path == "auto":
            log.warning(
                "native fast path unavailable; every record takes the Python path",
                why="the native module is not installed",
            )
        return None
    try:
        return ScanFastPath.build(
            native,
            record_shapes(),
            {kind: topic.schema for kind, topic in scan_topics(topics).items()},
            max_string_length=settings.max_string_length,
        )
    except FastPathUnavailable as exc:
        if settings.fast_path == "require":
            raise SettingsError(f"IVMTR_FAST_PATH=require: {exc}") from exc
        log.warning(
            "native fast path unavailable; every record takes the Python path", why=str(exc)
        )
        return None


class IngestService:
    """Publisher, routing, ingest, group watcher and (in spool mode) the spool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = TopicTable.build(settings.topic_prefix)
        self.feeds = _load_feeds(settings)
        self.address: str | None = None  # of this process, once it shares the slots
        self._build_writers(_fast_path(settings, self.topics))
        self.spool: Spool | None = None
        self.spool_worker: SpoolWorker | None = None
        if settings.ack_mode == "spool":
            self.spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
            self.spool_worker = SpoolWorker(self.spool, self._publish_spooled)
        self._connecting: asyncio.Task[None] | None = None
        self.connected = False
        self.metrics = Metrics()
        self.metrics.sample(self._gauges, self._counters)

    def _build_writers(
        self, fast_path: ScanFastPath | None, registry_ids: Mapping[str, int] | None = None
    ) -> None:
        """Build what writes to ``self.topics`` and the feeds' own topics: publisher,
        routing, ingest and group watcher.

        A topic's wire format is fixed when it is built; with a schema registry, ``_connect``
        builds the topics again under the registry's ids, and this again before anything
        has started. ``fast_path`` depends on the schemas alone, which that does not change.
        """
        settings = self.settings
        self.routing = Routing(self.topics, self.feeds, registry_ids)
        self.publisher = Publisher(
            kafka_config(settings),
            self.topics,
            extra_topics=self.routing.overrides,
            transactional_id_prefix=settings.transactional_id_prefix,
            timeout_s=settings.kafka_timeout_s,
            log_limits=DeliveryLogLimits(
                retention_days=settings.delivery_retention_days,
                max_keys=settings.delivery_log_max_keys,
            ),
            address=self.address,
        )
        self.ingest = MessageIngest(
            self.publisher,
            self.topics.deliveries,
            record_shapes(),
            limits=ingest_limits(settings),
            kafka_timeout_s=settings.kafka_timeout_s,
            replica_id=settings.replica_id,
            fast_path=fast_path,
            flat_records=record_scanner(settings.fast_path),
        )
        self.watcher = GroupWatcher(
            self.publisher,
            timeout_s=settings.group_timeout_s,
            interval_s=settings.group_check_interval_s,
            replica_id=settings.replica_id,
        )

    def _gauges(self) -> dict[str, float]:
        values = {
            "ivmtr_incomplete_message_groups": float(self.watcher.incomplete_groups),
            "ivmtr_kafka_connected": float(self.connected and self.publisher.log.failure is None),
            "ivmtr_delivery_log_entries": float(self.publisher.log.entries),
            "ivmtr_owned_delivery_slots": float(self.publisher.owned_slots),
        }
        if self.spool is not None:
            values["ivmtr_spool_entries"] = float(len(self.spool.entries()))
        return values

    def _counters(self) -> dict[str, dict[str, float]]:
        deliveries = self.publisher.log
        slots = self.publisher.stats
        return {
            "ivmtr_delivery_log_evictions": {
                "cap": deliveries.evicted,
                "retention": deliveries.expired,
            },
            "ivmtr_delivery_slot_takeovers": dict(slots.takeovers),
            "ivmtr_fenced_transactions": {"": slots.fenced},
            "ivmtr_aborted_transactions": dict(slots.aborted),
            "ivmtr_slot_rebalances": {"": self.publisher.rebalances},
        }

    def advertise(self, address: str) -> None:
        """Share the delivery slots with the service's other processes (call before start):
        ``address`` is where they forward this process the messages of its slots.

        Not in spool mode: a spooled message is published later, away from its request, so
        there every process takes the slot of the message at hand (README, Scaling).
        """
        if self.spool is None:
            self.address = address
            self.publisher.address = address

    def kafka_budget(self) -> WaitBudget:
        """One request's time to wait for Kafka (``IVMTR_KAFKA_TIMEOUT_S``), for every wait
        of the request: pass the same one to ``owner_of`` and ``accept``."""
        return WaitBudget(self.settings.kafka_timeout_s)

    async def owner_of(
        self, msg_grp_id: str, msg_ser_nbr: int, budget: WaitBudget | None = None
    ) -> str | None:
        """Where a message's delivery slot is owned: None here, else the owner's internal
        address. Unavailable while the slots cannot be dealt (within ``budget``)."""
        try:
            return await self.publisher.owner_of(message_key(msg_grp_id, msg_ser_nbr), budget)
        except PublishError as exc:
            raise Unavailable(str(exc)) from exc

    async def start(self) -> None:
        """Connect to Kafka. In spool mode the service takes pushes while Kafka is away."""
        if self.spool_worker is None:
            await self._connect()
            return
        self._connecting = asyncio.create_task(self._connect_until_done(), name="kafka-connect")
        await self.spool_worker.start()

    async def _register_schemas(self) -> dict[str, int]:
        """Register the value schema of every topic written to, the defaults and the feeds'
        own: topic name -> schema registry id."""
        settings = self.settings
        config = registry_config(settings)
        assert config is not None
        schemas = {**self.topics.schemas(), **override_schemas(self.feeds, self.topics)}
        try:
            async with RegistryClient(config) as client:
                ids = await register_schemas(client, schemas)
        except RegistryError as exc:
            log.error(
                "schema registry refused or unreachable",
                url=settings.schema_registry_url,
                error=str(exc),
            )
            raise
        log.info("schemas registered", ids=ids)
        return ids

    async def _connect(self) -> None:
        settings = self.settings
        if settings.schema_registry_url is not None:
            ids = await self._register_schemas()
            # Topics write the Confluent wire format when built with ids: build them again.
            self.topics = TopicTable.build(settings.topic_prefix, registry_ids=ids)
            self._build_writers(self.ingest.fast_path, ids)
        if settings.create_topics:
            created = await ensure_topics(
                settings.kafka_bootstrap_servers, topic_specs(settings, self.topics)
            )
            if created:
                log.info("topics created", topics=created)
        await self.publisher.start()
        await self.watcher.start()
        self.connected = True

    async def _connect_until_done(self) -> None:
        while True:
            try:
                await self._connect()
                return
            except (PublishError, OSError, TimeoutError) as exc:
                log.warning("Kafka not reachable yet", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(self.settings.retry_after_s)

    async def stop(self) -> None:
        """Stop background work and the producers; in-flight requests have ended."""
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self.spool_worker is not None:
            await self.spool_worker.stop()
        await self.watcher.stop()
        await self.publisher.stop()

    async def accept(
        self,
        body: AsyncIterator[bytes],
        *,
        feed: str,
        request_id: str,
        on_records: Callable[[int], None] | None = None,
        on_open: Callable[[], None] | None = None,
        budget: WaitBudget | None = None,
    ) -> IngestSummary:
        """Take one pushed message, its body already decoded: the summary once Kafka
        committed it, or (spool mode) once it is on disk, with status SPOOLED.

        ``on_records`` is told how many records each chunk brought (admission control),
        ``on_open`` when the message's transaction is open on its slot. ``budget``: the
        request's time to wait for Kafka, all waits together (a fresh one by default).
        SlotElsewhere when the slot is another process's; Unavailable (503) once the budget
        is spent.
        """
        route = self.routing.route(feed)
        if self.spool is None:
            return await self.ingest.ingest(
                body, route, on_records=on_records, on_open=on_open, budget=budget
            )
        entry = await self.spool.put(body, feed=feed, content_encoding=None, request_id=request_id)
        try:
            summary = await self.ingest.check(entry.body(), route)
        except BaseException:
            self.spool.discard(entry)
            raise
        await self.spool.keep(entry)
        assert self.spool_worker is not None
        self.spool_worker.wake()
        return summary

    async def _publish_spooled(self, entry: SpoolEntry) -> None:
        # The feed as configured now: a feed removed from the file since publishes as auto.
        # Entries written before bodies were decoded on arrival still name their coding.
        summary = await self.ingest.ingest(
            decoded_body(
                entry.body(),
                entry.content_encoding,
                max_body_bytes=self.settings.max_body_bytes,
                max_decompressed_bytes=self.settings.max_decompressed_bytes,
            ),
            self.routing.route(entry.feed),
            received_at_ms=entry.received_at_ms,
        )
        log.info(
            "spooled message published",
            request_id=entry.request_id,
            feed=entry.feed,
            msg_grp_id=summary.msg_grp_id,
            msg_ser_nbr=summary.msg_ser_nbr,
            received=summary.received,
            duplicate=summary.duplicate,
        )

    async def readiness(self) -> dict[str, Any]:
        """Why the service is not ready, or {} when it is."""
        if not self.connected:
            return {"kafka": "not connected yet"}
        try:
            missing = await missing_topics(
                self.settings.kafka_bootstrap_servers,
                [t.name for t in self.topics],
                timeout_ms=3000,
            )
        except (PublishError, TimeoutError) as exc:
            return {"kafka": str(exc) or "unreachable"}
        return {"missing_topics": missing} if missing else {}


@contextlib.asynccontextmanager
async def running(service: IngestService) -> AsyncIterator[IngestService]:
    """Start the service, and stop it on the way out."""
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
