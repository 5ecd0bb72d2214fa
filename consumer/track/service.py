"""``ivmtr-stream track`` wired from the settings: topics, schemas, the tracker, its HTTP.

Explicit ``start()`` and ``stop()``. The HTTP side serves ``/metrics``, ``/healthz`` (the
process is up) and ``/readyz`` (200 once this tracker holds its partitions' state).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
import uvicorn
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consumer.http.server import QuietServer
from consumer.service import kafka_config, registered_schemas, registry_config, topic_specs
from consumer.settings import Settings
from consumer.track.alerts import AlertRules
from consumer.track.metrics import tracker_registry
from consumer.track.scans import ScanReader, ValueReader
from consumer.track.tracker import Tracker, TrackerConfig, TrackerError
from producer import PublishError, Schema, TopicSpec, TopicTable, TrackTopics, ensure_topics
from producer.registry import RegistryClient, RegistryError, register_schemas

__all__ = ["TrackService", "alert_rules", "partition_count", "track_app", "track_topic_specs"]

log = structlog.get_logger()


def alert_rules(settings: Settings) -> AlertRules:
    """The alert thresholds out of the settings."""
    return AlertRules(
        stall_hours=settings.track_stall_hours,
        stall_hours_by_campaign=dict(settings.track_stall_hours_by_campaign),
    )


def track_topic_specs(settings: Settings, track: TrackTopics, partitions: int) -> list[TopicSpec]:
    """The status topic is compacted and has the scan topics' partition count."""
    return [
        TopicSpec(
            track.piece_status.name,
            partitions,
            settings.topic_replication_factor,
            (("cleanup.policy", "compact"),),
        ),
        TopicSpec(track.alerts.name, partitions, settings.topic_replication_factor),
    ]


class TrackService:
    """The tracker and its HTTP endpoints, built from the settings alone."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.scan_topics = TopicTable.build(settings.topic_prefix)
        self.track_topics = TrackTopics.build(settings.topic_prefix)
        self.tracker: Tracker | None = None
        self._server: Any = None
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Topics and schemas first, then the tracker joins its group, then HTTP.

        TrackerError when Kafka or the registry cannot be reached, or the topics do not fit.
        """
        try:
            await self._start()
        except (KafkaError, PublishError, OSError) as exc:
            raise TrackerError(
                f"cannot start tracking with Kafka at {self.settings.kafka_bootstrap_servers}: "
                f"{exc or type(exc).__name__}"
            ) from exc

    async def _start(self) -> None:
        settings = self.settings
        readers: dict[int, Schema] = {}
        registry = registry_config(settings)
        if registry is not None:
            try:
                async with RegistryClient(registry) as client:
                    ids = await register_schemas(client, self.track_topics.schemas())
            except RegistryError as exc:
                raise TrackerError(f"schema registry: {exc}") from exc
            self.track_topics = TrackTopics.build(settings.topic_prefix, registry_ids=ids)
            readers = await registered_schemas(settings, self.scan_topics)
            readers.update(
                {ids[topic.name]: topic.schema for topic in self.track_topics if topic.name in ids}
            )
        if settings.create_topics:
            scans = topic_specs(settings, self.scan_topics)
            partitions = await partition_count(
                settings.kafka_bootstrap_servers, self.scan_topics.piece_scans.name
            )
            specs = [
                *scans,
                *track_topic_specs(
                    settings, self.track_topics, partitions or settings.topic_partitions
                ),
            ]
            created = await ensure_topics(settings.kafka_bootstrap_servers, specs)
            if created:
                log.info("topics created", topics=created)
        config = TrackerConfig(
            kafka=kafka_config(settings),
            group_id=settings.track_group_id,
            scan_topics=(self.scan_topics.piece_scans.name, self.scan_topics.bundle_scans.name),
            transactional_id_prefix=settings.transactional_id_prefix,
            rules=alert_rules(settings),
            check_interval_s=settings.track_check_interval_s,
        )
        scan_schemas = [self.scan_topics.piece_scans.schema, self.scan_topics.bundle_scans.schema]
        self.tracker = Tracker(
            config,
            self.track_topics,
            ScanReader(scan_schemas, readers),
            ValueReader([self.track_topics.piece_status.schema], readers),
        )
        await self.tracker.start()
        await self._serve()

    async def run(self) -> None:
        """Track until cancelled or stopped."""
        assert self.tracker is not None
        await self.tracker.run()

    async def stop(self) -> None:
        """Leave the group, close the producers, stop serving; idempotent."""
        if self.tracker is not None:
            await self.tracker.stop()
        server, task, self._server, self._serving = self._server, self._serving, None, None
        if server is not None and task is not None:
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)

    async def _serve(self) -> None:
        assert self.tracker is not None
        settings = self.settings
        config = uvicorn.Config(
            track_app(self.tracker),
            host=settings.track_host,
            port=settings.track_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = QuietServer(config)
        self._serving = asyncio.create_task(self._server.serve(), name="track-http")
        while not self._server.started:
            if self._serving.done():
                self._serving.result()
                raise TrackerError(f"cannot listen on {settings.track_host}:{settings.track_port}")
            await asyncio.sleep(0.01)
        log.info(
            "tracker metrics listening",
            url=f"http://{settings.track_host}:{settings.track_port}/metrics",
        )


def track_app(tracker: Tracker) -> Starlette:
    """/metrics, /healthz and /readyz of one tracker."""
    registry = tracker_registry(tracker)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = tracker.is_ready
        body = {"status": "ready" if ready else "not ready", "partitions": tracker.owned}
        return JSONResponse(body, status_code=200 if ready else 503)

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )


async def partition_count(bootstrap_servers: str, topic: str) -> int | None:
    """Partition count of an existing topic; None when it does not exist."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        await consumer.start()
        metadata = await consumer._client.fetch_all_metadata()
        partitions = metadata.partitions_for_topic(topic)
        return len(partitions) if partitions else None
    finally:
        await consumer.stop()
