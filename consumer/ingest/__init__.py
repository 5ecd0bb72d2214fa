"""Ingest: pushed messages (and API backfill) through the pipeline into Kafka transactions.

``message`` publishes one pushed message; ``spool`` keeps bodies on disk in spool mode;
``group_watch`` writes message-group receipts; ``backfill`` publishes API scans.
"""

from consumer.ingest.message import IngestSummary, MessageIngest

__all__ = ["IngestSummary", "MessageIngest"]
