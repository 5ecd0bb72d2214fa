"""MailTrackingClient against the local emulator: tokens, retries, rules, mapping, CLI.

The emulator runs in-process behind ``httpx.ASGITransport`` (wrapped to count and break
requests), and once, for the real-network test and the CLI, behind uvicorn on a free
loopback port.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner, Result

from consumer.api import (
    ApiConfig,
    ApiError,
    ApiResponseError,
    ApiUnavailable,
    AuthenticationFailed,
    MailTrackingClient,
    Piece,
    PieceNotFound,
    RuleViolation,
)
from consumer.cli.api import api, api_emulator, lookup, piece
from consumer.core.records import RecordKind
from consumer.core.validate import ValidRecord, validate_record
from consumer.service import record_shapes
from consumer.simulator.api_emulator import ApiEmulator, api_field_name, api_pieces, emulator_server
from consumer.simulator.generate import MailingSpec, piece_records

SPEC = MailingSpec(pieces=40, seed=7)
RECORDS = list(piece_records(SPEC))
PIECES = api_pieces(RECORDS)
IMBS = list(PIECES)
USER, PASSWORD = "mailer@example.com", "s3cret"
AUTH = "http://services.test/oauth"
API = "http://iv.test/ivws_api/informedvisapi"

# ----------------------------------------------------------------------------- helpers


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder(httpx.AsyncBaseTransport):
    """Counts requests, optionally failing the next ones with a network error."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.raise_next: list[Exception] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.raise_next:
            raise self.raise_next.pop(0)
        return await self.inner.handle_async_request(request)

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path.rsplit("/", 1)[-1]) for r in self.requests]


class Harness:
    def __init__(self, pieces: dict[str, Any] | None = None, **emulator: Any) -> None:
        self.clock = FakeClock()
        self.emulator = ApiEmulator(
            PIECES if pieces is None else pieces,
            username=USER,
            password=PASSWORD,
            clock=self.clock,
            **emulator,
        )
        self.transport = Recorder(httpx.ASGITransport(app=self.emulator.app))
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, **config: Any) -> MailTrackingClient:
        options: dict[str, Any] = {"auth_url": AUTH, "api_url": API, **config}
        return MailTrackingClient(
            ApiConfig(username=USER, password=options.pop("password", PASSWORD), **options),
            transport=self.transport,
            clock=self.clock,
            sleep=self.sleep,
        )

    @property
    def log(self) -> list[tuple[str, str, int]]:
        """(method, last path segment or endpoint, status) per request the emulator answered."""
        out = []
        for r in self.emulator.requests:
            parts = r.path.split("/")
            name = parts[-1] if r.path.startswith("/oauth") else parts[-2]
            out.append((r.method, name, r.status))
        return out


@pytest.fixture
def h() -> Harness:
    return Harness()


def mid_serial(imb: str) -> tuple[str, str]:
    length = 9 if imb[5] == "9" else 6
    return imb[5 : 5 + length], imb[5 + length : 20]


def canonical(records: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)


# ----------------------------------------------------------------------------- configuration


def test_config_defaults_and_environments() -> None:
    production = ApiConfig(username=USER, password=PASSWORD)
    assert (production.resolved_auth_url, production.resolved_api_url) == (
        "https://services.usps.com/oauth",
        "https://iv.usps.com/ivws_api/informedvisapi",
    )
    cat = ApiConfig(username=USER, password=PASSWORD, environment="cat")
    assert (cat.resolved_auth_url, cat.resolved_api_url) == (
        "https://cat-services.usps.com/oauth",
        "https://qiv.usps.com/ivws_api/informedvisapi",
    )
    assert (production.timeout_s, production.retries, production.backoff_s) == (10, 4, 0.5)
    assert production.client_id == "687b8a36-db61-42f7-83f7-11c79bf7785e"
    assert PASSWORD not in repr(production)
    overridden = ApiConfig(username=USER, password=PASSWORD, auth_url=AUTH + "/", api_url=API)
    assert (overridden.resolved_auth_url, overridden.resolved_api_url) == (AUTH, API)


@pytest.mark.parametrize(
    "bad",
    [
        {"environment": "staging"},
        {"retries": -1},
        {"timeout_s": 0},
        {"backoff_s": -1},
        {"username": ""},
        {"password": ""},
        {"colour": "red"},
    ],
)
def test_config_refuses_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as caught:
        ApiConfig(**{"username": USER, "password": PASSWORD, **bad})
    assert next(iter(bad)) in str(caught.value)


async def test_production_urls_and_the_references_token_body() -> None:
    h = Harness()
    # No overrides: the real USPS URLs, served by the emulator.
    config = ApiConfig(username=USER, password=PASSWORD)
    async with MailTrackingClient(config, transport=h.transport) as client:
        await client.piece(IMBS[0])
    login, get = h.transport.requests
    assert str(login.url) == "https://services.usps.com/oauth/authenticate"
    assert orjson.loads(login.content) == {
        "username": USER,
        "password": PASSWORD,
        "grant_type": "authorization",
        "response_type": "token",
        "scope": "user.info.ereg,iv1.apis",
        "client_id": "687b8a36-db61-42f7-83f7-11c79bf7785e",
    }
    assert str(get.url) == (
        f"https://iv.usps.com/ivws_api/informedvisapi/api/mt/get/piece/imb/{IMBS[0]}"
    )
    assert get.headers["authorization"].startswith("Bearer ")


async def test_cat_environment_urls() -> None:
    h = Harness()
    async with MailTrackingClient(
        ApiConfig(username=USER, password=PASSWORD, environment="cat"), transport=h.transport
    ) as client:
        await client.lookup(*mid_serial(IMBS[0]))
    assert [r.url.host for r in h.transport.requests] == ["cat-services.usps.com", "qiv.usps.com"]


# ----------------------------------------------------------------------------- pieces and mapping


async def test_pieces_come_back_as_the_generators_push_records(h: Harness) -> None:
    async with h.client() as client:
        for imb in IMBS[:10]:
            found = await client.piece(imb)
            assert found.imb == imb
            expected = [r for r in RECORDS if r["imb"] == imb]
            assert canonical(found.push_records()) == canonical(expected)


async def test_push_records_pass_the_push_paths_validation(h: Harness) -> None:
    shapes = record_shapes()
    async with h.client() as client:
        found = await client.piece(IMBS[1])
    for record in found.push_records():
        result = validate_record(record, shapes, RecordKind.PIECE)
        assert isinstance(result, ValidRecord), result
        assert result.extra == {}


SNAKE: dict[str, Any] = {
    "imb": "0004069951599001910222082810103",
    "expected_delivery_date": "2016-01-25",
    "mail_class": "First Class",
    "mail_shape": "Letter",
    "start_the_clock_date": "2016-01-21",
    "start_the_clock_facility_name": "MERRIFIELD",
    "start_the_clock_facility_city": "Merrifield",
    "start_the_clock_facility_state": "VA",
    "start_the_clock_facility_zip": "22116",
    "piece_level_novelty": {"added": [2025, "x"]},
    "scans": [
        {
            "scan_date_time": "2016-01-22 22:29:53-05:00",
            "scan_event_code": "918",
            "handling_event_type": "A",
            "mail_phase": "Phase 3c - Destination Sequenced Carrier Sortation",
            "machine_name": "DBCS-016",
            "scanner_type": "",
            "scan_facility_name": "MERRIFIELD",
            "scan_facility_locale_key": "X27222",
            "scan_facility_city": "Merrifield",
            "scan_facility_state": "VA",
            "scan_facility_zip": "22116",
            "scanNovelty": 7,
        },
        {
            "scan_date_time": "2016-01-23 11:05:00-05:00",
            "scan_event_code": "517",
            "handling_event_type": "L",
            "mail_phase": "Phase 4c - Delivery",
            "scan_facility_zip": "22082",
            "lde_delivery_mode": "On-Street",
        },
    ],
}
CAMEL_ATTRIBUTES: dict[str, Any] = {
    "imb": "0004069951599001910222082810103",
    "expectedDeliveryDate": "2016-01-25",
    "mailClassDescription": "First Class",
    "mailShapeDescription": "Letter",
    "startTheClockDate": "2016-01-21",
    "startTheClockFacilityName": "MERRIFIELD",
    "startTheClockFacilityCity": "Merrifield",
    "startTheClockFacilityState": "VA",
    "startTheClockFacilityZip": "22116",
    "piece_level_novelty": {"added": [2025, "x"]},
}
CAMEL_SCANS: list[dict[str, Any]] = [
    {
        "scanDatetime": "2016-01-22 22:29:53-05:00",
        "scanEventCode": "918",
        "handlingEventType": "A",
        "mailPhase": "Phase 3c - Destination Sequenced Carrier Sortation",
        "machineName": "DBCS-016",
        "scannerType": "",
        "scanFacilityName": "MERRIFIELD",
        "scanLocaleKey": "X27222",
        "scanFacilityCity": "Merrifield",
        "scanFacilityState": "VA",
        "scanFacilityZip": "22116",
        "scanNovelty": 7,
    },
    {
        "scanDatetime": "2016-01-23 11:05:00-05:00",
        "scanEventCode": "517",
        "handlingEventType": "L",
        "mailPhase": "Phase 4c - Delivery",
        "scanFacilityZip": "22082",
        "ldeDeliveryMode": "On-Street",
    },
]


async def test_snake_case_maps_to_the_push_names_exactly_and_unknown_fields_stay() -> None:
    h = Harness({SNAKE["imb"]: SNAKE})
    async with h.client() as client:
        found = await client.piece(SNAKE["imb"])
    assert dict(found.attributes) == CAMEL_ATTRIBUTES
    assert found.scans == CAMEL_SCANS
    assert found.push_records() == [{**CAMEL_ATTRIBUTES, **scan} for scan in CAMEL_SCANS]
    assert dict(found.raw) == SNAKE
    assert (found.mail_class, found.mail_shape, found.expected_delivery_date) == (
        "First Class",
        "Letter",
        "2016-01-25",
    )
    assert (
        found.start_the_clock_date,
        found.start_the_clock_facility_name,
        found.start_the_clock_facility_city,
        found.start_the_clock_facility_state,
        found.start_the_clock_facility_zip,
    ) == ("2016-01-21", "MERRIFIELD", "Merrifield", "VA", "22116")
    assert found.predicted_delivery_date is None


def test_unknown_fields_kept_and_push_records_are_fresh_dicts() -> None:
    found = Piece.from_api({"brand_new": None, "scans": [{"another": [1]}]}, imb="0" * 20)
    assert found.imb == "0" * 20
    assert dict(found.attributes) == {"brand_new": None, "imb": "0" * 20}
    records = found.push_records()
    assert records == [{"brand_new": None, "imb": "0" * 20, "another": [1]}]
    records[0]["imb"] = "changed"
    assert found.push_records()[0]["imb"] == "0" * 20


def test_emulator_names_are_the_apis() -> None:
    assert [
        api_field_name(n)
        for n in ("scanDatetime", "scanLocaleKey", "mailClassDescription", "imbSerialNumber")
    ] == ["scan_date_time", "scan_facility_locale_key", "mail_class", "imb_serial_number"]


async def test_unknown_imb_is_piece_not_found_without_retry(h: Harness) -> None:
    unknown = IMBS[0][:-1] + ("0" if IMBS[0][-1] != "0" else "1")
    async with h.client() as client:
        with pytest.raises(PieceNotFound) as caught:
            await client.piece(unknown)
    assert caught.value.imb == unknown
    assert h.log == [("POST", "authenticate", 200), ("GET", "imb", 404)]
    assert h.sleeps == []


# ----------------------------------------------------------------------------- lookup

LOOKUP_PIECES: dict[str, dict[str, Any]] = {
    imb: {"imb": imb, "scans": []}
    for imb in (
        "00040699515990019102",
        "0027069951599001910222082",
        "0027069951599001910222083123401",
        "00310699515990019102220821234",
        "00310699515990019103",
    )
}


async def test_lookup_returns_the_full_imbs() -> None:
    h = Harness(LOOKUP_PIECES)
    async with h.client() as client:
        assert await client.lookup("699515", "990019102") == list(LOOKUP_PIECES)[:4]
        assert await client.lookup("699515", "990019102", stid="270") == [
            "0027069951599001910222082",
            "0027069951599001910222083123401",
        ]
        assert await client.lookup("699515", "990019102", routing="22082") == [
            "0027069951599001910222082",
            "00310699515990019102220821234",
        ]
        assert await client.lookup("699515", "990019102", stid="270", routing="22083") == [
            "0027069951599001910222083123401"
        ]
        assert await client.lookup("699515", "990019102", routing="99999") == []
        assert await client.lookup("699515", "990019104") == []
    lookups = [r.path for r in h.emulator.requests if "/mid/" in r.path]
    assert lookups[1].endswith("/mid/699515/serial/990019102/stid/270")
    # The routing code is not sent: the API has no routing-code lookup.
    assert lookups[2].endswith("/mid/699515/serial/990019102")
    assert h.log[-1] == ("GET", "serial", 404)


async def test_lookup_of_a_generated_piece(h: Harness) -> None:
    async with h.client() as client:
        mid, serial = mid_serial(IMBS[3])
        assert await client.lookup(mid, serial, stid=IMBS[3][2:5]) == [IMBS[3]]


# ----------------------------------------------------------------------------- rules first


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        (lambda c: c.piece("699515990019102"), "imb_partial"),
        (lambda c: c.piece("0070869951599001910222082810103"), "stid_no_single_piece_data"),
        (lambda c: c.piece("0004069951599001910x"), "imb_not_digits"),
        (lambda c: c.lookup("912345", "990019102"), "mid_invalid"),
        (lambda c: c.lookup("699515", "99001910"), "serial_invalid"),
        (lambda c: c.lookup("699515", "990019102", stid="70"), "stid_invalid"),
        (lambda c: c.lookup("699515", "990019102", routing="2208"), "routing_invalid"),
    ],
)
async def test_refusals_happen_before_any_request(call: Any, rule: str, h: Harness) -> None:
    async with h.client() as client:
        with pytest.raises(RuleViolation) as caught:
            await call(client)
    assert caught.value.rule == rule
    assert h.transport.requests == []


# ----------------------------------------------------------------------------- tokens


async def test_one_token_serves_many_calls_even_concurrent(h: Harness) -> None:
    async with h.client() as client:
        await asyncio.gather(*(client.piece(imb) for imb in IMBS[:5]))
        await client.piece(IMBS[5])
    assert h.transport.calls.count(("POST", "authenticate")) == 1
    assert len(h.transport.requests) == 7


async def test_token_is_refreshed_shortly_before_it_expires() -> None:
    h = Harness(token_ttl_s=100)
    async with h.client() as client:
        await client.piece(IMBS[0])
        h.clock.now += 70  # renewal is due at 100 - min(60, 100 / 4) = 75 s
        await client.piece(IMBS[0])
        h.clock.now += 6
        await client.piece(IMBS[0])
        h.clock.now += 80
        await client.piece(IMBS[0])
    assert h.log == [
        ("POST", "authenticate", 200),
        ("GET", "imb", 200),
        ("GET", "imb", 200),
        ("POST", "token", 200),
        ("GET", "imb", 200),
        ("POST", "token", 200),
        ("GET", "imb", 200),
    ]
    refresh = next(r for r in h.transport.requests if r.url.path.endswith("/token"))
    body = orjson.loads(refresh.content)
    assert set(body) == {"refresh_token", "grant_type", "response_type", "scope"}
    assert (body["grant_type"], body["response_type"]) == ("authorization", "token")


async def test_expired_access_and_refresh_tokens_mean_a_new_login() -> None:
    h = Harness(token_ttl_s=100, refresh_ttl_s=150)
    async with h.client() as client:
        await client.piece(IMBS[0])
        h.clock.now += 1000
        await client.piece(IMBS[0])
    assert h.log == [
        ("POST", "authenticate", 200),
        ("GET", "imb", 200),
        ("POST", "token", 401),
        ("POST", "authenticate", 200),
        ("GET", "imb", 200),
    ]


async def test_a_401_refreshes_the_token_and_retries_once(h: Harness) -> None:
    async with h.client() as client:
        await client.piece(IMBS[0])
        h.emulator.expire_tokens()  # the server drops the token the client still trusts
        found = await client.piece(IMBS[1])
    assert found.imb == IMBS[1]
    assert h.log[2:] == [("GET", "imb", 401), ("POST", "token", 200), ("GET", "imb", 200)]


async def test_a_refused_refresh_falls_back_to_authenticating(h: Harness) -> None:
    async with h.client() as client:
        await client.piece(IMBS[0])
        h.emulator.expire_tokens()
        h.emulator.revoke_refresh_tokens()
        await client.piece(IMBS[1])
    assert h.log[2:] == [
        ("GET", "imb", 401),
        ("POST", "token", 401),
        ("POST", "authenticate", 200),
        ("GET", "imb", 200),
    ]


async def test_a_second_401_is_authentication_failed(h: Harness) -> None:
    h.emulator.fail_next(5, 401, scope="api")
    async with h.client() as client:
        with pytest.raises(AuthenticationFailed, match="freshly issued token"):
            await client.piece(IMBS[0])
    assert h.log == [
        ("POST", "authenticate", 200),
        ("GET", "imb", 401),
        ("POST", "token", 200),
        ("GET", "imb", 401),
    ]


async def test_bad_credentials_fail_at_once(h: Harness) -> None:
    async with h.client(password="wrong") as client:
        with pytest.raises(AuthenticationFailed, match="bad username or password"):
            await client.piece(IMBS[0])
    assert h.log == [("POST", "authenticate", 401)]
    assert h.sleeps == []


async def test_a_403_is_authentication_failed(h: Harness) -> None:
    h.emulator.fail_next(1, 403, scope="api")
    async with h.client() as client:
        with pytest.raises(AuthenticationFailed, match="403"):
            await client.piece(IMBS[0])


# ----------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_5xx_and_429_are_retried_with_jittered_exponential_backoff(
    status: int, h: Harness
) -> None:
    h.emulator.fail_next(3, status, scope="api")
    async with h.client(backoff_s=0.5) as client:
        assert (await client.piece(IMBS[0])).imb == IMBS[0]
    assert [s for _, _, s in h.log] == [200, status, status, status, 200]
    assert len(h.sleeps) == 3
    for n, slept in enumerate(h.sleeps):
        assert 0.5 * 2**n / 2 <= slept <= 0.5 * 2**n


async def test_backoff_is_capped(h: Harness) -> None:
    h.emulator.fail_next(4, 503)
    async with h.client(backoff_s=10, max_backoff_s=12) as client:
        await client.piece(IMBS[0])
    assert max(h.sleeps) <= 12 and len(h.sleeps) == 4


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured(status: int, h: Harness) -> None:
    h.emulator.fail_next(2, status, retry_after=3, scope="api")
    async with h.client() as client:
        await client.piece(IMBS[0])
    assert h.sleeps == [3.0, 3.0]


async def test_a_retry_after_too_long_gives_up_at_once(h: Harness) -> None:
    h.emulator.fail_next(1, 429, retry_after=120, scope="api")
    async with h.client(max_retry_after_s=60) as client:
        with pytest.raises(ApiUnavailable) as caught:
            await client.piece(IMBS[0])
    assert (caught.value.attempts, caught.value.status, caught.value.retry_after) == (1, 429, 120)
    assert h.sleeps == []


async def test_api_unavailable_after_the_retries(h: Harness) -> None:
    h.emulator.fail_next(100, 500, scope="api")
    async with h.client(retries=2) as client:
        with pytest.raises(ApiUnavailable, match="HTTP 500") as caught:
            await client.piece(IMBS[0])
    assert (caught.value.attempts, caught.value.status) == (3, 500)
    assert h.transport.calls.count(("GET", IMBS[0])) == 3
    assert len(h.sleeps) == 2


async def test_the_token_endpoint_is_retried_too(h: Harness) -> None:
    h.emulator.fail_next(2, 502, scope="auth")
    async with h.client() as client:
        await client.piece(IMBS[0])
    assert [s for _, _, s in h.log] == [502, 502, 200, 200]


@pytest.mark.parametrize("status", [400, 405, 409, 422])
async def test_other_4xx_are_not_retried(status: int, h: Harness) -> None:
    h.emulator.fail_next(1, status, scope="api")
    async with h.client() as client:
        with pytest.raises(ApiResponseError) as caught:
            await client.piece(IMBS[0])
    assert caught.value.status == status
    assert h.transport.calls.count(("GET", IMBS[0])) == 1
    assert h.sleeps == []


async def test_network_errors_and_timeouts_are_retried(h: Harness) -> None:
    request = httpx.Request("GET", API)
    h.transport.raise_next = [
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        httpx.RemoteProtocolError("cut", request=request),
    ]
    async with h.client() as client:
        assert (await client.piece(IMBS[0])).imb == IMBS[0]
    assert len(h.sleeps) == 3


async def test_network_errors_outlasting_the_retries_are_api_unavailable(h: Harness) -> None:
    request = httpx.Request("GET", API)
    h.transport.raise_next = [httpx.ConnectError("refused", request=request)] * 5
    async with h.client(retries=4) as client:
        with pytest.raises(ApiUnavailable, match="ConnectError") as caught:
            await client.piece(IMBS[0])
    assert (caught.value.attempts, caught.value.status) == (5, None)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_other_httpx_errors_are_translated(h: Harness) -> None:
    h.transport.raise_next = [httpx.UnsupportedProtocol("ftp?")]
    async with h.client() as client:
        with pytest.raises(ApiError) as caught:
            await client.piece(IMBS[0])
    assert isinstance(caught.value.__cause__, httpx.UnsupportedProtocol)
    assert h.sleeps == []


# ----------------------------------------------------------------------------- odd answers


def mock_client(handler: Any) -> MailTrackingClient:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/authenticate"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": "900"})
        return handler(request)  # type: ignore[no-any-return]

    config = ApiConfig(username=USER, password=PASSWORD, auth_url=AUTH, api_url=API)
    return MailTrackingClient(config, transport=httpx.MockTransport(route))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"data": []}', b'{"data": {"scans": {}}}', b'{"data": {"scans": [1]}}'],
)
async def test_a_malformed_piece_answer_is_a_response_error(body: bytes) -> None:
    async with mock_client(lambda _: httpx.Response(200, content=body)) as client:
        with pytest.raises(ApiResponseError):
            await client.piece(IMBS[0])


async def test_a_not_found_message_with_200_is_piece_not_found() -> None:
    answer = httpx.Response(200, json={"message": "Barcode not found"})
    async with mock_client(lambda _: answer) as client:
        with pytest.raises(PieceNotFound, match="Barcode not found"):
            await client.piece(IMBS[0])


@pytest.mark.parametrize(
    "body", [{"data": {}}, {"data": {"barcodes": "x"}}, {"data": {"barcodes": [1]}}]
)
async def test_a_malformed_lookup_answer_is_a_response_error(body: dict[str, Any]) -> None:
    async with mock_client(lambda _: httpx.Response(200, json=body)) as client:
        with pytest.raises(ApiResponseError):
            await client.lookup("699515", "990019102")


async def test_a_token_answer_without_a_token_is_a_response_error() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"token_type": "Bearer"}))
    config = ApiConfig(username=USER, password=PASSWORD, auth_url=AUTH, api_url=API)
    async with MailTrackingClient(config, transport=transport) as client:
        with pytest.raises(ApiResponseError, match="access_token"):
            await client.piece(IMBS[0])


async def test_a_closed_client_refuses_and_closing_is_idempotent(h: Harness) -> None:
    client = h.client()
    await client.aclose()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.piece(IMBS[0])


# ----------------------------------------------------------------------------- real server


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ApiEmulator, str]]:
    """The emulator behind uvicorn on a free loopback port, in a thread with its own loop."""
    emulator = ApiEmulator(PIECES, username=USER, password=PASSWORD)
    server = emulator_server(emulator, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "emulator did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield emulator, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def emulator(served: tuple[ApiEmulator, str]) -> Iterator[ApiEmulator]:
    served[0].requests.clear()
    yield served[0]
    served[0].clear_faults()


@pytest.fixture
async def real_client(served: tuple[ApiEmulator, str]) -> AsyncIterator[MailTrackingClient]:
    auth_url, api_url = ApiEmulator.urls(served[1])
    config = ApiConfig(
        username=USER,
        password=PASSWORD,
        auth_url=auth_url,
        api_url=api_url,
        timeout_s=0.2,
        backoff_s=0.01,
    )
    async with MailTrackingClient(config) as client:
        yield client


async def test_over_a_real_socket_with_a_timeout_and_a_503(
    real_client: MailTrackingClient, emulator: ApiEmulator
) -> None:
    emulator.delay_next(1, 0.5, scope="api")  # longer than the 0.2 s timeout: retried
    emulator.fail_next(1, 503, retry_after=0, scope="api")
    found = await real_client.piece(IMBS[2])
    assert canonical(found.push_records()) == canonical([r for r in RECORDS if r["imb"] == IMBS[2]])
    assert await real_client.lookup(*mid_serial(IMBS[2])) == [IMBS[2]]
    # The timed-out request is recorded when its delayed answer goes out.
    for _ in range(100):
        if len(emulator.requests) >= 5:
            break
        await asyncio.sleep(0.05)
    statuses = sorted((r.path.rsplit("/", 1)[-1], r.status) for r in emulator.requests)
    assert statuses == sorted(
        [
            ("authenticate", 200),
            (IMBS[2], 503),
            (IMBS[2], 200),  # the answer the client no longer waited for
            (IMBS[2], 200),
            (mid_serial(IMBS[2])[1], 200),
        ]
    )


async def test_admin_endpoints_inject_faults(
    real_client: MailTrackingClient, served: tuple[ApiEmulator, str], emulator: ApiEmulator
) -> None:
    async with httpx.AsyncClient(base_url=served[1]) as admin:
        answer = await admin.post("/_emulator/faults", json={"fail_next": 1, "status": 500})
        assert answer.json() == {"faults": 1}
        await real_client.piece(IMBS[0])
        assert (await admin.post("/_emulator/expire-tokens")).status_code == 200
        await real_client.piece(IMBS[0])
        recorded = (await admin.get("/_emulator/requests")).json()["requests"]
    assert [r["status"] for r in recorded][-3:] == [401, 200, 200]
    assert 500 in [r["status"] for r in recorded]


# ----------------------------------------------------------------------------- CLI


def run(
    command: Any, args: list[str], served: tuple[ApiEmulator, str], **env: str | None
) -> Result:
    auth_url, api_url = ApiEmulator.urls(served[1])
    environment = {"IVMTR_API_USERNAME": USER, "IVMTR_API_PASSWORD": PASSWORD, **env}
    urls = ["--api-url", api_url, "--auth-url", auth_url]
    return CliRunner().invoke(command, [*args, *urls], env=environment)


def test_cli_piece_table(served: tuple[ApiEmulator, str], emulator: ApiEmulator) -> None:
    result = run(piece, [IMBS[0]], served)
    assert result.exit_code == 0, result.output
    scans = [r for r in RECORDS if r["imb"] == IMBS[0]]
    assert f"imb{' ' * 10}" in result.stdout or result.stdout.startswith("imb ")
    assert IMBS[0] in result.stdout
    assert f"{len(scans)} scans" in result.stdout
    for record in scans:
        assert str(record["scanDatetime"]) in result.stdout


def test_cli_piece_json(served: tuple[ApiEmulator, str], emulator: ApiEmulator) -> None:
    result = run(piece, [IMBS[1], "--format", "json"], served)
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert body["imb"] == IMBS[1]
    merged = [{**body["attributes"], **scan} for scan in body["scans"]]
    assert canonical(merged) == canonical([r for r in RECORDS if r["imb"] == IMBS[1]])


def test_cli_retries_are_logged_to_stderr_only(
    served: tuple[ApiEmulator, str], emulator: ApiEmulator
) -> None:
    emulator.fail_next(1, 503, retry_after=0, scope="api")
    result = run(piece, [IMBS[1], "--format", "json"], served)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["imb"] == IMBS[1]
    assert "retrying" in result.stderr


def test_cli_lookup(served: tuple[ApiEmulator, str], emulator: ApiEmulator) -> None:
    mid, serial = mid_serial(IMBS[0])
    result = run(lookup, [mid, serial], served)
    assert (result.exit_code, result.stdout) == (0, IMBS[0] + "\n")
    result = run(lookup, [mid, serial, "--stid", IMBS[0][2:5]], served)
    assert (result.exit_code, result.stdout) == (0, IMBS[0] + "\n")
    wrong_zip = "99999" if not IMBS[0][20:].startswith("99999") else "00000"
    result = run(lookup, [mid, serial, "--routing", wrong_zip], served)
    assert result.exit_code == 1 and "no IMbs found" in result.stderr


@pytest.mark.parametrize(
    ("imb", "text"),
    [
        ("699515990019102", "lookup MID SERIAL"),
        ("0070869951599001910222082810103", "Business Reply Mail"),
    ],
)
def test_cli_refusals_send_nothing(
    imb: str, text: str, served: tuple[ApiEmulator, str], emulator: ApiEmulator
) -> None:
    result = run(piece, [imb], served)
    assert result.exit_code == 2
    assert text in result.stderr
    assert emulator.requests == []


def test_cli_piece_not_found(served: tuple[ApiEmulator, str], emulator: ApiEmulator) -> None:
    result = run(piece, ["0" * 31], served)
    assert result.exit_code == 1
    assert "piece not found" in result.stderr and "One-Time Query" in result.stderr


def test_cli_bad_password(served: tuple[ApiEmulator, str], emulator: ApiEmulator) -> None:
    result = run(piece, [IMBS[0]], served, IVMTR_API_PASSWORD="nope")
    assert result.exit_code == 1 and "authentication refused" in result.stderr


def test_cli_missing_credentials(served: tuple[ApiEmulator, str]) -> None:
    result = run(piece, [IMBS[0]], served, IVMTR_API_PASSWORD=None)
    assert result.exit_code == 2 and "IVMTR_API_PASSWORD" in result.stderr


def test_cli_urls_from_the_environment(
    served: tuple[ApiEmulator, str], emulator: ApiEmulator
) -> None:
    auth_url, api_url = ApiEmulator.urls(served[1])
    env = {
        "IVMTR_API_USERNAME": USER,
        "IVMTR_API_PASSWORD": PASSWORD,
        "IVMTR_API_URL": api_url,
        "IVMTR_API_AUTH_URL": auth_url,
    }
    result = CliRunner().invoke(api, ["lookup", *mid_serial(IMBS[0])], env=env)
    assert (result.exit_code, result.stdout) == (0, IMBS[0] + "\n")


def test_cli_api_emulator_serves_a_simulated_mailing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, ApiEmulator]] = []
    monkeypatch.setattr(
        "consumer.simulator.api_emulator.serve_emulator",
        lambda host, port, data: calls.append((host, port, data)),
    )
    result = CliRunner().invoke(api_emulator, ["--port", "8123", "--pieces", "20", "--seed", "3"])
    assert result.exit_code == 0, result.output
    ((host, port, served_emulator),) = calls
    assert (host, port) == ("127.0.0.1", 8123)
    assert served_emulator.pieces == api_pieces(piece_records(MailingSpec(pieces=20, seed=3)))
    assert "export IVMTR_API_URL=http://127.0.0.1:8123/ivws_api/informedvisapi" in result.stderr
    assert "export IVMTR_API_AUTH_URL=http://127.0.0.1:8123/oauth" in result.stderr
