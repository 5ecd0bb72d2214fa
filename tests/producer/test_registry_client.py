"""Tests for producer.registry's client: each call's request as the Confluent Schema Registry
API defines it, what it makes of the answers, and the errors it raises.

Against ``httpx.MockTransport`` answering the way the registry does (status codes, error
bodies with ``error_code`` and ``message``), and one local HTTPS server for the TLS
settings. tests/integration/test_registry.py has the real registry.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest

from producer.errors import PublishError
from producer.registry import (
    IncompatibleSchema,
    NotFound,
    RegisteredSchema,
    RegistryClient,
    RegistryConfig,
    RegistryError,
    RegistryUnavailable,
    schema_json,
)
from producer.schemas import Schema
from producer.topics import TopicTable, TrackTopics

URL = "https://registry.example/apis/ccompat/v7"
BASE = "/apis/ccompat/v7"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

Answer = httpx.Response | Exception


class Registry:
    """A MockTransport handler: records each request, answers with the next scripted answer
    (the last one again once they run out); an exception is raised as the transport's."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        # a fresh copy: a response is read and closed once
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body, headers={"Content-Type": CONTENT_TYPE})


def refused(status: int, error_code: int, message: str) -> httpx.Response:
    """An error answer as the registry gives it."""
    return httpx.Response(
        status,
        json={"error_code": error_code, "message": message},
        headers={"Content-Type": CONTENT_TYPE},
    )


def client(registry: Registry, url: str = URL, **settings: Any) -> RegistryClient:
    return RegistryClient(RegistryConfig(url, **settings), transport=httpx.MockTransport(registry))


Call = Callable[[RegistryClient], Awaitable[Any]]

STRING = '{"type":"string"}'
REGISTERED = {"subject": "s-value", "version": 3, "id": 21, "schema": '"string"'}

# call, the request it sends (method, path and query as sent, JSON body or None),
# the registry's answer, and what the call returns
CALLS: list[tuple[str, Call, tuple[str, str, Any], Any, Any]] = [
    (
        "register",
        lambda c: c.register("ivmtr.piece-scans-value", STRING),
        (
            "POST",
            "/subjects/ivmtr.piece-scans-value/versions",
            {"schema": STRING, "schemaType": "AVRO"},
        ),
        {"id": 7},
        7,
    ),
    (
        "lookup",
        lambda c: c.lookup("s-value", STRING),
        ("POST", "/subjects/s-value", {"schema": STRING}),
        REGISTERED,
        RegisteredSchema("s-value", 3, 21, '"string"'),
    ),
    (
        "latest",
        lambda c: c.latest("s-value"),
        ("GET", "/subjects/s-value/versions/latest", None),
        {**REGISTERED, "version": 4, "id": 30, "schema": '"bytes"'},
        RegisteredSchema("s-value", 4, 30, '"bytes"'),
    ),
    (
        "schema_by_id",
        lambda c: c.schema_by_id(42),
        ("GET", "/schemas/ids/42", None),
        {"schema": '"int"'},
        '"int"',
    ),
    (
        "subjects",
        lambda c: c.subjects(),
        ("GET", "/subjects", None),
        ["a-value", "b-value"],
        ["a-value", "b-value"],
    ),
    (
        "set_compatibility",
        lambda c: c.set_compatibility("s-value", "FULL_TRANSITIVE"),
        ("PUT", "/config/s-value", {"compatibility": "FULL_TRANSITIVE"}),
        {"compatibility": "FULL_TRANSITIVE"},
        None,
    ),
    (
        "get_compatibility",
        lambda c: c.get_compatibility("s-value"),
        ("GET", "/config/s-value?defaultToGlobal=true", None),
        {"compatibilityLevel": "FORWARD"},
        "FORWARD",
    ),
    (
        "is_compatible",
        lambda c: c.is_compatible("s-value", STRING),
        (
            "POST",
            "/compatibility/subjects/s-value/versions/latest",
            {"schema": STRING, "schemaType": "AVRO"},
        ),
        {"is_compatible": False},
        False,
    ),
]
CALL_IDS = [name for name, *_ in CALLS]


@pytest.mark.parametrize(("name", "call", "sent", "answer", "returned"), CALLS, ids=CALL_IDS)
async def test_each_call_sends_its_request_and_reads_the_answer(
    name: str, call: Call, sent: tuple[str, str, Any], answer: Any, returned: Any
) -> None:
    registry = Registry(ok(answer))
    async with client(registry) as registry_client:
        assert await call(registry_client) == returned
    (request,) = registry.requests
    method, path, body = sent
    assert (request.method, request.url.raw_path.decode()) == (method, BASE + path)
    assert request.headers["Accept"] == f"{CONTENT_TYPE}, application/json"
    if body is None:
        assert request.content == b""
        assert "Content-Type" not in request.headers
    else:
        assert json.loads(request.content) == body
        assert request.headers["Content-Type"] == CONTENT_TYPE


@pytest.mark.parametrize(("name", "call", "sent", "answer", "returned"), CALLS, ids=CALL_IDS)
async def test_each_call_names_its_request_when_refused(
    name: str, call: Call, sent: tuple[str, str, Any], answer: Any, returned: Any
) -> None:
    registry = Registry(refused(500, 50001, "Error in the backend data store"))
    async with client(registry) as registry_client:
        with pytest.raises(RegistryUnavailable) as caught:
            await call(registry_client)
    method, path, _ = sent
    # the path as the client asked for it, without the base URL or the query
    assert str(caught.value) == (
        f"schema registry refused {method} {path.split('?')[0]}: "
        "500 Error in the backend data store"
    )


async def test_subjects_are_quoted_whole() -> None:
    """A subject is one path segment, whatever characters it has."""
    registry = Registry(ok({"id": 1}))
    async with client(registry) as registry_client:
        await registry_client.register("a/b c?d-value", STRING)
    assert registry.requests[0].url.raw_path == (
        b"/apis/ccompat/v7/subjects/a%2Fb%20c%3Fd-value/versions"
    )


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://registry.example/apis/ccompat/v7", "/apis/ccompat/v7/subjects"),
        ("https://registry.example/apis/ccompat/v7/", "/apis/ccompat/v7/subjects"),
        ("https://registry.example", "/subjects"),
        ("https://registry.example/", "/subjects"),
        ("http://registry.example:8081/schemas/BOX", "/schemas/BOX/subjects"),
        ("http://registry.example:8081/schemas/BOX/", "/schemas/BOX/subjects"),
    ],
)
async def test_the_url_is_the_base_of_every_path(url: str, path: str) -> None:
    registry = Registry(ok([]))
    async with client(registry, url) as registry_client:
        await registry_client.subjects()
    assert registry.requests[0].url.raw_path.decode() == path
    assert registry.requests[0].url.host == "registry.example"


@pytest.mark.parametrize(
    "call",
    [lambda c: c.lookup("s-value", STRING), lambda c: c.latest("s-value")],
    ids=["lookup", "latest"],
)
async def test_the_registry_s_subject_else_the_one_asked_for(call: Call) -> None:
    """The answer's subject is the registry's word; the one asked for fills in when the
    answer has none."""
    registry = Registry(
        ok({"subject": ":.ctx:s-value", "version": 2, "id": 8, "schema": '"long"'}),
        ok({"version": 1, "id": 5, "schema": '"string"'}),
    )
    async with client(registry) as registry_client:
        assert await call(registry_client) == RegisteredSchema(":.ctx:s-value", 2, 8, '"long"')
        assert await call(registry_client) == RegisteredSchema("s-value", 1, 5, '"string"')


@pytest.mark.parametrize(
    ("answer", "level"),
    [
        ({"compatibilityLevel": "BACKWARD_TRANSITIVE"}, "BACKWARD_TRANSITIVE"),
        ({"compatibility": "NONE"}, "NONE"),  # PUT's shape, which some servers answer GET with
    ],
)
async def test_get_compatibility_reads_either_answer(answer: Any, level: str) -> None:
    async with client(Registry(ok(answer))) as registry_client:
        assert await registry_client.get_compatibility("s-value") == level


async def test_is_compatible_answers_true() -> None:
    async with client(Registry(ok({"is_compatible": True}))) as registry_client:
        assert await registry_client.is_compatible("s-value", STRING) is True


@pytest.mark.parametrize(
    ("error_code", "message"),
    [(40401, "Subject 'new-value' not found."), (40402, "Version not found.")],
)
async def test_nothing_to_break_is_compatible(error_code: int, message: str) -> None:
    """No subject (40401) or no version of it (40402): the schema breaks nothing."""
    async with client(Registry(refused(404, error_code, message))) as registry_client:
        assert await registry_client.is_compatible("new-value", STRING) is True


@pytest.mark.parametrize(
    "answer",
    [
        refused(404, 40403, "Schema not found"),
        httpx.Response(404, text="Not Found"),  # a proxy's 404, not the registry's
    ],
)
async def test_is_compatible_raises_other_not_founds(answer: httpx.Response) -> None:
    async with client(Registry(answer)) as registry_client:
        with pytest.raises(NotFound, match="POST /compatibility/subjects/s-value"):
            await registry_client.is_compatible("s-value", STRING)


# -- what is registered ------------------------------------------------------------------------


async def test_schemas_are_sent_as_text() -> None:
    """A string as given; a mapping as compact JSON with its non-ASCII characters kept; a
    Schema in its registered form."""
    schema = Schema("x.E", fastavro.parse_schema({"type": "enum", "name": "x.E", "symbols": ["A"]}))
    registry = Registry(ok({"id": 1}))
    async with client(registry) as registry_client:
        await registry_client.register("s-value", ' { "type" : "string" } ')
        await registry_client.register(
            "s-value", {"type": "enum", "name": "E", "doc": "Straße", "symbols": ["A", "B"]}
        )
        await registry_client.register("s-value", schema)
    sent = [json.loads(request.content)["schema"] for request in registry.requests]
    assert sent == [
        ' { "type" : "string" } ',
        '{"type":"enum","name":"E","doc":"Straße","symbols":["A","B"]}',
        '{"type":"enum","name":"x.E","symbols":["A"]}',
    ]


def test_the_registered_text_of_a_schema() -> None:
    """Plain Avro JSON: compact, non-ASCII kept, fastavro's own keys dropped, keys in the
    usual reading order (type, name, namespace, doc, ..., default, order, fields) and
    any others after them, sorted."""
    parsed = fastavro.parse_schema(
        {
            "type": "record",
            "name": "T",
            "namespace": "x",
            "doc": "Straße",
            "x-owner": "ops",
            "connect.name": "x.T",
            "fields": [
                {
                    "name": "a",
                    "doc": "fa",
                    "default": "A",
                    "type": {"type": "enum", "name": "E", "symbols": ["A", "B"], "doc": "e"},
                },
                {"name": "b", "type": "E"},
                {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "l", "type": {"type": "array", "items": "int"}, "default": []},
            ],
        }
    )
    assert schema_json(Schema("x.T", parsed)) == (
        '{"type":"record","name":"x.T","doc":"Straße","fields":['
        '{"type":{"type":"enum","name":"x.E","doc":"e","symbols":["A","B"]},'
        '"name":"a","doc":"fa","default":"A"},'
        '{"type":"x.E","name":"b"},'
        '{"type":{"type":"long","logicalType":"timestamp-millis"},"name":"t"},'
        '{"type":{"type":"array","items":"int"},"name":"l","default":[]}],'
        '"connect.name":"x.T","x-owner":"ops"}'
    )


@pytest.mark.parametrize(
    "topic", [*TopicTable.build(), *TrackTopics.build()], ids=lambda topic: topic.name
)
def test_our_schemas_register_as_the_same_plain_avro(topic: Any) -> None:
    text = schema_json(topic.schema)
    plain = json.loads(text)
    assert text == json.dumps(plain, separators=(",", ":"), ensure_ascii=False)

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            yield node
            for value in node.values():
                yield from walk(value)

    assert not [key for node in walk(plain) for key in node if key.startswith("__")]
    reparsed = fastavro.parse_schema(plain)
    canonical = fastavro.schema.to_parsing_canonical_form
    assert canonical(reparsed) == canonical(topic.schema.parsed)


# -- errors ------------------------------------------------------------------------------------


INCOMPATIBLE = 'Schema being registered is incompatible with an earlier schema for subject "s"'
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("answer", "error", "error_code", "says"),
    [
        (refused(409, 409, INCOMPATIBLE), IncompatibleSchema, 409, f"409 {INCOMPATIBLE}"),
        (refused(422, 42201, "Invalid schema"), RegistryError, 42201, "422 Invalid schema"),
        (
            refused(404, 40401, "Subject 's' not found."),
            NotFound,
            40401,
            "404 Subject 's' not found.",
        ),
        (refused(500, 50001, "Backend error"), RegistryUnavailable, 50001, "500 Backend error"),
        (
            refused(503, 50003, "Forwarding failed"),
            RegistryUnavailable,
            50003,
            "503 Forwarding failed",
        ),
        (
            httpx.Response(502, text="<html>Bad Gateway</html>\n"),
            RegistryUnavailable,
            None,
            "502 <html>Bad Gateway</html>",
        ),
        (httpx.Response(503), RegistryUnavailable, None, "503 Service Unavailable"),
        (httpx.Response(405, text='["no"]', headers=JSON), RegistryError, None, '405 ["no"]'),
        (
            httpx.Response(400, json={"message": "Bad Request"}),
            RegistryError,
            None,
            "400 Bad Request",
        ),
        (
            httpx.Response(400, json={"error_code": "40001", "message": "m"}),
            RegistryError,
            None,
            "400 m",
        ),
        (
            httpx.Response(400, text='{"error_code":40001}', headers=JSON),
            RegistryError,
            40001,
            '400 {"error_code":40001}',
        ),
        (
            httpx.Response(307, headers={"Location": "https://elsewhere.example/"}),
            RegistryError,
            None,
            "307 Temporary Redirect",
        ),
    ],
)
async def test_refusals_map_to_errors(
    answer: httpx.Response, error: type[RegistryError], error_code: int | None, says: str
) -> None:
    registry = Registry(answer)
    async with client(registry) as registry_client:
        with pytest.raises(RegistryError) as caught:
            await registry_client.register("s-value", STRING)
    assert type(caught.value) is error
    assert isinstance(caught.value, PublishError)
    assert caught.value.retriable is (error is RegistryUnavailable)
    assert (caught.value.status, caught.value.error_code) == (answer.status_code, error_code)
    assert str(caught.value) == f"schema registry refused POST /subjects/s-value/versions: {says}"
    assert len(registry.requests) == 1  # no retries, no redirects followed: the caller decides


async def test_a_long_answer_is_cut_to_500_characters() -> None:
    async with client(Registry(httpx.Response(502, text=" " + "x" * 600))) as registry_client:
        with pytest.raises(RegistryUnavailable) as caught:
            await registry_client.subjects()
    assert str(caught.value) == "schema registry refused GET /subjects: 502 " + "x" * 500


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_say_what_to_check(status: int) -> None:
    registry = Registry(refused(status, status, "Unauthorized"))
    async with client(registry, username="svc", password="s3cret") as registry_client:
        with pytest.raises(RegistryError) as caught:
            await registry_client.subjects()
    assert type(caught.value) is RegistryError
    assert str(caught.value) == (
        f"schema registry refused GET /subjects: {status} Unauthorized "
        "(check the registry user/password or token)"
    )


async def test_an_answer_that_is_not_json() -> None:
    registry = Registry(httpx.Response(200, text="<html>it works</html>"))
    async with client(registry) as registry_client:
        with pytest.raises(RegistryError) as caught:
            await registry_client.subjects()
    assert type(caught.value) is RegistryError and caught.value.retriable is False
    assert (caught.value.status, caught.value.error_code) == (200, None)
    assert str(caught.value) == (
        "schema registry answered GET /subjects with something that is not JSON"
    )


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "[Errno 111] Connection refused"),
        (httpx.ConnectError(""), "ConnectError"),
        (httpx.RemoteProtocolError(""), "RemoteProtocolError"),
    ],
)
async def test_an_unreachable_registry_is_unavailable(raised: Exception, says: str) -> None:
    async with client(Registry(raised)) as registry_client:
        with pytest.raises(RegistryUnavailable) as caught:
            await registry_client.subjects()
    assert caught.value.retriable is True
    assert caught.value.__cause__ is raised
    assert str(caught.value) == f"schema registry at {URL} is not reachable: {says}"


async def test_a_registry_that_does_not_answer_in_time() -> None:
    raised = httpx.ReadTimeout("timed out")
    async with client(Registry(raised), timeout_s=2.5) as registry_client:
        with pytest.raises(RegistryUnavailable) as caught:
            await registry_client.register("s-value", STRING)
    assert caught.value.retriable is True
    assert caught.value.__cause__ is raised
    assert str(caught.value) == (
        f"schema registry at {URL} did not answer within 2.5s (POST /subjects/s-value/versions)"
    )


def test_registry_errors_keep_what_they_are_given() -> None:
    error = RegistryError("refused", status=422, error_code=42201)
    assert (str(error), error.status, error.error_code, error.retriable) == (
        "refused",
        422,
        42201,
        False,
    )
    assert RegistryUnavailable("down").retriable is True
    assert (RegistryUnavailable("down").status, RegistryUnavailable("down").error_code) == (
        None,
        None,
    )


# -- configuration -----------------------------------------------------------------------------


async def test_basic_auth() -> None:
    registry = Registry(ok([]))
    async with client(registry, username="svc", password="s3cret") as registry_client:
        await registry_client.subjects()
    expected = "Basic " + base64.b64encode(b"svc:s3cret").decode()
    assert registry.requests[0].headers["Authorization"] == expected


async def test_bearer_token() -> None:
    registry = Registry(ok([]))
    async with client(registry, bearer_token="tok") as registry_client:
        await registry_client.subjects()
    assert registry.requests[0].headers["Authorization"] == "Bearer tok"


async def test_no_credentials_no_authorization() -> None:
    registry = Registry(ok([]))
    async with client(registry) as registry_client:
        await registry_client.subjects()
    assert "Authorization" not in registry.requests[0].headers
    assert registry.requests[0].headers["Accept"] == f"{CONTENT_TYPE}, application/json"


@pytest.mark.parametrize("timeout_s", [0.25, 2.5, 30.0])
async def test_the_timeout_applies_to_every_phase(timeout_s: float) -> None:
    registry = Registry(ok([]))
    async with client(registry, timeout_s=timeout_s) as registry_client:
        await registry_client.subjects()
    assert registry.requests[0].extensions["timeout"] == dict.fromkeys(
        ("connect", "read", "write", "pool"), timeout_s
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"url": "127.0.0.1:8081"},
            "schema registry url must be http(s)://..., not '127.0.0.1:8081'",
        ),
        (
            {"url": "ftp://registry"},
            "schema registry url must be http(s)://..., not 'ftp://registry'",
        ),
        (
            {"url": "http://r", "password": "p"},
            "schema registry basic auth needs both a username and a password",
        ),
        (
            {"url": "http://r", "username": "u"},
            "schema registry basic auth needs both a username and a password",
        ),
        (
            {"url": "http://r", "username": "u", "password": "p", "bearer_token": "t"},
            "schema registry: use basic auth or a bearer token, not both",
        ),
        ({"url": "http://r", "timeout_s": 0}, "schema registry timeout must be positive"),
        ({"url": "http://r", "timeout_s": -1.0}, "schema registry timeout must be positive"),
    ],
)
def test_config_refuses(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        RegistryConfig(**settings)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        ({"url": "http://r"}, "RegistryConfig(url='http://r', auth=none, verify=True)"),
        (
            {"url": "HTTPS://r", "verify": False},
            "RegistryConfig(url='HTTPS://r', auth=none, verify=False)",
        ),
        (
            {"url": "http://r", "username": "u", "password": "s3cret"},
            "RegistryConfig(url='http://r', auth=basic, verify=True)",
        ),
        (
            {"url": "https://r", "bearer_token": "t0k3n"},
            "RegistryConfig(url='https://r', auth=bearer, verify=True)",
        ),
        (
            {"url": "http://r", "timeout_s": 0.5},
            "RegistryConfig(url='http://r', auth=none, verify=True)",
        ),
    ],
)
def test_config_accepts_and_shows_no_secrets(settings: dict[str, Any], shown: str) -> None:
    assert repr(RegistryConfig(**settings)) == shown


# -- TLS, against a local HTTPS server ---------------------------------------------------------


@pytest.fixture(scope="module")
def https_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A registry at https://127.0.0.1:<port>/apis/ccompat/v7 with a self-signed
    certificate, and that certificate."""
    tmp = tmp_path_factory.mktemp("registry-tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'["tls-value"]'
            self.send_response(200 if self.path == f"{BASE}/subjects" else 404)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}{BASE}", cert
    finally:
        server.shutdown()
        server.server_close()


async def test_tls_with_our_ca_file(https_registry: tuple[str, Path]) -> None:
    url, cert = https_registry
    for ca_file in (cert, str(cert)):
        async with RegistryClient(RegistryConfig(url, ca_file=ca_file)) as registry_client:
            assert await registry_client.subjects() == ["tls-value"]


async def test_tls_verified_against_the_system_cas_by_default(
    https_registry: tuple[str, Path],
) -> None:
    url, _ = https_registry
    async with RegistryClient(RegistryConfig(url)) as registry_client:
        with pytest.raises(
            RegistryUnavailable, match=r"not reachable: .*CERTIFICATE_VERIFY_FAILED"
        ):
            await registry_client.subjects()


async def test_tls_unverified_when_told(https_registry: tuple[str, Path]) -> None:
    url, _ = https_registry
    for settings in ({}, {"ca_file": "/nonexistent/ca.pem"}):
        config = RegistryConfig(url, verify=False, **settings)
        async with RegistryClient(config) as registry_client:
            assert await registry_client.subjects() == ["tls-value"]


def test_a_missing_ca_file_is_an_error() -> None:
    with pytest.raises(OSError):
        RegistryClient(RegistryConfig("https://r", ca_file="/nonexistent/ca.pem"))
