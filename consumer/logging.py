"""structlog configuration and our processors (plain functions in the pipeline)."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from aiokafka.errors import KafkaError

__all__ = ["RetriedKafkaErrors", "configure_logging", "redact_secrets"]

_SECRET_KEYS = frozenset({"authorization", "password", "secret", "token", "proxy-authorization"})


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values whose key names a secret, wherever a caller put one."""
    for key in event:
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
    return event


class RetriedKafkaErrors(logging.Filter):
    """Log aiokafka's errors that it retries by itself as warnings, not errors.

    aiokafka logs a retriable error (a coordinator not yet elected on a fresh broker, a
    partition leader moving, a connection dropped) at error level and then retries it;
    most heal within a second. An operator reading error lines should find only what
    needs them: when retrying does not help, the service's own lines and metrics say so
    (``kafka_unavailable`` answers, ``ivmtr_kafka_connected``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.name.startswith("aiokafka"):
            args = record.args if isinstance(record.args, tuple) else ()
            if any(_is_retriable(arg) for arg in args):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _is_retriable(value: object) -> bool:
    """Whether ``value`` is a Kafka error (instance or class) that is retried."""
    is_error = isinstance(value, KafkaError) or (
        isinstance(value, type) and issubclass(value, KafkaError)
    )
    return is_error and bool(getattr(value, "retriable", False))


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog once at start-up: JSON lines, or console output on a terminal."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info
            if as_json
            else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries (aiokafka, uvicorn) log through the standard library: render their lines
    # the same way, so a JSON log stays JSON.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(RetriedKafkaErrors())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.getLevelNamesMapping()[level])
    # aiokafka retries transient errors (e.g. a leader election) and logs each at INFO.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
