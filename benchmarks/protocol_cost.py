"""What uvicorn's HTTP protocol layer costs per request, ours against its alternatives (issue 15).

The whole benchmark (run.py) measures a protocol's cost beside an upstream round trip, a
backend sharing the core and wrk; a few per cent of difference drowns in that. Here one process
on one core runs a uvicorn protocol class on real loopback sockets (uvloop, as `serve` runs),
an app that answers at once with a proxied-looking response (8 header fields, 50 bytes, the
head flagged `BODY_FOLLOWS` as the proxy flags it), and clients in the same loop that send
the next request as soon as a response is complete, over 1 or 32 keep-alive connections.
The classes take turns, round after round; the figure is the median CPU time per request
(client included: it is the same work for every class, so differences are the protocols').

    python benchmarks/protocol_cost.py [--requests 20000] [--rounds 7] [--connections 1,32]

Classes: ours (guard.GuardedHttpToolsProtocol with its copies of uvicorn's methods and
cycle.ProxyCycle), super-guard and wrapped-guard (benchmarks/protocols.py), and uvicorn's
plain HttpToolsProtocol with no guard (a floor, not a candidate: it refuses nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from protocols import SuperGuardedProtocol, WrappedGuardProtocol

from ingressproxy.server.cycle import BODY_FOLLOWS
from ingressproxy.server.guard import RequestLimits, guarded_protocol

REQUEST = (
    b"GET /small HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: curl/8.5.0\r\n"
    b"Accept: */*\r\nAccept-Encoding: gzip\r\nX-Request-Id: 0123456789abcdef\r\n\r\n"
)
HEADERS = [
    (b"server", b"nginx/1.22.1"),
    (b"date", b"Thu, 03 Dec 2026 08:00:00 GMT"),
    (b"content-type", b"application/octet-stream"),
    (b"content-length", b"50"),
    (b"last-modified", b"Thu, 03 Dec 2026 07:00:00 GMT"),
    (b"etag", b'"6567-32"'),
    (b"accept-ranges", b"bytes"),
    (b"x-request-id", b"0123456789abcdef"),
]
BODY = b"x" * 50


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": HEADERS, BODY_FOLLOWS: True}
    )
    await send({"type": "http.response.body", "body": BODY})


def classes() -> dict[str, type[asyncio.Protocol]]:
    limits = RequestLimits()

    def with_limits(base: type[Any]) -> type[asyncio.Protocol]:
        return type(base.__name__, (base,), {"limits": limits})

    return {
        "ours": guarded_protocol(limits, http="httptools"),
        "super-guard": with_limits(SuperGuardedProtocol),
        "wrapped-guard": with_limits(WrappedGuardProtocol),
        "plain-uvicorn": HttpToolsProtocol,
    }


class Client(asyncio.Protocol):
    """Sends REQUEST, waits for `size` bytes of response, again, `count` times."""

    def __init__(self, size: int, count: int, done: asyncio.Future[None]) -> None:
        self.size = size
        self.left = count
        self.done = done
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        transport.write(REQUEST)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        while self.got >= self.size:
            self.got -= self.size
            self.left -= 1
            if self.left == 0:
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.transport.write(REQUEST)


async def measure(cls: type[asyncio.Protocol], requests: int, connections: int) -> float:
    """CPU µs per request for `requests` over `connections` connections to `cls`."""
    loop = asyncio.get_running_loop()
    config = uvicorn.Config(
        app, http=cls, lifespan="off", access_log=False, proxy_headers=False,
        server_header=False, date_header=False, log_level="warning",
    )  # fmt: skip
    config.load()
    state = ServerState()
    server = await loop.create_server(
        lambda: config.http_protocol_class(config=config, server_state=state, app_state={}),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    size = await _response_size(loop, port)
    each = requests // connections
    futures = [loop.create_future() for _ in range(connections)]
    begin = time.process_time()
    transports = [
        (await loop.create_connection(lambda f=f: Client(size, each, f), "127.0.0.1", port))[0]
        for f in futures
    ]
    await asyncio.gather(*futures)
    used = time.process_time() - begin
    for t in transports:
        t.close()
    server.close()
    for conn in list(state.connections):
        conn.shutdown()
    await server.wait_closed()
    return used / (each * connections) * 1e6


async def _response_size(loop: asyncio.AbstractEventLoop, port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(len(BODY))
    writer.close()
    return len(head) + len(BODY)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--connections", default="1,32")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # one core, as the proxy has in run.py
    found = classes()
    results: dict[tuple[int, str], list[float]] = {}

    async def run() -> None:
        for connections in (int(c) for c in args.connections.split(",")):
            for cls in found.values():  # warm-up
                await measure(cls, args.requests // 4, connections)
            for n in range(args.rounds):
                names = list(found)
                names = names[n % len(names) :] + names[: n % len(names)]
                for name in names:
                    us = await measure(found[name], args.requests, connections)
                    results.setdefault((connections, name), []).append(us)
                print(f"round {n + 1}/{args.rounds}, {connections} connection(s) done", flush=True)

    uvloop.run(run())
    print(f"\nuvicorn {uvicorn.__version__}, {args.requests:,} requests a round, median of rounds:")
    print("| connections | protocol | CPU µs/request | ratio to ours | each round |")
    print("|---:|---|---:|---:|---|")
    for connections in (int(c) for c in args.connections.split(",")):
        ours = statistics.median(results[(connections, "ours")])
        for name in found:
            runs = results[(connections, name)]
            median = statistics.median(runs)
            rounds = " ".join(f"{r:.1f}" for r in runs)
            print(f"| {connections} | {name} | {median:.2f} | {median / ours:.3f} | {rounds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
