"""The dialects' semantics rows by name, and which dialect each Ingress gets.

With `--flavor auto` an Ingress gets the dialect of the controller that would serve it in a
cluster: by its class (an IngressClass object's spec.controller, or the class names `nginx`
and `traefik` when the folder has no IngressClass of that name), else by the folder's default
IngressClass, else by its annotations when they belong to exactly one controller; anything
else is the Ingress spec. The semantics rows live in the dialects' own packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..manifests.model import Ingress, IngressClass, Manifests
from .nginx.annotations import PREFIX as NGINX_PREFIX
from .nginx.semantics import NGINX
from .semantics import Flavor, Semantics
from .spec.semantics import SPEC
from .traefik.annotations import PREFIX as TRAEFIK_PREFIX
from .traefik.semantics import TRAEFIK

__all__ = ["CONTROLLERS", "SEMANTICS", "DialectChoice", "choose_dialects"]

SEMANTICS: Mapping[Flavor, Semantics] = MappingProxyType(
    {Flavor.SPEC: SPEC, Flavor.NGINX: NGINX, Flavor.TRAEFIK: TRAEFIK}
)

# IngressClass spec.controller values (ingress-nginx's default --controller-class; Traefik's
# kubernetesIngress provider's ingressClass controller name).
CONTROLLERS: Mapping[str, Flavor] = MappingProxyType(
    {"k8s.io/ingress-nginx": Flavor.NGINX, "traefik.io/ingress-controller": Flavor.TRAEFIK}
)
# Class names that mean a controller when no IngressClass object says otherwise (what the
# controllers' Helm charts install in the cluster).
_CLASS_NAMES: Mapping[str, Flavor] = MappingProxyType(
    {"nginx": Flavor.NGINX, "traefik": Flavor.TRAEFIK}
)


@dataclass(frozen=True, slots=True)
class DialectChoice:
    dialect: Flavor
    reason: str  # for explain, the admin API and the dashboard
    inferred: bool = False  # from annotations alone


def _by_controller(cls: IngressClass, how: str) -> DialectChoice:
    dialect = CONTROLLERS.get(cls.controller or "", Flavor.SPEC)
    controller = cls.controller or "no controller"
    return DialectChoice(dialect, f"{how} {cls.meta.name}, whose IngressClass names {controller}")


def choose_dialects(manifests: Manifests, forced: Flavor) -> dict[int, DialectChoice]:
    """The dialect of every Ingress of `manifests`, keyed by id() of the Ingress object."""
    if forced is not Flavor.AUTO:
        choice = DialectChoice(forced, f"--flavor {forced}")
        return {id(ing): choice for ing in manifests.ingresses}
    classes = {c.meta.name: c for c in manifests.ingress_classes}
    default = next((c for c in manifests.ingress_classes if c.is_default), None)
    return {id(ing): _choose(ing, classes, default) for ing in manifests.ingresses}


def _choose(
    ing: Ingress, classes: Mapping[str, IngressClass], default: IngressClass | None
) -> DialectChoice:
    name = ing.ingress_class
    if name is not None:
        cls = classes.get(name)
        if cls is not None:
            return _by_controller(cls, "class")
        dialect = _CLASS_NAMES.get(name, Flavor.SPEC)
        return DialectChoice(dialect, f'class "{name}" (no IngressClass object of that name)')
    if default is not None:
        return _by_controller(default, "no class: the default class")
    keys = ing.meta.annotations
    nginx = any(k.startswith(NGINX_PREFIX) for k in keys)
    traefik = any(k.startswith(TRAEFIK_PREFIX) for k in keys)
    if nginx != traefik:
        dialect = Flavor.NGINX if nginx else Flavor.TRAEFIK
        prefix = NGINX_PREFIX if nginx else TRAEFIK_PREFIX
        return DialectChoice(dialect, f"no class: inferred from its {prefix}* annotations", True)
    return DialectChoice(Flavor.SPEC, "no class and no controller's annotations: the spec")
