"""Authentication, network rules, TLS and limits, against the running service."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import ssl
import subprocess
import time
import uuid
import warnings
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.feeds import hash_password
from tests.consumer.http.test_tls import PERMISSIVE_CIPHERS, client_context, handshake
from tests.integration.conftest import (
    Service,
    consume,
    message_group_id,
    require_broker,
    start_service,
    stop_service,
)
from tests.integration.test_delivery import event_ids, mailing, receipts
from tests.integration.test_ingest import PIECE, TRAY, envelope

pytestmark = pytest.mark.kafka

JSON = {"content-type": "application/json"}
LETTERS_AUTH = ("usps-letters", "letters-secret-1")


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
        IVMTR_BODY_TIMEOUT_S="3",
        # Wrong passwords are tried here by the dozen (tests/integration/test_auth_throttle.py
        # tests the lockout): none of them may lock 127.0.0.1 out of the other tests.
        IVMTR_AUTH_FAILURE_LIMIT="1000",
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


def near_misses(right: str) -> list[str]:
    """Every proper prefix, a suffix, each character changed, one removed, the case."""
    changed = [right[:i] + chr(ord(c) ^ 1) + right[i + 1 :] for i, c in enumerate(right)]
    removed = [right[:i] + right[i + 1 :] for i in range(len(right))]
    wrong = [right[:n] for n in range(len(right))] + [right + "1", right + " ", right * 2]
    return [*wrong, *changed, *removed, right.upper(), right + "\x00"]


async def test_near_misses_of_the_password_are_refused(secured: Service) -> None:
    """With the right credentials checked (and cached) first, then after them all."""
    async with httpx.AsyncClient(base_url=secured.url, timeout=30) as client:

        async def push(password: str) -> tuple[str, httpx.Response]:
            group = message_group_id()
            body = orjson.dumps(envelope([PIECE], group))
            auth = (LETTERS_AUTH[0], password)
            answer = await client.post("/v1/feeds/letters", content=body, auth=auth, headers=JSON)
            return group, answer

        assert (await push(LETTERS_AUTH[1]))[1].status_code == 200
        for wrong in near_misses(LETTERS_AUTH[1]):
            group, response = await push(wrong)
            assert response.status_code == 401, (wrong, response.text)
        assert await event_ids(secured, group) == {}
        assert (await push(LETTERS_AUTH[1]))[1].status_code == 200


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


def with_piece(
    group: str, *, before: bytes = b"", events: bytes = b"", after: bytes = b""
) -> bytes:
    """A message of ``group`` whose first event is a valid piece scan, the hostile part
    ``before`` the events, among them (``events``) or ``after`` them: if the service took
    any of it, the piece would be published under the very group the test then reads."""
    head = b'{"msgGrpId":"' + group.encode() + b'","msgSerNbr":1,"totMsgCnt":1,' + before
    return head + b'"events":[' + orjson.dumps(PIECE) + events + b"]" + after + b"}"


def bomb(group: str, size: int) -> bytes:
    return gzip.compress(with_piece(group, events=b',{"pad":"' + b"x" * size + b'"}'), 9)


async def slow_body(first: bytes) -> AsyncIterator[bytes]:
    yield first
    await asyncio.sleep(3)
    yield b"]}"


# Each hostile body carries the group the test reads back, and a valid piece before what
# is wrong with it, so that "nothing published" is about this body.
@pytest.mark.parametrize(
    ("make_body", "headers", "status", "error"),
    [
        (
            lambda g: with_piece(g, events=b',{"pad":"' + b"x" * 300_000 + b'"}'),
            {},
            413,
            "max_body_bytes",
        ),
        (
            lambda g: bomb(g, 50_000_000),
            {"content-encoding": "gzip"},
            413,
            "max_decompressed_bytes",
        ),
        (lambda g: orjson.dumps(envelope([PIECE] * 60, g)), {}, 413, "max_events_per_message"),
        (
            lambda g: with_piece(g, events=b',{"a":' + b"[" * 40 + b"]" * 40 + b"}"),
            {},
            400,
            "max_json_depth",
        ),
        (lambda g: orjson.dumps(envelope([PIECE], g))[:-7], {}, 400, "malformed_message"),
        (lambda g: with_piece(g, before=b'"note":"\xff\xfe",'), {}, 400, "malformed_message"),
        (lambda g: with_piece(g, events=b',{"imb":"\xff\xfe"}'), {}, 400, "malformed_message"),
        # The same group twice: however a duplicate were read, the group is the test's.
        (
            lambda g: with_piece(g, before=b'"msgGrpId":"' + g.encode() + b'",'),
            {},
            400,
            "malformed_message",
        ),
        (lambda g: with_piece(g, after=b',"totRecCnt":-1'), {}, 400, "invalid_envelope"),
        (lambda g: with_piece(g, after=b',"recCnt":NaN'), {}, 400, "malformed_message"),
        (lambda g: b"[" + orjson.dumps(envelope([PIECE], g)) + b"]", {}, 400, "malformed_message"),
    ],
    ids=[
        "body",
        "gzip bomb",
        "events",
        "depth",
        "truncated",
        "utf-8 in the envelope",
        "utf-8 in a record",
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


async def test_the_hostile_bodies_publish_without_their_hostile_part(secured: Service) -> None:
    """The control of the test above: the same shape, nothing wrong, is published."""
    group = message_group_id()
    response = await post(
        secured,
        "letters",
        with_piece(group),
        auth=("usps-letters", "letters-secret-1"),
        headers=JSON,
    )
    assert response.status_code == 200, response.text
    assert sum((await event_ids(secured, group)).values()) == 1


def nested(depth: int) -> bytes:
    """A JSON value ``depth`` deep, arrays and objects alternating."""
    return b'{"a":[' * (depth // 2) + (b"[]" if depth % 2 else b"0") + b"]}" * (depth // 2)


@pytest.mark.parametrize("place", ["member", "record"])
async def test_a_message_nested_exactly_at_max_json_depth_is_taken_one_deeper_refused(
    secured: Service, place: str
) -> None:
    """max_json_depth is 16 (the default): the message as a whole, with its events array."""
    for total, status in ((16, 200), (17, 400)):
        group = message_group_id()
        if place == "member":  # inside the message: one level
            body = with_piece(group, after=b',"meta":' + nested(total - 1))
        else:  # inside the message and events: two levels
            body = with_piece(group, events=b"," + nested(total - 2))
        assert depth_of(orjson.loads(body)) == total
        response = await post(
            secured, "letters", body, auth=("usps-letters", "letters-secret-1"), headers=JSON
        )
        assert response.status_code == status, (total, response.text)
        published = sum((await event_ids(secured, group)).values())
        if status == 200:
            assert published == 1
        else:
            assert response.json()["limit"] == "max_json_depth" and published == 0


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


async def trickle(first: bytes, every_s: float, for_s: float) -> AsyncIterator[bytes]:
    """``first``, then a space every ``every_s`` for ``for_s``: never idle, never done."""
    yield first
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        await asyncio.sleep(every_s)
        yield b" "
    yield b"]}"


async def test_a_body_slower_than_body_timeout_s_in_all_gets_408(secured: Service) -> None:
    """Each piece within read_timeout_s (1 s), the whole over body_timeout_s (3 s)."""
    group = message_group_id()
    head = orjson.dumps(envelope([PIECE], group))[:-2]
    started = time.monotonic()
    response = await post(
        secured,
        "letters",
        trickle(head, every_s=0.3, for_s=6),
        auth=("usps-letters", "letters-secret-1"),
        headers=JSON,
    )
    assert response.status_code == 408, response.text
    assert response.json()["limit"] == "body_timeout_s"
    assert "body_timeout_s=3" in response.json()["detail"]
    assert time.monotonic() - started >= 3
    assert await event_ids(secured, group) == {}


async def test_the_same_message_compressed_is_a_duplicate(secured: Service) -> None:
    """The content hash is of the decompressed body: the same message sent plain, then
    gzipped, then deflated, is published once, and the receipt holds the plain body's hash."""
    group = message_group_id()
    # Large enough to arrive in several chunks, which differ plain and inflated.
    events = mailing(30, 10_000, seed=5)[0]["events"][:45]  # type: ignore[index]
    plain = orjson.dumps(envelope(events, group, note="".join(map(str, range(25_000)))))
    assert 100_000 < len(plain) < 200_000  # under the fixture's max_body_bytes
    auth = LETTERS_AUTH
    first = await post(secured, "letters", plain, auth=auth, headers=JSON)
    assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
    for encoding, data in (("gzip", gzip.compress(plain)), ("deflate", zlib.compress(plain))):
        again = await post(
            secured, "letters", data, auth=auth, headers={**JSON, "content-encoding": encoding}
        )
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True, (encoding, again.json())
    ids = await event_ids(secured, group)
    assert len(ids) == len(events) and set(ids.values()) == {1}
    hashes = {r["content_sha256"] for r in await receipts(secured, group) if r["content_sha256"]}
    assert hashes == {hashlib.sha256(plain).hexdigest()}


async def test_slow_sender_gets_408(secured: Service) -> None:
    group = message_group_id()
    head = orjson.dumps(envelope([PIECE], group))[:-2]
    response = await post(
        secured, "letters", slow_body(head), auth=("usps-letters", "letters-secret-1"), headers=JSON
    )
    assert response.status_code == 408
    assert response.json()["limit"] == "read_timeout_s"
    assert await event_ids(secured, group) == {}


def permissive_server(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context that allows TLS 1.0 and 1.1 (the control of the client)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_ciphers(PERMISSIVE_CIPHERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    return context


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
        # A client willing to speak TLS 1.0/1.1 (OpenSSL 3 clients refuse them by default,
        # which would make this pass against any server) does with a server that allows
        # them; the service ends its handshake (an alert, or uvloop closes the connection),
        # where an unwilling client would fail before sending anything. Python 3.10+ server
        # contexts refuse TLS below 1.2 themselves, so here this holds with or without our
        # floor: tests/consumer/http/test_tls.py checks the floor on a permissive library.
        old = client_context(cert, old=True)
        assert handshake(permissive_server(cert, key), old) == "TLSv1.1"
        with (
            socket.create_connection((host, int(port))) as raw,
            pytest.raises(ssl.SSLError, match=r"(?i)alert protocol version|unexpected.eof"),
        ):
            old.wrap_socket(raw, server_hostname=host)
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(base_url=service.url, verify=old) as client:
                await client.get("/healthz")
        async with httpx.AsyncClient(base_url=service.url.replace("https", "http")) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get("/healthz")
    finally:
        stop_service(service)
