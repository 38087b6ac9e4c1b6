"""The dialects' semantics rows by name: each row lives in its dialect's own package."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .nginx.semantics import NGINX
from .semantics import Flavor, Semantics
from .spec.semantics import SPEC
from .traefik.semantics import TRAEFIK

__all__ = ["SEMANTICS"]

SEMANTICS: Mapping[Flavor, Semantics] = MappingProxyType(
    {Flavor.SPEC: SPEC, Flavor.NGINX: NGINX, Flavor.TRAEFIK: TRAEFIK}
)
