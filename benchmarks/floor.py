"""Floors for the benchmark: what uvicorn costs before any proxy logic (`--variants`).

- `hello_app`: uvicorn answering 50 bytes itself (no upstream at all).
- `raw_proxy_app(host, port)`: uvicorn with the smallest proxy we could write: one pooled
  upstream connection per request on an asyncio protocol parsed by httptools, the request head
  sent as a fixed template, the response relayed as it came. No routing, no header rewriting,
  no limits, no timeouts, no retries (only connections the upstream closed are skipped), the
body collected whole: nothing a real proxy
  could ship, only the cost of uvicorn plus one upstream round trip in Python.

The gap between these rows and ingressproxy's, measured in the same run, is what our own code
costs per request (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools

__all__ = ["hello_app", "raw_proxy_app"]

_HELLO = b"x" * 50


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"50"), (b"content-type", b"application/octet-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _HELLO})


class _Upstream(asyncio.Protocol):
    """One keep-alive upstream connection; `done` resolves when a response is complete."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        # The upstream closes connections idle past its keep-alive timeout (nginx: 75 s,
        # longer than the pause between the benchmark's rounds): never reuse those.
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.headers = []
        self.body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


def raw_proxy_app(upstream_host: str, upstream_port: int) -> Any:
    idle: list[_Upstream] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        loop = asyncio.get_running_loop()
        while idle and idle[-1].closed:
            idle.pop()
        if idle:
            conn = idle.pop()
        else:
            _, conn = await loop.create_connection(_Upstream, upstream_host, upstream_port)
        conn.done = loop.create_future()
        assert conn.transport is not None
        conn.transport.write(
            b"GET %s HTTP/1.1\r\nhost: %s\r\nx-forwarded-for: %s\r\n\r\n"
            % (scope["raw_path"], dict(scope["headers"])[b"host"], scope["client"][0].encode())
        )
        await conn.done
        status = conn.parser.get_status_code()
        headers, body = conn.headers, b"".join(conn.body)
        idle.append(conn)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
