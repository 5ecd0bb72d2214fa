"""A minimal HTTP/1.1 client over asyncio streams, for the benchmark's pushes.

httpx costs the sender milliseconds of CPU per request once hundreds of requests are in
flight (the open-loop latency scenario), which on a 2-core machine delays the very sends
being timed. This client does only what the benchmark needs: POST/GET with a body of
known length, keep-alive connections from a pool, Content-Length or chunked answers.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping

__all__ = ["Http1Pool", "HttpAnswer"]


class HttpAnswer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class Http1Pool:
    """Keep-alive connections to one host; at most ``max_connections`` requests at once."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str | None = None,
        password: str | None = None,
        max_connections: int = 16,
    ) -> None:
        self.host = host
        self.port = port
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._fixed = f"Host: {host}:{port}\r\n"
        if user is not None and password is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._fixed += f"Authorization: Basic {token}\r\n"

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.writer.is_closing() and not connection.reader.at_eof():
                return connection
            connection.close()
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return _Connection(reader, writer)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        async with self._slots:
            connection = await self._connection()
            try:
                answer, reusable = await self._exchange(connection, method, path, body, headers)
            except BaseException:
                connection.close()
                raise
            if reusable:
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str] | None,
    ) -> tuple[HttpAnswer, bool]:
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}Content-Length: {len(body)}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        writer = connection.writer
        writer.write(head.encode("latin-1") + b"\r\n")
        if body:
            writer.write(body)
        await writer.drain()

        reader = connection.reader
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        answer_headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                answer_headers[name.strip().lower()] = value.strip()
        if answer_headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(parts)
        else:
            content = await reader.readexactly(int(answer_headers.get("content-length", "0")))
        reusable = answer_headers.get("connection", "").lower() != "close"
        return HttpAnswer(status, answer_headers, content), reusable

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> HttpAnswer:
        return await self.request("POST", path, body, headers)

    async def get(self, path: str) -> HttpAnswer:
        return await self.request("GET", path)

    async def open(self, count: int) -> None:
        """Open ``count`` connections ahead of time."""
        for _ in range(count):
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            self._idle.append(_Connection(reader, writer))

    async def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    async def __aenter__(self) -> Http1Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
