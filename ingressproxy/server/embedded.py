"""A uvicorn server run as a task inside the proxy's own event loop (admin listener, fakes).

It binds at construction, so a busy port fails loudly and early, and it leaves signal handling
and logging configuration to the main server. stack.listener_config makes the configurations
of the admin and HTTPS listeners; `embedded_config` is the shape they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

__all__ = ["EmbeddedServer", "embedded_config"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the main server owns SIGINT/SIGTERM and stops us from its lifespan


def embedded_config(app: ASGIApp, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The uvicorn.Config of a server inside the proxy's loop: no lifespan of its own, no
    access log, no Server header; `options` (uvicorn.Config's keywords) add to or change it."""
    # log_config=None: uvicorn would otherwise reconfigure the process's loggers (and mute
    # the main server's own lines) every time one of these starts.
    defaults: dict[str, Any] = {
        "lifespan": "off",
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }
    return uvicorn.Config(app, host=host, port=port, **{**defaults, **options})


class EmbeddedServer:
    def __init__(self, config: uvicorn.Config) -> None:
        """Serve `config` (from embedded_config or stack.listener_config) on a socket bound
        now to its host and port (0: any free port; `port` says which)."""
        host = config.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, config.port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.config = config
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
