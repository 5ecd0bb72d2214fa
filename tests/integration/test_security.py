"""Authentication, network rules, TLS and limits, against the running service."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import subprocess
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.feeds import hash_password
from tests.integration.conftest import (
    Service,
    consume,
    message_group_id,
    require_broker,
    start_service,
    stop_service,
)
from tests.integration.test_delivery import event_ids
from tests.integration.test_ingest import PIECE, TRAY, envelope

pytestmark = pytest.mark.kafka

JSON = {"content-type": "application/json"}


def feeds_file(path: Path, *, trusted: str | None = None) -> Path:
    letters, flats = (
        hash_password("letters-secret-1", n=2**10),
        hash_password("flats-secret-22", n=2**10),
    )
    proxies = f'[proxies]\ntrusted = ["{trusted}"]\n' if trusted else ""
    path.write_text(
        f"""
[feeds.letters]
kind = "auto"
campaign = "Spring 2026"
user = "usps-letters"
password_hash = "{letters}"

[feeds.flats]
user = "usps-flats"
password_hash = "{flats}"
allowed_networks = ["56.0.0.0/8"]
[feeds.flats.topics]
piece = "{path.stem}.flats-piece-scans"
{proxies}"""
    )
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    require_broker()
    tmp = tmp_path_factory.mktemp("secured")
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    feeds = feeds_file(tmp / f"sec{uuid.uuid4().hex[:6]}.toml")
    service = start_service(
        tmp,
        prefix,
        IVMTR_FEEDS_FILE=str(feeds),
        IVMTR_MAX_BODY_BYTES="200000",
        IVMTR_MAX_DECOMPRESSED_BYTES="2000000",
        IVMTR_MAX_EVENTS_PER_MESSAGE="50",
        IVMTR_READ_TIMEOUT_S="1",
    )
    try:
        yield service
    finally:
        stop_service(service)


async def post(service: Service, feed: str, body: bytes, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        return await client.post(f"/v1/feeds/{feed}", content=body, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("feed", "auth", "headers", "status", "error"),
    [
        ("letters", None, {}, 401, "unauthorized"),
        ("letters", ("usps-letters", "wrong"), {}, 401, "unauthorized"),
        ("letters", ("usps-flats", "flats-secret-22"), {}, 401, "unauthorized"),  # another feed's
        ("nosuchfeed", ("usps-letters", "letters-secret-1"), {}, 404, "unknown_feed"),
        ("flats", ("usps-flats", "flats-secret-22"), {}, 403, "forbidden"),  # from 127.0.0.1
        (
            "flats",
            ("usps-flats", "flats-secret-22"),
            {"x-forwarded-for": "56.1.2.3"},
            403,
            "forbidden",
        ),
        # A hop header (as one process forwarding to another) signed without the key that
        # the feeds file gives: never a way around credentials or networks.
        (
            "letters",
            None,
            {"x-ivmtr-hop": f"evil;{int(time.time() * 1000)};{'0' * 64}"},
            403,
            "forbidden",
        ),
        (
            "flats",
            ("usps-flats", "flats-secret-22"),
            {"x-ivmtr-hop": "evil;1;00"},
            403,
            "forbidden",
        ),
    ],
    ids=[
        "no credentials",
        "wrong password",
        "other feed",
        "unknown feed",
        "network",
        "spoofed XFF",
        "forged hop",
        "stale hop",
    ],
)
async def test_who_may_push(
    secured: Service,
    feed: str,
    auth: tuple[str, str] | None,
    headers: dict[str, str],
    status: int,
    error: str,
) -> None:
    group = message_group_id()
    response = await post(
        secured,
        feed,
        orjson.dumps(envelope([PIECE], group)),
        auth=auth,
        headers={**JSON, **headers},
    )
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["request_id"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Basic realm="ivmtr-stream"')
    assert "secret" not in response.text
    assert await event_ids(secured, group) == {}
    assert "letters-secret-1" not in secured.logs() and "flats-secret-22" not in secured.logs()


async def test_made_up_feed_names_share_one_metric_label(secured: Service) -> None:
    """A flood of made-up feed names must not grow the scrape by a series per name."""
    names = [f"made-up-{uuid.uuid4().hex[:10]}" for _ in range(5)]
    for name in names:
        response = await post(secured, name, b"{}", headers=JSON)
        assert response.status_code == 404 and response.json()["error"] == "unknown_feed"
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as client:
        scrape = (await client.get("/metrics")).text
    assert not any(name in scrape for name in names)
    refused = {
        (sample.labels["feed"], sample.labels["error"]): sample.value
        for family in text_string_to_metric_families(scrape)
        if family.name == "ivmtr_refused_messages"
        for sample in family.samples
    }
    assert refused[("(unknown)", "unknown_feed")] >= len(names)
    # The log line still names what was asked for.
    assert all(name in secured.logs() for name in names)


async def test_the_right_credentials_publish_with_the_feeds_campaign(secured: Service) -> None:
    group = message_group_id()
    response = await post(
        secured,
        "letters",
        orjson.dumps(envelope([PIECE, TRAY], group)),
        auth=("usps-letters", "letters-secret-1"),
        headers=JSON,
    )
    assert response.status_code == 200, response.text
    (piece,) = await consume(secured.topic("piece-scans"), msg_grp_id=group)
    assert piece.value["campaign"] == "Spring 2026"
    assert piece.value["provenance"]["feed"] == "letters"


async def test_trusted_proxy_and_topic_override(tmp_path: Path) -> None:
    require_broker()
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    feeds = feeds_file(tmp_path / f"px{uuid.uuid4().hex[:6]}.toml", trusted="127.0.0.0/8")
    service = start_service(tmp_path, prefix, IVMTR_FEEDS_FILE=str(feeds))
    try:
        auth = ("usps-flats", "flats-secret-22")
        group = message_group_id()
        body = orjson.dumps(envelope([PIECE], group))
        allowed = await post(
            service, "flats", body, auth=auth, headers={**JSON, "x-forwarded-for": "56.1.2.3"}
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["published"] == {f"{feeds.stem}.flats-piece-scans": 1}
        (piece,) = await consume(f"{feeds.stem}.flats-piece-scans", msg_grp_id=group)
        assert piece.value["imb"] == PIECE["imb"]
        outside = await post(
            service, "flats", body, auth=auth, headers={**JSON, "x-forwarded-for": "10.1.1.1"}
        )
        assert outside.status_code == 403
    finally:
        stop_service(service)


def bomb(size: int) -> bytes:
    return gzip.compress(b'{"msgGrpId":"G","msgSerNbr":1,"events":["' + b"x" * size + b'"]}', 9)


async def slow_body(first: bytes) -> AsyncIterator[bytes]:
    yield first
    await asyncio.sleep(3)
    yield b"]}"


@pytest.mark.parametrize(
    ("make_body", "headers", "status", "error"),
    [
        (
            lambda g: b'{"msgGrpId":"' + g.encode() + b'","events":["' + b"x" * 300_000 + b'"]}',
            {},
            413,
            "max_body_bytes",
        ),
        (lambda g: bomb(50_000_000), {"content-encoding": "gzip"}, 413, "max_decompressed_bytes"),
        (lambda g: orjson.dumps(envelope([PIECE] * 60, g)), {}, 413, "max_events_per_message"),
        (
            lambda g: (
                b'{"msgGrpId":"'
                + g.encode()
                + b'","msgSerNbr":1,"events":[{"a":'
                + b"[" * 40
                + b"]" * 40
                + b"}]}"
            ),
            {},
            400,
            "max_json_depth",
        ),
        (lambda g: orjson.dumps(envelope([PIECE], g))[:-7], {}, 400, "malformed_message"),
        (
            lambda g: b'{"msgGrpId":"\xff\xfe","msgSerNbr":1,"events":[]}',
            {},
            400,
            "malformed_message",
        ),
        (
            lambda g: (
                b'{"msgGrpId":"' + g.encode() + b'","msgGrpId":"x","msgSerNbr":1,"events":[]}'
            ),
            {},
            400,
            "malformed_message",
        ),
        (lambda g: b'{"msgGrpId":1,"msgSerNbr":1,"events":[]}', {}, 400, "invalid_envelope"),
        (
            lambda g: b'{"msgGrpId":"' + g.encode() + b'","msgSerNbr":NaN,"events":[]}',
            {},
            400,
            "malformed_message",
        ),
        (lambda g: b"[]", {}, 400, "malformed_message"),
    ],
    ids=[
        "body",
        "gzip bomb",
        "events",
        "depth",
        "truncated",
        "utf-8",
        "duplicate keys",
        "number",
        "NaN",
        "array",
    ],
)
async def test_limits_and_bad_bodies_publish_nothing(
    secured: Service, make_body: object, headers: dict[str, str], status: int, error: str
) -> None:
    group = message_group_id()
    body = make_body(group)  # type: ignore[operator]
    response = await post(
        secured,
        "letters",
        body,
        auth=("usps-letters", "letters-secret-1"),
        headers={**JSON, **headers},
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert error in (payload["error"], payload.get("limit")), payload
    assert await event_ids(secured, group) == {}
    async with httpx.AsyncClient(base_url=secured.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_slow_sender_gets_408(secured: Service) -> None:
    group = message_group_id()
    head = orjson.dumps(envelope([PIECE], group))[:-2]
    response = await post(
        secured, "letters", slow_body(head), auth=("usps-letters", "letters-secret-1"), headers=JSON
    )
    assert response.status_code == 408
    assert response.json()["limit"] == "read_timeout_s"
    assert await event_ids(secured, group) == {}


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_with_tls_1_2_or_newer(tmp_path: Path) -> None:
    require_broker()
    cert, key = self_signed(tmp_path)
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    env = {"IVMTR_TLS_CERT_FILE": str(cert), "IVMTR_TLS_KEY_FILE": str(key)}
    service = start_service(tmp_path, prefix, wait_ready=False, scheme="https", ca=str(cert), **env)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=service.url, verify=context) as client:
            response = await client.get("/readyz")
            assert response.status_code in (200, 503)
            group = message_group_id()
            pushed = await client.post(
                "/v1/feeds/demo", content=orjson.dumps(envelope([PIECE], group)), headers=JSON
            )
            assert pushed.status_code == 200
        host, port = service.url.removeprefix("https://").split(":")
        with (
            socket.create_connection((host, int(port))) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = ssl.create_default_context(cafile=str(cert))
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((httpx.ConnectError, ssl.SSLError)):
            async with httpx.AsyncClient(base_url=service.url, verify=old) as client:
                await client.get("/healthz")
        async with httpx.AsyncClient(base_url=service.url.replace("https", "http")) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get("/healthz")
    finally:
        stop_service(service)
