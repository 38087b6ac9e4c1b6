"""A fake backend that answers every request with what it received, as JSON.

Stands in for a Service's Pods in examples, `serve --fake-backends` and users' tests. The
answer has the field names of the Kubernetes conformance echo server (Gateway API's
echo-basic): path, host, method, proto, headers, namespace, service, pod.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["create_echo_app", "serve_echo"]

# echo-basic answers /status/NNN with status NNN and no body.
_STATUS_PATH = re.compile(rb"/status/(\d{3})")


def _canonical_name(name: bytes) -> str:
    """`x-forwarded-for` -> `X-Forwarded-For`, as Go's net/http spells header names."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.decode("latin-1").split("-"))


def create_echo_app(service: str, pod: str | None = None, namespace: str | None = None) -> ASGIApp:
    """An ASGI app answering each request with JSON like

    `{"path": "/p?q=1", "host": "foo.com", "method": "GET", "proto": "HTTP/1.1",
    "headers": {"X-Forwarded-For": ["127.0.0.1"]}, "namespace": "ns", "service": "svc",
    "pod": "svc-0", "query": "q=1"}`

    `path` is the raw request target (path and query, as received); `headers` maps each name
    (Go-style capitalization, without Host, as Go's r.Header) to all its values in order.
    `/status/NNN` answers with status NNN and an empty body, `/health` with 200 "OK".
    """
    context = {"namespace": namespace or "", "service": service, "pod": pod or ""}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return

        # Read the whole body first, so uploads through the proxy complete.
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body", False):
                break

        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query: bytes = scope.get("query_string", b"")
        status = _STATUS_PATH.fullmatch(raw_path)
        if status is not None:
            code = int(status.group(1))
            await _respond(send, code if 200 <= code <= 599 else 400, b"", b"text/plain")
            return
        if raw_path == b"/health":
            await _respond(send, 200, b"OK", b"text/plain")
            return

        host = ""
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                continue
            headers.setdefault(_canonical_name(name), []).append(value.decode("latin-1"))
        target = raw_path + b"?" + query if query else raw_path
        answer = {
            "path": target.decode("latin-1"),
            "host": host,
            "method": scope["method"],
            "proto": "HTTP/" + scope.get("http_version", "1.1"),
            "headers": headers,
            **context,
            "query": query.decode("latin-1"),
        }
        await _respond(send, 200, json.dumps(answer).encode("utf-8"), b"application/json")

    return app


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def serve_echo(
    host: str, port: int, service: str, pod: str | None = None, namespace: str | None = None
) -> None:
    """Run an echo backend until interrupted (`ingressproxy echo`)."""
    import uvicorn

    uvicorn.run(
        create_echo_app(service, pod=pod, namespace=namespace),
        host=host,
        port=port,
        log_level="info",
        lifespan="on",
    )
