"""The ASGI application: routes, the error handler, and the lifespan that runs the service.

One way through a push: authenticate, check the media type, admit, then read the body
with its time limits, meter it, decode it, and hand the service the plain bytes. Domain
errors raised anywhere on that way are answered by one Starlette exception handler.
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumer.core.content import decoded_body
from consumer.core.status import MessageStatus
from consumer.errors import IngestError, Unavailable, UnknownFeed, UnsupportedMediaType
from consumer.feeds import FEED_NAME, FailureThrottle, ThrottlePolicy, TooManyFailures
from consumer.http.admission import Admission
from consumer.http.auth import FeedAuthenticator, PasswordCheckPool
from consumer.http.body import timed_body
from consumer.http.errors import (
    json_response,
    refusal_response,
    routing_error_response,
    status_of,
)
from consumer.http.forward import HOP_HEADER, BodyTee, Forwarder, HopSigner, body_head
from consumer.http.openapi import openapi_document
from consumer.http.server import InternalListener
from consumer.ingest import IngestSummary
from consumer.metrics import Metrics
from consumer.service import IngestService
from consumer.settings import Settings
from producer.errors import SlotElsewhere

__all__ = ["create_app"]

log = structlog.get_logger()


def answer_status(summary: IngestSummary) -> int:
    """200 once committed to Kafka; 202 once only on the local spool."""
    return 202 if summary.status is MessageStatus.SPOOLED else 200


def record_outcome(metrics: Metrics, feed: str, summary: IngestSummary, elapsed: float) -> None:
    """Count one answered message."""
    metrics.messages.labels(feed, summary.status.lower()).inc()
    metrics.request_seconds.labels(feed, str(answer_status(summary))).observe(elapsed)
    if summary.duplicate or summary.status is MessageStatus.SPOOLED:
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


def _hop_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client that streams messages to their slot's owner."""
    verify: ssl.SSLContext | bool = True
    if settings.internal_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.internal_ca_file))
    return httpx.AsyncClient(
        # The owner answers once Kafka committed the message: as long as the body may take.
        timeout=httpx.Timeout(settings.body_timeout_s, connect=5.0),
        limits=httpx.Limits(max_connections=settings.max_concurrent_requests),
        verify=verify,
    )


UNKNOWN_FEED_LABEL = "(unknown)"
"""The ``feed`` label of refusals whose URL names no feed of the feeds file."""


def create_app(settings: Settings, service: IngestService | None = None) -> Starlette:
    """Build the application; Kafka is connected by the lifespan, not here."""
    service = service or IngestService(settings)
    authenticator = FeedAuthenticator(
        service.feeds,
        throttle=FailureThrottle(
            ThrottlePolicy(
                failure_limit=settings.auth_failure_limit,
                window_s=settings.auth_failure_window_s,
                lockout_s=settings.auth_lockout_s,
                max_lockout_s=settings.auth_lockout_max_s,
                max_clients=settings.auth_tracked_clients,
            )
        ),
        pool=PasswordCheckPool(
            settings.auth_hash_threads,
            settings.auth_hash_queue,
            retry_after_s=max(1, math.ceil(settings.auth_refusal_delay_s)),
        ),
        refusal_delay_s=settings.auth_refusal_delay_s,
    )
    admission = Admission(
        max_requests=settings.max_concurrent_requests,
        max_bytes=settings.max_inflight_bytes,
        max_records=settings.max_inflight_records,
        retry_after_s=settings.retry_after_s,
    )
    metrics = service.metrics
    metrics.sample(
        lambda: {
            "ivmtr_inflight_requests": float(admission.requests),
            "ivmtr_inflight_bytes": float(admission.body_bytes),
            "ivmtr_inflight_records": float(admission.records),
        }
    )
    metrics.sample(
        lambda: {
            "ivmtr_auth_checks_running": float(authenticator.pool.running),
            "ivmtr_auth_checks_waiting": float(authenticator.pool.waiting),
            "ivmtr_auth_tracked_clients": float(len(authenticator.throttle)),
        },
        lambda: {
            "ivmtr_auth_failures": authenticator.failures_by_feed,
            "ivmtr_auth_throttled": {"": authenticator.throttled},
            "ivmtr_auth_lockouts": {"": authenticator.throttle.lockouts},
        },
    )

    signer = HopSigner(service.feeds)
    forwarder = Forwarder(_hop_client(settings), signer, settings.replica_id)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The same app on this process's own port, for messages of its delivery slots
        # that other processes received (consumer.http.forward).
        listener = InternalListener(app, settings)
        try:
            authenticator.start()
            if service.spool is None:
                service.advertise(await listener.start())
            await service.start()
            log.info(
                "service started",
                settings=settings.model_dump(mode="json"),
                internal_address=service.address,
            )
            if service.feeds is None:
                log.warning("INSECURE DEVELOPMENT MODE: any feed is accepted without credentials")
            yield
        finally:
            # Messages forwarded to us end first; they need the service.
            await listener.stop()
            await service.stop()
            authenticator.stop()
            await forwarder.client.aclose()
            log.info("service stopped")

    async def hand_on(
        request: Request, owner: str, tee: BodyTee, hop: str | None, feed: str, request_id: str
    ) -> Response:
        """The answer of the process owning the message's slot, to which it is streamed."""
        if hop is not None:
            # Never a second hop: the slot moved while the message travelled.
            raise Unavailable("the message's delivery slot moved while it was forwarded; retry")
        started = time.perf_counter()
        try:
            answer = await forwarder.forward(
                owner,
                feed,
                request_id,
                tee.replay(),
                content_type=request.headers.get("content-type", "application/json"),
                content_encoding=request.headers.get("content-encoding"),
            )
        except Unavailable:
            metrics.forwarded.labels(feed, "unreachable").inc()
            raise
        metrics.forwarded.labels(feed, str(answer.status_code)).inc()
        log.info(
            "message forwarded",
            owner=owner,
            status=answer.status_code,
            replica=settings.replica_id,
            duration_s=round(time.perf_counter() - started, 4),
        )
        return answer

    async def push(request: Request) -> Response:
        feed = request.path_params["feed"]
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id, request.state.started = request_id, time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id, feed=feed)
        try:
            if not FEED_NAME.fullmatch(feed):
                raise UnknownFeed("no such feed")
            if service.feeds is None:
                log.warning("insecure development mode: push accepted without authentication")
            hop = request.headers.get(HOP_HEADER)
            if hop is not None:
                # Forwarded by another process of ours, which authenticated the sender.
                signer.check(hop, feed, request_id)
            else:
                client = request.client
                await authenticator.check(
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
            with admission.request() as ticket:
                tee = BodyTee(
                    timed_body(
                        request.stream(),
                        idle_s=settings.read_timeout_s,
                        total_s=settings.body_timeout_s,
                    )
                )
                body = decoded_body(
                    ticket.metered(tee.chunks()),
                    request.headers.get("content-encoding"),
                    max_body_bytes=settings.max_body_bytes,
                    max_decompressed_bytes=settings.max_decompressed_bytes,
                )
                # One bound on all of this request's waits for Kafka (IVMTR_KAFKA_TIMEOUT_S).
                budget = service.kafka_budget()
                if service.address is None:
                    tee.release()  # one process takes every slot: nothing is forwarded
                else:
                    coordinates, body = await body_head(body)
                    if coordinates is not None:
                        owner = await service.owner_of(*coordinates, budget)
                        if owner is not None:
                            return await hand_on(request, owner, tee, hop, feed, request_id)
                        tee.release()
                try:
                    summary = await service.accept(
                        body,
                        feed=feed,
                        request_id=request_id,
                        on_records=ticket.take_records,
                        on_open=tee.release,
                        budget=budget,
                    )
                except SlotElsewhere as exc:
                    # The coordinates came late in the body, or the slot just moved.
                    if not tee.keeping:
                        raise Unavailable(f"{exc}; retry") from exc
                    return await hand_on(request, exc.owner, tee, hop, feed, request_id)
            elapsed = time.perf_counter() - request.state.started
            record_outcome(metrics, feed, summary, elapsed)
            status = answer_status(summary)
            log.info(
                "message spooled" if status == 202 else "message published",
                outcome=summary.status.lower(),
                # With several replicas or workers, which one took the message.
                replica=settings.replica_id,
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
        except IngestError:
            raise  # answered by ``refused``
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

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IngestError)
        feed = request.path_params.get("feed", "")
        # The path is the client's: a flood of made-up feed names must not become as many
        # label values (series) in every scrape. The log line keeps the name.
        label = feed
        if service.feeds is not None and feed not in service.feeds.feeds:
            label = UNKNOWN_FEED_LABEL
        request_id = request.state.request_id
        elapsed = time.perf_counter() - request.state.started
        status = status_of(exc)
        metrics.messages.labels(label, "refused").inc()
        metrics.refused.labels(label, exc.code).inc()
        metrics.request_seconds.labels(label, str(int(status))).observe(elapsed)
        if isinstance(exc, Unavailable) and exc.code == "kafka_unavailable":
            metrics.kafka_errors.labels(exc.code).inc()
        # A locked-out client may keep asking; its lockout was logged once, when it began.
        log.log(
            logging.DEBUG if isinstance(exc, TooManyFailures) else logging.WARNING,
            "message refused",
            request_id=request_id,
            feed=feed,
            outcome="refused",
            error=exc.code,
            detail=exc.detail,
            status=int(status),
            duration_s=round(elapsed, 4),
        )
        return refusal_response(exc, request_id, settings.retry_after_s)

    async def not_routed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        return routing_error_response(exc, request.method, request.url.path, request_id)

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
        exception_handlers={IngestError: refused, HTTPException: not_routed},
        lifespan=lifespan,
    )
