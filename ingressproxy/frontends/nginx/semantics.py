"""The nginx dialect's row of the semantics matrix: ingress-nginx's location building
(kubernetes/ingress-nginx internal/ingress/controller: location.go, controller.go
getBackendServers) and its Ingress order (store.go sortIngressSlice)."""

from __future__ import annotations

from ...ir.model import Matcher
from ...ir.table import Ordering
from ..semantics import Flavor, Semantics

__all__ = ["NGINX"]

NGINX = Semantics(
    flavor=Flavor.NGINX,
    prefix=Matcher.PREFIX,  # `location /p/` + `location = /p`: element-wise
    implementation_specific=Matcher.STRING,  # a plain `location /p` (no use-regex)
    ordering=Ordering.EXACT_FIRST,
    share_collisions=False,  # "Location ... already configured": the oldest keeps it
    names_descending=True,  # sortIngressSlice: equal timestamps -> `in > jn`
    skip_unusable_backends=False,  # `return 503;` for an upstream without endpoints
    host_default_backends=True,
    host_fallthrough=False,  # server_name is chosen first, then a location
    implicit_ssl_redirect=True,  # ssl-redirect defaults to true (hosts with TLS)
)
