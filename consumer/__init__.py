"""The ingest service: IV-MTR pushes in, validated and enriched scan events out.

The HTTP app is ``consumer.http.app.create_app``; the command line is ``consumer.cli``.
"""

from consumer.errors import (
    IngestError,
    InvalidEnvelope,
    LimitExceeded,
    MalformedMessage,
    NestingTooDeep,
    RecordTooLarge,
    RequestTimeout,
    Unavailable,
    UnknownFeed,
    UnsupportedEncoding,
    UnsupportedMediaType,
)
from consumer.settings import Settings, SettingsError, load_settings

__all__ = [
    "IngestError",
    "InvalidEnvelope",
    "LimitExceeded",
    "MalformedMessage",
    "NestingTooDeep",
    "RecordTooLarge",
    "RequestTimeout",
    "Settings",
    "SettingsError",
    "Unavailable",
    "UnknownFeed",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
    "load_settings",
]
