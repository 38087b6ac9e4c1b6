"""Streaming HTTP exchange with one upstream endpoint over a shared httpx connection pool.

Flow: proxy -> HTTPForwarder.send(...) -> UpstreamResponse (status, raw headers, raw chunks).
httpx errors become ours here (like httpx's own map_httpcore_exceptions); nothing httpx-typed
leaves this module except the request body stream the proxy hands in.

We drive httpx's transport API rather than `AsyncClient.send`: the request goes out exactly
as built (no default User-Agent, Accept, Accept-Encoding or Connection headers, no cookie jar,
no redirects, no proxies from the environment, no per-request INFO log), and it skips the
client's auth/redirect/cookie machinery. With our own pool (upstream.UpstreamTransport, the
default) we call its `exchange` entry, which is `handle_async_request` without building
httpx's Request and Response objects; any other httpx transport (httpx's own, in the
benchmark's variants) goes through `handle_async_request`. Figures: docs/performance.md.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator

import httpx
from starlette.types import Receive

from ..errors import (
    ClientDisconnected,
    PayloadTooLarge,
    RequestTimeout,
    UpstreamClosedEarly,
    UpstreamConnectError,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from ..ir.model import Endpoint
from ..ir.service import Timeouts
from ..server.settings import Settings
from ..server.tls import upstream_verify
from ..upstream.pool import LostBeforeResponse, UpstreamExchange, UpstreamTransport, pool_key

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

    Enforces `max_size` (PayloadTooLarge once more bytes than that arrived, however the body
    is framed) and `idle_timeout` (RequestTimeout when the client sends nothing for that
    long while we wait for it; time spent waiting for the upstream to read does not count).
    Raises ClientDisconnected when the client goes away. `done` turns true once the last
    chunk has been received; only then may someone else call `receive`.
    """

    __slots__ = ("_first", "_idle", "_limit", "_receive", "done", "received", "started")

    def __init__(
        self, receive: Receive, *, max_size: int | None = None, idle_timeout: float | None = None
    ) -> None:
        self._receive = receive
        self._limit = max_size
        self._idle = idle_timeout
        self._first: bytes | None = None
        self.done = False
        self.started = False  # the upstream has begun reading it
        self.received = 0

    async def prime(self) -> None:
        """Read the first chunk now, before an upstream is contacted: a client that is already
        gone, a first chunk over the limit or a body that never comes is answered without
        bothering the upstream (and a body that fits in one chunk can be sent twice)."""
        if self._first is None and not self.done:
            self._first = await self._next()

    @property
    def replayable(self) -> bool:
        """The whole body is held in memory, so a retry can send it again."""
        return self.done and self._first is not None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        first = self._first
        if first is not None:
            if not self.done:
                self._first = None  # streamed from here on: held once, never replayed
            if first:
                yield first
        while not self.done:
            body = await self._next()
            if body:
                yield body

    async def _next(self) -> bytes:
        if self._idle is None:
            message = await self._receive()
        else:
            try:
                async with asyncio.timeout(self._idle):
                    message = await self._receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"no request body bytes for {self._idle:g}s after {self.received}"
                ) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client closed the connection during the upload")
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            self.done = True
        if body:
            self.received += len(body)
            if self._limit is not None and self.received > self._limit:
                raise PayloadTooLarge(f"request body over {self._limit} bytes")
        return body


# For requests without a body (no Content-Length, no Transfer-Encoding): nothing is read
# from `receive`, so a later disconnect watcher sees the one empty http.request first.
EMPTY_BODY = httpx.ByteStream(b"")


def _mapped(exc: httpx.TransportError, endpoint: Endpoint, when: str) -> UpstreamError:
    detail = f"{endpoint} {when}: {type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        if isinstance(exc, httpx.ConnectTimeout):
            return UpstreamConnectTimeout(detail)
        if isinstance(exc, httpx.PoolTimeout):
            return UpstreamPoolTimeout(detail)
        return UpstreamTimeout(detail)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamConnectError(detail)
    return UpstreamProtocolError(detail)


def _mapped_before_response(exc: httpx.TransportError, endpoint: Endpoint) -> UpstreamError:
    """Like _mapped, for errors before the response head was complete: a connection that
    died (closed, reset, unwritable) is UpstreamClosedEarly, the kind an idempotent request
    may be retried after. Told by type: our pool marks it LostBeforeResponse; from another
    httpx transport only a ReadError or WriteError counts (a RemoteProtocolError there may be
    garbage as well as a close, so it is never retried)."""
    if isinstance(exc, (LostBeforeResponse, httpx.ReadError, httpx.WriteError)):
        detail = f"{endpoint} closed the connection before responding: {type(exc).__name__}"
        return UpstreamClosedEarly(f"{detail}: {exc}" if str(exc) else detail)
    return _mapped(exc, endpoint, "before the response headers")


class UpstreamResponse:
    """The upstream's status line and header block; the body is read with `chunks()`."""

    __slots__ = ("endpoint", "headers", "status")

    def __init__(self, status: int, headers: Headers, endpoint: Endpoint) -> None:
        self.status = status
        self.headers = headers
        self.endpoint = endpoint

    def complete_body(self) -> bytes | None:
        """The whole body if it has all arrived already (a small response), else None: then
        the proxy answers with one body message instead of iterating `chunks()`."""
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body exactly as it came off the wire (never decompressed), chunk by chunk as
        the upstream sends it. Raises UpstreamTimeout / UpstreamProtocolError mid-body."""
        try:
            async for chunk in self._raw_chunks():
                yield chunk
        except httpx.TransportError as exc:
            raise _mapped(exc, self.endpoint, "failed mid-body") from exc

    def _raw_chunks(self) -> AsyncIterator[bytes]:
        """The transport's own body iterator (raising httpx's errors)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read to the end,
        otherwise closed (a half-read connection is never pooled)."""
        raise NotImplementedError

    def close_now(self) -> bool:
        """`aclose` without awaiting, where the transport allows it (our pool): True when
        done, False when `aclose` must still be awaited."""
        return False


class _PooledResponse(UpstreamResponse):
    """A response on our own pool's connection (UpstreamTransport.exchange)."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: UpstreamExchange, endpoint: Endpoint) -> None:
        # UpstreamResponse.__init__ inline: one call fewer per request.
        self.status = exchange.status
        self.headers = exchange.headers
        self.endpoint = endpoint
        self._exchange = exchange

    def complete_body(self) -> bytes | None:
        return self._exchange.complete_body()

    def _raw_chunks(self) -> AsyncIterator[bytes]:
        return self._exchange.chunks()

    async def aclose(self) -> None:
        self._exchange.release()

    def close_now(self) -> bool:
        self._exchange.release()
        return True


class _HttpxResponse(UpstreamResponse):
    """A response from any other httpx transport (httpx's own, in the benchmark's variants)."""

    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response, endpoint: Endpoint) -> None:
        super().__init__(response.status_code, response.headers.raw, endpoint)
        self._response = response

    def _raw_chunks(self) -> AsyncIterator[bytes]:
        return self._response.aiter_raw()

    async def aclose(self) -> None:
        await self._response.aclose()


class HTTPForwarder:
    """One connection pool for all upstreams, created on the event loop that uses it."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_connections: int | None = None,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        verify_tls: bool | ssl.SSLContext | None = None,
    ) -> None:
        # Timeouts as nginx applies proxy_connect_timeout / proxy_read_timeout: read and
        # write are per operation, so a slow stream that keeps moving is never cut.
        self._timeouts: dict[str, float | None] = {
            "connect": settings.connect_timeout,
            "read": settings.read_timeout,
            "write": settings.read_timeout,
            "pool": settings.pool_timeout,
        }
        size = settings.pool_size if max_connections is None else max_connections
        self._limits = httpx.Limits(
            max_connections=size, max_keepalive_connections=size, keepalive_expiry=keepalive_expiry
        )
        # None: as the settings say (tls.upstream_verify: off unless --upstream-tls-verify or
        # --upstream-ca), for endpoints whose scheme is https.
        self._verify_tls = upstream_verify(settings) if verify_tls is None else verify_tls
        self._transport: httpx.AsyncBaseTransport | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._keys: dict[str, tuple[bytes, bytes, int]] = {}

    @property
    def started(self) -> bool:
        return self._transport is not None

    def start(self) -> httpx.AsyncBaseTransport:
        """Create the pool (idempotent). Call from the loop that will send requests."""
        if self._transport is not None:
            return self._transport
        for name in ("httpx", "httpcore"):
            # Their DEBUG/INFO records are per request; keep them off the hot path unless
            # someone configured these loggers on purpose.
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
        # Our own transport under httpx's API: httpcore's took 0.5-1.7 ms of CPU per request
        # here, ours about a tenth of that (upstream.py, docs/performance.md).
        self._transport = UpstreamTransport(
            verify=self._verify_tls,
            max_connections=self._limits.max_connections,
            keepalive_expiry=self._limits.keepalive_expiry or DEFAULT_KEEPALIVE_EXPIRY,
        )
        return self._transport

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        self._urls.clear()
        self._keys.clear()
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

    def _key(self, endpoint: Endpoint) -> tuple[bytes, bytes, int]:
        """(scheme, host, port): how our pool names an endpoint's connections."""
        key = self._keys.get(endpoint.base_url)
        if key is None:
            key = pool_key(self._url(endpoint))
            if len(self._keys) >= 4096:
                self._keys.clear()
            self._keys[endpoint.base_url] = key
        return key

    async def send(
        self,
        method: str,
        endpoint: Endpoint,
        target: bytes,
        headers: Headers,
        body: httpx.AsyncByteStream,
        *,
        connect_timeout: float | None = None,
        timeouts: Timeouts | None = None,
    ) -> UpstreamResponse:
        """Send the request line, `headers` as given and the streamed `body`; return once the
        upstream's response headers have arrived.

        `target` is the request target byte for byte (canonical path, '?', query): it goes
        out through httpx's "target" extension, so httpx never re-quotes it.
        `connect_timeout` replaces `--connect-timeout` for this try (what is left of a retry
        deadline); `timeouts` are a service's own (ir.service), each replacing the
        listener's where it is set. Raises UpstreamConnectError / UpstreamConnectTimeout
        (nothing was sent), UpstreamPoolTimeout, UpstreamClosedEarly, UpstreamTimeout,
        UpstreamProtocolError, or what the body raises (ClientDisconnected, RequestTimeout,
        PayloadTooLarge).
        """
        transport = self._transport or self.start()
        limits = self._timeouts
        if timeouts is not None:
            limits = {
                **limits,
                "connect": timeouts.connect if timeouts.connect is not None else limits["connect"],
                "read": timeouts.read if timeouts.read is not None else limits["read"],
                "write": timeouts.send if timeouts.send is not None else limits["write"],
            }
        if connect_timeout is not None:
            limits = {**limits, "connect": max(connect_timeout, 0.001)}
        if isinstance(transport, UpstreamTransport):
            # Our pool's direct entry: no httpx Request/Response objects on the hot path.
            key = self._key(endpoint)
            try:
                exchange = await transport.exchange(
                    key,
                    method.encode("ascii"),
                    target,
                    headers,
                    b"" if body is EMPTY_BODY else body,
                    limits,
                )
            except httpx.TransportError as exc:
                raise _mapped_before_response(exc, endpoint) from exc
            return _PooledResponse(exchange, endpoint)
        request = httpx.Request(
            method,
            self._url(endpoint),
            headers=headers,
            stream=body,
            extensions={"timeout": limits, "target": target},
        )
        try:
            response = await transport.handle_async_request(request)
        except httpx.TransportError as exc:
            raise _mapped_before_response(exc, endpoint) from exc
        return _HttpxResponse(response, endpoint)
