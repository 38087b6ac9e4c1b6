"""Test support: a real uvicorn server in a thread on a socket bound to 127.0.0.1:0 first.

Used by our own tests (proxy, echo, end to end) and meant for users' tests: binding before the
server starts means no port races, and every wait is bounded and event-driven.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ServerThread", "serve_in_thread"]


class _Server(uvicorn.Server):
    """uvicorn.Server that reports startup through an Event and leaves signals alone (only
    the main thread may install handlers, and a test run's Ctrl-C belongs to pytest)."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._started_event.set()  # also on failure, so the waiter wakes up and checks

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServerThread:
    """A uvicorn server for `app` running in a daemon thread.

    `start()` binds 127.0.0.1:0, starts the thread and returns once uvicorn is serving;
    `stop()` asks it to exit and joins. `port` and `url` are valid after `start()`.
    Extra keyword arguments go to uvicorn.Config (e.g. `http="h11"` or `"httptools"`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 10.0,
        **uvicorn_kwargs: Any,
    ) -> None:
        uvicorn_kwargs.setdefault("log_level", "warning")
        uvicorn_kwargs.setdefault("access_log", False)
        # None: do not reconfigure logging (pytest's capture keeps working).
        uvicorn_kwargs.setdefault("log_config", None)
        uvicorn_kwargs.setdefault("timeout_graceful_shutdown", shutdown_timeout / 2)
        self.host = host
        self.port = 0
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._started = threading.Event()
        self.config = uvicorn.Config(app, **uvicorn_kwargs)
        self.server = _Server(self.config, self._started)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ServerThread:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            sock.listen(self.config.backlog)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [sock]},
            name=f"uvicorn-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not self._started.wait(self._startup_timeout) or not self.server.started:
            self.stop()
            raise RuntimeError(f"uvicorn on {self.url} did not start")
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is not None:
            self.server.should_exit = True
            thread.join(self._shutdown_timeout)
            if thread.is_alive():
                self.server.force_exit = True
                thread.join(self._shutdown_timeout)
            self._thread = None
            if thread.is_alive():
                raise RuntimeError(f"uvicorn on {self.url} did not stop")
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, **uvicorn_kwargs: Any) -> Iterator[ServerThread]:
    """Serve `app` on 127.0.0.1:<free port> for the duration of the block.

    Yields the running ServerThread: `.url` (`http://127.0.0.1:PORT`), `.port`, `.server`.
    """
    server = ServerThread(app, **uvicorn_kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
