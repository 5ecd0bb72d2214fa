"""Reading statuses back: one piece's (``piece-status``), or every piece's (``campaigns``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from consumer.service import registered_schemas
from consumer.settings import Settings
from consumer.tail.reader import TailError, tail_topic
from consumer.track.service import partition_count
from producer import TrackTopics
from producer.kafka import partition_for

__all__ = ["PieceNotTracked", "format_status", "latest_statuses", "piece_status"]


class PieceNotTracked(Exception):
    """No status for the piece (not scanned yet, or no tracker ran), or no status topic."""


async def _statuses(
    settings: Settings, partitions: list[int] | None = None
) -> AsyncIterator[tuple[str, Any]]:
    track = TrackTopics.build(settings.topic_prefix)
    registry_ids = await registered_schemas(settings, track)
    try:
        async for record in tail_topic(
            settings.kafka_bootstrap_servers,
            track.piece_status.name,
            track,
            partitions=partitions,
            from_beginning=True,
            registry_ids=registry_ids,
        ):
            if record.key is not None and record.kind == "status":
                yield record.key, record.value
    except TailError as exc:
        raise PieceNotTracked(f"{exc} (is `ivmtr-stream track` running?)") from exc


async def latest_statuses(settings: Settings) -> dict[str, Any]:
    """Every piece's latest status: tracking code -> decoded PieceStatus."""
    latest: dict[str, Any] = {}
    async for key, value in _statuses(settings):
        latest[key] = value
    return latest


async def piece_status(settings: Settings, tracking_code: str) -> Any:
    """The latest status of one piece (PieceNotTracked when there is none)."""
    topic = TrackTopics.build(settings.topic_prefix).piece_status.name
    count = await partition_count(settings.kafka_bootstrap_servers, topic)
    if count is None:
        raise PieceNotTracked(f"topic {topic!r} does not exist (is `ivmtr-stream track` running?)")
    partition = partition_for(tracking_code.encode(), count)
    found = None
    async for key, value in _statuses(settings, [partition]):
        if key == tracking_code:
            found = value
    if found is None:
        raise PieceNotTracked(f"no status for piece {tracking_code} in {topic}")
    return found


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int):
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
    return "-"


def _point(point: Any) -> str:
    if not point:
        return "-"
    facility = point.get("facility") or {}
    where = facility.get("name") or (f"ZIP {facility['zip']}" if facility.get("zip") else "-")
    return f"{_when(point['scanned_at'])}  {point.get('event_code') or '-'}  {where}"


def format_status(status: Any) -> str:
    """One piece's status as aligned lines."""
    job = status.get("job") or {}
    rows = [
        ("piece", status["tracking_code"]),
        ("imb", status["imb"]),
        ("state", status["state"]),
        ("scans", str(status["scan_count"])),
        ("first scan", _point(status["first_scan"])),
        ("last scan", _point(status["last_scan"])),
        ("delivered", _when(status.get("delivered_at"))),
        (
            "days in transit",
            str(
                status.get("days_in_transit") if status.get("days_in_transit") is not None else "-"
            ),
        ),
        ("predicted", str(status.get("predicted_delivery_date") or "-")),
        ("anticipated", str(status.get("anticipated_delivery_date") or "-")),
        ("campaign", status.get("campaign") or "-"),
        ("job", job.get("job_id") or "-"),
        ("alerts", ", ".join(status.get("alerts") or ()) or "-"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
