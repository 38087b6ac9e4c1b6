"""`serve --fake-backends`: echo servers on every loopback endpoint the manifests name.

Lets the README's one command show real routing with nothing else installed, and lets users
try their own manifests before their services exist. Only loopback addresses are ever bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable, Iterator

import uvicorn

from .echo import create_echo_app
from .routetable import Backend, Endpoint, RouteTable

__all__ = ["FakeBackends", "loopback_endpoints"]

log = logging.getLogger("ingressproxy.fakes")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def loopback_endpoints(table: RouteTable) -> list[tuple[Endpoint, Backend, int]]:
    """(endpoint, backend, index within its backend) for every loopback endpoint, once."""
    seen: set[tuple[str, int]] = set()
    found: list[tuple[Endpoint, Backend, int]] = []
    for route in table.routes():
        b = route.backend
        for i, ep in enumerate(b.endpoints):
            key = (ep.address, ep.port)
            if key not in seen and _is_loopback(ep.address):
                seen.add(key)
                found.append((ep, b, i))
    return found


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class FakeBackends:
    """Starts and stops the echo servers as tasks on the running loop."""

    def __init__(self) -> None:
        self._servers: list[tuple[_QuietServer, asyncio.Task[None], socket.socket]] = []

    def start(self, endpoints: Iterable[tuple[Endpoint, Backend, int]]) -> None:
        for ep, backend, index in endpoints:
            pod = f"{backend.service}-{index}"
            app = create_echo_app(backend.service, pod=pod, namespace=backend.namespace)
            family = socket.AF_INET6 if ":" in ep.address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ep.address, ep.port))
            except OSError as exc:
                sock.close()
                log.warning("fake backend %s for %s not started: %s", ep, backend.key, exc)
                continue
            sock.listen(128)
            sock.setblocking(False)
            config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
            server = _QuietServer(config)
            task = asyncio.create_task(server.serve(sockets=[sock]))
            self._servers.append((server, task, sock))
            log.info("fake backend %s/%s listening on %s", backend.namespace, pod, ep)

    async def stop(self) -> None:
        for server, _, _ in self._servers:
            server.should_exit = True
        for _, task, sock in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout=5)
            sock.close()
        self._servers.clear()
