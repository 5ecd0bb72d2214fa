"""``MailTrackingClient``: the IV-MTR Mail Tracking API (piece by IMb, partial-IMb lookup).

Hosts, token and endpoints follow ivmtr.md section 3::

    POST {auth_url}/authenticate   BCG username/password -> access + refresh token
    POST {auth_url}/token          refresh token -> new tokens
    GET  {api_url}/api/mt/get/piece/imb/{imb}
    GET  {api_url}/api/mt/get/piece/mid/{mid}/serial/{serial}[/stid/{stid}]

Behaviour:

* Rules (consumer.api.rules) run before any request; a refused query raises RuleViolation.
* The token is fetched on first use and refreshed with the refresh token shortly before it
  expires (``expires_in``). A 401 from the API renews it once (refresh, or authenticate again
  when the refresh is refused) and retries the request once.
* 5xx, 429 and network errors or timeouts are retried ``retries`` times with exponential
  backoff and jitter; a Retry-After on those answers is waited for instead, unless it is longer
  than ``max_retry_after_s`` (then ApiUnavailable at once). Other 4xx are never retried.
* httpx errors never reach the caller: they become the ApiError tree (consumer.api.models).

Nothing touches the network before the first query. Use ``async with`` or ``aclose()``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Self

import httpx
import orjson
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from consumer.api.models import (
    ApiError,
    ApiResponseError,
    ApiUnavailable,
    AuthenticationFailed,
    Piece,
    PieceNotFound,
)
from consumer.api.rules import check_lookup_query, check_piece_query, matches_routing

__all__ = [
    "ENVIRONMENTS",
    "TOOLKIT_CLIENT_ID",
    "ApiConfig",
    "Environment",
    "MailTrackingClient",
]

log = structlog.get_logger()

Environment = Literal["production", "cat"]

TOOLKIT_CLIENT_ID: Final = "687b8a36-db61-42f7-83f7-11c79bf7785e"
"""The fixed public client_id published in the IV-MTR API Developer Toolkit (not per mailer)."""

SCOPE: Final = "user.info.ereg,iv1.apis"

ENVIRONMENTS: Final[dict[str, tuple[str, str]]] = {
    # environment: (auth base URL, API base URL)
    "production": (
        "https://services.usps.com/oauth",
        "https://iv.usps.com/ivws_api/informedvisapi",
    ),
    "cat": (
        "https://cat-services.usps.com/oauth",
        "https://qiv.usps.com/ivws_api/informedvisapi",
    ),
}

_DEFAULT_EXPIRES_IN_S: Final = 900.0  # the JS client of ivmtr.md S6: "about 15 minutes"
_RETRYABLE_NETWORK_ERRORS: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


class ApiConfig(BaseModel):
    """Credentials, endpoints and retry policy of a MailTrackingClient.

    Built by hand (tests, library use) or, by the commands, as ``ApiSettings`` from the
    environment (``consumer.api.settings``); a value out of range is a ValidationError
    (a ValueError) naming the field. ``auth_url`` and ``api_url`` override the
    environment's base URLs (for a proxy or the local emulator). ``retries`` counts
    retries after the first attempt: up to ``retries + 1`` requests per call. Backoff
    before retry n (0-based) is ``backoff_s * 2**n``, jittered to 50-100 % and capped
    at ``max_backoff_s``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str = Field(min_length=1, description="BCG user with IV-MTR API access.")
    password: SecretStr = Field(
        min_length=1, description="Its password (environment only: kept out of argv)."
    )
    environment: Environment = Field(
        "production", description="USPS environment: production or cat."
    )
    auth_url: str | None = Field(None, description="OAuth base URL override, e.g. the emulator's.")
    api_url: str | None = Field(
        None, description="Mail Tracking API base URL override, e.g. the emulator's."
    )
    timeout_s: float = Field(10.0, gt=0, description="Timeout of each HTTP request.")
    retries: int = Field(
        4, ge=0, description="Retries of a request after 5xx, 429 or a network error."
    )
    backoff_s: float = Field(
        0.5, ge=0, description="Backoff before the first retry; doubled for each next one."
    )
    max_backoff_s: float = Field(30.0, ge=0, description="Longest backoff between retries.")
    max_retry_after_s: float = Field(
        60.0, ge=0, description="Longest Retry-After waited for; a longer one fails at once."
    )
    refresh_margin_s: float = Field(
        60.0, ge=0, description="Seconds before its expiry that the token is refreshed."
    )
    client_id: str = Field(
        TOOLKIT_CLIENT_ID, min_length=1, description="OAuth client_id (the Toolkit's public one)."
    )
    scope: str = Field(SCOPE, min_length=1, description="OAuth scope.")

    @property
    def resolved_auth_url(self) -> str:
        """The OAuth base URL in use (without a trailing slash)."""
        return (self.auth_url or ENVIRONMENTS[self.environment][0]).rstrip("/")

    @property
    def resolved_api_url(self) -> str:
        """The Mail Tracking API base URL in use (without a trailing slash)."""
        return (self.api_url or ENVIRONMENTS[self.environment][1]).rstrip("/")


@dataclass(slots=True)
class _Token:
    access: str
    refresh: str | None
    renew_at: float  # clock() value after which the token is renewed before use


class MailTrackingClient:
    """Async client of the IV-MTR Mail Tracking API.

    ``transport`` replaces the network (``httpx.MockTransport``, ``httpx.ASGITransport``).
    ``clock`` (monotonic seconds) and ``sleep`` exist for tests.
    """

    def __init__(
        self,
        config: ApiConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(config.timeout_s),
            headers={"Accept": "application/json", "User-Agent": "ivmtr-stream"},
        )
        self._clock = clock
        self._sleep = sleep
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._closed = False

    @property
    def config(self) -> ApiConfig:
        """The configuration this client was built with."""
        return self._config

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (and the transport). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._http.aclose()

    # ------------------------------------------------------------------------- queries

    async def piece(self, imb: str) -> Piece:
        """Attributes and scans of one piece, by its full IMb (20, 25, 29 or 31 digits).

        Raises RuleViolation (before any request), PieceNotFound, AuthenticationFailed,
        ApiUnavailable or ApiResponseError.
        """
        digits = check_piece_query(imb).digits
        response = await self._api_get(f"/api/mt/get/piece/imb/{digits}")
        body = _json_object(response)
        if response.status_code == 404 or (
            "data" not in body and "not found" in str(body.get("message", "")).lower()
        ):
            raise PieceNotFound(digits, _message(body) or f"piece not found: {digits}")
        _raise_for_status(response, body)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ApiResponseError("piece response without a `data` object", status=200)
        try:
            return Piece.from_api(data, imb=digits)
        except ValueError as exc:
            raise ApiResponseError(f"malformed piece response: {exc}", status=200) from exc

    async def lookup(
        self, mid: str, serial: str, *, stid: str | None = None, routing: str | None = None
    ) -> list[str]:
        """The full IMbs scanned for a mailer ID and serial number (partial-IMb lookup).

        ``stid`` narrows the query on the server. The API has no routing-code variant, so
        ``routing`` (5, 9 or 11 digits) filters the returned IMbs here: an IMb matches when its
        routing code starts with ``routing``. Returns [] when nothing matches; IMbs come in the
        API's order, without duplicates.
        """
        query = check_lookup_query(mid, serial, stid=stid, routing=routing)
        path = f"/api/mt/get/piece/mid/{query.mid}/serial/{query.serial}"
        if query.stid is not None:
            path += f"/stid/{query.stid}"
        response = await self._api_get(path)
        body = _json_object(response)
        if response.status_code == 404 or (
            "data" not in body and "not found" in str(body.get("message", "")).lower()
        ):
            return []
        _raise_for_status(response, body)
        data = body.get("data")
        barcodes = data.get("barcodes") if isinstance(data, dict) else None
        if not isinstance(barcodes, list) or not all(isinstance(b, str) for b in barcodes):
            raise ApiResponseError("lookup response without a `data.barcodes` list", status=200)
        found = list(dict.fromkeys(barcodes))
        if query.routing is not None:
            found = [imb for imb in found if matches_routing(imb, query.routing)]
        return found

    # ------------------------------------------------------------------------- tokens

    async def _access_token(self) -> str:
        token = self._token
        if token is not None and self._clock() < token.renew_at:
            return token.access
        async with self._token_lock:
            token = self._token
            if token is not None and self._clock() < token.renew_at:
                return token.access  # another task renewed it meanwhile
            return await self._renew(token)

    async def _renew_after_401(self, rejected: str) -> None:
        async with self._token_lock:
            token = self._token
            if token is not None and token.access != rejected:
                return  # another task renewed it already
            await self._renew(token)

    async def _renew(self, token: _Token | None) -> str:
        """Refresh ``token`` if it has a refresh token, else (or if refused) authenticate."""
        if token is not None and token.refresh:
            try:
                return self._store(await self._token_request("/token", self._refresh_body(token)))
            except AuthenticationFailed:
                log.info("api token refresh refused; authenticating again")
        self._token = None
        return self._store(await self._token_request("/authenticate", self._login_body()))

    def _login_body(self) -> dict[str, str]:
        config = self._config
        return {
            "username": config.username,
            "password": config.password.get_secret_value(),
            "grant_type": "authorization",
            "response_type": "token",
            "scope": config.scope,
            "client_id": config.client_id,
        }

    def _refresh_body(self, token: _Token) -> dict[str, str]:
        return {
            "refresh_token": token.refresh or "",
            "grant_type": "authorization",
            "response_type": "token",
            "scope": self._config.scope,
        }

    async def _token_request(self, path: str, payload: dict[str, str]) -> dict[str, Any]:
        response = await self._send("POST", self._config.resolved_auth_url + path, json=payload)
        body = _json_object(response)
        if response.status_code in (400, 401, 403):
            what = "token refresh" if path == "/token" else "authentication"
            detail = _message(body) or f"HTTP {response.status_code}"
            raise AuthenticationFailed(f"IV-MTR {what} refused: {detail}")
        _raise_for_status(response, body)
        if not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise ApiResponseError("token response without an access_token", status=200)
        return body

    def _store(self, body: dict[str, Any]) -> str:
        try:
            expires_in = float(body.get("expires_in", _DEFAULT_EXPIRES_IN_S))
        except (TypeError, ValueError):
            expires_in = _DEFAULT_EXPIRES_IN_S
        margin = min(self._config.refresh_margin_s, expires_in / 4)
        refresh = body.get("refresh_token")
        self._token = _Token(
            access=body["access_token"],
            refresh=refresh if isinstance(refresh, str) and refresh else None,
            renew_at=self._clock() + expires_in - margin,
        )
        return self._token.access

    # ------------------------------------------------------------------------- transport

    async def _api_get(self, path: str) -> httpx.Response:
        url = self._config.resolved_api_url + path
        token = await self._access_token()
        response = await self._send("GET", url, token=token)
        if response.status_code != 401:
            return response
        log.info("api token refused; renewing it and retrying once", path=path)
        await self._renew_after_401(token)
        response = await self._send("GET", url, token=await self._access_token())
        if response.status_code == 401:
            raise AuthenticationFailed(
                "the IV-MTR API refused a freshly issued token: "
                f"{_message(_json_object(response)) or 'HTTP 401'}"
            )
        return response

    async def _send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        json: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send with retries; return the first response that is not 5xx or 429."""
        if self._closed:
            raise RuntimeError("MailTrackingClient is closed")
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        attempts = 0
        while True:
            attempts += 1
            try:
                response = await self._http.request(method, url, headers=headers, json=json)
            except _RETRYABLE_NETWORK_ERRORS as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempts > self._config.retries:
                    raise ApiUnavailable(
                        f"IV-MTR API unreachable after {attempts} attempts ({error})",
                        attempts=attempts,
                    ) from exc
                await self._backoff(attempts, None, url=url, error=error)
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise ApiError(f"request to {url} failed: {exc}") from exc
            status = response.status_code
            if status != 429 and status < 500:
                return response
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempts > self._config.retries or (
                retry_after is not None and retry_after > self._config.max_retry_after_s
            ):
                detail = _message(_json_object(response)) or response.reason_phrase
                raise ApiUnavailable(
                    f"IV-MTR API answered HTTP {status} ({detail}) after {attempts} attempts"
                    + (f"; retry after {retry_after:g} s" if retry_after is not None else ""),
                    attempts=attempts,
                    status=status,
                    retry_after=retry_after,
                )
            await self._backoff(attempts, retry_after, url=url, status=status)

    async def _backoff(self, attempts: int, retry_after: float | None, **context: Any) -> None:
        if retry_after is not None:
            delay = retry_after
        else:
            config = self._config
            delay = config.backoff_s * 2 ** (attempts - 1) * (0.5 + random.random() / 2)
            delay = min(delay, config.max_backoff_s)
        log.warning("api request failed; retrying", attempt=attempts, delay_s=delay, **context)
        await self._sleep(delay)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; {} when it is empty, not JSON or not an object."""
    try:
        body = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(body: dict[str, Any]) -> str:
    for key in ("message", "error_description", "error", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _raise_for_status(response: httpx.Response, body: dict[str, Any]) -> None:
    status = response.status_code
    if status == 403:
        raise AuthenticationFailed(
            f"IV-MTR API access denied (HTTP 403): {_message(body) or 'no IV-MTR API access'}"
        )
    if not 200 <= status < 300:
        detail = _message(body) or response.reason_phrase
        raise ApiResponseError(
            f"IV-MTR API refused the request: HTTP {status} ({detail})", status=status
        )


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
