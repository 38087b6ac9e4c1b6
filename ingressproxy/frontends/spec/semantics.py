"""The spec dialect's row of the semantics matrix: the Ingress API as documented
(kubernetes.io/docs/concepts/services-networking/ingress, "Multiple matches")."""

from __future__ import annotations

from ...ir.model import Matcher
from ...ir.table import Ordering
from ..semantics import Flavor, Semantics

__all__ = ["SPEC"]

SPEC = Semantics(
    flavor=Flavor.SPEC,
    prefix=Matcher.PREFIX,
    implementation_specific=Matcher.PREFIX,
    ordering=Ordering.LONGEST,
    share_collisions=False,
    names_descending=False,
    skip_unusable_backends=False,
    host_default_backends=True,
    host_fallthrough=False,
)
