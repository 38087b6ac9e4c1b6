"""Traefik's Middleware objects: metadata validated, the spec kept as written for the traefik
front-end (frontends/traefik/middlewares.py), which knows each kind's fields.

Traefik v3 reads group traefik.io; the v2 group traefik.containo.us is read too, with a
warning: Traefik v3 no longer reads it, so in a v3 cluster such a Middleware does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .fields import ObjectReader, read_meta
from .k8snames import dns1123_subdomain_errors
from .model import Middleware

__all__ = ["MIDDLEWARE_APIS", "V2_GROUP", "read_middleware"]

V2_GROUP = "traefik.containo.us/v1alpha1"
MIDDLEWARE_APIS = ("traefik.io/v1alpha1", V2_GROUP)


def read_middleware(obj: ObjectReader, data: Mapping[str, object]) -> Middleware:
    meta = read_meta(obj, data, dns1123_subdomain_errors, cluster=False)
    api = str(data.get("apiVersion"))
    spec = obj.as_map(data.get("spec"), "spec") or {}
    if api == V2_GROUP:
        obj.warn(
            "apiVersion",
            f"{V2_GROUP} is Traefik v2's group: Traefik v3 reads Middlewares only from"
            " traefik.io/v1alpha1; it is read here as if it were that",
            "deprecated-api-group",
        )
    return Middleware(meta, api, MappingProxyType(dict(spec)))
