"""The server stack: Settings -> the uvicorn configuration of each listener, in one function.

Flow: `serve` (one process, or each of --workers), testing.start_proxy and so the pytest plugin,
and the benchmarks -> listener_config(app, settings) -> ProxyServer; the app's lifespan starts
the `websecure` (tls.py) and `admin` listeners from listener_config too, as EmbeddedServers.
What the listeners need of uvicorn is written here once: the guarded protocol and its limits
(guard.py), which headers uvicorn may add or trust, lifespan, logging and the graceful period.
"""

from __future__ import annotations

import asyncio
import socket
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
]

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
    requests finish and a load balancer stops sending before we are gone."""

    def __init__(self, config: uvicorn.Config, draining: asyncio.Event | None = None) -> None:
        super().__init__(config)
        self.draining = draining

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.draining is not None:
            self.draining.set()
        await super().shutdown(sockets)


def proxy_server(app: ASGIApp, settings: Settings, **overrides: Any) -> ProxyServer:
    """The server `ingressproxy serve` runs: `app` (server.app.create_app's) as the `web`
    listener of `settings`; `overrides` as for listener_config."""
    return ProxyServer(listener_config(app, settings, **overrides), draining_of(app))


def draining_of(app: object) -> asyncio.Event | None:
    """create_app's shutdown event (app.state.draining); None for any other app."""
    state = getattr(app, "state", None)
    draining = getattr(state, "draining", None)
    return draining if isinstance(draining, asyncio.Event) else None
