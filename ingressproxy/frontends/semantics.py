"""The dialects (flavors) and the routing choices in which each differs from the Ingress spec.

Flow: Settings.flavor -> CompileOptions.flavor -> frontends.pipeline picks the dialect ->
the spec engine (frontends/spec) compiles with that dialect's Semantics row, which lives in
the dialect's own package (spec, nginx, traefik). docs/flavors.md explains every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..ir.model import Matcher
from ..ir.table import Ordering

__all__ = ["DIALECTS", "Flavor", "Semantics", "parse_flavor"]


class Flavor(StrEnum):
    SPEC = "spec"
    NGINX = "nginx"
    TRAEFIK = "traefik"
    # Each Ingress in the dialect of the controller that would serve it (frontends.dialects).
    AUTO = "auto"


# The dialects themselves: every flavor but AUTO, which picks one of them per Ingress.
DIALECTS: tuple[Flavor, ...] = (Flavor.SPEC, Flavor.NGINX, Flavor.TRAEFIK)


@dataclass(frozen=True, slots=True)
class Semantics:
    """One dialect's choices, each a row of the matrix in docs/flavors.md."""

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
    # Router priority is the length of the Traefik rule text (pkg/muxer/http GetRulePriority).
    priority_from_rule: bool = False
    # ssl-redirect defaults to true for hosts with TLS (ingress-nginx's default).
    implicit_ssl_redirect: bool = False


def parse_flavor(value: str) -> Flavor:
    """`Flavor` from a flag or variable value (case-insensitive); ValueError names the choices."""
    try:
        return Flavor(value.strip().lower())
    except ValueError:
        choices = ", ".join(f.value for f in Flavor)
        raise ValueError(f"{value!r} is not a flavor (choose one of: {choices})") from None
