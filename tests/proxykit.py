"""Shared test kit for the request path: a proxy under real uvicorn with the production protocol
(guard.py) for either parser, hand-built route tables, raw-socket upstreams that count what
reaches them, and raw-socket clients that read exactly what comes back."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import h11

from ingressproxy.ir.model import Backend, Endpoint, Router
from ingressproxy.ir.snapshot import Snapshot, SnapshotHolder
from ingressproxy.ir.table import HostTable, RouteTable, prefix_key
from ingressproxy.manifests.model import ObjectRef, PathType, Source
from ingressproxy.proxy.app import ProxyApp
from ingressproxy.server.settings import Settings
from ingressproxy.testing.server import ServerThread, serve_in_thread
from ingressproxy.upstream.balancer import Balancer

HTTP_IMPLS = ["h11", "httptools"]
WAIT = 10.0  # upper bound of every wait in these tests; none is expected to take long


# --------------------------------------------------------------------------- route tables


def route(host: str, path: str, backend: Backend) -> Router:
    return Router(
        ingress=ObjectRef("Ingress", backend.namespace, backend.service),
        source=Source("test.yaml", 1),
        field="spec.rules[0].http.paths[0]",
        host=host,
        path=path,
        path_type=PathType.PREFIX,
        backend=backend,
    )


def make_table(routes: list[Router]) -> RouteTable:
    """Prefix rules by host, built by hand the way the compiler would."""
    hosts: dict[str, dict[str, Router]] = {}
    for r in routes:
        assert r.host is not None and r.path is not None
        hosts.setdefault(r.host, {})[prefix_key(r.path)] = r
    return RouteTable(
        exact_hosts=MappingProxyType(
            {h: HostTable(prefix=MappingProxyType(p)) for h, p in hosts.items()}
        )
    )


def service(name: str, *ports: int, namespace: str = "shop") -> Backend:
    """Service <namespace>/<name>, port "http", with an endpoint on 127.0.0.1 per port."""
    return Backend(namespace, name, "http", tuple(Endpoint("127.0.0.1", p) for p in ports))


def single(host: str, *ports: int) -> RouteTable:
    """One host, everything to one Service with these endpoint ports."""
    return make_table([route(host, "/", service(host.split(".")[0], *ports))])


# --------------------------------------------------------------------------- the proxy


@dataclass
class Running:
    server: ServerThread
    app: ProxyApp
    holder: SnapshotHolder

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url


@contextlib.contextmanager
def run_proxy(
    table: RouteTable, http: str, *, balancer: Balancer | None = None, **settings: Any
) -> Iterator[Running]:
    """ProxyApp under uvicorn with the protocol `ingressproxy serve` uses (limits from
    `settings`), on 127.0.0.1:<free port>."""
    holder = SnapshotHolder()
    holder.swap(Snapshot(table))
    settings.setdefault("connect_timeout", 5.0)
    settings.setdefault("read_timeout", 10.0)
    config = Settings(**settings)
    app = ProxyApp(holder, config, balancer=balancer)
    with serve_in_thread(app, settings=config, parser=http) as server:
        yield Running(server, app, holder)


# --------------------------------------------------------------------------- raw clients


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool  # False when the connection closed before the end of the message
    closed: bool = False  # the server closed the connection after the message

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


def read_response(
    sock: socket.socket, method: bytes = b"GET", conn: h11.Connection | None = None
) -> RawResponse:
    """Read one response from `sock` with h11 (a strict parser): 1xx are skipped."""
    if conn is None:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
        conn.send(h11.EndOfMessage())
    status, body = 0, bytearray()
    headers: list[tuple[bytes, bytes]] = []
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return RawResponse(status, headers, bytes(body), complete=False, closed=True)
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return RawResponse(status, headers, bytes(body), complete=True)
        elif isinstance(event, h11.ConnectionClosed):
            return RawResponse(status, headers, bytes(body), complete=status != 0, closed=True)


def exchange(
    port: int, request: bytes, method: bytes = b"GET", *, check_closed: bool = False
) -> RawResponse:
    """Send `request` bytes as they are on a new connection and read one response;
    `check_closed` also waits (at most WAIT) to see whether the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        response = read_response(sock, method)
        if check_closed and response.complete and not response.closed:
            response.closed = is_closed(sock)
    return response


def is_closed(sock: socket.socket) -> bool:
    """Whether the peer closed `sock` (waits at most WAIT for EOF or a reset)."""
    sock.settimeout(WAIT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# --------------------------------------------------------------------------- raw upstreams


@dataclass
class Seen:
    """One request as an upstream received it."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]  # lower-case names, as sent
    body: bytes
    complete: bool  # the whole message arrived (h11 saw its end)

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]


Handler = Callable[["Conn"], None]


@dataclass
class Conn:
    """One accepted upstream connection, with an h11 server parser for reading requests."""

    sock: socket.socket
    upstream: RawUpstream
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.SERVER))
    raw: bytearray = field(default_factory=bytearray)  # every byte received, as received

    def read_request(self) -> Seen | None:
        """The next request on this connection; None when the peer closed first. A request
        whose body the peer abandoned is recorded with complete=False."""
        conn = self.h11
        if conn.their_state is h11.DONE and conn.our_state is h11.DONE:
            conn.start_next_cycle()
        request: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                event = h11.ConnectionClosed()
            if event is h11.NEED_DATA:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    data = b""
                self.raw += data
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                if request is None:
                    return None
                seen = Seen(
                    request.method,
                    request.target,
                    [(n.lower(), v) for n, v in request.headers.raw_items()],
                    bytes(body),
                    complete=isinstance(event, h11.EndOfMessage),
                )
                self.upstream.record(seen)
                return seen

    def send(self, data: bytes) -> None:
        """Raw response bytes, exactly as given (h11's own state is left behind)."""
        self.sock.sendall(data)
        self.h11 = _after_response(self.h11)

    def wait_closed(self) -> bool:
        """Whether the proxy closed this connection (EOF or reset) within WAIT."""
        return is_closed(self.sock)


def _after_response(conn: h11.Connection) -> h11.Connection:
    # Our raw bytes bypass h11: pretend the response was sent, so the next request parses.
    if conn.our_state is h11.SEND_RESPONSE:
        conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
        conn.send(h11.EndOfMessage())
    return conn


def ok(body: bytes = b"ok", *extra: bytes) -> bytes:
    """A complete keep-alive 200 response with `body`."""
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n" % len(body)
    return head + b"".join(h + b"\r\n" for h in extra) + b"\r\n" + body


class RawUpstream:
    """A TCP upstream on 127.0.0.1 that runs `handler(conn)` in a thread per connection and
    records every request it read. `connections` counts accepted connections."""

    def __init__(self, handler: Handler, sock: socket.socket | None = None) -> None:
        """`sock`: an already bound socket to start listening on (see dead_port)."""
        self.handler = handler
        if sock is None:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def record(self, seen: Seen) -> None:
        with self.changed:
            self.seen.append(seen)
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[Seen]:
        """The first `count` requests, waiting at most WAIT for them."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.seen) >= count, WAIT), self.seen
            return self.seen[:count]

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if self._closed:
                    sock.close()
                    return
                self.connections += 1
                self._conns.append(sock)
            threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError), sock:
            sock.settimeout(WAIT * 3)
            self.handler(Conn(sock, self))

    def close(self) -> None:
        with self.lock:
            self._closed = True
            conns, self._conns = self._conns, []
        self.sock.close()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> RawUpstream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve_ok(conn: Conn) -> None:
    """Answer every request on the connection with 200 "ok" (keep-alive)."""
    while conn.read_request() is not None:
        conn.send(ok())


def dead_port() -> socket.socket:
    """A socket bound to a port but not listening: connecting to it is refused until the
    caller calls listen() on it (no port race, unlike closing and rebinding)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


# --------------------------------------------------------------------------- transports


class RecordingTransport:
    """A stand-in asyncio transport that keeps every write (for the response cycle and the
    head joiner, which only write, close and pause/resume reading)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"
