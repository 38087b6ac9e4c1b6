"""A uvicorn server run as a task inside the proxy's own event loop (admin listener, fakes).

It binds at construction, so a busy port fails loudly and early, and it leaves signal handling
and logging configuration to the main server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from ssl import SSLContext

import uvicorn
from starlette.types import ASGIApp

__all__ = ["EmbeddedServer"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the main server owns SIGINT/SIGTERM and stops us from its lifespan


class EmbeddedServer:
    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        ssl: SSLContext | None = None,
        proxy_headers: bool = True,
        date_header: bool = True,
        http: type[asyncio.Protocol] | str = "auto",
    ) -> None:
        """`ssl`: serve TLS with this context (the HTTPS listener's, which picks a certificate
        per SNI name); `proxy_headers` / `date_header` / `http` (a protocol class, e.g.
        guard.guarded_protocol's) as uvicorn.Config takes them."""
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
        # log_config=None: uvicorn would otherwise reconfigure the process's loggers (and mute
        # the main server's own lines) every time one of these starts.
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=proxy_headers,
            date_header=date_header,
            http=http,
        )
        if ssl is not None:
            # uvicorn makes a context only from certificate files; serve() keeps a loaded
            # config as it is, so ours goes in after load().
            config.load()
            config.ssl = ssl
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        self.sock.close()
