"""create_app's Starlette app hands requests straight to the proxy, unless middleware was added."""

from __future__ import annotations

import asyncio

import httpx
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingressproxy.app import create_app
from ingressproxy.settings import Settings


class Tagging:
    """Middleware adding a response header, to see whether a request went through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-tagged", b"1")]
            await send(message)

        await self.app(scope, receive, tagged)


def _get(app: ASGIApp) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nowhere.test") as c:
            return await c.get("/x")

    return asyncio.run(main())


def test_requests_reach_the_proxy_without_starlettes_router() -> None:
    app = create_app(Settings(admin_port=None, access_log="off"), watch=False)
    r = _get(app)
    # The proxy's own 404 (no Ingress at all), not Starlette's "Not Found".
    assert (r.status_code, r.text) == (404, 'no route for host "nowhere.test" path "/x"\n')
    # Neither Starlette's error middleware nor its router sit in front of the proxy.
    assert not isinstance(app.middleware_stack, ServerErrorMiddleware)


def test_added_middleware_sees_every_request() -> None:
    app = create_app(Settings(admin_port=None, access_log="off"), watch=False)
    app.add_middleware(Tagging)
    r = _get(app)
    assert r.status_code == 404
    assert r.headers["x-tagged"] == "1"
    assert isinstance(app.middleware_stack, ServerErrorMiddleware)
