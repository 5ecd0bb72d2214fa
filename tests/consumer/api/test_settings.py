"""The API client's settings: IVMTR_API_* variables, options over them, errors naming them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from consumer.api import ApiConfig, ApiSettings, ApiSettingsError, MailTrackingClient
from consumer.api import load_api_settings as load
from consumer.cli.backfill import backfill_command

FULL_ENVIRONMENT = {
    "IVMTR_API_USERNAME": "env-user",
    "IVMTR_API_PASSWORD": "env-pass",
    "IVMTR_API_ENVIRONMENT": "cat",
    "IVMTR_API_URL": "http://env/api",
    "IVMTR_API_AUTH_URL": "http://env/oauth",
    "IVMTR_API_TIMEOUT_S": "2.5",
    "IVMTR_API_RETRIES": "1",
    "IVMTR_API_CONCURRENCY": "9",
}


@pytest.fixture(autouse=True)
def _no_api_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees only the IVMTR_API_* variables it sets."""
    import os

    for name in [name for name in os.environ if name.startswith("IVMTR_API_")]:
        monkeypatch.delenv(name)
    yield


def set_environment(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_every_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(monkeypatch, FULL_ENVIRONMENT)
    settings = load()
    assert (settings.username, settings.password.get_secret_value()) == ("env-user", "env-pass")
    assert (settings.environment, settings.api_url, settings.auth_url) == (
        "cat",
        "http://env/api",
        "http://env/oauth",
    )
    assert (settings.timeout_s, settings.retries, settings.concurrency) == (2.5, 1, 9)
    assert (settings.resolved_api_url, settings.resolved_auth_url) == (
        "http://env/api",
        "http://env/oauth",
    )
    assert "env-pass" not in repr(settings)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(monkeypatch, {"IVMTR_API_USERNAME": "u", "IVMTR_API_PASSWORD": "p"})
    settings = load()
    assert (settings.environment, settings.api_url, settings.auth_url) == ("production", None, None)
    assert (settings.timeout_s, settings.retries, settings.concurrency) == (10, 4, 4)
    assert settings.resolved_api_url == "https://iv.usps.com/ivws_api/informedvisapi"


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(monkeypatch, FULL_ENVIRONMENT)
    settings = load(username="u", environment="production", api_url="http://x", concurrency=2)
    assert (settings.username, settings.environment, settings.api_url, settings.concurrency) == (
        "u",
        "production",
        "http://x",
        2,
    )
    # What was not overridden still comes from the environment.
    assert (settings.auth_url, settings.timeout_s) == ("http://env/oauth", 2.5)
    # An option not given (None) or empty is no override.
    assert load(username=None, auth_url="").auth_url == "http://env/oauth"
    assert load(username="").username == "env-user"


def test_the_settings_are_the_clients_config(monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(monkeypatch, FULL_ENVIRONMENT)
    settings = load()
    assert isinstance(settings, ApiConfig)
    assert MailTrackingClient(settings).config is settings


def test_api_api_url_is_not_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # api_url keeps its variable from before: IVMTR_API_URL, never IVMTR_API_API_URL.
    set_environment(
        monkeypatch,
        {"IVMTR_API_USERNAME": "u", "IVMTR_API_PASSWORD": "p", "IVMTR_API_API_URL": "http://no"},
    )
    assert load().api_url is None
    assert ApiSettings.env_name("api_url") == "IVMTR_API_URL"
    assert ApiSettings.env_name("timeout_s") == "IVMTR_API_TIMEOUT_S"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        # An empty variable is an unset one.
        ({"IVMTR_API_USERNAME": ""}, "set IVMTR_API_USERNAME: the BCG user name (or --username)"),
        ({"IVMTR_API_PASSWORD": ""}, "set IVMTR_API_PASSWORD: the BCG password"),
        ({"IVMTR_API_ENVIRONMENT": "staging"}, "IVMTR_API_ENVIRONMENT: Input should be"),
        ({"IVMTR_API_TIMEOUT_S": "0"}, "IVMTR_API_TIMEOUT_S: Input should be greater than 0"),
        ({"IVMTR_API_RETRIES": "many"}, "IVMTR_API_RETRIES: Input should be a valid integer"),
        ({"IVMTR_API_CONCURRENCY": "65"}, "IVMTR_API_CONCURRENCY: Input should be less than"),
    ],
)
def test_a_bad_setting_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    set_environment(monkeypatch, {"IVMTR_API_USERNAME": "u", "IVMTR_API_PASSWORD": "p"})
    set_environment(monkeypatch, variables)
    with pytest.raises(ApiSettingsError) as caught:
        load()
    assert str(caught.value).startswith("invalid API settings: ")
    assert message in str(caught.value)


def test_every_bad_setting_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(monkeypatch, {"IVMTR_API_RETRIES": "-1"})
    with pytest.raises(ApiSettingsError) as caught:
        load(environment="staging")
    listed = str(caught.value)
    for name in ("IVMTR_API_USERNAME", "IVMTR_API_PASSWORD", "IVMTR_API_ENVIRONMENT"):
        assert name in listed
    assert "IVMTR_API_RETRIES: Input should be greater than or equal to 0" in listed


# ----------------------------------------------------------------------------- backfill


class _Stop(Exception):
    """Ends the patched backfill once the command has built what it passes in."""


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What ``backfill`` builds and passes in, with Kafka and the API replaced."""
    seen: dict[str, Any] = {}

    class Publisher:
        def __init__(self, *_: object, **__: object) -> None: ...

        async def __aenter__(self) -> Publisher:
            return self

        async def __aexit__(self, *_: object) -> None: ...

    class Client(MailTrackingClient):
        def __init__(self, config: ApiConfig) -> None:
            seen["config"] = config
            super().__init__(config)

    async def backfill(imbs: list[str], **kwargs: Any) -> None:
        seen.update(imbs=imbs, concurrency=kwargs["concurrency"])
        raise _Stop

    monkeypatch.setattr("producer.Publisher", Publisher)
    monkeypatch.setattr("consumer.api.client.MailTrackingClient", Client)
    monkeypatch.setattr("consumer.ingest.backfill.backfill", backfill)
    return seen


def test_backfill_reads_the_environment(built: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        backfill_command, ["--imbs", "-"], input="1234\n", env=FULL_ENVIRONMENT
    )
    assert isinstance(result.exception, _Stop), result.output
    assert (built["imbs"], built["concurrency"]) == (["1234"], 9)
    assert isinstance(built["config"], ApiSettings)
    assert (built["config"].username, built["config"].api_url) == ("env-user", "http://env/api")


def test_backfill_options_override_the_environment(built: dict[str, Any]) -> None:
    args = ["--imbs", "-", "--concurrency", "3", "--username", "opt-user", "--api-url", "http://o"]
    result = CliRunner().invoke(backfill_command, args, input="1234\n", env=FULL_ENVIRONMENT)
    assert isinstance(result.exception, _Stop), result.output
    assert built["concurrency"] == 3
    assert (built["config"].username, built["config"].api_url) == ("opt-user", "http://o")
    assert built["config"].auth_url == "http://env/oauth"


def test_backfill_refuses_bad_settings_before_any_work(built: dict[str, Any]) -> None:
    env = {**FULL_ENVIRONMENT, "IVMTR_API_CONCURRENCY": "0", "IVMTR_API_PASSWORD": ""}
    result = CliRunner().invoke(backfill_command, ["--imbs", "-"], input="1234\n", env=env)
    assert result.exit_code == 2
    assert "IVMTR_API_CONCURRENCY" in result.output and "IVMTR_API_PASSWORD" in result.output
    assert built == {}
