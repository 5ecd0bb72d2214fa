"""The ASGI application: routes, the one error handler, and the lifespan that runs Kafka."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumer.core.pipeline import Limits
from consumer.core.records import RecordKind, RecordShape
from consumer.errors import IngestError, UnsupportedMediaType
from consumer.groups import GroupWatcher
from consumer.http.body import decoded_body
from consumer.ingest import MessageIngest
from consumer.settings import Settings
from producer import (
    KafkaConfig,
    Publisher,
    PublishError,
    TopicSpec,
    TopicTable,
    ensure_topics,
    load_schema,
    missing_topics,
)

__all__ = ["create_app", "record_shapes"]

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


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def kafka_config(settings: Settings) -> KafkaConfig:
    """The producer settings out of the service settings."""
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        linger_ms=settings.linger_ms,
        max_batch_bytes=settings.max_batch_bytes,
        compression=None if settings.compression == "none" else settings.compression,
        request_timeout_ms=int(settings.kafka_timeout_s * 1000),
        transaction_timeout_ms=int(settings.transaction_timeout_s * 1000),
    )


def topic_specs(settings: Settings, topics: TopicTable) -> list[TopicSpec]:
    """How to create each topic: the deliveries topic is compacted, one partition per slot."""
    specs = [
        TopicSpec(topic.name, settings.topic_partitions, settings.topic_replication_factor)
        for topic in topics
        if topic is not topics.deliveries
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


def create_app(settings: Settings) -> Starlette:
    """Build the application; Kafka is connected by the lifespan, not here."""
    topics = TopicTable.build(settings.topic_prefix)
    publisher = Publisher(
        kafka_config(settings),
        topics,
        transactional_id_prefix=settings.transactional_id_prefix,
        timeout_s=settings.kafka_timeout_s,
    )
    ingest = MessageIngest(
        publisher,
        topics,
        record_shapes(),
        limits=Limits(
            max_record_bytes=settings.max_record_bytes,
            max_events=settings.max_events_per_message,
            max_string_length=settings.max_string_length,
        ),
        kafka_timeout_s=settings.kafka_timeout_s,
        replica_id=settings.replica_id,
    )

    watcher = GroupWatcher(
        publisher,
        timeout_s=settings.group_timeout_s,
        interval_s=settings.group_check_interval_s,
        replica_id=settings.replica_id,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.create_topics:
            created = await ensure_topics(
                settings.kafka_bootstrap_servers, topic_specs(settings, topics)
            )
            if created:
                log.info("topics created", topics=created)
        await publisher.start()
        await watcher.start()
        log.info(
            "service started",
            host=settings.host,
            port=settings.port,
            settings=settings.model_dump(),
        )
        try:
            yield
        finally:
            await watcher.stop()
            await publisher.stop()
            log.info("service stopped")

    async def push(request: Request) -> Response:
        feed = request.path_params["feed"]
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id, feed=feed)
        try:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json" and not content_type.endswith("+json"):
                raise UnsupportedMediaType(
                    f"Content-Type must be application/json, got {content_type or 'none'!r}"
                )
            body = decoded_body(
                request.stream(),
                request.headers.get("content-encoding"),
                max_body_bytes=settings.max_body_bytes,
                max_decompressed_bytes=settings.max_decompressed_bytes,
            )
            summary = await ingest.ingest(
                body,
                feed=feed,
                kind=settings.feed_kinds.get(feed),
                campaign=settings.feed_campaigns.get(feed),
            )
        except IngestError as exc:
            log.warning("message refused", error=exc.code, detail=exc.detail, status=exc.status)
            headers = {"x-request-id": request_id}
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                headers["retry-after"] = str(retry_after)
            return json_response({**exc.body(), "request_id": request_id}, exc.status, headers)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "feed")
        log.info(
            "message published",
            request_id=request_id,
            feed=feed,
            msg_grp_id=summary.msg_grp_id,
            msg_ser_nbr=summary.msg_ser_nbr,
            received=summary.received,
            published=summary.published,
            rejected=summary.rejected,
            bytes=summary.body_bytes,
        )
        return json_response(summary.as_json(), headers={"x-request-id": request_id})

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            missing = await missing_topics(
                settings.kafka_bootstrap_servers, [t.name for t in topics], timeout_ms=3000
            )
        except (PublishError, TimeoutError) as exc:
            return json_response({"status": "unavailable", "kafka": str(exc) or "unreachable"}, 503)
        if missing:
            return json_response({"status": "unavailable", "missing_topics": missing}, 503)
        return json_response({"status": "ready"})

    return Starlette(
        routes=[
            Route("/v1/feeds/{feed}", push, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
