"""Which Ingresses a dialect serves: IngressClass selection as the Kubernetes Ingress docs
describe it (spec.ingressClassName, the deprecated annotation, the default class)."""

from __future__ import annotations

from ...manifests.model import Diagnostic, Ingress, Manifests, Severity
from ..options import CompileOptions

__all__ = ["select_ingresses"]


def select_ingresses(
    manifests: Manifests, options: CompileOptions, diags: list[Diagnostic]
) -> list[Ingress]:
    """The Ingresses this proxy serves, per IngressClass (kubernetes.io ingress docs).

    An Ingress names its class with spec.ingressClassName or the deprecated
    kubernetes.io/ingress.class annotation; one without a class belongs to the IngressClass
    marked ingressclass.kubernetes.io/is-default-class, if that is one of ours.
    """
    if not options.ingress_classes:
        return list(manifests.ingresses)
    served = set(options.ingress_classes)
    default_served = any(c.is_default and c.meta.name in served for c in manifests.ingress_classes)
    names = ", ".join(options.ingress_classes)
    kept: list[Ingress] = []
    for ing in manifests.ingresses:
        cls = ing.ingress_class
        if cls in served or (cls is None and default_served):
            kept.append(ing)
            continue
        if cls is None:
            where = ""
            why = (
                f"it has no ingress class and none of the served classes ({names}) is an"
                " IngressClass marked as the default class"
            )
        else:
            where = (
                "spec.ingressClassName"
                if ing.ingress_class_name is not None
                else "metadata.annotations.kubernetes.io/ingress.class"  # as decode names it
            )
            why = f'its ingress class "{cls}" is not served here (served: {names})'
        diags.append(_diag(ing, "excluded-by-class", f"ignored: {why}", where))
    return kept


def _diag(
    ing: Ingress, code: str, message: str, where: str, severity: Severity = Severity.WARNING
) -> Diagnostic:
    return Diagnostic(severity, code, message, ing.meta.source_of(where), ing.ref, where)
