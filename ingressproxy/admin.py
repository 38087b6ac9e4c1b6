"""The admin listener (separate from traffic): /ping now, the JSON API later.

It runs as a second uvicorn server inside the proxy's process, started and stopped by the main
app's lifespan, so `ingressproxy serve` and `uvicorn --factory` behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .snapshot import SnapshotHolder

__all__ = ["AdminServer", "create_admin_app"]

log = logging.getLogger("ingressproxy.admin")


def create_admin_app(holder: SnapshotHolder, draining: asyncio.Event) -> Starlette:
    async def ping(request: Request) -> Response:
        # 503 once shutdown has begun, so a load balancer stops sending us traffic.
        if draining.is_set():
            return PlainTextResponse("draining", status_code=503)
        return PlainTextResponse("OK")

    app = Starlette(routes=[Route("/ping", ping, methods=["GET", "HEAD"])])
    app.state.holder = holder
    return app


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """Binds at construction (so a busy port fails loudly and early), serves as a task."""

    def __init__(self, app: Starlette, host: str, port: int, log_level: str = "warning") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, lifespan="off", log_level=log_level, access_log=False, server_header=False
        )
        self.server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        self.sock.close()
