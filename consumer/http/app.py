"""The ASGI application: routes, the one error handler, and the lifespan that runs the service."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumer.errors import IngestError, Unavailable, UnknownFeed, UnsupportedMediaType
from consumer.http.body import timed_body
from consumer.http.openapi import openapi_document
from consumer.ingest.message import IngestSummary
from consumer.metrics import Metrics
from consumer.service import IngestService
from consumer.settings import Settings

__all__ = ["create_app"]

log = structlog.get_logger()

_FEED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error_response(exc: IngestError, request_id: str, retry_after_s: int) -> Response:
    """The JSON answer of a refused message; a 503 always says when to retry."""
    headers = {"x-request-id": request_id, **getattr(exc, "headers", {})}
    if isinstance(exc, Unavailable):
        headers["retry-after"] = str(exc.retry_after or retry_after_s)
    return json_response({**exc.body(), "request_id": request_id}, exc.status, headers)


def record_outcome(metrics: Metrics, feed: str, summary: IngestSummary, elapsed: float) -> None:
    """Count one answered message."""
    metrics.messages.labels(feed, summary.status.lower()).inc()
    metrics.request_seconds.labels(feed, "202" if summary.status == "SPOOLED" else "200").observe(
        elapsed
    )
    if summary.duplicate or summary.status == "SPOOLED":
        return
    metrics.received_bytes.labels(feed).inc(summary.body_bytes)
    metrics.commit_seconds.observe(summary.commit_seconds)
    for (kind, outcome), count in summary.records_by_kind.items():
        metrics.records.labels(feed, kind, outcome).inc(count)
    metrics.fast_path_records.labels(feed).inc(summary.fast_path_records)
    for field_name, count in summary.rejected_by_field.items():
        metrics.dead_letters.labels(feed, field_name).inc(count)
    for problem in summary.problem_codes:
        metrics.message_problems.labels(feed, problem).inc()
    for campaign, count in summary.campaign_scans.items():
        metrics.campaign_scans.labels(campaign).inc(count)
    for campaign, count in summary.campaign_deliveries.items():
        metrics.campaign_deliveries.labels(campaign).inc(count)


def create_app(settings: Settings, service: IngestService | None = None) -> Starlette:
    """Build the application; Kafka is connected by the lifespan, not here."""
    service = service or IngestService(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        log.info("service started", settings=settings.model_dump(mode="json"))
        if service.feeds is None:
            log.warning("INSECURE DEVELOPMENT MODE: any feed is accepted without credentials")
        try:
            yield
        finally:
            await service.stop()
            log.info("service stopped")

    metrics = service.metrics

    async def push(request: Request) -> Response:
        feed = request.path_params["feed"]
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id, feed=feed)
        try:
            if not _FEED_NAME.fullmatch(feed):
                raise UnknownFeed("no such feed")
            if service.feeds is None:
                log.warning("insecure development mode: push accepted without authentication")
            client = request.client
            await service.authorize(
                feed,
                request.headers.get("authorization"),
                client.host if client is not None else "",
                ",".join(request.headers.getlist("x-forwarded-for")) or None,
            )
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json" and not content_type.endswith("+json"):
                raise UnsupportedMediaType(
                    f"Content-Type must be application/json, got {content_type or 'none'!r}"
                )
            status, summary = await service.accept(
                timed_body(
                    request.stream(),
                    idle_s=settings.read_timeout_s,
                    total_s=settings.body_timeout_s,
                ),
                feed=feed,
                content_encoding=request.headers.get("content-encoding"),
                request_id=request_id,
            )
            elapsed = time.perf_counter() - started
            record_outcome(metrics, feed, summary, elapsed)
            log.info(
                "message spooled" if status == 202 else "message published",
                outcome=summary.status.lower(),
                msg_grp_id=summary.msg_grp_id,
                msg_ser_nbr=summary.msg_ser_nbr,
                received=summary.received,
                published=summary.published,
                rejected=summary.rejected,
                rejected_by_field=dict(summary.rejected_by_field),
                records_by_kind={f"{k}/{o}": n for (k, o), n in summary.records_by_kind.items()},
                problems=summary.problems,
                bytes=summary.body_bytes,
                duration_s=round(elapsed, 4),
            )
            return json_response(summary.as_json(), status, headers={"x-request-id": request_id})
        except IngestError as exc:
            elapsed = time.perf_counter() - started
            metrics.messages.labels(feed, "refused").inc()
            metrics.refused.labels(feed, exc.code).inc()
            metrics.request_seconds.labels(feed, str(exc.status)).observe(elapsed)
            if exc.code == "kafka_unavailable":
                metrics.kafka_errors.labels(exc.code).inc()
            log.warning(
                "message refused",
                outcome="refused",
                error=exc.code,
                detail=exc.detail,
                status=exc.status,
                duration_s=round(elapsed, 4),
            )
            return error_response(exc, request_id, settings.retry_after_s)
        except Exception:
            # A bug: the transaction was aborted on the way out, so nothing was published.
            log.exception("unexpected error", outcome="error")
            metrics.messages.labels(feed, "error").inc()
            return json_response(
                {
                    "error": "internal_error",
                    "detail": "unexpected error; nothing was published, retry later",
                    "request_id": request_id,
                },
                500,
                {"x-request-id": request_id},
            )
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "feed")

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    document = openapi_document(basic_auth=service.feeds is not None)

    async def openapi(request: Request) -> Response:
        return json_response(document)

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems = await service.readiness()
        if problems:
            return json_response({"status": "unavailable", **problems}, 503)
        return json_response({"status": "ready"})

    return Starlette(
        routes=[
            Route("/v1/feeds/{feed}", push, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
