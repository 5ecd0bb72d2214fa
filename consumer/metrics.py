"""Prometheus metrics of the service, in a registry of its own (no process-wide globals)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumer.errors import Unavailable

__all__ = ["KAFKA_ERROR_CODES", "Metrics"]

# The codes ``ivmtr_kafka_errors_total`` counts (consumer.http.app counts Unavailable only).
KAFKA_ERROR_CODES = (Unavailable.code,)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _Sampled(Collector):
    """Gauges, and counters kept by the service's parts, read from them when scraped."""

    def __init__(
        self,
        read: Callable[[], dict[str, float]],
        counters: Callable[[], Mapping[str, Mapping[str, float]]] | None = None,
    ) -> None:
        self._read = read
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        helps = {
            "ivmtr_inflight_requests": "Pushes being handled now.",
            "ivmtr_inflight_bytes": "Body bytes of the pushes being handled now.",
            "ivmtr_inflight_records": "Records of the pushes being handled now.",
            "ivmtr_incomplete_message_groups": "Message groups with messages still missing.",
            "ivmtr_spool_entries": "Messages spooled and not yet published (ack_mode=spool).",
            "ivmtr_kafka_connected": "1 when the service is connected to Kafka.",
            "ivmtr_delivery_log_entries": "Message receipts the delivery log holds in memory "
            "to recognise re-sent messages.",
            "ivmtr_owned_delivery_slots": "Delivery slots the slot group dealt this process "
            "and it holds a producer for (not found fenced out of by another process).",
            "ivmtr_auth_checks_running": "Password checks (scrypt) on the password-check "
            "threads now.",
            "ivmtr_auth_checks_waiting": "Password checks waiting for a password-check thread "
            "(past IVMTR_AUTH_HASH_QUEUE pushes get 503 auth_busy).",
            "ivmtr_auth_tracked_clients": "Client addresses with failed password checks on "
            "record (at most IVMTR_AUTH_TRACKED_CLIENTS).",
        }
        values = self._read()
        for name, text in helps.items():
            if name in values:
                yield GaugeMetricFamily(name, text, value=values[name])
        if self._counters is None:
            return
        # name -> (label or None, help); the values are name -> {label value: count}, and
        # {"": count} for a counter without a label.
        counter_helps: dict[str, tuple[str | None, str]] = {
            "ivmtr_delivery_log_evictions": (
                "reason",
                "Message receipts the delivery log dropped: cap (delivery_log_max_keys, "
                "oldest first) or retention (older than delivery_retention_days).",
            ),
            "ivmtr_delivery_slot_takeovers": (
                "reason",
                "Producers started for a delivery slot, each fencing the slot's previous "
                "holder: start (the slots dealt at start-up), assigned (dealt at a later "
                "rebalance) or replaced (taken back after this process was fenced out of it, "
                "or its producer failed).",
            ),
            "ivmtr_slot_rebalances": (
                None,
                "Times the slot group dealt this process its delivery slots (joins, leaves "
                "and crashes of the service's processes).",
            ),
            "ivmtr_fenced_transactions": (
                None,
                "Transactions of this process ended because another replica or worker took "
                "their delivery slot: one still claiming the slot is retried on a new producer, "
                "a message already under way is answered 503.",
            ),
            "ivmtr_aborted_transactions": (
                "reason",
                "Transactions aborted: duplicate (a re-sent message) or failed (anything "
                "else, fencing included).",
            ),
            "ivmtr_auth_failures": (
                "feed",
                "Wrong passwords found by a password check (scrypt), by feed.",
            ),
            "ivmtr_auth_throttled": (
                None,
                "Pushes answered 429 too_many_failures without a password check: their client "
                "address was locked out after failed checks.",
            ),
            "ivmtr_auth_lockouts": (
                None,
                "Times a client address was locked out (IVMTR_AUTH_FAILURE_LIMIT failures "
                "within IVMTR_AUTH_FAILURE_WINDOW_S).",
            ),
        }
        counts = self._counters()
        for name, (label, text) in counter_helps.items():
            if name not in counts:
                continue
            if label is None:
                yield CounterMetricFamily(name, text, value=counts[name][""])
                continue
            family = CounterMetricFamily(name, text, labels=[label])
            for value, count in sorted(counts[name].items()):
                family.add_metric([value], count)
            yield family


class Metrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.messages = Counter(
            "ivmtr_messages",
            "Pushed messages by feed and outcome "
            "(published, duplicate, conflict, spooled, refused).",
            ["feed", "outcome"],
            registry=registry,
        )
        self.records = Counter(
            "ivmtr_records",
            "Records of pushed messages by feed, kind and outcome (published, rejected).",
            ["feed", "kind", "outcome"],
            registry=registry,
        )
        self.fast_path_records = Counter(
            "ivmtr_fast_path_records",
            "Records the native fast path took whole (the rest took the Python path).",
            ["feed"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "ivmtr_dead_letters",
            "Dead-lettered records by the field at fault (record when none).",
            ["feed", "field"],
            registry=registry,
        )
        self.refused = Counter(
            "ivmtr_refused_messages",
            "Messages refused as a whole, by error code.",
            ["feed", "error"],
            registry=registry,
        )
        self.received_bytes = Counter(
            "ivmtr_received_bytes", "Decompressed body bytes received.", ["feed"], registry=registry
        )
        self.forwarded = Counter(
            "ivmtr_forwarded_messages",
            "Messages handed to the process owning their delivery slot, by the owner's answer "
            "status (unreachable: no answer, the sender got 503).",
            ["feed", "status"],
            registry=registry,
        )
        self.kafka_errors = Counter(
            "ivmtr_kafka_errors",
            "Requests that failed because of Kafka.",
            ["error"],
            registry=registry,
        )
        # The error codes are a closed set: exported at 0 from the start, so that a rate of
        # them is 0 rather than no data on a service that has had no Kafka error yet.
        for code in KAFKA_ERROR_CODES:
            self.kafka_errors.labels(code)
        self.message_problems = Counter(
            "ivmtr_message_problems",
            "Count mismatches and conflicts reported in receipts (the data is published).",
            ["feed", "problem"],
            registry=registry,
        )
        self.campaign_scans = Counter(
            "ivmtr_campaign_scans", "Scan events by campaign.", ["campaign"], registry=registry
        )
        self.campaign_deliveries = Counter(
            "ivmtr_campaign_logical_deliveries",
            "Logical delivery events (opcode 517) by campaign: one per delivered piece.",
            ["campaign"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "ivmtr_request_duration_seconds",
            "Time to answer a push.",
            ["feed", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "ivmtr_publish_duration_seconds",
            "Time to flush and commit a message's Kafka transaction.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

    def sample(
        self,
        read: Callable[[], dict[str, float]],
        counters: Callable[[], Mapping[str, Mapping[str, float]]] | None = None,
    ) -> None:
        """Export gauges (``read``), and counters kept elsewhere (``counters``: name ->
        label value -> count), read from the service when Prometheus scrapes."""
        self.registry.register(_Sampled(read, counters))
