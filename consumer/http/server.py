"""The uvicorn servers of one process: the public one, and the internal listener.

The internal listener is where other processes of the service forward the messages of
this process's delivery slots (``consumer.http.forward``). It serves the same application
on a port of its own, so that one address reaches this very process even when several
workers share the public port. It has the public server's TLS settings; it runs no
lifespan (the public server's runs the service) and leaves signals to the public server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn

from consumer.settings import Settings

__all__ = ["InternalListener", "QuietServer", "ServerConfig", "advertised_host", "server_config"]

_WILDCARDS = ("", "0.0.0.0", "::")


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration with our TLS floor, applied wherever it is loaded: each
    worker process loads its own."""

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            # uvicorn takes the library default; we promise TLS 1.2 or newer.
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2


def server_config(app: Any, settings: Settings, **extra: Any) -> ServerConfig:
    """The server's configuration for ``app`` (an application, or an import string)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "timeout_graceful_shutdown": int(settings.kafka_timeout_s),
        "ssl_certfile": settings.tls_cert_file,
        "ssl_keyfile": settings.tls_key_file,
        # X-Forwarded-For is believed only from the feeds file's trusted proxies, not here.
        "proxy_headers": False,
        "server_header": False,
    }
    return ServerConfig(app, **{**options, **extra})


def advertised_host(settings: Settings) -> str:
    """Where other processes reach this one's internal listener."""
    if settings.advertised_host:
        return settings.advertised_host
    if settings.internal_host in _WILDCARDS:
        return socket.getfqdn()
    return settings.internal_host


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the process's own handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The public server handles signals and then stops the service, and this with it.
        yield


class InternalListener:
    """This process's own address for forwarded messages: explicit start and stop."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self._config = server_config(
            app,
            settings,
            host=settings.internal_host,
            port=settings.internal_port,
            lifespan="off",
        )
        self._settings = settings
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.address = ""

    async def start(self) -> str:
        """Listen; returns the address to advertise (``scheme://host:port``)."""
        config = self._config
        config.load()
        sock = config.bind_socket()
        port = sock.getsockname()[1]
        self._server = QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="internal")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # the error it failed with
                raise RuntimeError("the internal listener stopped at start")
            await asyncio.sleep(0.01)
        scheme = "https" if config.ssl is not None else "http"
        host = advertised_host(self._settings)
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        self.address = f"{scheme}://{host}:{port}"
        return self.address

    async def stop(self) -> None:
        """Stop listening, after the messages in flight on it ended; idempotent."""
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is not None and task is not None:
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
