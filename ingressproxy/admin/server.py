"""The admin listener (separate from traffic): /ping, /metrics, the JSON API and the dashboard.

It runs as a second uvicorn server inside the proxy's process, started and stopped by the main
app's lifespan, so `ingressproxy serve` and `uvicorn --factory` behave the same. The data comes
from adminapi.ConfigState; this module only maps URLs to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..ir.snapshot import SnapshotHolder
from .api import ConfigState, ConfigView

__all__ = ["DASHBOARD_DIR", "Explainer", "create_admin_app"]

log = logging.getLogger("ingressproxy.admin")

DASHBOARD_DIR = Path(str(resources.files("ingressproxy") / "admin" / "dashboard"))

# (url, method, headers) -> JSON-ready explanation of how a request would be routed.
Explainer = Callable[[str, str, dict[str, str]], object]

# How often a live dashboard's event stream re-checks the generation even without a wake-up
# (a swap made directly on the holder has no reloader to announce it), and sends a keep-alive.
_EVENT_RECHECK = 1.0
_KEEPALIVE_EVERY = 15


def _json(data: object, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})


def _not_found(what: str, name: str) -> Response:
    return _json({"message": f"{what} not found: {name}"}, 404)


def _filtered(items: tuple[dict[str, object], ...], request: Request) -> list[dict[str, object]]:
    """Traefik's list filters: `search` (substring of the name, rule, ingress or service) and
    `status` (enabled, warning, disabled)."""
    search = request.query_params.get("search", "").lower()
    status = request.query_params.get("status", "")
    out: list[dict[str, object]] = []
    for item in items:
        if status and item.get("status") != status:
            continue
        if search:
            hay = " ".join(
                str(item.get(k) or "") for k in ("name", "rule", "ingress", "service", "backend")
            )
            if search not in hay.lower():
                continue
        out.append(item)
    return out


def create_admin_app(
    holder: SnapshotHolder,
    draining: asyncio.Event,
    *,
    state: ConfigState | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
    explain: Explainer | None = None,
    certificates: Callable[[], list[dict[str, object]]] | None = None,
) -> Starlette:
    """The admin ASGI app. `state` defaults to one built on `holder` (no objects, so routers
    that lost a conflict are not listed); `metrics` renders the Prometheus exposition."""
    config = state if state is not None else ConfigState(holder)

    def view() -> ConfigView:
        return config.view()

    async def ping(request: Request) -> Response:
        # 503 once shutdown has begun, so a load balancer stops sending us traffic.
        if draining.is_set():
            return PlainTextResponse("draining", status_code=503)
        return PlainTextResponse("OK")

    async def overview(request: Request) -> Response:
        return _json(view().overview)

    async def routers(request: Request) -> Response:
        return _json(_filtered(view().routers, request))

    async def router(request: Request) -> Response:
        name = _strip_provider(request.path_params["name"])
        got = view().router_by_name.get(name)
        return _json(got) if got is not None else _not_found("router", name)

    async def services(request: Request) -> Response:
        return _json(_filtered(view().services, request))

    async def service(request: Request) -> Response:
        name = _strip_provider(request.path_params["name"])
        got = view().service_by_name.get(name)
        return _json(got) if got is not None else _not_found("service", name)

    async def entrypoints(request: Request) -> Response:
        return _json(list(view().entrypoints))

    async def entrypoint(request: Request) -> Response:
        name = request.path_params["name"]
        got = next((e for e in view().entrypoints if e["name"] == name), None)
        return _json(got) if got is not None else _not_found("entry point", name)

    async def diagnostics(request: Request) -> Response:
        return _json(list(view().diagnostics))

    async def rawdata(request: Request) -> Response:
        return _json(view().rawdata)

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _event_stream(config, draining),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def prometheus(request: Request) -> Response:
        assert metrics is not None  # the route exists only when metrics were given
        body, content_type = metrics()
        return Response(body, media_type=content_type)

    async def explain_route(request: Request) -> Response:
        assert explain is not None  # the route exists only when an explainer was given
        url = request.query_params.get("url")
        if not url:
            return _json({"message": "query parameter 'url' is required"}, 400)
        method = request.query_params.get("method", "GET").upper()
        headers = {
            k[len("header.") :]: v
            for k, v in request.query_params.items()
            if k.startswith("header.")
        }
        try:
            return _json(explain(url, method, headers))
        except ValueError as exc:
            return _json({"message": str(exc)}, 400)

    async def tls_certificates(request: Request) -> Response:
        # Names, validity and fingerprints only: key material never leaves certs.py.
        return _json(certificates() if certificates is not None else [])

    async def to_dashboard(request: Request) -> Response:
        return RedirectResponse("/dashboard/", status_code=302)

    get = ["GET", "HEAD"]
    routes: list[BaseRoute] = [
        Route("/ping", ping, methods=get),
        Route("/api/overview", overview, methods=get),
        Route("/api/http/routers", routers, methods=get),
        Route("/api/http/routers/{name:path}", router, methods=get),
        Route("/api/http/services", services, methods=get),
        Route("/api/http/services/{name:path}", service, methods=get),
        Route("/api/entrypoints", entrypoints, methods=get),
        Route("/api/entrypoints/{name}", entrypoint, methods=get),
        Route("/api/diagnostics", diagnostics, methods=get),
        Route("/api/rawdata", rawdata, methods=get),
        Route("/api/tls/certificates", tls_certificates, methods=get),
        Route("/api/events", events, methods=["GET"]),
        Route("/", to_dashboard, methods=get),
        Route("/dashboard", to_dashboard, methods=get),
        Mount("/dashboard", app=StaticFiles(directory=DASHBOARD_DIR, html=True)),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", prometheus, methods=get))
    if explain is not None:
        routes.append(Route("/api/explain", explain_route, methods=get))
    app = Starlette(routes=routes)
    app.state.holder = holder
    app.state.config = config
    return app


def _strip_provider(name: str) -> str:
    # Traefik's API names objects `name@provider`; accept that spelling too.
    return name.removesuffix("@kubernetes")


async def _event_stream(config: ConfigState, draining: asyncio.Event) -> AsyncIterator[bytes]:
    """Server-sent events: one `config` event with the generation now and on every change.

    Ends when shutdown begins, so an open dashboard never holds the admin server up.
    """
    wake = config.subscribe()
    sent: tuple[int, int] | None = None
    idle = 0
    try:
        yield b"retry: 2000\n\n"
        while not draining.is_set():
            generation = config.holder.current.generation
            stats = config.stats
            if (generation, stats.reloads) != sent:
                data = json.dumps(
                    {"generation": generation, "reloads": stats.reloads, "failed": stats.failed}
                )
                yield f"event: config\ndata: {data}\n\n".encode()
                sent = (generation, stats.reloads)
                idle = 0
            wake.clear()
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(draining.wait())]
            try:
                done, _pending = await asyncio.wait(
                    waiters, timeout=_EVENT_RECHECK, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in waiters:
                    task.cancel()
            if not done:
                idle += 1
                if idle >= _KEEPALIVE_EVERY:
                    idle = 0
                    yield b": keep-alive\n\n"
    finally:
        config.unsubscribe(wake)
