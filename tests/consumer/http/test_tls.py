"""The TLS floor: the server's context refuses TLS 1.0 and 1.1 whatever the library allows.

Python 3.10+ already gives server contexts a TLS 1.2 minimum and OpenSSL 3 a security
level that rules out TLS 1.0/1.1, so against the service as it runs here a TLS 1.1
client is refused with or without our floor (tests/integration/test_security.py shows
that end to end). The floor is for a TLS library, a build or a system configuration that
allows less; these tests give ``ServerConfig`` such a permissive context and check what
it makes of it, with handshakes from a client that is willing to speak TLS 1.1.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn.config

from consumer.http.server import server_config
from consumer.settings import Settings

# Old protocol versions and SHA-1 signatures need security level 0 in OpenSSL 3.
PERMISSIVE_CIPHERS = "DEFAULT:@SECLEVEL=0"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tls")
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
    return cert, key


def client_context(cert: Path, *, old: bool) -> ssl.SSLContext:
    """A client trusting ``cert``; ``old``: one that speaks TLS 1.0/1.1 only, and would."""
    context = ssl.create_default_context(cafile=str(cert))
    if old:
        context.set_ciphers(PERMISSIVE_CIPHERS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> str:
    """The version a handshake between the two contexts agrees; ssl.SSLError if none."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            connection, _ = listener.accept()
            # The server side's failure is the client's too: the client side reports it.
            with connection, contextlib.suppress(ssl.SSLError, OSError):
                server.wrap_socket(connection, server_side=True).close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                version = tls.version()
                assert version is not None
                return version
        finally:
            thread.join(10)


@pytest.fixture
def permissive_library(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ssl.SSLContext]]:
    """uvicorn's contexts as a library allowing TLS 1.0 would make them; yields them."""
    made: list[ssl.SSLContext] = []
    original = uvicorn.config.create_ssl_context

    def create(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = original(*args, **kwargs)
        context.set_ciphers(PERMISSIVE_CIPHERS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        made.append(context)
        return context

    monkeypatch.setattr(uvicorn.config, "create_ssl_context", create)
    yield made


def loaded_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The server context of the service's configuration, as uvicorn loads it."""
    settings = Settings(tls_cert_file=cert, tls_key_file=key, insecure_dev_mode=True)
    config = server_config(lambda scope, receive, send: None, settings)
    config.load()
    assert config.ssl is not None
    return config.ssl


def test_the_permissive_library_would_speak_tls_1_1(
    certificate: tuple[Path, Path], permissive_library: list[ssl.SSLContext]
) -> None:
    """The control: without the floor, this client and this library agree on TLS 1.1,
    so the refusal below is the floor's doing."""
    cert, key = certificate
    context = uvicorn.config.create_ssl_context(
        cert, key, None, ssl.PROTOCOL_TLS_SERVER, ssl.CERT_NONE, None, None
    )
    assert handshake(context, client_context(cert, old=True)) == "TLSv1.1"


def test_the_server_refuses_tls_below_1_2(
    certificate: tuple[Path, Path], permissive_library: list[ssl.SSLContext]
) -> None:
    cert, key = certificate
    server = loaded_context(cert, key)
    assert permissive_library == [server]  # the context under test is the library's
    with pytest.raises(ssl.SSLError):
        handshake(server, client_context(cert, old=True))
    assert server.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert handshake(server, client_context(cert, old=False)) in ("TLSv1.2", "TLSv1.3")
