"""Promises of the README that the running service keeps without a broker.

The service runs as in production (``python -m consumer serve``, JSON log lines) in spool
mode, which answers pushes (202) from its local spool while Kafka is away: here Kafka is
never there (the bootstrap address is a closed port), so nothing depends on the shared
broker. Refusing to start without a feeds file, the insecure-mode warnings at start and on
every push, a 500 that carries the request id with its traceback in the log, and
``Authorization`` headers kept out of the log even at debug.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from consumer.feeds import hash_password
from tests.integration.conftest import ROOT, Service, free_port, start_service, stop_service
from tests.integration.test_ingest import PIECE, envelope

JSON = {"content-type": "application/json"}
PASSWORD = "Letters-Secret-7fQ2-xZ9w-Kp4"
WRONG_PASSWORD = "Wrong-Guess-9aB3-mN7q-Lr2"


def log_lines(service: Service) -> list[dict[str, Any]]:
    """The service's JSON log lines (any other line fails the test: all must be JSON)."""
    return [orjson.loads(line) for line in service.logs().splitlines() if line.strip()]


def spool_service(tmp: Path, **env: str) -> Service:
    """The service in spool mode, with a Kafka that never answers."""
    return start_service(
        tmp,
        f"it-{uuid.uuid4().hex[:8]}.",
        wait_ready=False,
        IVMTR_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        IVMTR_ACK_MODE="spool",
        IVMTR_SPOOL_DIR=str(tmp / "spool"),
        **env,
    )


def message_body() -> bytes:
    return orjson.dumps(envelope([PIECE], f"G{uuid.uuid4().hex[:18].upper()}"))


# --------------------------------------------------------------------------- feeds file


def clean_environment() -> dict[str, str]:
    """This process's environment without any IVMTR_ setting."""
    return {name: value for name, value in os.environ.items() if not name.startswith("IVMTR_")}


@pytest.mark.parametrize("insecure", [None, "false"])
def test_the_service_refuses_to_start_without_a_feeds_file(
    tmp_path: Path, insecure: str | None
) -> None:
    port = free_port()
    env = {
        **clean_environment(),
        "IVMTR_PORT": str(port),
        "IVMTR_LOG_FORMAT": "json",
        # Spool mode starts without Kafka: only the missing feeds file can stop it.
        "IVMTR_ACK_MODE": "spool",
        "IVMTR_SPOOL_DIR": str(tmp_path / "spool"),
        "IVMTR_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "PYTHONPATH": str(ROOT),
        **({"IVMTR_INSECURE_DEV_MODE": insecure} if insecure else {}),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "consumer", "serve"],
            cwd=tmp_path,  # no settings file of the checkout's
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        returncode = process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the service started without a feeds file:\n{log_path.read_text()}")
    output = log_path.read_text()
    assert returncode != 0, output
    assert "IVMTR_FEEDS_FILE: no feeds file" in output
    assert "IVMTR_INSECURE_DEV_MODE=true" in output  # says how to run without one
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


# --------------------------------------------------------------------------- insecure mode


@pytest.fixture(scope="module")
def insecure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = spool_service(tmp_path_factory.mktemp("insecure"), IVMTR_INSECURE_DEV_MODE="true")
    try:
        yield service
    finally:
        stop_service(service)


async def test_insecure_mode_warns_at_start_and_on_every_push(insecure: Service) -> None:
    events = [line["event"] for line in log_lines(insecure)]
    started = events.index("service started")
    warning = "INSECURE DEVELOPMENT MODE: any feed is accepted without credentials"
    assert warning in events[started:]
    (start_warning,) = [line for line in log_lines(insecure) if line["event"] == warning]
    assert start_warning["level"] == "warning"

    request_ids = [f"insecure-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    async with httpx.AsyncClient(base_url=insecure.url, timeout=30) as client:
        for request_id in request_ids:
            answer = await client.post(
                "/v1/feeds/demo",
                content=message_body(),
                headers={**JSON, "x-request-id": request_id},
            )
            assert answer.status_code == 202, answer.text
    warned = [
        line["request_id"]
        for line in log_lines(insecure)
        if line["event"] == "insecure development mode: push accepted without authentication"
        and line["level"] == "warning"
    ]
    assert [rid for rid in warned if rid in request_ids] == request_ids  # one each, in order


# --------------------------------------------------------------------------- 500


async def test_an_unexpected_error_is_a_500_with_the_request_id_and_a_logged_traceback(
    tmp_path: Path,
) -> None:
    """A real way to an unexpected exception: the spool directory is removed under the
    running service (a clean-up job, an unmounted disk), so writing the next body fails
    with FileNotFoundError, which no code path expects. No hook in the service."""
    service = spool_service(tmp_path, IVMTR_INSECURE_DEV_MODE="true")
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            first = await client.post("/v1/feeds/demo", content=message_body(), headers=JSON)
            assert first.status_code == 202, first.text  # the spool works before
            shutil.rmtree(tmp_path / "spool")
            request_id = f"boom-{uuid.uuid4().hex[:8]}"
            answer = await client.post(
                "/v1/feeds/demo",
                content=message_body(),
                headers={**JSON, "x-request-id": request_id},
            )
            assert answer.status_code == 500, answer.text
            assert answer.headers["x-request-id"] == request_id
            assert answer.json() == {
                "error": "internal_error",
                "detail": "unexpected error; nothing was published, retry later",
                "request_id": request_id,
            }
            # No trace, path or exception text leaks to the client.
            for leak in ("Traceback", "FileNotFoundError", str(tmp_path), ".py"):
                assert leak not in answer.text
            assert (await client.get("/healthz")).status_code == 200  # still serving
        (logged,) = [
            line
            for line in log_lines(service)
            if line.get("request_id") == request_id and line["event"] == "unexpected error"
        ]
        assert logged["level"] == "error"
        assert logged["exception"].startswith("Traceback (most recent call last):")
        assert "FileNotFoundError" in logged["exception"]
        assert "consumer/ingest/spool.py" in logged["exception"]
    finally:
        stop_service(service)


# --------------------------------------------------------------------------- Authorization


def feeds_file(path: Path) -> Path:
    path.write_text(
        f"""
[feeds.letters]
user = "usps-letters"
password_hash = "{hash_password(PASSWORD, n=2**10)}"
"""
    )
    return path


def keys(value: object) -> Iterator[str]:
    """Every key of a JSON value, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_authorization_headers_never_reach_the_log_even_at_debug(tmp_path: Path) -> None:
    """Right and wrong credentials, other schemes, then a lockout, whose refusals are
    logged at debug: no password, token or header value in any line."""
    service = spool_service(
        tmp_path,
        IVMTR_FEEDS_FILE=str(feeds_file(tmp_path / "feeds.toml")),
        IVMTR_LOG_LEVEL="DEBUG",
        IVMTR_AUTH_FAILURE_LIMIT="3",
        IVMTR_AUTH_REFUSAL_DELAY_S="0.01",
    )
    bearer = f"Bearer tok-{uuid.uuid4().hex}"
    headers = [
        basic("usps-letters", PASSWORD),
        basic("usps-letters", WRONG_PASSWORD),
        basic("usps-intruder", PASSWORD),
        bearer,
        "Basic " + base64.b64encode(WRONG_PASSWORD.encode()).decode(),  # no ':'
        *[basic("usps-letters", f"{WRONG_PASSWORD}-{n}") for n in range(4)],
    ]
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            statuses = [
                (
                    await client.post(
                        "/v1/feeds/letters",
                        content=message_body(),
                        headers={**JSON, "authorization": header},
                    )
                ).status_code
                for header in headers
            ]
        assert statuses[0] == 202 and statuses[1] == 401
        assert set(statuses[1:]) == {401, 429}  # wrong ones, until the address is locked out
        text = service.logs()
        lines = log_lines(service)
        # Debug logging was on, and a refusal with credentials was logged at debug.
        assert any(
            line["level"] == "debug" and line["event"] == "message refused" for line in lines
        )
        secrets = [PASSWORD, WRONG_PASSWORD, bearer.split()[1]]
        secrets += [header.split()[1] for header in headers]  # the base64 tokens
        for secret in secrets:
            assert secret not in text, secret
        assert not any("authorization" in key.lower() for line in lines for key in keys(line))
        # A feeds file: no insecure-mode warning.
        assert not any("insecure" in line["event"].lower() for line in lines)
    finally:
        stop_service(service)
