"""Compatibility flavors: where ingress-nginx and Traefik route differently from the Ingress spec.

Flow: Settings.flavor -> CompileOptions.flavor -> compiler (reads SEMANTICS[flavor]) -> RouteTable.
Data only, plus the Traefik rule text whose length is a Traefik router's default priority.
docs/flavors.md explains every row with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from ..ir.model import Matcher
from ..ir.table import Ordering
from ..manifests.model import PathType

__all__ = ["SEMANTICS", "Flavor", "Semantics", "parse_flavor", "traefik_rule"]


class Flavor(StrEnum):
    SPEC = "spec"
    NGINX = "nginx"
    TRAEFIK = "traefik"


@dataclass(frozen=True, slots=True)
class Semantics:
    """One flavor's choices, each a row of the matrix in docs/flavors.md."""

    flavor: Flavor
    # How each pathType's path is compared with the request path.
    prefix: Matcher
    implementation_specific: Matcher
    ordering: Ordering
    # Several Ingresses with the same host + path (+ pathType, or the same Traefik rule):
    # False = one wins (oldest creationTimestamp), True = their Backends take turns.
    share_collisions: bool
    # On equal creationTimestamps, namespace/name in descending order wins (ingress-nginx).
    names_descending: bool
    # A Service that is missing, lacks the port or has no ready endpoints: True = the rule is
    # left out (Traefik: "Skipping service"), so its requests get 404 or a less specific rule;
    # False = the rule stays and answers 503.
    skip_unusable_backends: bool
    # spec.defaultBackend of an Ingress *with* rules serves its hosts' unmatched paths.
    host_default_backends: bool
    # The host is one matcher of the rule: a less specific host's rule can take the request.
    host_fallthrough: bool


SEMANTICS = MappingProxyType(
    {
        Flavor.SPEC: Semantics(
            flavor=Flavor.SPEC,
            prefix=Matcher.PREFIX,
            implementation_specific=Matcher.PREFIX,
            ordering=Ordering.LONGEST,
            share_collisions=False,
            names_descending=False,
            skip_unusable_backends=False,
            host_default_backends=True,
            host_fallthrough=False,
        ),
        # ingress-nginx: kubernetes/ingress-nginx internal/ingress/controller (location.go,
        # controller.go getBackendServers) and store.go sortIngressSlice.
        Flavor.NGINX: Semantics(
            flavor=Flavor.NGINX,
            prefix=Matcher.PREFIX,  # `location /p/` + `location = /p`: element-wise
            implementation_specific=Matcher.STRING,  # a plain `location /p` (no use-regex)
            ordering=Ordering.EXACT_FIRST,
            share_collisions=False,  # "Location ... already configured": the oldest keeps it
            names_descending=True,  # sortIngressSlice: equal timestamps -> `in > jn`
            skip_unusable_backends=False,  # `return 503;` for an upstream without endpoints
            host_default_backends=True,
            host_fallthrough=False,  # server_name is chosen first, then a location
        ),
        # Traefik's kubernetesIngress provider: traefik/traefik pkg/provider/kubernetes/ingress
        # (loadRouter, loadService) and pkg/muxer/http (priority = len(rule)).
        Flavor.TRAEFIK: Semantics(
            flavor=Flavor.TRAEFIK,
            prefix=Matcher.STRING,  # PathPrefix(`/p`); strictPrefixMatching is off by default
            implementation_specific=Matcher.STRING,  # the default path matcher is PathPrefix
            ordering=Ordering.RULE_LENGTH,
            share_collisions=True,  # identical routers of equal priority (see docs/flavors.md)
            names_descending=False,
            skip_unusable_backends=True,  # "Skipping service: no endpoints found" -> no router
            host_default_backends=False,  # only an Ingress without rules makes default-router
            host_fallthrough=True,
        ),
    }
)


def parse_flavor(value: str) -> Flavor:
    """`Flavor` from a flag or variable value (case-insensitive); ValueError names the choices."""
    try:
        return Flavor(value.strip().lower())
    except ValueError:
        choices = ", ".join(f.value for f in Flavor)
        raise ValueError(f"{value!r} is not a flavor (choose one of: {choices})") from None


def traefik_rule(host: str | None, path: str | None, path_type: PathType | None) -> str:
    """The router rule Traefik's Ingress provider writes for a path rule (loadRouter and
    buildHostRule); its length is the router's default priority."""
    parts: list[str] = []
    if host:
        if host.startswith("*."):
            # One DNS label for the '*', dots escaped: HostRegexp(`[a-zA-Z0-9-]+\.foo\.com`).
            regexp = "[a-zA-Z0-9-]+\\." + host[2:].replace(".", "\\.")
            parts.append(f"HostRegexp(`{regexp}`)")
        else:
            parts.append(f"Host(`{host}`)")
    if path:
        matcher = "Path" if path_type is PathType.EXACT else "PathPrefix"
        parts.append(f"{matcher}(`{path}`)")
    return " && ".join(parts)
