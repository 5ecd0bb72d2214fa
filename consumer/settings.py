"""The one settings object, from ``IVMTR_*`` environment variables.

Built once at start-up (``Settings()``) and passed in; nothing deeper reads the
environment. An invalid value stops start-up with a message naming the setting.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(Exception):
    """A setting has an invalid value; the message names it."""


class Settings(BaseSettings):
    """Every setting of the service, with its default."""

    model_config = SettingsConfigDict(env_prefix="IVMTR_", frozen=True, extra="forbid")

    # HTTP
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the HTTP server listens on.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes serving the one port (`serve --workers`), each a replica of "
        "its own (replica id suffixed with its process id); a worker that dies is restarted.",
    )
    internal_host: str = Field(
        "127.0.0.1",
        description="Address each process listens on for messages other processes forward "
        "to it (the owners of their delivery slots); 0.0.0.0 when replicas run on other hosts.",
    )
    internal_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of that listener; 0 picks a free one (each worker needs its own).",
    )
    advertised_host: str | None = Field(
        None,
        description="Host name or address other processes reach this one's listener at; "
        "default internal_host, or this host's name when that is a wildcard.",
    )
    internal_ca_file: Path | None = Field(
        None,
        description="CA bundle (PEM) to verify other processes' listeners with when TLS is on; "
        "default the system's.",
    )

    # Kafka
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", min_length=1, description="Kafka bootstrap servers."
    )
    topic_prefix: str = Field("ivmtr.", description="Prefix of every topic name.")
    topic_partitions: int = Field(6, ge=1, description="Partitions of topics the service creates.")
    topic_replication_factor: int = Field(
        1, ge=1, description="Replication factor of topics it creates."
    )
    create_topics: bool = Field(True, description="Create missing topics at start-up.")
    replica_id: str = Field(
        "0",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Unique per running replica: part of the Kafka transactional ids.",
    )
    transactional_id_prefix: str = Field(
        "ivmtr-stream", min_length=1, description="Prefix of transactional ids."
    )
    delivery_slots: int = Field(
        16,
        ge=1,
        le=256,
        description="Partitions of the deliveries topic it creates; also Kafka transactional ids, "
        "and so messages published at once.",
    )
    linger_ms: int = Field(
        0,
        ge=0,
        description="Producer linger time. Events go to Kafka in whole batches anyway; "
        "lingering only delays the single receipts of each transaction.",
    )
    max_batch_bytes: int = Field(
        512 * 1024, ge=16 * 1024, description="Producer batch size per partition."
    )
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none", description="Kafka compression."
    )
    kafka_timeout_s: float = Field(
        30.0, gt=0, description="Bound on waiting for Kafka per request."
    )
    transaction_timeout_s: float = Field(300.0, gt=0, description="Kafka transaction timeout.")

    group_timeout_s: float = Field(
        21600.0,
        gt=0,
        description="Seconds after its first message that an incomplete message group "
        "gets a GROUP_INCOMPLETE receipt.",
    )
    group_check_interval_s: float = Field(
        5.0, gt=0, description="How often message groups are checked."
    )
    delivery_retention_days: float = Field(
        30.0,
        gt=0,
        description="Days a message receipt is kept in memory to recognise a re-sent message "
        "(IV-MTR's data is available for 30 days after the scan date); older ones are dropped "
        "when the deliveries topic is read at start and by a sweep every minute. A message "
        "re-sent later is published again, as a new one.",
    )
    delivery_log_max_keys: int = Field(
        1_000_000,
        ge=1,
        description="Most message receipts kept in memory (about 350 bytes each); past it the "
        "oldest are evicted, and a message evicted and re-sent is published again, as a new one.",
    )

    # Tracker (ivmtr-stream track)
    track_group_id: str = Field(
        "ivmtr-tracker",
        description="Consumer group of the trackers; also names their transactional ids.",
    )
    track_stall_hours: float = Field(
        72.0, gt=0, description="Hours without a scan after which an undelivered piece is STALLED."
    )
    track_stall_hours_by_campaign: dict[str, float] = Field(
        default_factory=dict,
        description="Stall threshold in hours per campaign, e.g. "
        '{"spring-9": 48} (JSON in the environment).',
    )
    track_check_interval_s: float = Field(
        60.0,
        gt=0,
        description="How often the tracker applies the wall-clock rules (STALLED, LATE).",
    )
    track_host: str = Field(
        "127.0.0.1", description="Address of the tracker's /metrics and health."
    )
    track_port: int = Field(
        9465, ge=0, le=65535, description="Port of the tracker's /metrics, /healthz and /readyz."
    )

    # Schema registry
    schema_registry_url: str | None = Field(
        None,
        description="Confluent-compatible schema registry API (e.g. Apicurio's "
        "http://127.0.0.1:8081/apis/ccompat/v7): values are then written in the Confluent "
        "wire format. Unset: Avro single-object encoding.",
    )
    schema_registry_user: str | None = Field(None, description="Registry basic-auth user.")
    schema_registry_password: SecretStr | None = Field(
        None, description="Registry basic-auth password."
    )
    schema_registry_token: SecretStr | None = Field(None, description="Registry bearer token.")
    schema_registry_ca_file: Path | None = Field(
        None, description="CA bundle to verify the registry's TLS."
    )

    # Delivery
    ack_mode: Literal["kafka", "spool"] = Field(
        "kafka",
        description="kafka: answer 200 once Kafka committed the message; spool: answer 202 once "
        "it is durably in the local spool, and publish it in the background.",
    )
    spool_dir: Path = Field(Path(".local/spool"), description="Spool directory (ack_mode=spool).")
    spool_max_bytes: int = Field(
        8 << 30, ge=1 << 20, description="Spool size (decoded bodies) beyond which pushes get 503."
    )
    max_concurrent_requests: int = Field(
        64, ge=1, description="Pushes handled at once; more get 503."
    )
    max_inflight_bytes: int = Field(
        4 << 30, ge=1 << 20, description="Decompressed bytes of all pushes in flight; more get 503."
    )
    max_inflight_records: int = Field(
        4_000_000, ge=1000, description="Records of all pushes in flight; more get 503."
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After of 503 answers.")

    # Feeds and security
    feeds_file: Path | None = Field(
        None,
        description="Feeds file (TOML): each feed's credentials, kind, campaign, networks and "
        "topics; see examples/feeds.toml. Required unless insecure_dev_mode.",
    )
    insecure_dev_mode: bool = Field(
        False,
        description="Accept any feed without credentials. For development only; logged loudly.",
    )
    tls_cert_file: Path | None = Field(None, description="Serve HTTPS with this certificate (PEM).")
    tls_key_file: Path | None = Field(None, description="Private key of tls_cert_file (PEM).")
    auth_failure_limit: int = Field(
        10,
        ge=1,
        description="Failed password checks from one client address (IPv6: its /64) within "
        "auth_failure_window_s after which it is locked out: answered 429 without a check.",
    )
    auth_failure_window_s: float = Field(
        60.0, gt=0, description="The window failed password checks are counted in."
    )
    auth_lockout_s: float = Field(
        60.0,
        gt=0,
        description="The first lockout of a client address; each further one doubles, up to "
        "auth_lockout_max_s.",
    )
    auth_lockout_max_s: float = Field(
        3600.0,
        gt=0,
        description="The longest lockout; an address's failures are forgotten twice this long "
        "after its last one (a success forgets nothing).",
    )
    auth_tracked_clients: int = Field(
        100_000,
        ge=1,
        description="Most client addresses whose failures are kept (about 200 bytes each); "
        "past it the least recently failing is forgotten.",
    )
    auth_hash_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Threads of their own that check passwords (scrypt, ~16 MiB each), apart "
        "from the ingest work: at most that many cores go to password checks. Valid "
        "credentials are checked once, then cached, so one thread (~20 checks/s) is plenty "
        "for valid senders.",
    )
    auth_hash_queue: int = Field(
        16,
        ge=0,
        description="Password checks that may wait for those threads; more get 503 auth_busy.",
    )
    auth_refusal_delay_s: float = Field(
        1.0,
        ge=0,
        le=30,
        description="How long a refusal made without a password check (429, 503 auth_busy) is "
        "held before it is sent, on average (0.5-1.5x), so a client ignoring Retry-After "
        "cannot ask again at once.",
    )

    # Limits
    max_body_bytes: int = Field(
        512 << 20, ge=1024, description="Largest request body as sent (compressed)."
    )
    max_decompressed_bytes: int = Field(
        2 << 30, ge=1024, description="Largest body after decompression."
    )
    fast_path: Literal["auto", "require", "off"] = Field(
        "auto",
        description="Native fast path (`native/`): `auto` uses it when installed, `require` "
        "refuses to start without it, `off` runs the Python path alone.",
    )
    max_record_bytes: int = Field(1 << 20, ge=1024, description="Largest single record.")
    max_events_per_message: int = Field(2_000_000, ge=1, description="Most records in one message.")
    max_string_length: int = Field(4096, ge=64, description="Longest string value in a record.")
    max_json_depth: int = Field(16, ge=2, le=512, description="Deepest JSON nesting in a message.")
    read_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for the next piece of a request body (slow senders)."
    )
    body_timeout_s: float = Field(900.0, gt=0, description="Longest time to receive a whole body.")

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON lines otherwise."
    )

    @model_validator(mode="after")
    def _lockouts(self) -> Settings:
        if self.auth_lockout_s > self.auth_lockout_max_s:
            raise ValueError("IVMTR_AUTH_LOCKOUT_S must not exceed IVMTR_AUTH_LOCKOUT_MAX_S")
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("IVMTR_TLS_CERT_FILE and IVMTR_TLS_KEY_FILE go together")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from ``overrides``, then ``IVMTR_*`` variables, then the TOML ``config_file``.

    SettingsError names what is wrong.
    """
    settings_class: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(f"invalid settings: config file {config_file} does not exist")
        settings_class = _from_file(config_file)
    try:
        return settings_class(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"IVMTR_{name.upper()}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"invalid settings: config file {config_file}: {exc}") from exc


def _from_file(path: Path) -> type[Settings]:
    class FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    return FromFile
