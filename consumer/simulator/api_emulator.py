"""A local stand-in for the IV-MTR Mail Tracking API, for tests and demos.

It serves the contract of ivmtr.md section 3 over data from the simulator, so a
MailTrackingClient pointed at it (``auth_url``/``api_url``, or an ``httpx.ASGITransport``)
cannot tell it from USPS::

    POST /oauth/authenticate      JSON username, password, grant_type="authorization",
                                  response_type="token", scope, client_id (the toolkit's)
                                  -> 200 {access_token, refresh_token, token_type, expires_in}
                                     400 bad request, 401 bad credentials
    POST /oauth/token             JSON refresh_token, grant_type, response_type, scope
                                  -> 200 new tokens (the refresh token rotates), 401 refused
    GET  /ivws_api/informedvisapi/api/mt/get/piece/imb/{imb}
                                  -> 200 {"data": {... snake_case, "scans": [...]}},
                                     404 {"message": "piece not found"}
    GET  /ivws_api/informedvisapi/api/mt/get/piece/mid/{mid}/serial/{serial}[/stid/{stid}]
                                  -> 200 {"data": {"barcodes": [...]}}, 404 when none
    API calls without a valid, unexpired Bearer token -> 401 {"message": ...}

It does not apply the API's business rules (the Business Reply Mail STIDs, the 30 days):
the client must. Faults for tests, as methods or over HTTP (not recorded, never faulted)::

    fail_next(n, status, retry_after=, scope=)   POST /_emulator/faults {"fail_next": n,
                                                   "status": 503, "retry_after": 1,
                                                   "scope": "api" | "auth" | "all"}
    delay_next(n, seconds, scope=)               POST /_emulator/faults {"delay_next": n,
                                                   "delay_s": 2.5, "scope": ...}
    expire_tokens()                              POST /_emulator/expire-tokens
    revoke_refresh_tokens()                      POST /_emulator/revoke-refresh-tokens
    clear_faults()                               DELETE /_emulator/faults
    requests (RecordedRequest list)              GET /_emulator/requests

The piece data is built from ``generate_records(MailingSpec(...))``: piece records grouped by
IMb, camelCase names turned into the API's snake_case, fields shared by all of a piece's
records lifted to the piece, the rest kept per scan.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumer.simulator.generate import MailingSpec, piece_records, record_kind

__all__ = [
    "API_PREFIX",
    "AUTH_PREFIX",
    "ApiEmulator",
    "RecordedRequest",
    "api_field_name",
    "api_pieces",
    "api_pieces_for",
    "emulator_server",
    "serve_emulator",
]

AUTH_PREFIX: Final = "/oauth"
API_PREFIX: Final = "/ivws_api/informedvisapi"

# The toolkit's public client_id and scope (ivmtr.md section 3). Kept apart from the client's
# copy on purpose: the emulator checks the contract, not the client's idea of it.
_TOOLKIT_CLIENT_ID: Final = "687b8a36-db61-42f7-83f7-11c79bf7785e"
_SCOPE: Final = "user.info.ereg,iv1.apis"

Scope = Literal["api", "auth", "all"]

# ----------------------------------------------------------------------------- data

# Per-event fields: they stay on the scans even when all of a piece's scans agree.
_SCAN_FIELDS: Final = frozenset(
    {
        "handlingEventType",
        "handlingEventTypeDescription",
        "scanDatetime",
        "scanEventCode",
        "mailPhase",
        "machineName",
        "machineId",
        "scannerType",
        "scanFacilityName",
        "scanFacilityCity",
        "scanFacilityState",
        "scanFacilityZip",
        "scanLocaleKey",
        "ldeDeliveryMode",
        "ldeInventoryMethod",
        "ldeTriggerMethod",
        "pieceId",
    }
)
# Names that do not follow the plain camelCase -> snake_case rule (ivmtr.md section 3).
_IRREGULAR: Final = {
    "scanDatetime": "scan_date_time",
    "scanLocaleKey": "scan_facility_locale_key",
    "mailClassDescription": "mail_class",
    "mailShapeDescription": "mail_shape",
}
_CAPITAL = re.compile(r"(?<!^)(?=[A-Z])")


def api_field_name(push_name: str) -> str:
    """The API's snake_case name of a push-feed (camelCase) field."""
    return _IRREGULAR.get(push_name) or _CAPITAL.sub("_", push_name).lower()


def api_pieces(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Group push-feed piece records by IMb into API piece objects (snake_case, with scans).

    Non-piece records are skipped. Scans keep the records' order.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        imb = record.get("imb")
        if isinstance(imb, str) and imb and record_kind(dict(record)) == "piece":
            groups.setdefault(imb, []).append(record)
    return {imb: _api_piece(group) for imb, group in groups.items()}


def _api_piece(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    first = records[0]
    names = dict.fromkeys(name for record in records for name in record)
    shared = [
        name
        for name in names
        if name not in _SCAN_FIELDS
        and all(name in record and record[name] == first[name] for record in records)
    ]
    piece: dict[str, Any] = {api_field_name(name): first[name] for name in shared}
    piece["scans"] = [
        {api_field_name(name): value for name, value in record.items() if name not in shared}
        for record in records
    ]
    return piece


def api_pieces_for(spec: MailingSpec) -> dict[str, dict[str, Any]]:
    """API piece objects for the pieces of a simulated mailing."""
    return api_pieces(piece_records(spec))


# ----------------------------------------------------------------------------- app


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the emulator answered (admin requests excluded)."""

    method: str
    path: str
    status: int


@dataclass(slots=True)
class _Fault:
    remaining: int
    scope: Scope
    status: int | None = None
    retry_after: float | None = None
    delay_s: float = 0.0


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class ApiEmulator:
    """The emulated API over ``pieces`` (IMb -> API piece object, as from ``api_pieces``).

    Access tokens live ``token_ttl_s`` and refresh tokens ``refresh_ttl_s`` seconds of
    ``clock`` (monotonic by default; tests pass their own). ``app`` is the ASGI app.
    """

    def __init__(
        self,
        pieces: Mapping[str, Mapping[str, Any]],
        *,
        username: str = "emulator",
        password: str = "emulator",
        token_ttl_s: float = 900.0,
        refresh_ttl_s: float = 8 * 3600.0,
        client_id: str = _TOOLKIT_CLIENT_ID,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pieces: dict[str, Mapping[str, Any]] = dict(pieces)
        self.username = username
        self.password = password
        self.token_ttl_s = token_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.client_id = client_id
        self.requests: list[RecordedRequest] = []
        self._clock = clock
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}  # token -> expiry
        self._refresh: dict[str, float] = {}
        self._faults: list[_Fault] = []
        self._by_tracking: dict[str, str] = {}
        self._by_mid_serial: dict[tuple[str, str], list[str]] = {}
        for imb in self.pieces:
            mid_length = 9 if imb[5:6] == "9" else 6
            self._by_tracking.setdefault(imb[:20], imb)
            key = (imb[5 : 5 + mid_length], imb[5 + mid_length : 20])
            self._by_mid_serial.setdefault(key, []).append(imb)
        self.app = Starlette(
            routes=[
                Route(f"{AUTH_PREFIX}/authenticate", self._authenticate, methods=["POST"]),
                Route(f"{AUTH_PREFIX}/token", self._refresh_token, methods=["POST"]),
                Route(f"{API_PREFIX}/api/mt/get/piece/imb/{{imb}}", self._piece),
                Route(f"{API_PREFIX}/api/mt/get/piece/mid/{{mid}}/serial/{{serial}}", self._lookup),
                Route(
                    f"{API_PREFIX}/api/mt/get/piece/mid/{{mid}}/serial/{{serial}}/stid/{{stid}}",
                    self._lookup,
                ),
                Route("/_emulator/faults", self._admin_faults, methods=["POST", "DELETE"]),
                Route("/_emulator/expire-tokens", self._admin_expire, methods=["POST"]),
                Route("/_emulator/revoke-refresh-tokens", self._admin_revoke, methods=["POST"]),
                Route("/_emulator/requests", self._admin_requests),
            ]
        )

    @staticmethod
    def urls(base: str) -> tuple[str, str]:
        """The (auth_url, api_url) pair for an emulator served at ``base``."""
        base = base.rstrip("/")
        return base + AUTH_PREFIX, base + API_PREFIX

    # ------------------------------------------------------------------------- fault knobs

    def fail_next(
        self,
        count: int,
        status: int = 503,
        *,
        retry_after: float | None = None,
        scope: Scope = "all",
    ) -> None:
        """Answer the next ``count`` requests in ``scope`` with ``status`` (and Retry-After)."""
        with self._lock:
            self._faults.append(_Fault(count, scope, status, retry_after))

    def delay_next(self, count: int, seconds: float, *, scope: Scope = "api") -> None:
        """Delay the answers of the next ``count`` requests in ``scope`` (for timeouts)."""
        with self._lock:
            self._faults.append(_Fault(count, scope, delay_s=seconds))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def expire_tokens(self) -> None:
        """Expire every access token now (refresh tokens stay valid)."""
        with self._lock:
            now = self._clock()
            self._access = dict.fromkeys(self._access, now)

    def revoke_refresh_tokens(self) -> None:
        """Invalidate every refresh token now."""
        with self._lock:
            self._refresh.clear()

    # ------------------------------------------------------------------------- plumbing

    def _take_fault(self, scope: Scope) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.scope in ("all", scope):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    async def _answer(
        self, request: Request, scope: Scope, handler: Callable[[], Awaitable[Response]]
    ) -> Response:
        fault = self._take_fault(scope)
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault is not None and fault.status is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            response = _json({"message": "injected fault"}, fault.status, headers)
        else:
            response = await handler()
        with self._lock:
            self.requests.append(
                RecordedRequest(request.method, request.url.path, response.status_code)
            )
        return response

    def _issue(self) -> Response:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with self._lock:
            now = self._clock()
            self._access[access] = now + self.token_ttl_s
            self._refresh[refresh] = now + self.refresh_ttl_s
        return _json(
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": self.token_ttl_s,
            }
        )

    @staticmethod
    async def _body(request: Request) -> dict[str, Any] | None:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        return body if isinstance(body, dict) else None

    @staticmethod
    def _grant_problem(body: Mapping[str, Any]) -> str | None:
        if body.get("grant_type") != "authorization":
            return "grant_type must be 'authorization'"
        if body.get("response_type") != "token":
            return "response_type must be 'token'"
        if body.get("scope") != _SCOPE:
            return f"scope must be {_SCOPE!r}"
        return None

    def _authorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _json({"message": "Unauthorized: no bearer token"}, 401)
        with self._lock:
            expiry = self._access.get(token)
            now = self._clock()
        if expiry is None:
            return _json({"message": "Unauthorized: invalid token"}, 401)
        if now >= expiry:
            return _json({"message": "Unauthorized: token expired"}, 401)
        return None

    # ------------------------------------------------------------------------- endpoints

    async def _authenticate(self, request: Request) -> Response:
        async def handle() -> Response:
            body = await self._body(request)
            if body is None:
                return _json({"error": "invalid_request", "error_description": "JSON body"}, 400)
            problem = self._grant_problem(body)
            if problem is None and body.get("client_id") != self.client_id:
                problem = "unknown client_id"
            if problem is not None:
                return _json({"error": "invalid_request", "error_description": problem}, 400)
            user, password = body.get("username"), body.get("password")
            if not (
                isinstance(user, str)
                and isinstance(password, str)
                and hmac.compare_digest(user.encode(), self.username.encode())
                and hmac.compare_digest(password.encode(), self.password.encode())
            ):
                return _json(
                    {"error": "invalid_grant", "error_description": "bad username or password"},
                    401,
                )
            return self._issue()

        return await self._answer(request, "auth", handle)

    async def _refresh_token(self, request: Request) -> Response:
        async def handle() -> Response:
            body = await self._body(request)
            problem = "JSON body" if body is None else self._grant_problem(body)
            if body is None or problem is not None:
                return _json({"error": "invalid_request", "error_description": problem}, 400)
            token = body.get("refresh_token")
            with self._lock:
                expiry = self._refresh.pop(token, None) if isinstance(token, str) else None
                now = self._clock()
            if expiry is None or now >= expiry:
                return _json(
                    {"error": "invalid_grant", "error_description": "refresh token refused"}, 401
                )
            return self._issue()

        return await self._answer(request, "auth", handle)

    async def _piece(self, request: Request) -> Response:
        async def handle() -> Response:
            refused = self._authorized(request)
            if refused is not None:
                return refused
            imb = request.path_params["imb"]
            if not imb.isdigit():
                return _json({"message": "invalid IMb"}, 400)
            found = imb if imb in self.pieces else self._by_tracking.get(imb)
            if found is None:
                return _json({"message": "piece not found"}, 404)
            return _json({"data": self.pieces[found]})

        return await self._answer(request, "api", handle)

    async def _lookup(self, request: Request) -> Response:
        async def handle() -> Response:
            refused = self._authorized(request)
            if refused is not None:
                return refused
            params = request.path_params
            barcodes = self._by_mid_serial.get((params["mid"], params["serial"]), [])
            stid = params.get("stid")
            if stid is not None:
                barcodes = [imb for imb in barcodes if imb[2:5] == stid]
            if not barcodes:
                return _json({"message": "piece not found"}, 404)
            return _json({"data": {"barcodes": barcodes}})

        return await self._answer(request, "api", handle)

    async def _admin_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.clear_faults()
            return _json({"faults": 0})
        body = await self._body(request) or {}
        scope = body.get("scope", "all" if "fail_next" in body else "api")
        if scope not in ("api", "auth", "all"):
            return _json({"message": "scope must be api, auth or all"}, 400)
        try:
            if "fail_next" in body:
                retry_after = body.get("retry_after")
                self.fail_next(
                    int(body["fail_next"]),
                    int(body.get("status", 503)),
                    retry_after=None if retry_after is None else float(retry_after),
                    scope=scope,
                )
            if "delay_next" in body:
                self.delay_next(int(body["delay_next"]), float(body["delay_s"]), scope=scope)
        except (KeyError, TypeError, ValueError) as exc:
            return _json({"message": f"bad fault: {exc}"}, 400)
        with self._lock:
            pending = len(self._faults)
        return _json({"faults": pending})

    async def _admin_expire(self, request: Request) -> Response:
        self.expire_tokens()
        return _json({"expired": True})

    async def _admin_revoke(self, request: Request) -> Response:
        self.revoke_refresh_tokens()
        return _json({"revoked": True})

    async def _admin_requests(self, request: Request) -> Response:
        with self._lock:
            recorded = [
                {"method": r.method, "path": r.path, "status": r.status} for r in self.requests
            ]
        return _json({"requests": recorded})


# ----------------------------------------------------------------------------- serving


def emulator_server(
    emulator: ApiEmulator, host: str = "127.0.0.1", port: int = 0
) -> uvicorn.Server:
    """A uvicorn server for ``emulator`` (await ``serve()``; set ``should_exit`` to stop).

    With ``port=0`` the system picks a free port: read it from ``server.servers`` once
    ``server.started`` is true.
    """
    config = uvicorn.Config(
        emulator.app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
    )
    return uvicorn.Server(config)


def serve_emulator(
    host: str,
    port: int,
    data: Mapping[str, Mapping[str, Any]] | ApiEmulator,
    **options: Any,
) -> None:
    """Serve the emulator over ``data`` (IMb -> API piece object) until interrupted.

    ``options`` go to ApiEmulator (username, password, token_ttl_s, ...).
    """
    emulator = data if isinstance(data, ApiEmulator) else ApiEmulator(data, **options)
    emulator_server(emulator, host, port).run()
