"""The README and docker-compose.yml stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic_settings import BaseSettings

from consumer.api.settings import ApiSettings
from consumer.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _default(name: str, settings: type[BaseSettings] = Settings) -> str:
    field = settings.model_fields[name]
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "{}"
    if value is None:
        return "None"
    return str(value)


def test_every_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(IVMTR_[A-Z0-9_]+)` \| `([^`]*)` \|", README, re.MULTILINE))
    expected = {f"IVMTR_{name.upper()}": _default(name) for name in Settings.model_fields}
    expected |= {
        ApiSettings.env_name(name): _default(name, ApiSettings) for name in ApiSettings.model_fields
    }
    assert rows == expected


def test_compose_runs_the_service_against_its_kafka() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["ivmtr-stream"]
    settings = {f"IVMTR_{name.upper()}" for name in Settings.model_fields}
    assert set(service["environment"]) <= settings
    kafka = compose["services"]["kafka"]
    assert service["environment"]["IVMTR_KAFKA_BOOTSTRAP_SERVERS"] == kafka["environment"][
        "KAFKA_ADVERTISED_LISTENERS"
    ].removeprefix("PLAINTEXT://")
    assert kafka["image"].startswith("apache/kafka:4.")
    assert kafka["environment"]["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"


def test_one_kafka_and_one_registry_version_everywhere() -> None:
    """docker-compose runs the very broker and registry the scripts fetch from Maven."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    pom = (ROOT / "scripts" / "kafka-broker" / "pom.xml").read_text()
    (kafka_version,) = re.findall(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{kafka_version}"
    (registry_version,) = re.findall(
        r'VERSION="\$\{REGISTRY_VERSION:-([^}]+)\}"',
        (ROOT / "scripts" / "registry").read_text(),
    )
    registry_image = compose["services"]["registry"]["image"]
    assert registry_image == f"apicurio/apicurio-registry:{registry_version}"


def test_compose_runs_a_tracker_over_the_service_topics() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service, tracker = compose["services"]["ivmtr-stream"], compose["services"]["ivmtr-tracker"]
    settings = {f"IVMTR_{name.upper()}" for name in Settings.model_fields}
    assert tracker["command"] == ["ivmtr-stream", "track"]
    assert set(tracker["environment"]) <= settings
    for name in (
        "IVMTR_KAFKA_BOOTSTRAP_SERVERS",
        "IVMTR_TOPIC_PREFIX",
        "IVMTR_SCHEMA_REGISTRY_URL",
    ):
        assert tracker["environment"][name] == service["environment"][name]
    port = tracker["environment"]["IVMTR_TRACK_PORT"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(tracker["healthcheck"]["test"])


def test_readme_sample_message_is_valid_json_of_the_documented_shape() -> None:
    import orjson

    message = orjson.loads((ROOT / "examples" / "message.json").read_bytes())
    assert {"msgGrpId", "msgSerNbr", "totMsgCnt", "recCnt", "totRecCnt", "events"} <= set(message)
    assert message["recCnt"] == len(message["events"])


def test_the_readme_shows_the_tested_consumer_example() -> None:
    example = (ROOT / "examples" / "consume_confluent.py").read_text()
    assert example in README
