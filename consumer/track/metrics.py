"""The tracker's Prometheus metrics, read from it when scraped (a registry of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumer.track.tracker import TrackerStats

__all__ = ["tracker_registry"]


class _Tracked(Protocol):
    stats: TrackerStats

    @property
    def owned(self) -> list[int]: ...

    def pieces(self) -> dict[int, int]: ...

    def watched(self) -> int: ...

    def lag(self) -> dict[tuple[str, int], int]: ...


class _TrackerCollector(Collector):
    def __init__(self, tracker: _Tracked) -> None:
        self._tracker = tracker

    def collect(self) -> Iterator[Metric]:
        tracker, stats = self._tracker, self._tracker.stats
        lag = GaugeMetricFamily(
            "ivmtr_tracker_lag_scans",
            "Scan events on the topic not yet tracked, per owned partition (as of the last fetch).",
            labels=["topic", "partition"],
        )
        for (topic, partition), value in sorted(tracker.lag().items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag
        pieces = GaugeMetricFamily(
            "ivmtr_tracker_pieces",
            "Pieces whose status this tracker holds, per owned partition (state size).",
            labels=["partition"],
        )
        for partition, count in sorted(tracker.pieces().items()):
            pieces.add_metric([str(partition)], count)
        yield pieces
        yield GaugeMetricFamily(
            "ivmtr_tracker_watched_pieces",
            "Undelivered pieces the wall-clock rules (STALLED, LATE) can still change.",
            value=tracker.watched(),
        )
        yield GaugeMetricFamily(
            "ivmtr_tracker_owned_partitions",
            "Partitions this tracker owns.",
            value=len(tracker.owned),
        )
        scans = CounterMetricFamily(
            "ivmtr_tracker_scans",
            "Scan events read: applied to a status, repeated (an event id seen before), "
            "unreadable (not a piece or bundle scan of a known schema).",
            labels=["result"],
        )
        for result in ("applied", "repeated", "unreadable"):
            scans.add_metric([result], stats.scans[result])
        yield scans
        alerts = CounterMetricFamily(
            "ivmtr_tracker_alerts", "Alerts raised, by kind.", labels=["kind"]
        )
        for kind in ("DELIVERED", "STALLED", "LATE", "SCAN_AFTER_DELIVERY"):
            alerts.add_metric([kind], stats.alerts[kind])
        yield alerts
        yield CounterMetricFamily(
            "ivmtr_tracker_status_updates", "Statuses written.", value=stats.status_updates
        )
        transactions = CounterMetricFamily(
            "ivmtr_tracker_transactions",
            "Transactions: committed, failed (the partition is taken back from its committed "
            "state) or fenced (another tracker took the partition).",
            labels=["result"],
        )
        for result in ("committed", "failed", "fenced"):
            transactions.add_metric([result], stats.transactions[result])
        yield transactions
        yield CounterMetricFamily(
            "ivmtr_tracker_rebalances", "Partition assignments received.", value=stats.rebalances
        )
        yield CounterMetricFamily(
            "ivmtr_tracker_restored_records",
            "Status records read back from the status topic.",
            value=stats.restored_records,
        )
        yield CounterMetricFamily(
            "ivmtr_tracker_restore_seconds",
            "Time spent reading state back from the status topic.",
            value=stats.restore_seconds,
        )


def tracker_registry(tracker: _Tracked) -> CollectorRegistry:
    """A registry holding the tracker's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_TrackerCollector(tracker))
    return registry
