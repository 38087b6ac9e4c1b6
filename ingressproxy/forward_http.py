"""Streaming HTTP exchange with one upstream endpoint over a shared httpx connection pool.

Flow: proxy -> HTTPForwarder.send(...) -> UpstreamResponse (status, raw headers, raw chunks).
httpx errors become ours here (like httpx's own map_httpcore_exceptions); nothing httpx-typed
leaves this module except the request body stream the proxy hands in.

We drive httpx's public transport API (`AsyncHTTPTransport.handle_async_request`) rather than
`AsyncClient.send`: the request goes out exactly as built (no default User-Agent, Accept,
Accept-Encoding or Connection headers, no cookie jar, no redirects, no proxies from the
environment, no per-request INFO log), and it skips the client's auth/redirect/cookie
machinery: 50-100 µs less CPU per request in a local measurement, on a path where httpx is
the bulk of the cost (PERF-NOTES.md).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator

import httpx
from starlette.types import Receive

from .errors import (
    ClientDisconnected,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from .routetable import Endpoint
from .settings import Settings
from .tls import upstream_verify

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "DEFAULT_MAX_CONNECTIONS",
    "EMPTY_BODY",
    "HTTPForwarder",
    "RequestBody",
    "UpstreamResponse",
]

# Capped: httpcore scans its whole pool on every request, and a cap measured ~1.6x faster
# (PERF-NOTES.md). Every connection may stay alive, or bursts would reconnect each time.
DEFAULT_MAX_CONNECTIONS = 256
# Below the 5 s idle timeout of uvicorn's and Node's servers, so we do not reuse a
# connection the backend is closing at that moment.
DEFAULT_KEEPALIVE_EXPIRY = 4.0

Headers = list[tuple[bytes, bytes]]


class RequestBody(httpx.AsyncByteStream):
    """The client's request body, streamed from ASGI `receive` as the upstream reads it.

    `done` turns true once the last chunk has been handed out; only then may someone else
    call `receive` (to watch for a disconnect).
    """

    __slots__ = ("_receive", "done")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        receive = self._receive
        while not self.done:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client closed the connection during the upload")
            body: bytes = message.get("body", b"")
            if not message.get("more_body", False):
                self.done = True
            if body:
                yield body


# For requests without a body (no Content-Length, no Transfer-Encoding): nothing is read
# from `receive`, so a later disconnect watcher sees the one empty http.request first.
EMPTY_BODY = httpx.ByteStream(b"")


def _mapped(exc: httpx.TransportError, endpoint: Endpoint, when: str) -> UpstreamError:
    detail = f"{endpoint} {when}: {type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(detail)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamConnectError(detail)
    return UpstreamProtocolError(detail)


class UpstreamResponse:
    """The upstream's status line and header block; the body is read with `chunks()`."""

    __slots__ = ("_endpoint", "_response", "headers", "status")

    def __init__(self, response: httpx.Response, endpoint: Endpoint) -> None:
        self._response = response
        self._endpoint = endpoint
        self.status: int = response.status_code
        self.headers: Headers = response.headers.raw

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body exactly as it came off the wire (never decompressed), chunk by chunk as
        the upstream sends it. Raises UpstreamTimeout / UpstreamProtocolError mid-body."""
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            raise _mapped(exc, self._endpoint, "failed mid-body") from exc

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read to the end,
        otherwise closed."""
        await self._response.aclose()


class HTTPForwarder:
    """One connection pool for all upstreams, created on the event loop that uses it."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        verify_tls: bool | ssl.SSLContext | None = None,
    ) -> None:
        # Timeouts as nginx applies proxy_connect_timeout / proxy_read_timeout: read and
        # write are per operation, so a slow stream that keeps moving is never cut.
        self._timeouts = {
            "connect": settings.connect_timeout,
            "read": settings.read_timeout,
            "write": settings.read_timeout,
            "pool": settings.connect_timeout,
        }
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        # None: as the settings say (tls.upstream_verify: off unless --upstream-tls-verify or
        # --upstream-ca), for endpoints whose scheme is https.
        self._verify_tls = upstream_verify(settings) if verify_tls is None else verify_tls
        self._transport: httpx.AsyncHTTPTransport | None = None
        self._urls: dict[str, httpx.URL] = {}

    @property
    def started(self) -> bool:
        return self._transport is not None

    def start(self) -> httpx.AsyncHTTPTransport:
        """Create the pool (idempotent). Call from the loop that will send requests."""
        if self._transport is not None:
            return self._transport
        for name in ("httpx", "httpcore"):
            # Their DEBUG/INFO records are per request; keep them off the hot path unless
            # someone configured these loggers on purpose.
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
        self._transport = httpx.AsyncHTTPTransport(
            verify=self._verify_tls, trust_env=False, limits=self._limits, retries=0
        )
        return self._transport

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        self._urls.clear()
        if transport is not None:
            await transport.aclose()

    def _url(self, endpoint: Endpoint) -> httpx.URL:
        url = self._urls.get(endpoint.base_url)
        if url is None:
            try:
                url = httpx.URL(endpoint.base_url)
            except httpx.InvalidURL as exc:
                # e.g. an ExternalName that is not a valid host name
                raise UpstreamConnectError(f"{endpoint}: invalid address: {exc}") from exc
            if len(self._urls) >= 4096:
                self._urls.clear()  # endpoints churn across reloads; keep the cache bounded
            self._urls[endpoint.base_url] = url
        return url

    async def send(
        self,
        method: str,
        endpoint: Endpoint,
        target: bytes,
        headers: Headers,
        body: httpx.AsyncByteStream,
    ) -> UpstreamResponse:
        """Send the request line, `headers` as given and the streamed `body`; return once the
        upstream's response headers have arrived.

        `target` is the request target byte for byte (canonical path, '?', query): it goes
        out through httpx's "target" extension, so httpx never re-quotes it.
        Raises UpstreamConnectError, UpstreamTimeout, UpstreamProtocolError, or
        ClientDisconnected when the client vanished during the upload.
        """
        transport = self._transport or self.start()
        request = httpx.Request(
            method,
            self._url(endpoint),
            headers=headers,
            stream=body,
            extensions={"timeout": self._timeouts, "target": target},
        )
        try:
            response = await transport.handle_async_request(request)
        except httpx.TransportError as exc:
            raise _mapped(exc, endpoint, "before the response headers") from exc
        return UpstreamResponse(response, endpoint)
