"""The server stack: Settings -> the uvicorn configuration of each listener, in one function.

Flow: `serve` (one process, or each of --workers), testing.start_proxy and so the pytest plugin,
and the benchmarks -> listener_config(app, settings) -> ProxyServer; the app's lifespan starts
the `websecure` (tls.py) and `admin` listeners from listener_config too, as EmbeddedServers.
What the listeners need of uvicorn is written here once: the guarded protocol and its limits
(guard.py), which headers uvicorn may add or trust, lifespan, logging (one ready line naming
every listener, uvicorn's per-server lifecycle lines at debug) and the graceful period.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from ssl import SSLContext
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp

from ..proxy.app import PROXY_UVICORN_OPTIONS
from .embedded import embedded_config
from .guard import RequestLimits, guarded_protocol
from .settings import Settings

__all__ = [
    "LISTENERS",
    "Listener",
    "ProxyServer",
    "draining_of",
    "listener_config",
    "proxy_protocol",
    "proxy_server",
    "quiet_lifecycle_logs",
]

log = logging.getLogger("ingressproxy")

Listener = Literal["web", "websecure", "admin"]
LISTENERS: tuple[Listener, ...] = ("web", "websecure", "admin")


def listener_config(
    app: ASGIApp,
    settings: Settings,
    listener: Listener = "web",
    *,
    port: int | None = None,
    ssl: SSLContext | None = None,
    parser: Literal["auto", "h11", "httptools"] = "auto",
    **overrides: Any,
) -> uvicorn.Config:
    """The uvicorn.Config that serves `app` as `listener` for `settings`.

    `web`: the traffic listener, uvicorn's main server (lifespan, logging, the graceful period
    after SIGTERM). `websecure` (with `ssl`, the SNI-selecting context, and `port` from
    tls.https_port_for) and `admin` run inside its loop (embedded.py). `web` and `websecure`
    speak through the guarded protocol with the settings' head limits and deadlines, and
    uvicorn neither trusts X-Forwarded-* nor adds Server or Date (PROXY_UVICORN_OPTIONS); the
    admin API is served by uvicorn's own protocol and headers.

    `port` replaces the settings' port for this listener; `parser` is the HTTP parser under
    the guard ("auto": httptools, as `serve` runs; "h11" for tests of both). `overrides`
    (uvicorn.Config's keywords) are for what is not the stack: a test harness's logging
    (testing.ServerThread), a benchmark's event loop or protocol.
    """
    if listener == "admin":
        admin_port = settings.admin_port if port is None else port
        if admin_port is None:
            raise ValueError("the admin listener is off in these settings (admin_port=None)")
        config = embedded_config(app, settings.admin_host, admin_port, **overrides)
    else:
        options: dict[str, Any] = {
            **PROXY_UVICORN_OPTIONS,
            "access_log": False,  # ours is observe/accesslog.py (--access-log)
            # Head limits and deadlines, and framing rules both parsers agree on (guard.py).
            "http": proxy_protocol(settings, parser),
        }
        if listener == "web":
            options.update(
                host=settings.host,
                port=settings.port if port is None else port,
                log_level=settings.log_level,
                lifespan="on",
                # Annotated int, used as asyncio.wait_for's timeout: seconds as a float work.
                timeout_graceful_shutdown=settings.graceful_timeout,
            )
            config = uvicorn.Config(app, **{**options, **overrides})
        elif listener == "websecure":
            if port is None:
                raise ValueError("the websecure listener's port comes from tls.https_port_for")
            config = embedded_config(app, settings.https_host, port, **{**options, **overrides})
        else:
            raise ValueError(f"{listener!r} is not one of {', '.join(LISTENERS)}")
    if ssl is not None:
        # uvicorn makes a context only from certificate files; serve() keeps a loaded config
        # as it is, so ours goes in after load().
        config.load()
        config.ssl = ssl
    return config


def proxy_protocol(
    settings: Settings, parser: Literal["auto", "h11", "httptools"] = "auto"
) -> type[asyncio.Protocol]:
    """The protocol class of the `web` and `websecure` listeners: the request guard with the
    settings' head limits and deadlines (guard.py), over `parser`. Also what
    `uvicorn --http ingressproxy.app:http_protocol` loads under the factory."""
    return guarded_protocol(RequestLimits.from_settings(settings), parser)


class ProxyServer(uvicorn.Server):
    """uvicorn's server for the `web` listener. `draining` (the app's, see server/app.py) is
    set the moment shutdown begins, so /ping answers 503 while uvicorn lets in-flight
    requests finish and a load balancer stops sending before we are gone.

    Once every listener serves, it logs one ready line in place of uvicorn's "Uvicorn running
    on" (whose words it keeps, as scripts wait for them): the traffic URL, then the HTTPS and
    admin URLs the app's lifespan started. `announce=False` logs it at debug only, leaving it
    to another process (the workers after the first of `--workers`)."""

    def __init__(
        self,
        config: uvicorn.Config,
        draining: asyncio.Event | None = None,
        *,
        announce: bool = True,
    ) -> None:
        super().__init__(config)
        self.draining = draining
        self.announce = announce

    def _log_started_message(self, listeners: Sequence[socket.SocketType]) -> None:
        pass  # uvicorn's line, for sockets it bound itself: ready_line replaces it in startup

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            log.log(logging.INFO if self.announce else logging.DEBUG, "%s", self.ready_line())

    def ready_line(self) -> str:
        """`Uvicorn running on http://H:P (traffic), https://H:P (HTTPS), http://H:P (admin)`
        for the listeners that run."""
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        urls = [
            f"http://{shown}:{sock.getsockname()[1]} (traffic)"
            for server in self.servers
            for sock in server.sockets
        ]
        state = getattr(self.config.app, "state", None)
        https = getattr(state, "https", None)
        if https is not None:
            urls.append(f"{https.url} (HTTPS)")
        admin_port = getattr(state, "admin_port", None)
        settings = getattr(state, "settings", None)
        if admin_port is not None and isinstance(settings, Settings):
            admin = settings.admin_host
            urls.append(f"http://{f'[{admin}]' if ':' in admin else admin}:{admin_port} (admin)")
        return f"Uvicorn running on {', '.join(urls)}; press Ctrl+C to quit"

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.draining is not None:
            self.draining.set()
        if self.announce:
            log.info(
                "shutting down: in-flight requests get up to %gs",
                self.config.timeout_graceful_shutdown or 0,
            )
        await super().shutdown(sockets)


def proxy_server(
    app: ASGIApp, settings: Settings, *, announce: bool = True, **overrides: Any
) -> ProxyServer:
    """The server `ingressproxy serve` runs: `app` (server.app.create_app's) as the `web`
    listener of `settings`; `overrides` as for listener_config."""
    config = listener_config(app, settings, **overrides)
    return ProxyServer(config, draining_of(app), announce=announce)


# uvicorn's lines about each server's life (uvicorn/server.py, lifespan/on.py): said once per
# server, and `serve` runs several in one process (admin, HTTPS, each fake backend), so they
# repeat; the ready line and "Application shutdown complete." say what matters.
_LIFECYCLE = frozenset(
    {
        "Started server process [%d]",
        "Waiting for application startup.",
        "Application startup complete.",
        "Application startup failed. Exiting.",  # after the one line that says why
        "Waiting for application shutdown.",
        "Shutting down",
        "Finished server process [%d]",
    }
)


class _Lifecycle(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _LIFECYCLE:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_lifecycle_logs() -> None:
    """Log uvicorn's per-server lifecycle lines at debug (what `serve` does): idempotent."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _Lifecycle) for f in logger.filters):
        logger.addFilter(_Lifecycle())


def draining_of(app: object) -> asyncio.Event | None:
    """create_app's shutdown event (app.state.draining); None for any other app."""
    state = getattr(app, "state", None)
    draining = getattr(state, "draining", None)
    return draining if isinstance(draining, asyncio.Event) else None
