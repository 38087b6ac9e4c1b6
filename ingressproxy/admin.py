"""The admin listener (separate from traffic): /ping now, the JSON API later.

It runs as a second uvicorn server inside the proxy's process, started and stopped by the main
app's lifespan, so `ingressproxy serve` and `uvicorn --factory` behave the same.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .snapshot import SnapshotHolder

__all__ = ["create_admin_app"]

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
