"""Annotation keys: the table of known keys each dialect owns, and the check for typos.

Flow: each dialect package declares the keys it honours (spec/, nginx/, traefik/
annotations.py); the Ingress engine's lint reports a key under a dialect's prefix that no
dialect honours as `unknown-annotation`, with the key it most likely means. Under
ingress-nginx's prefix only a key ingress-nginx itself does not know is one (nginx/keys.py
lists them all; the pipeline reports the known ones we lack). Keys of other tools
(cert-manager.io/*, external-dns, kubectl's last-applied-configuration) are not ours.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from .nginx.annotations import KEYS as NGINX_KEYS
from .nginx.annotations import PREFIX as NGINX_PREFIX
from .nginx.keys import KNOWN as NGINX_KNOWN
from .nginx.keys import support_of as nginx_support
from .spec.annotations import KEYS as SPEC_KEYS
from .traefik.annotations import KEYS as TRAEFIK_KEYS
from .traefik.annotations import PREFIX as TRAEFIK_PREFIX
from .traefik.router import ROUTER_KEYS as TRAEFIK_ROUTER_KEYS

__all__ = ["KNOWN_PREFIXES", "SUPPORTED", "UnknownAnnotation", "unknown_annotations"]

SUPPORTED: frozenset[str] = SPEC_KEYS | NGINX_KEYS | TRAEFIK_KEYS | TRAEFIK_ROUTER_KEYS

# Only annotations under these prefixes are checked: they belong to Ingress controllers whose
# manifests we are asked to serve, so a name we do not know there is a typo or a feature we lack.
# `ingress.kubernetes.io/` is the prefix older ingress-nginx and Traefik 1.x releases read.
KNOWN_PREFIXES: tuple[str, ...] = (NGINX_PREFIX, TRAEFIK_PREFIX, "ingress.kubernetes.io/")


@dataclass(frozen=True, slots=True)
class UnknownAnnotation:
    name: str
    suggestion: str | None  # the annotation it most likely means, if any

    def message(self) -> str:
        if self.suggestion is not None:
            return f'unknown annotation "{self.name}": did you mean "{self.suggestion}"?'
        if self.name.startswith(NGINX_PREFIX):
            return f'unknown annotation "{self.name}": ingress-nginx has no such annotation'
        return f'annotation "{self.name}" is not supported by ingressproxy and has no effect'


def unknown_annotations(annotations: Mapping[str, str]) -> Iterator[UnknownAnnotation]:
    """The annotations under a known prefix that are not supported, in name order; under
    ingress-nginx's prefix, those ingress-nginx does not know (typos), suggesting any key it
    knows."""
    for name in sorted(annotations):
        if name in SUPPORTED or not name.startswith(KNOWN_PREFIXES):
            continue
        if name.startswith(NGINX_PREFIX):
            if nginx_support(name) is None:
                yield UnknownAnnotation(name, _near_miss(name, NGINX_KNOWN.keys() | NGINX_KEYS))
            continue
        yield UnknownAnnotation(name, _near_miss(name, SUPPORTED))


def _near_miss(name: str, candidates: Iterable[str]) -> str | None:
    """The annotation of `candidates` that `name` is a typo of. Names are compared after their
    last '/': the shared prefix would otherwise make every traefik.ingress.kubernetes.io/
    router.* name look close to router.entrypoints."""
    short = name.rsplit("/", 1)[-1]
    best: tuple[float, str] | None = None
    for candidate in sorted(candidates):
        ratio = difflib.SequenceMatcher(None, short, candidate.rsplit("/", 1)[-1]).ratio()
        if ratio >= 0.8 and (best is None or ratio > best[0]):
            best = (ratio, candidate)
    return None if best is None else best[1]
