"""The Traefik annotations this front-end honours (prefix traefik.ingress.kubernetes.io/)."""

from __future__ import annotations

__all__ = ["ENTRYPOINTS", "KEYS", "PREFIX", "SERVERS_SCHEME"]

PREFIX = "traefik.ingress.kubernetes.io/"
# On the Ingress: the entry points its routers attach to (traefik.entrypoints).
ENTRYPOINTS = PREFIX + "router.entrypoints"
# On the Service: the scheme of its servers (frontends.backends reads it).
SERVERS_SCHEME = PREFIX + "service.serversscheme"

KEYS: frozenset[str] = frozenset({ENTRYPOINTS})
