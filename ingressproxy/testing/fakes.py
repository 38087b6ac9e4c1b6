"""`serve --fake-backends`: echo servers on every loopback endpoint the manifests name.

Lets the README's one command show real routing with nothing else installed, and lets users
try their own manifests before their services exist. Only loopback addresses are ever bound.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from ..ir.model import Backend, Endpoint
from ..ir.table import RouteTable
from ..server.embedded import EmbeddedServer, ListenError, embedded_config
from .echo import create_echo_app

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


class FakeBackends:
    """Starts and stops the echo servers as tasks on the running loop."""

    def __init__(self) -> None:
        self._servers: list[EmbeddedServer] = []

    def start(self, endpoints: Iterable[tuple[Endpoint, Backend, int]]) -> None:
        """Start one echo server per endpoint, and say so in one line (and one more for those
        whose address is taken, with why)."""
        started: dict[str, list[str]] = {}
        failed: list[str] = []
        for ep, backend, index in endpoints:
            pod = f"{backend.service}-{index}"
            app = create_echo_app(backend.service, pod=pod, namespace=backend.namespace)
            try:
                server = EmbeddedServer(embedded_config(app, ep.address, ep.port))
            except ListenError as exc:
                failed.append(f"{backend.key}: {exc}")
                continue
            server.start()
            self._servers.append(server)
            started.setdefault(f"{backend.namespace}/{backend.service}", []).append(str(ep))
            log.debug("fake backend %s/%s listening on %s", backend.namespace, pod, ep)
        if started:
            log.info(
                "fake backends listening: %s",
                "; ".join(f"{svc} on {', '.join(eps)}" for svc, eps in started.items()),
            )
        if failed:
            log.warning("fake backends not started: %s", "; ".join(failed))

    async def stop(self) -> None:
        for server in self._servers:
            server.server.should_exit = True
        for server in self._servers:
            await server.stop()
        self._servers.clear()
