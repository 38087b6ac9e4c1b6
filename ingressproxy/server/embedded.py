"""A uvicorn server run as a task inside the proxy's own event loop (admin listener, fakes).

It binds at construction (listen_socket, also the traffic listener's), so a busy port fails
early with a ListenError naming the option that changes it; it leaves signal handling and
logging configuration to the main server. stack.listener_config makes the configurations of
the admin and HTTPS listeners; `embedded_config` is the shape they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .settings import SettingsError

__all__ = ["EmbeddedServer", "ListenError", "embedded_config", "listen_socket"]


class ListenError(SettingsError):
    """A listener cannot bind its address (the port is taken, or the host is not ours): a
    usage problem `serve` reports in one line, exit status 2, naming the option to change."""


# The listeners that can be switched off, and what `off` means for each (docs/cli.md).
_OFF = {"--admin-port": "no admin listener", "--https-port": "no HTTPS listener"}


def listen_socket(
    host: str, port: int, option: str | None = None, *, backlog: int = 2048
) -> socket.socket:
    """A listening TCP socket on host:port (0: any free port), SO_REUSEADDR as uvicorn's own.
    `option` is the flag that chooses the port (`--port`, `--admin-port`, `--https-port`),
    for the ListenError's message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        why = (
            f"port {port} is already in use"
            if exc.errno == errno.EADDRINUSE
            else (exc.strerror or str(exc)).lower()
        )
        off = _OFF.get(option or "")
        choices = "0: any free port" + (f", off: {off}" if off else "")
        hint = f"; choose another with {option} ({choices})" if option else ""
        raise ListenError(f"cannot listen on {shown}: {why}{hint}") from exc
    return sock


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
    def __init__(self, config: uvicorn.Config, option: str | None = None) -> None:
        """Serve `config` (from embedded_config or stack.listener_config) on a socket bound
        now to its host and port (0: any free port; `port` says which). ListenError (an
        OSError's message with `option`, the flag that sets the port) when it cannot bind."""
        self.sock = listen_socket(config.host, config.port, option, backlog=128)
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
