"""The traefik dialect's row of the semantics matrix: Traefik's kubernetesIngress provider
(traefik/traefik pkg/provider/kubernetes/ingress: loadRouter, loadService) and its HTTP muxer
(pkg/muxer/http: a router's default priority is the length of its rule)."""

from __future__ import annotations

from ...ir.model import Matcher
from ...ir.table import Ordering
from ..semantics import Flavor, Semantics

__all__ = ["TRAEFIK"]

TRAEFIK = Semantics(
    flavor=Flavor.TRAEFIK,
    prefix=Matcher.STRING,  # PathPrefix(`/p`); strictPrefixMatching is off by default
    implementation_specific=Matcher.STRING,  # the default path matcher is PathPrefix
    ordering=Ordering.RULE_LENGTH,
    share_collisions=True,  # identical routers of equal priority (see docs/flavors.md)
    names_descending=False,
    skip_unusable_backends=True,  # "Skipping service: no endpoints found" -> no router
    host_default_backends=False,  # only an Ingress without rules makes default-router
    host_fallthrough=True,
    priority_from_rule=True,
)
