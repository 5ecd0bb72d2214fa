"""The Mail Tracking API client's settings, from ``IVMTR_API_*`` environment variables.

The commands that talk to the API (``piece``, ``lookup``, ``backfill``) build one
``ApiSettings`` at start (``load_api_settings``), their options overriding the
environment, and pass it in: it *is* the client's ``ApiConfig``, plus what the commands
themselves need (``concurrency``). Every field of ``ApiConfig`` is a variable named
``IVMTR_API_<FIELD>``, except ``api_url``, which keeps its older name ``IVMTR_API_URL``.
Empty variables count as unset. An invalid value stops the command with
ApiSettingsError naming the variable.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumer.api.client import ApiConfig

__all__ = ["ENV_PREFIX", "ApiSettings", "ApiSettingsError", "load_api_settings"]

ENV_PREFIX = "IVMTR_API_"

# What a missing setting is, for a message that says how to give it.
_REQUIRED = {
    "username": "the BCG user name (or --username)",
    "password": "the BCG password (environment only, never an option)",
}


class ApiSettingsError(Exception):
    """An API setting is missing or invalid; the message names its variable."""


class ApiSettings(BaseSettings, ApiConfig):
    """Every setting of the Mail Tracking API client and the commands that use it."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        extra="forbid",
    )

    # Redeclared only to keep the variable's name from before these settings:
    # IVMTR_API_URL rather than IVMTR_API_API_URL (which is not read: one name each).
    api_url: str | None = Field(
        None,
        validation_alias="IVMTR_API_URL",
        description="Mail Tracking API base URL override, e.g. the emulator's.",
    )
    concurrency: int = Field(
        4, ge=1, le=64, description="Pieces `backfill` fetches and publishes at once."
    )

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of ``field``."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


def load_api_settings(**overrides: object) -> ApiSettings:
    """ApiSettings from ``overrides`` (e.g. command options), then ``IVMTR_API_*`` variables.

    An override of None or "" counts as not given. ApiSettingsError lists every setting
    at fault, each by its variable.
    """
    given = {
        _init_name(name): value
        for name, value in overrides.items()
        if value is not None and value != ""
    }
    try:
        return ApiSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = ApiSettings.env_name(field) if field in ApiSettings.model_fields else field
            if error["type"] == "missing" and field in _REQUIRED:
                problems.append(f"set {name}: {_REQUIRED[field]}")
            else:
                problems.append(f"{name}: {error['msg']}")
        raise ApiSettingsError("invalid API settings: " + "; ".join(problems)) from exc


def _init_name(field: str) -> str:
    """The keyword ``ApiSettings`` takes ``field`` by: its alias, when it has one."""
    info = ApiSettings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    return alias if isinstance(alias, str) else field
