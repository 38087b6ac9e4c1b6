"""create_app's Starlette app hands requests straight to the proxy, unless middleware was added."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingressproxy.server.app import create_app
from ingressproxy.server.cycle import BODY_FOLLOWS
from ingressproxy.server.settings import Settings
from ingressproxy.testing.server import one_service_manifests, serve_in_thread


class OnStart:
    """Middleware handing each `http.response.start` message on its way out to `on_start`."""

    def __init__(self, app: ASGIApp, on_start: Callable[[Message], None]) -> None:
        self.app = app
        self.on_start = on_start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.on_start(message)
            await send(message)

        await self.app(scope, receive, watched)


def tag(message: Message) -> None:
    """A response header, to see whether a request went through the middleware."""
    message["headers"] = [*message["headers"], (b"x-tagged", b"1")]


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
    app.add_middleware(OnStart, on_start=tag)
    r = _get(app)
    assert r.status_code == 404
    assert r.headers["x-tagged"] == "1"
    assert isinstance(app.middleware_stack, ServerErrorMiddleware)


async def _backend(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        # The body's end comes after the head: the proxy relays it chunk by chunk.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": b"end"})
        return
    headers = [(b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"small"})


def test_a_whole_small_response_says_its_body_follows(tmp_path: Path) -> None:
    """The start message of a response whose body came with its head carries BODY_FOLLOWS
    (cycle.ProxyCycle then writes head and body at once); a streamed one does not."""
    starts: list[Message] = []
    with serve_in_thread(_backend) as backend:
        (tmp_path / "app.yaml").write_text(one_service_manifests("app.test", "app", backend.port))
        app = create_app(
            Settings(manifests=tmp_path, admin_port=None, access_log="off"), watch=False
        )
        app.add_middleware(OnStart, on_start=starts.append)

        async def main() -> list[httpx.Response]:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as c:
                    return [await c.get("/small"), await c.get("/stream")]

        small, streamed = asyncio.run(main())
    assert (small.status_code, small.text, streamed.text) == (200, "small", "partend")
    assert [start.get(BODY_FOLLOWS, False) for start in starts] == [True, False]
