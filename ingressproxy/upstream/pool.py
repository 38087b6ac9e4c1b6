"""An httpx transport for talking to upstreams: HTTP/1.1 keep-alive pool on asyncio protocols.

Flow: forward_http.HTTPForwarder -> UpstreamTransport.handle_async_request(httpx.Request) ->
httpx.Response whose stream yields the body exactly as it came off the wire.

Why not httpx's own transport: on the proxy's hot path httpcore (anyio streams, h11, a pool
that scans every connection per request) took 0.5-1.7 ms of CPU per request; this one parses
with httptools (llhttp, already in uvicorn[standard]) inside asyncio protocol callbacks
(docs/performance.md has the figures). It keeps httpx's API and its exceptions, so
forward_http maps errors the same way: ConnectError/ConnectTimeout (nothing sent),
PoolTimeout, ReadTimeout/WriteTimeout, RemoteProtocolError (garbage, a body cut short). A
connection that dies after the request went out and before the response head was complete
raises an httpx error that is also a LostBeforeResponse (RemoteProtocolError for a close,
with httpcore's wording, ReadError for a reset, WriteError): the one kind an idempotent
request may be retried after, told by its type.

Response heads are bounded (MAX_HEAD_BYTES, MAX_HEAD_FIELDS, like nginx's proxy_buffer_size
and Envoy's max_headers_count): past either the exchange fails at once and the connection is
closed.

Scope: what a reverse proxy needs and nothing more. The request goes out as given: the
"target" extension is the request target, headers are sent as they are (no defaults added),
framing follows the request's own Content-Length or `Transfer-Encoding: chunked`. No
redirects, cookies, proxies, HTTP/2 or upgrades (WebSockets go through forward_ws). Chunked
trailers are read and dropped: they never become header fields.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

import httpx
from httptools import HttpParserError, HttpResponseParser

from .deadlines import Deadlines

__all__ = [
    "MAX_HEAD_BYTES",
    "MAX_HEAD_FIELDS",
    "LostBeforeResponse",
    "UpstreamExchange",
    "UpstreamTransport",
    "pool_key",
]

Headers = list[tuple[bytes, bytes]]

# Read from the upstream up to this much ahead of what the client has taken, then pause
# reading: a slow client slows the upstream instead of filling our memory (back-pressure).
# About one of uvloop's 256 KiB reads; 1 MiB measured ~10% slower for 1 MiB bodies (cache).
_HIGH_WATER = 1 << 18
_LOW_WATER = 1 << 16

# A response head (status line and fields; interim 1xx heads before it count too) may be
# this large: nginx reads the whole head into proxy_buffer_size (4 or 8 KiB by default) and
# answers 502 "upstream sent too big header"; 64 KiB leaves room for fat cookies and CSPs.
# The same bound holds for any run of bytes that carries no body (chunk framing, trailers).
MAX_HEAD_BYTES = 1 << 16
# Fields per head: Envoy's max_headers_count default, which it applies to upstream responses.
MAX_HEAD_FIELDS = 100

# httpcore's wording (its _async/http11.py) for a close before any response byte.
_NO_RESPONSE = "Server disconnected without sending a response."
_INCOMPLETE = "peer closed connection without sending complete message body"


class LostBeforeResponse(Exception):
    """Mixed into the httpx errors raised when the connection died (closed, reset, or
    unwritable) after the request, or part of it, went out and before the response head was
    complete: the upstream may have acted on the request, and nothing of a response exists
    yet. forward_http tells this kind apart by type (UpstreamClosedEarly)."""


class _ClosedBeforeResponse(httpx.RemoteProtocolError, LostBeforeResponse):
    pass


class _ResetBeforeResponse(httpx.ReadError, LostBeforeResponse):
    pass


class _WriteFailed(httpx.WriteError, LostBeforeResponse):
    pass


class _OutOfStep(Exception):
    """Stops the parser at bytes after a complete response (see on_message_begin)."""


class _HeadTooLarge(Exception):
    """Stops the parser at a response head over the pool's limits (see on_header)."""


class _Connection(asyncio.Protocol):
    """One upstream connection and the state of the exchange in progress on it.

    The httptools parser calls back into this object (on_header, on_body, ...), so a
    response's head and body arrive without any task switch until someone waits for them.
    """

    def __init__(
        self,
        pool: UpstreamTransport,
        key: tuple[bytes, bytes, int],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.counted = True  # holds one of the pool's max_connections slots
        self._loop = loop
        self.write_paused = False  # the transport's buffer is over its high-water mark
        self._drained: asyncio.Future[None] | None = None
        # The exchange in progress.
        self.parser: Any = None
        self.active = False
        self.head_request = False
        self.status = 0
        self.headers: Headers = []
        self.headers_done = False
        self.complete = False  # the whole response has been received
        self.keep_alive = False
        self.until_eof = False  # no length and not chunked: the body ends with the connection
        self.got_bytes = False  # any response byte arrived
        self.request_sent = False  # the whole request went out (else never reuse)
        self.head_bytes = 0  # field bytes of this exchange's heads so far (interim ones too)
        # Bytes read since the last read that held body or ended a head: a head still
        # arriving, interim responses, chunk framing, trailers. Bounded like a head.
        self.unframed = 0
        self._lenient = False  # llhttp accepts a trailer Content-Length (on_headers_complete)
        self._max_bytes = pool.max_head_bytes
        self._max_fields = pool.max_head_fields
        self.error: Exception | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # One parser for the connection's life: llhttp reads one response after another.
        self.parser = HttpResponseParser(self)

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:
            # Bytes nobody asked for (after a complete response, or while idle): the stream
            # is out of step with us; never reuse it.
            self._close()
            return
        self.got_bytes = True
        buffered = self.buffered
        headers_done = self.headers_done
        try:
            self.parser.feed_data(data)
        except HttpParserError as exc:
            # A callback's own error (an unasked 101, a head too large) arrives as the parser
            # error's context.
            reason = exc.__context__ if exc.__context__ is not None else exc
            if not isinstance(reason, _OutOfStep):
                self._fail(httpx.RemoteProtocolError(f"invalid response from upstream: {reason}"))
            self._close()
            return
        if self.buffered != buffered or self.headers_done is not headers_done or self.complete:
            self.unframed = 0
            return
        # Nothing of this read was body or the end of a head. Bounded, or an upstream could
        # keep us parsing (and httptools buffering one endless field) until the read timeout.
        self.unframed += len(data)
        if self.unframed > self._max_bytes:
            what = "response head" if not headers_done else "chunk framing or trailers"
            self._fail(httpx.RemoteProtocolError(f"{what} over {self._max_bytes} bytes"))
            self._close()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        if not self.active or self.complete:
            return
        if self.headers_done and self.until_eof and exc is None:
            self.complete = True  # the close is the end of this body (RFC 9112 6.3 item 8)
            self.keep_alive = False
            self._wake()
            return
        if self.headers_done:
            self._fail(httpx.RemoteProtocolError(_INCOMPLETE))
        elif exc is not None:
            self._fail(_ResetBeforeResponse(f"{type(exc).__name__}: {exc}"))
        elif not self.got_bytes:
            self._fail(_ClosedBeforeResponse(_NO_RESPONSE))
        else:
            self._fail(_ClosedBeforeResponse("upstream closed the connection mid-headers"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # ------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        if self.headers_done:
            # A second response to one request (in the same packet as the first): the
            # connection is out of step; the first response stands, the connection goes.
            raise _OutOfStep
        if self._lenient:
            self._lenient = False
            self.parser.set_dangerous_leniencies(lenient_chunked_length=False)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            # A trailer field (after a chunked body): never a header field, and dropped, as
            # uvicorn's HTTP/1.1 servers cannot send trailers (docs/reliability.md).
            return
        headers = self.headers
        headers.append((name, value))
        if len(headers) > self._max_fields:
            raise _HeadTooLarge(f"response head over {self._max_fields} fields")

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        headers = self.headers
        length = False
        codings: list[bytes] = []
        size = 4 * len(headers)  # ": " and CRLF
        for name, value in headers:
            n = len(name)  # lower() only the two names that matter here
            size += n + len(value)
            if n == 14 and name.lower() == b"content-length":
                length = True
            elif n == 17 and name.lower() == b"transfer-encoding":
                codings.append(value.strip().lower())
        self.head_bytes += size
        if self.head_bytes > self._max_bytes:
            raise _HeadTooLarge(f"response head over {self._max_bytes} bytes")
        if 100 <= status < 200:
            if status == 101:
                raise httpx.RemoteProtocolError("upstream switched protocols unasked (101)")
            # An interim response (100 Continue, 103 Early Hints): dropped, as nginx does;
            # the parser reads the final response that follows on the same connection.
            self.headers = []
            return
        self.status = status
        self.headers_done = True
        if self.head_request or status in (204, 304):
            # No body follows, whatever Content-Length says (RFC 9110 9.3.2, 15.3.5, 15.4.5).
            self.complete = True
            # llhttp's keep-alive also asks for a length, which an answer to HEAD need not
            # have; finish() gives the connection a new parser, which llhttp cannot be told
            # about HEAD and still waits for the body the head announced.
            self.keep_alive = (
                _keeps_alive(parser, headers) if self.head_request else parser.should_keep_alive()
            )
        else:
            if codings and codings != [b"chunked"]:
                # Only plain chunked, as h11 and headers.py on the request side: a coding we
                # cannot undo leaves the body's end to the connection's close, a smuggling
                # vector llhttp would let through.
                raise httpx.RemoteProtocolError(f"unsupported Transfer-Encoding {codings!r}")
            self.keep_alive = parser.should_keep_alive()
            self.until_eof = not length and not codings
            if codings:
                # llhttp reads trailers by the head's rules and refuses a Content-Length there
                # next to the head's chunked. The head was checked strictly; trailers are
                # dropped (on_header), so this one is harmless. Strict again from the next
                # message on (on_message_begin).
                self._lenient = True
                parser.set_dangerous_leniencies(lenient_chunked_length=True)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            # Bytes after a head that has no body (an answer to HEAD that sent one anyway):
            # the stream is out of step, never reuse it.
            self.keep_alive = False
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done and not self.complete:
            self.complete = True
            self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
            self._wake()

    # ------------------------------------------------------------- used by the transport

    def begin(self, head_request: bool) -> None:
        # The rest of the exchange's state is fresh: from __init__, or reset by finish() when
        # the connection went back to the pool (after the response's last write to the client,
        # off the time it waits for).
        self.active = True
        self.head_request = head_request

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise _WriteFailed("upstream closed the connection")
        self.transport.write(data)

    async def drain(self, timeout: float | None) -> None:
        if not self.write_paused:
            return
        if self.closed:
            raise _WriteFailed("upstream closed the connection")
        self._drained = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._drained
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request to the upstream") from None

    async def wait(self, timeout: float | None, what: str) -> None:
        """Until something new happened (bytes, headers, end, error); ReadTimeout after
        `timeout` seconds without it."""
        if self.error is not None:
            raise self.error
        self._waiter = waiter = self._loop.create_future()
        if timeout is not None:
            # A coarse deadline, not a loop timer per wait (deadlines.py): up to 50 ms late.
            self.pool.deadlines.arm(waiter, timeout, _expire, waiter, what)
        try:
            await waiter
        finally:
            self._waiter = None
            if timeout is not None:
                self.pool.deadlines.disarm(waiter)
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self._reading_paused and self.buffered < _LOW_WATER and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    def finish(self) -> None:
        """The exchange is over: back to the pool if the whole response was read and both
        sides want to keep the connection, else closed (never pool a half-read one)."""
        reusable = (
            self.complete
            and self.keep_alive
            and self.request_sent
            and not self.chunks
            and not self.closed
        )
        self.active = False
        if reusable:
            if self.head_request:
                # llhttp still waits for the body the answer to HEAD announced.
                self.parser = HttpResponseParser(self)
            self.status = 0
            self.headers = []  # a new list: the finished response may still hold the old one
            self.headers_done = self.complete = self.keep_alive = self.until_eof = False
            self.got_bytes = self.request_sent = False
            self.error = None
            self.buffered = 0  # chunks is empty: a condition of reusable
            self.head_bytes = self.unframed = 0
            self.pool._release(self)
        else:
            self._close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True
        self.pool._forget(self)


def _keeps_alive(parser: Any, headers: Headers) -> bool:
    """Whether a bodiless response's Connection leaves the connection open (HTTP/1.1 unless
    `close`, HTTP/1.0 only with `keep-alive`), as llhttp decides but without a length."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if len(name) == 10 and name.lower() == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b","))
    if parser.get_http_version() == "1.0":
        return b"keep-alive" in tokens
    return b"close" not in tokens


def pool_key(url: httpx.URL) -> tuple[bytes, bytes, int]:
    """(scheme, host, port): how the pool names an upstream's connections."""
    scheme = url.raw_scheme
    return scheme, url.raw_host, url.port or (443 if scheme == b"https" else 80)


def _expire(waiter: asyncio.Future[None], what: str) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout(f"timed out waiting for the upstream's {what}"))


class UpstreamExchange:
    """One response being read off a pooled connection: what `UpstreamTransport.exchange`
    returns. The status and headers are in; the body comes from `chunks()` (or, when it has
    all arrived already, from `complete_body()`). `release()` ends the exchange."""

    __slots__ = ("_conn", "_read_timeout", "_released", "headers", "status")

    def __init__(self, conn: _Connection, read_timeout: float | None) -> None:
        self._conn = conn
        self._read_timeout = read_timeout
        self._released = False
        self.status = conn.status
        self.headers = conn.headers

    def complete_body(self) -> bytes | None:
        """The whole body when the response has ended and at most one chunk is waiting (a
        small response arrives in one read): no iterator to run. Else None."""
        conn = self._conn
        if not conn.complete:
            return None
        chunks = conn.chunks
        if not chunks:
            return b""
        if len(chunks) == 1:
            return conn.take()
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk as the upstream sends it (ReadTimeout after the read
        timeout without a byte, RemoteProtocolError when it is cut short)."""
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
            elif conn.complete:
                return
            else:
                await conn.wait(self._read_timeout, "response body")

    def release(self) -> None:
        """Back to the pool when the response was read to its end, else closed (once)."""
        if not self._released:
            self._released = True
            self._conn.finish()


class _ResponseStream(httpx.AsyncByteStream):
    """An exchange's body as httpx's stream type (for `handle_async_request`)."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: UpstreamExchange) -> None:
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._exchange.chunks():
            yield chunk

    async def aclose(self) -> None:
        self._exchange.release()


class UpstreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to upstreams with one keep-alive pool, shared by every endpoint.

    `max_connections` caps the connections open at once (waiting up to the "pool" timeout
    for one); idle ones are reused most-recent first and closed after `keepalive_expiry`
    seconds. `verify` is for https endpoints: False (no checks, as ingress-nginx), True
    (system CAs) or an SSLContext. A response head over `max_head_bytes` (its fields, or
    what arrived of it so far) or `max_head_fields` fails the exchange (RemoteProtocolError)
    and closes the connection.
    """

    def __init__(
        self,
        *,
        verify: bool | ssl.SSLContext = True,
        max_connections: int | None = 256,
        keepalive_expiry: float = 4.0,
        max_head_bytes: int = MAX_HEAD_BYTES,
        max_head_fields: int = MAX_HEAD_FIELDS,
    ) -> None:
        self.max_head_bytes = max_head_bytes
        self.max_head_fields = max_head_fields
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._idle: dict[tuple[bytes, bytes, int], list[_Connection]] = {}
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self.deadlines = Deadlines()  # the read timeouts of the exchanges in progress
        self._loop: asyncio.AbstractEventLoop | None = None  # the pool's, from its first use

    # ------------------------------------------------------------- pool

    def _forget(self, conn: _Connection) -> None:
        """`conn` is closed: give back its slot (once)."""
        if conn.counted:
            conn.counted = False
            self._open -= 1
            self._wake_one()

    def _release(self, conn: _Connection) -> None:
        if self._closed:
            conn._close()
            return
        conn.idle_since = conn._loop.time()
        self._idle.setdefault(conn.key, []).append(conn)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _take_idle(self, key: tuple[bytes, bytes, int], now: float) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            # A closing transport (the upstream's FIN was read, connection_lost not yet run)
            # would fail the first write.
            if (
                not conn.closed
                and now - conn.idle_since < self._expiry
                and conn.transport is not None
                and not conn.transport.is_closing()
            ):
                return conn
            conn._close()
        return None

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection to any upstream, to make room for another."""
        oldest: _Connection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        if oldest is None:
            return False
        self._idle[oldest.key].remove(oldest)
        oldest._close()
        return True

    async def _acquire(
        self, key: tuple[bytes, bytes, int], timeouts: Mapping[str, float | None]
    ) -> _Connection:
        loop = self._loop
        if loop is None:
            # Once per pool: on Python 3.11 each get_running_loop() is a getpid() syscall.
            loop = self._loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            if self._closed:
                raise httpx.ConnectError("the upstream transport is closed")
            conn = self._take_idle(key, loop.time())
            if conn is not None:
                return conn
            if self._max is None or self._open < self._max or self._evict_idle():
                return await self._connect(key, timeouts.get("connect"))
            if deadline is None:
                pool = timeouts.get("pool")
                deadline = None if pool is None else loop.time() + pool
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise httpx.PoolTimeout(
                    f"all {self._max} upstream connections busy (pool timeout)"
                ) from None
            finally:
                if not waiter.done():
                    waiter.cancel()

    async def _connect(self, key: tuple[bytes, bytes, int], timeout: float | None) -> _Connection:
        scheme, host, port = key
        self._open += 1
        loop = self._loop or asyncio.get_running_loop()  # set by _acquire, our only caller
        conn = _Connection(self, key, loop)
        ssl_context = self._ssl_context() if scheme == b"https" else None
        name = host.decode("ascii")
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: conn,
                    name,
                    port,
                    ssl=ssl_context,
                    server_hostname=name if ssl_context is not None else None,
                )
        except TimeoutError:
            self._forget(conn)
            raise httpx.ConnectTimeout(f"connecting to {name}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            self._forget(conn)
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._forget(conn)
            raise
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            verify = self._verify
            if isinstance(verify, ssl.SSLContext):
                self._ssl = verify
            elif verify:
                self._ssl = ssl.create_default_context()
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self._ssl = ctx
        return self._ssl

    # ------------------------------------------------------------- httpx API

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        stream = request.stream
        body: bytes | AsyncIterable[bytes] = (
            # httpx's in-memory body goes out with the head, as exchange() sends bytes.
            b"".join([part async for part in stream])
            if isinstance(stream, httpx.ByteStream)
            else stream  # type: ignore[assignment]  # an async transport gets async streams
        )
        exchange = await self.exchange(
            pool_key(url),
            request.method.encode("ascii"),
            request.extensions.get("target") or url.raw_path,
            request.headers.raw,
            body,
            timeouts,
        )
        return httpx.Response(
            exchange.status,
            headers=exchange.headers,
            stream=_ResponseStream(exchange),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    async def exchange(
        self,
        key: tuple[bytes, bytes, int],
        method: bytes,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterable[bytes],
        timeouts: Mapping[str, float | None],
    ) -> UpstreamExchange:
        """Send one request to `key` = (scheme, host, port) and return once the response
        headers are in. What `handle_async_request` does without building httpx's Request
        and Response objects (their header normalisation was a tenth of the proxy's CPU per
        request: docs/performance.md); it raises the same httpx exceptions.

        `target` is the request target as sent; `headers` go out as given; `body` is the
        whole body (b"" for none) or an async iterable of chunks, framed as `headers` say.
        """
        head = [method, b" ", target, b" HTTP/1.1\r\n"]
        chunked = False
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
            if (
                len(name) == 17
                and name.lower() == b"transfer-encoding"
                and value.lower() == b"chunked"
            ):
                chunked = True
        head.append(b"\r\n")
        head_bytes = b"".join(head)

        # An idle connection without a coroutine of its own (nearly every request).
        loop = self._loop
        conn = None if loop is None or self._closed else self._take_idle(key, loop.time())
        if conn is None:
            conn = await self._acquire(key, timeouts)
        read_timeout = timeouts.get("read")
        try:
            conn.begin(method == b"HEAD")
            if isinstance(body, bytes):
                # A body held in memory (or none): one write together with the head.
                if chunked:
                    body = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
                conn.write(head_bytes + body if body else head_bytes)
                try:
                    if conn.write_paused:
                        await conn.drain(timeouts.get("write"))
                    conn.request_sent = True
                except httpx.WriteError:
                    if not conn.got_bytes:
                        raise  # else read the answer that came early, as _stream does
            else:
                await self._stream(conn, head_bytes, body, chunked, timeouts.get("write"))
            while not conn.headers_done:
                await conn.wait(read_timeout, "response headers")
        except BaseException:
            conn.active = False
            conn._close()
            raise
        return UpstreamExchange(conn, read_timeout)

    async def _stream(
        self,
        conn: _Connection,
        head: bytes,
        stream: AsyncIterable[bytes],
        chunked: bool,
        write_timeout: float | None,
    ) -> None:
        """The head, then a streamed body chunk by chunk (framed chunked when `chunked`)."""
        conn.write(head)
        try:
            async for chunk in stream:
                if not chunk:
                    continue
                if conn.headers_done:
                    return  # the upstream answered already (e.g. 413): stop sending
                conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                await conn.drain(write_timeout)
            if chunked:
                conn.write(b"0\r\n\r\n")
                await conn.drain(write_timeout)
            conn.request_sent = True
        except httpx.WriteError:
            # Servers may answer early and close (nginx's 413): read that answer if one came,
            # as httpcore does.
            if not conn.got_bytes:
                raise

    async def aclose(self) -> None:
        self._closed = True
        self.deadlines.close()
        for conns in self._idle.values():
            for conn in conns:
                conn._close()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.cancel()
