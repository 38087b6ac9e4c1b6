"""The admin listener (separate from traffic): /ping, /metrics, the JSON API and the dashboard.

It runs as a second uvicorn server inside the proxy's process, started and stopped by the main
app's lifespan, so `ingressproxy serve` and `uvicorn --factory` behave the same. The data comes
from api.ConfigState, explanations from cli.explain and traffic from observe.metrics; this
module maps URLs to them and checks what users type.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
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

from ..cli.explain import Explanation
from ..cli.explain import explain as explain_request
from ..ir.model import Router
from ..ir.snapshot import Snapshot, SnapshotHolder
from ..observe.metrics import RouterTraffic, TrafficReading
from ..observe.record import names_for
from .api import ConfigState, ConfigView, Json

__all__ = ["DASHBOARD_DIR", "Explainer", "create_admin_app"]

log = logging.getLogger("ingressproxy.admin")

DASHBOARD_DIR = Path(str(resources.files("ingressproxy") / "admin" / "dashboard"))

# (url, method, headers) -> JSON-ready explanation of how a request would be routed.
Explainer = Callable[[str, str, dict[str, str]], object]

# What /api/explain accepts: it is typed by people, but the admin port may be reachable by
# others, so every part is bounded (a URL as long as browsers send, a few headers).
MAX_QUERY = 16 * 1024
MAX_URL = 4096
MAX_HEADERS = 32
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 4096
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 5.6.2
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a field value may hold tabs, not these

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
    that lost a conflict are not listed); `metrics` renders the Prometheus exposition.

    /api/explain calls cli.explain on the current snapshot itself, so it can name the routers
    it shows; `explain` is accepted for callers that still pass one and is not used.
    """
    del explain
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
        if len(request.scope.get("query_string", b"")) > MAX_QUERY:
            return _json({"message": f"the query string is over {MAX_QUERY} bytes"}, 414)
        asked = _explain_input(request.query_params.multi_items())
        if isinstance(asked, str):
            return _json({"message": asked}, 400)
        url, method, headers = asked
        snapshot = config.holder.current  # read once: the explanation and its names agree
        try:
            explanation = explain_request(snapshot, url, method, headers)
        except ValueError as exc:  # urlsplit refuses some URLs ("Invalid IPv6 URL")
            return _json({"message": f"cannot read the URL: {exc}"}, 400)
        except Exception:
            # Never a traceback to the client; the log has it.
            log.exception("explain failed for %s %r", method, url)
            return _json({"message": "explain failed; the proxy's log says why"}, 500)
        body = explanation.to_json()
        _name_routers(body, explanation, snapshot, view)
        return _json(body)

    async def traffic(request: Request) -> Response:
        reader = config.traffic
        if reader is None:
            return _json({"message": "no metrics: traffic is counted only by a serving proxy"}, 404)
        return _json(_traffic_json(reader(), view()))

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
        Route("/api/explain", explain_route, methods=get),
        Route("/api/traffic", traffic, methods=get),
        Route("/api/events", events, methods=["GET"]),
        Route("/", to_dashboard, methods=get),
        Route("/dashboard", to_dashboard, methods=get),
        Mount("/dashboard", app=StaticFiles(directory=DASHBOARD_DIR, html=True)),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", prometheus, methods=get))
    app = Starlette(routes=routes)
    app.state.holder = holder
    app.state.config = config
    return app


def _explain_input(
    params: list[tuple[str, str]],
) -> tuple[str, str, dict[str, str]] | str:
    """(url, method, headers) from /api/explain's query, or what is wrong with it.

    `url` (required), `method` (default GET) and one `header.<Name>=<value>` per header."""
    got: dict[str, str] = {}
    headers: dict[str, str] = {}
    for key, value in params:
        if key.startswith("header."):
            name = key[len("header.") :]
            if len(headers) >= MAX_HEADERS:
                return f"at most {MAX_HEADERS} headers"
            if not _TOKEN.fullmatch(name) or len(name) > MAX_HEADER_NAME:
                return f"header name {name[:MAX_HEADER_NAME]!r} is not an HTTP field name"
            if len(value) > MAX_HEADER_VALUE or _CONTROL.search(value):
                return (
                    f"header {name} must be at most {MAX_HEADER_VALUE} characters without"
                    " control characters"
                )
            headers[name] = value.strip(" \t")
        elif key in ("url", "method"):
            if key in got:
                return f"query parameter {key!r} is given twice"
            got[key] = value
    url = got.get("url", "").strip()
    if not url:
        return "query parameter 'url' is required (http://host/path, host/path or /path)"
    if len(url) > MAX_URL or _CONTROL.search(url) or any(c in url for c in " \t"):
        return f"url must be at most {MAX_URL} characters, without spaces or control characters"
    method = got.get("method", "GET").strip().upper() or "GET"
    if not _TOKEN.fullmatch(method) or len(method) > 32:
        return f"method {method[:32]!r} is not an HTTP method"
    return url, method, headers


def _name_routers(
    body: Json, explanation: Explanation, snapshot: Snapshot, view: Callable[[], ConfigView]
) -> None:
    """Add each router's id (`name`, as /api/http/routers lists it) to an explanation's
    chosen route and candidate rules."""
    names = names_for(snapshot.table)
    by_origin: dict[tuple[object, ...], str] | None = None

    def name(route: Router | None) -> str | None:
        nonlocal by_origin
        if route is None:
            return None
        got = names.router(route)
        if got is not None:
            return got
        # A rule the table left out (flavor traefik's "Skipping service") is not named by the
        # table; the view lists it by its origin.
        if by_origin is None:
            by_origin = {
                (r["ingress"], r["field"], r["host"]): str(r["name"]) for r in view().routers
            }
        ingress = f"{route.ingress.namespace}/{route.ingress.name}"
        return by_origin.get((ingress, route.field, route.host))

    route_json = body.get("route")
    if isinstance(route_json, dict):
        route_json["name"] = name(explanation.route)
    rules = body.get("rules")
    if isinstance(rules, list):
        for check, rule_json in zip(explanation.rules, rules, strict=True):
            rule_json["name"] = name(check.route)


def _traffic_json(reading: TrafficReading, view: ConfigView) -> Json:
    """Each router the view lists, named as written (Ingress, host, path) and by its id, with
    its traffic; requests no router took are `unrouted`."""
    idle = RouterTraffic(0, 0, None if reading.window is None else 0.0, None, None, None, None)
    routers: list[Json] = []
    for r in view.routers:
        got = reading.routers.get(str(r["name"]), idle)
        routers.append(
            {
                "name": r["name"],
                "ingress": r["ingress"],
                "host": r["host"],
                "path": r["path"],
                **got.to_json(),
            }
        )
    return {
        "window": reading.window,
        "routers": routers,
        "unrouted": reading.routers.get("", idle).to_json(),
    }


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
