"""The annotations of the Ingress API itself that the spec front-end honours."""

from __future__ import annotations

__all__ = ["INGRESS_CLASS", "KEYS"]

# The deprecated class annotation, read where spec.ingressClassName is unset (spec.classes).
INGRESS_CLASS = "kubernetes.io/ingress.class"

KEYS: frozenset[str] = frozenset({INGRESS_CLASS})
