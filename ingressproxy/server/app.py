"""The Starlette application: the proxy mounted as a catch-all, wired to the reloader and admin.

`create_app()` is also the uvicorn factory: `uvicorn --factory ingressproxy.app:create_app`
with INGRESSPROXY_MANIFESTS=DIR and other INGRESSPROXY_* variables (see settings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from ..admin.api import ConfigState, EntryPoint
from ..admin.server import create_admin_app
from ..cli.explain import explain
from ..frontends.certs import dump_certs
from ..ir.snapshot import SnapshotHolder
from ..observe.accesslog import AccessLog
from ..observe.metrics import ProxyMetrics
from ..observe.record import combine
from ..proxy.app import ProxyApp
from ..testing.fakes import FakeBackends, loopback_endpoints
from .embedded import EmbeddedServer
from .reloader import Reloader
from .settings import Settings, SettingsError
from .stack import listener_config
from .tls import HTTPSListener, start_https

__all__ = ["create_app"]

log = logging.getLogger("ingressproxy")


def create_app(
    settings: Settings | None = None,
    holder: SnapshotHolder | None = None,
    *,
    watch: bool = True,
    fake_backends: bool = False,
) -> Starlette:
    """Build the app. The first load happens in the lifespan, before the first request.
    `fake_backends` starts them even when settings.fake_backends is off."""
    settings = Settings.from_env() if settings is None else settings
    fake_backends = fake_backends or settings.fake_backends
    _ensure_logging(settings.log_level)
    holder = SnapshotHolder() if holder is None else holder
    config = ConfigState(holder, _entrypoints(settings))
    # Metrics are only scraped through the admin listener: without it, no per-request cost.
    metrics = (
        ProxyMetrics(config, open_connections=lambda: proxy.open_requests)
        if settings.admin_port is not None
        else None
    )
    observer = combine(metrics, AccessLog.from_setting(settings.access_log))
    proxy = ProxyApp(holder, settings, observer=observer)
    reloader = Reloader(settings, holder)
    # The admin API shows the objects behind each snapshot: remember them at every swap.
    reloader.on_swap = lambda snap: config.on_swap(snap, reloader.good.objects)
    reloader.on_failure = config.on_failure
    draining = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.manifests is not None:
            await asyncio.to_thread(reloader.reload, force=True)
        https: HTTPSListener | None = None
        admin: EmbeddedServer | None = None
        fakes = FakeBackends()

        async def close() -> None:
            if admin is not None:
                await admin.stop()
            if https is not None:
                await https.stop()
            await fakes.stop()
            await proxy.aclose()

        try:
            await proxy.startup()
            # The `websecure` entry point: this same app over TLS, on its own port (tls.py).
            https = start_https(app, settings, holder)
            if https is not None:
                proxy.https_port = https.port
                app.state.https = https
            if fake_backends:
                fakes.start(loopback_endpoints(holder.current.table))
            admin = _start_admin(app, settings, holder, config, metrics, draining, https)
        except SettingsError as exc:
            # A port in use, an unreadable certificate file: the error's message is the whole
            # story, reported in one line (_one_line_failure_of), and serve exits with 2.
            app.state.startup_error = exc
            await close()
            raise
        stop = asyncio.Event()
        hup = _install_sighup(reloader)
        watcher = (
            asyncio.create_task(reloader.watch(stop))
            if watch and settings.manifests is not None
            else None
        )
        try:
            yield
        finally:
            draining.set()
            stop.set()
            if hup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            if watcher is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(watcher, timeout=5)
            await close()

    app = _ProxyStarlette(proxy, lifespan)
    app.state.startup_error = None  # the SettingsError that stopped the lifespan's startup
    app.state.holder = holder
    app.state.settings = settings
    app.state.reloader = reloader
    app.state.admin_port = None
    app.state.https = None  # the running tls.HTTPSListener (its port, its fallback certificate)
    app.state.config = config
    app.state.proxy = proxy
    app.state.metrics = metrics
    app.state.draining = draining  # set when shutdown begins: /ping answers 503 from then on
    return app


def _start_admin(
    app: Starlette,
    settings: Settings,
    holder: SnapshotHolder,
    config: ConfigState,
    metrics: ProxyMetrics | None,
    draining: asyncio.Event,
    https: HTTPSListener | None,
) -> EmbeddedServer | None:
    """The admin listener (admin/server.py), started; None when --admin-port is off."""
    if settings.admin_port is None:
        return None
    admin_app = create_admin_app(
        holder,
        draining,
        state=config,
        metrics=None if metrics is None else metrics.render,
        certificates=lambda: dump_certs(
            holder.current.certs,
            datetime.now(UTC),
            None if https is None else https.fallback,
        ),
        explain=lambda url, method, headers: explain(
            holder.current, url, method, headers
        ).to_json(),
    )
    admin = EmbeddedServer(listener_config(admin_app, settings, "admin"), "--admin-port")
    admin.start()
    app.state.admin_port = admin.port
    config.set_entrypoints(
        _entrypoints(settings, admin.port, None if https is None else https.port)
    )
    log.info("admin listening on http://%s:%d", settings.admin_host, admin.port)
    return admin


class _ProxyStarlette(Starlette):
    """The Starlette app whose only route is the proxy, mounted at "/".

    While nobody added middleware, HTTP and WebSocket requests go straight to the ProxyApp
    (Starlette's error middleware and router cost ~20 µs a request, a fifth of the proxy's
    CPU: docs/performance.md); lifespan still runs through Starlette. Middleware added with
    `add_middleware` puts every request back through the full stack.
    """

    def __init__(self, proxy: ProxyApp, lifespan: Lifespan[Starlette]) -> None:
        super().__init__(routes=[Mount("/", app=proxy)], lifespan=lifespan)
        self._proxy = proxy
        self._direct: ASGIApp | None = None  # the stack built without user middleware

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.user_middleware:
            return stack
        proxy = self._proxy

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                await stack(scope, receive, send)
            else:
                await proxy(scope, receive, send)

        self._direct = dispatch
        return dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, _one_line_failure_of(self, send))
            return
        direct = self._direct
        if direct is not None and self.middleware_stack is direct and scope["type"] != "lifespan":
            # What Starlette.__call__ and `dispatch` would do, two coroutine frames fewer
            # (three for HTTP: ProxyApp.http is what ProxyApp.__call__ calls for it).
            scope["app"] = self
            if scope["type"] == "http":
                await self._proxy.http(scope, receive, send)
            else:
                await self._proxy(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _one_line_failure_of(app: Starlette, send: Send) -> Send:
    """Starlette reports a failed lifespan startup with the traceback as the message, which
    uvicorn logs; for a SettingsError (a port in use, a certificate file) the error's own
    line says everything, and a traceback would bury it."""

    async def report(message: Message) -> None:
        error = app.state.startup_error
        if message["type"] == "lifespan.startup.failed" and error is not None:
            message = {**message, "message": str(error)}
        await send(message)

    return report


def _entrypoints(
    settings: Settings, admin_port: int | None = None, https_port: int | None = None
) -> tuple[EntryPoint, ...]:
    def address(host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    eps = [EntryPoint("web", address(settings.host, settings.port))]
    if https_port is not None:
        eps.append(EntryPoint("websecure", address(settings.https_host, https_port)))
    admin_port = settings.admin_port if admin_port is None else admin_port
    if admin_port is not None:
        eps.append(EntryPoint("admin", address(settings.admin_host, admin_port)))
    return tuple(eps)


def _install_sighup(reloader: Reloader) -> bool:
    """SIGHUP forces a reload (as for nginx). Only possible on the main thread's loop."""
    loop = asyncio.get_running_loop()

    def on_hup() -> None:
        log.info("SIGHUP: reloading")
        loop.run_in_executor(None, lambda: reloader.reload(force=True))

    try:
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):
        return False  # not the main thread (tests, embedding), or no SIGHUP on this platform
    return True


def _ensure_logging(level: str) -> None:
    """Under `uvicorn --factory` nobody configures our loggers (uvicorn configures only its
    own), and Python would drop every INFO line: reload lines, diagnostics. Give them a handler
    unless the embedding program (our CLI, pytest, a user's app) already set up logging."""
    ours = logging.getLogger("ingressproxy")
    if logging.getLogger().handlers or ours.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours.addHandler(handler)
    ours.setLevel(level.upper())
