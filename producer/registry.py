"""A schema registry that speaks the Confluent API, and registering our schemas in it.

Each topic's value schema is registered under the subject ``<topic>-value`` (Confluent's
TopicNameStrategy) in its full expanded form: one JSON document with every named type
inlined where it is first used, docs and defaults kept (the registry's compatibility
checks need the defaults). The ids it gives are what topics built with them write in
the Confluent wire format (``producer.wire``).

Errors, all ``PublishError``:

    RegistryError               the registry refused a request (not retriable)
    ├── RegistryUnavailable     not reachable, timed out, or a 5xx answer (retriable)
    ├── IncompatibleSchema      409: the subject's compatibility level refused the schema
    └── NotFound                404: no such subject, version or schema id

Works with Apicurio Registry 3 at ``/apis/ccompat/v7`` (``scripts/registry``) and with
Confluent Schema Registry; ``RegistryConfig.url`` includes that path.
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from producer.errors import PublishError
from producer.schemas import Schema

__all__ = [
    "CompatibilityLevel",
    "IncompatibleSchema",
    "NotFound",
    "RegisteredSchema",
    "RegistryClient",
    "RegistryConfig",
    "RegistryError",
    "RegistryUnavailable",
    "register_schemas",
    "schema_json",
    "subject_name",
]

CompatibilityLevel = Literal[
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


# -- errors -----------------------------------------------------------------------------------


class RegistryError(PublishError):
    """The schema registry refused a request; ``status`` and ``error_code`` say why."""

    retriable = False

    def __init__(
        self, message: str, *, status: int | None = None, error_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, did not answer in time, or failed (5xx)."""

    retriable = True


class IncompatibleSchema(RegistryError):
    """The schema breaks the subject's compatibility level (HTTP 409)."""


class NotFound(RegistryError):
    """No such subject, version or schema id (HTTP 404)."""


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryConfig:
    """Where the registry is and how to talk to it.

    ``url`` is the base of the Confluent API, e.g. ``http://127.0.0.1:8081/apis/ccompat/v7``.
    Authentication is HTTP basic (``username``/``password``) or a bearer token, not both.
    TLS: ``ca_file`` names the CA bundle to verify the server with (else the system's);
    ``verify=False`` turns verification off (tests only).
    """

    url: str
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    ca_file: Path | str | None = None
    verify: bool = True
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"schema registry url must be http(s)://..., not {self.url!r}")
        if (self.username is None) != (self.password is None):
            raise ValueError("schema registry basic auth needs both a username and a password")
        if self.username is not None and self.bearer_token is not None:
            raise ValueError("schema registry: use basic auth or a bearer token, not both")
        if self.timeout_s <= 0:
            raise ValueError("schema registry timeout must be positive")

    def __repr__(self) -> str:  # never print secrets
        auth = "basic" if self.username else "bearer" if self.bearer_token else "none"
        return f"RegistryConfig(url={self.url!r}, auth={auth}, verify={self.verify})"

    def _verify(self) -> ssl.SSLContext | bool:
        if not self.verify:
            return False
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return True

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": f"{_CONTENT_TYPE}, application/json"}
        if self.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        return headers


# -- the client -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of a subject, as the registry keeps it."""

    subject: str
    version: int
    id: int
    schema: str


def subject_name(topic: str) -> str:
    """The value subject of a topic under TopicNameStrategy."""
    return f"{topic}-value"


def _schema_text(schema: str | Mapping[str, Any] | Schema) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, Schema):
        return schema_json(schema)
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


class RegistryClient:
    """An async client of the Confluent schema registry API (the part we use).

    Nothing touches the network until the first call; ``aclose()`` (or ``async with``)
    closes the connections. ``transport`` is for tests (``httpx.MockTransport``).
    """

    def __init__(
        self, config: RegistryConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        base = config.url.rstrip("/") + "/"
        auth = (
            httpx.BasicAuth(config.username, config.password)
            if config.username is not None and config.password is not None
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=base,
            auth=auth,
            headers=config._headers(),
            verify=config._verify(),
            timeout=config.timeout_s,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        """Send one request; the decoded JSON answer, or the right RegistryError."""
        try:
            response = await self._http.request(
                method,
                path,
                params=params,
                content=None if body is None else json.dumps(body).encode(),
                headers=None if body is None else {"Content-Type": _CONTENT_TYPE},
            )
        except httpx.TimeoutException as exc:
            raise RegistryUnavailable(
                f"schema registry at {self.config.url} did not answer within "
                f"{self.config.timeout_s}s ({method} /{path})"
            ) from exc
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise RegistryUnavailable(
                f"schema registry at {self.config.url} is not reachable: {reason}"
            ) from exc
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise RegistryError(
                    f"schema registry answered {method} /{path} with something that is not JSON",
                    status=response.status_code,
                ) from exc
        raise _error(method, path, response)

    async def register(self, subject: str, schema: str | Mapping[str, Any] | Schema) -> int:
        """Register ``schema`` under ``subject``; its id (the same id when already there).

        IncompatibleSchema when the subject's compatibility level refuses it.
        """
        answer = await self._request(
            "POST",
            f"subjects/{_quote(subject)}/versions",
            {"schema": _schema_text(schema), "schemaType": "AVRO"},
        )
        return int(answer["id"])

    async def lookup(
        self, subject: str, schema: str | Mapping[str, Any] | Schema
    ) -> RegisteredSchema:
        """The version of ``subject`` that holds ``schema``; NotFound when none does."""
        answer = await self._request(
            "POST", f"subjects/{_quote(subject)}", {"schema": _schema_text(schema)}
        )
        return _registered(answer, subject)

    async def latest(self, subject: str) -> RegisteredSchema:
        """The latest version of ``subject``; NotFound when the subject does not exist."""
        answer = await self._request("GET", f"subjects/{_quote(subject)}/versions/latest")
        return _registered(answer, subject)

    async def schema_by_id(self, schema_id: int) -> str:
        """The schema text with id ``schema_id``; NotFound when there is none."""
        answer = await self._request("GET", f"schemas/ids/{int(schema_id)}")
        return str(answer["schema"])

    async def subjects(self) -> list[str]:
        """Every subject."""
        return [str(subject) for subject in await self._request("GET", "subjects")]

    async def set_compatibility(self, subject: str, level: CompatibilityLevel) -> None:
        """Set the compatibility level of one subject (it need not exist yet)."""
        await self._request("PUT", f"config/{_quote(subject)}", {"compatibility": level})

    async def get_compatibility(self, subject: str) -> str:
        """The compatibility level that applies to ``subject`` (its own, else the global)."""
        answer = await self._request(
            "GET", f"config/{_quote(subject)}", params={"defaultToGlobal": "true"}
        )
        # GET answers {"compatibilityLevel": ...}; PUT (and some servers) {"compatibility": ...}
        return str(answer.get("compatibilityLevel") or answer["compatibility"])

    async def is_compatible(self, subject: str, schema: str | Mapping[str, Any] | Schema) -> bool:
        """Whether the registry would accept ``schema`` as the next version of ``subject``.

        True for a subject that does not exist yet: there is nothing to break.
        """
        try:
            answer = await self._request(
                "POST",
                f"compatibility/subjects/{_quote(subject)}/versions/latest",
                {"schema": _schema_text(schema), "schemaType": "AVRO"},
            )
        except NotFound as exc:
            if exc.error_code in (40401, 40402):  # subject / version not found
                return True
            raise
        return bool(answer["is_compatible"])


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _registered(answer: Mapping[str, Any], subject: str) -> RegisteredSchema:
    return RegisteredSchema(
        subject=str(answer.get("subject", subject)),
        version=int(answer["version"]),
        id=int(answer["id"]),
        schema=str(answer["schema"]),
    )


def _error(method: str, path: str, response: httpx.Response) -> RegistryError:
    status = response.status_code
    error_code: int | None = None
    message = response.text.strip()[:500] or response.reason_phrase
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error_code = body.get("error_code") if isinstance(body.get("error_code"), int) else None
        message = str(body.get("message") or message)
    text = f"schema registry refused {method} /{path}: {status} {message}"
    if status >= 500:
        return RegistryUnavailable(text, status=status, error_code=error_code)
    if status == 409:
        return IncompatibleSchema(text, status=status, error_code=error_code)
    if status == 404:
        return NotFound(text, status=status, error_code=error_code)
    if status in (401, 403):
        text += " (check the registry user/password or token)"
    return RegistryError(text, status=status, error_code=error_code)


# -- schemas and registering them -------------------------------------------------------------

# Key order of the JSON we register: the usual reading order, then anything else sorted.
_KEY_ORDER = {
    key: rank
    for rank, key in enumerate(
        (
            "type",
            "name",
            "namespace",
            "doc",
            "aliases",
            "logicalType",
            "precision",
            "scale",
            "size",
            "symbols",
            "items",
            "values",
            "default",
            "order",
            "fields",
        )
    )
}


def _plain(node: Any) -> Any:
    """fastavro's parsed form as plain Avro JSON: its own keys dropped, keys in a fixed order."""
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, dict):
        keys = sorted(
            (key for key in node if not key.startswith("__")),
            key=lambda key: (_KEY_ORDER.get(key, len(_KEY_ORDER)), key),
        )
        return {key: _plain(node[key]) for key in keys}
    return node


def schema_json(schema: Schema) -> str:
    """The schema as registered: expanded (named types inlined at first use), docs and
    defaults kept, full names, compact JSON in a fixed key order.

    The same schema files always give the same text, so registering again finds the same
    schema (and id) instead of adding a version.
    """
    return json.dumps(_plain(schema.parsed), separators=(",", ":"), ensure_ascii=False)


async def register_schemas(
    client: RegistryClient,
    schemas: Mapping[str, Schema] | Iterable[tuple[str, Schema]],
    compatibility: CompatibilityLevel | None = "BACKWARD_TRANSITIVE",
) -> dict[str, int]:
    """Register each topic's value schema under ``<topic>-value``: topic name -> schema id.

    ``schemas`` maps topic names to their value schemas (``TopicTable.schemas()``, and
    any other topics written to). The subject's compatibility level is set first, so the
    registry checks the schema against every earlier version before taking it
    (IncompatibleSchema when it breaks them). Idempotent: the same schema gets the same
    id again, at every start.
    """
    pairs = schemas.items() if isinstance(schemas, Mapping) else schemas
    ids: dict[str, int] = {}
    for topic_name, schema in pairs:
        subject = subject_name(topic_name)
        if compatibility is not None:
            await client.set_compatibility(subject, compatibility)
        ids[topic_name] = await client.register(subject, schema_json(schema))
    return ids
