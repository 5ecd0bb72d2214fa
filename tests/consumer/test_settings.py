"""Tests for consumer.settings: the one settings object, from IVMTR_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydantic
import pytest

from consumer.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("IVMTR_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.model_dump() == {
        "host": "127.0.0.1",
        "port": 8080,
        "workers": 1,
        "internal_host": "127.0.0.1",
        "internal_port": 0,
        "advertised_host": None,
        "internal_ca_file": None,
        "kafka_bootstrap_servers": "127.0.0.1:9092",
        "topic_prefix": "ivmtr.",
        "topic_partitions": 6,
        "topic_replication_factor": 1,
        "create_topics": True,
        "replica_id": "0",
        "transactional_id_prefix": "ivmtr-stream",
        "delivery_slots": 16,
        "linger_ms": 0,
        "max_batch_bytes": 512 * 1024,
        "compression": "none",
        "kafka_timeout_s": 30.0,
        "transaction_timeout_s": 300.0,
        "group_timeout_s": 21600.0,
        "group_check_interval_s": 5.0,
        "delivery_retention_days": 30.0,
        "delivery_log_max_keys": 1_000_000,
        "track_group_id": "ivmtr-tracker",
        "track_stall_hours": 72.0,
        "track_stall_hours_by_campaign": {},
        "track_check_interval_s": 60.0,
        "track_host": "127.0.0.1",
        "track_port": 9465,
        "schema_registry_url": None,
        "schema_registry_user": None,
        "schema_registry_password": None,
        "schema_registry_token": None,
        "schema_registry_ca_file": None,
        "ack_mode": "kafka",
        "spool_dir": Path(".local/spool"),
        "spool_max_bytes": 8 << 30,
        "max_concurrent_requests": 64,
        "max_inflight_bytes": 4 << 30,
        "max_inflight_records": 4_000_000,
        "retry_after_s": 5,
        "feeds_file": None,
        "insecure_dev_mode": False,
        "tls_cert_file": None,
        "tls_key_file": None,
        "auth_failure_limit": 10,
        "auth_failure_window_s": 60.0,
        "auth_lockout_s": 60.0,
        "auth_lockout_max_s": 3600.0,
        "auth_tracked_clients": 100_000,
        "auth_hash_threads": 1,
        "auth_hash_queue": 16,
        "auth_refusal_delay_s": 1.0,
        "max_body_bytes": 512 * 1024 * 1024,
        "max_decompressed_bytes": 2 * 1024**3,
        "fast_path": "auto",
        "max_record_bytes": 1024 * 1024,
        "max_events_per_message": 2_000_000,
        "max_string_length": 4096,
        "max_json_depth": 16,
        "read_timeout_s": 30.0,
        "body_timeout_s": 900.0,
        "log_level": "INFO",
        "log_format": "auto",
    }


@pytest.mark.parametrize(
    ("variable", "text", "name", "value"),
    [
        ("IVMTR_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("IVMTR_PORT", "9000", "port", 9000),
        ("IVMTR_PORT", "0", "port", 0),
        (
            "IVMTR_KAFKA_BOOTSTRAP_SERVERS",
            "k1:9092,k2:9092",
            "kafka_bootstrap_servers",
            "k1:9092,k2:9092",
        ),
        ("IVMTR_TOPIC_PREFIX", "acme.usps.", "topic_prefix", "acme.usps."),
        ("IVMTR_TOPIC_PREFIX", "", "topic_prefix", ""),
        ("IVMTR_CREATE_TOPICS", "false", "create_topics", False),
        ("IVMTR_CREATE_TOPICS", "0", "create_topics", False),
        ("IVMTR_CREATE_TOPICS", "yes", "create_topics", True),
        ("IVMTR_REPLICA_ID", "pod-3.a_b", "replica_id", "pod-3.a_b"),
        ("IVMTR_COMPRESSION", "zstd", "compression", "zstd"),
        ("IVMTR_KAFKA_TIMEOUT_S", "2.5", "kafka_timeout_s", 2.5),
        ("IVMTR_MAX_RECORD_BYTES", "1024", "max_record_bytes", 1024),
        ("IVMTR_MAX_EVENTS_PER_MESSAGE", "10", "max_events_per_message", 10),
        ("IVMTR_MAX_STRING_LENGTH", "64", "max_string_length", 64),
        ("IVMTR_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("IVMTR_LOG_LEVEL", "Warning", "log_level", "WARNING"),
        ("IVMTR_LOG_FORMAT", "json", "log_format", "json"),
        ("ivmtr_port", "9001", "port", 9001),  # case-insensitive names
        ("IVMTR_FEEDS_FILE", "/etc/ivmtr/feeds.toml", "feeds_file", Path("/etc/ivmtr/feeds.toml")),
        ("IVMTR_INSECURE_DEV_MODE", "true", "insecure_dev_mode", True),
        ("IVMTR_MAX_JSON_DEPTH", "8", "max_json_depth", 8),
        ("IVMTR_AUTH_HASH_THREADS", "3", "auth_hash_threads", 3),
    ],
)
def test_environment_overrides(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, name: str, value: Any
) -> None:
    monkeypatch.setenv(variable, text)
    settings = load_settings()
    assert getattr(settings, name) == value
    assert settings.model_dump() == {**load_defaults(monkeypatch, variable), name: value}


def load_defaults(monkeypatch: pytest.MonkeyPatch, variable: str) -> dict[str, Any]:
    with monkeypatch.context() as patch:
        patch.delenv(variable)
        return load_settings().model_dump()


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVMTR_PORT", "9000")
    monkeypatch.setenv("IVMTR_HOST", "0.0.0.0")
    settings = load_settings(port=9100)
    assert (settings.port, settings.host) == (9100, "0.0.0.0")


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_other_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("IVMTR_NO_SUCH_SETTING", "x")
    assert load_settings().port == 8080


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("IVMTR_PORT", "abc"),
        ("IVMTR_PORT", "70000"),
        ("IVMTR_PORT", "-1"),
        ("IVMTR_KAFKA_BOOTSTRAP_SERVERS", ""),
        ("IVMTR_TOPIC_PARTITIONS", "0"),
        ("IVMTR_CREATE_TOPICS", "maybe"),
        ("IVMTR_REPLICA_ID", "pod 3"),
        ("IVMTR_REPLICA_ID", ""),
        ("IVMTR_REPLICA_ID", "x" * 65),
        ("IVMTR_DELIVERY_SLOTS", "257"),
        ("IVMTR_MAX_BATCH_BYTES", "1000"),
        ("IVMTR_COMPRESSION", "brotli"),
        ("IVMTR_AUTH_FAILURE_LIMIT", "0"),
        ("IVMTR_AUTH_HASH_THREADS", "0"),
        ("IVMTR_AUTH_HASH_QUEUE", "-1"),
        ("IVMTR_AUTH_REFUSAL_DELAY_S", "31"),
        ("IVMTR_KAFKA_TIMEOUT_S", "0"),
        ("IVMTR_MAX_BODY_BYTES", "1023"),
        ("IVMTR_MAX_RECORD_BYTES", "100"),
        ("IVMTR_MAX_EVENTS_PER_MESSAGE", "0"),
        ("IVMTR_MAX_STRING_LENGTH", "63"),
        ("IVMTR_LOG_LEVEL", "verbose"),
        ("IVMTR_LOG_FORMAT", "xml"),
        ("IVMTR_MAX_JSON_DEPTH", "1"),
        ("IVMTR_READ_TIMEOUT_S", "0"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str
) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid settings: {variable}")
    assert message.count("IVMTR_") == 1


def test_every_invalid_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVMTR_PORT", "abc")
    monkeypatch.setenv("IVMTR_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError) as caught:
        load_settings(max_string_length=1)
    message = str(caught.value)
    assert [
        part.split(":")[0] for part in message.removeprefix("invalid settings: ").split("; ")
    ] == [
        "IVMTR_PORT",
        "IVMTR_MAX_STRING_LENGTH",
        "IVMTR_LOG_FORMAT",
    ]


def test_unknown_override_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^invalid settings: IVMTR_NO_SUCH_SETTING: "):
        load_settings(no_such_setting=1)


def test_tls_files_go_together() -> None:
    with pytest.raises(SettingsError, match="IVMTR_TLS_CERT_FILE and IVMTR_TLS_KEY_FILE"):
        load_settings(tls_cert_file="/tmp/cert.pem")


def test_per_campaign_stall_thresholds_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVMTR_TRACK_STALL_HOURS_BY_CAMPAIGN", '{"spring-9": 48, "bulk": 240.5}')
    assert load_settings().track_stall_hours_by_campaign == {"spring-9": 48.0, "bulk": 240.5}


def test_a_first_lockout_longer_than_the_longest_is_refused() -> None:
    with pytest.raises(SettingsError, match="IVMTR_AUTH_LOCKOUT_S must not exceed"):
        load_settings(auth_lockout_s=7200, auth_lockout_max_s=3600)
