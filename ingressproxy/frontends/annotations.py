"""The Ingress annotations ingressproxy understands, and the check for ones it does not.

Flow: compiler -> unknown_annotations(...) -> `unknown-annotation` Diagnostics. The one list of
supported annotations: add a name here when a module starts honouring it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["KNOWN_PREFIXES", "SUPPORTED", "UnknownAnnotation", "unknown_annotations"]

SUPPORTED: frozenset[str] = frozenset(
    {
        # The deprecated class annotation (compiler.select_ingresses).
        "kubernetes.io/ingress.class",
        # Traefik entry points `web` (--port) and `websecure` (--https-port) (entrypoints.py).
        "traefik.ingress.kubernetes.io/router.entrypoints",
        # HTTP -> HTTPS redirects (entrypoints.py) and HTTPS upstreams (backends.py).
        "nginx.ingress.kubernetes.io/ssl-redirect",
        "nginx.ingress.kubernetes.io/force-ssl-redirect",
        "nginx.ingress.kubernetes.io/backend-protocol",
    }
)

# Only annotations under these prefixes are checked: they belong to Ingress controllers whose
# manifests we are asked to serve, so a name we do not know there is a typo or a feature we lack.
# Everything else (other tools' annotations, kubectl's last-applied-configuration) is not ours.
KNOWN_PREFIXES: tuple[str, ...] = (
    "nginx.ingress.kubernetes.io/",
    "traefik.ingress.kubernetes.io/",
    "ingress.kubernetes.io/",
)


@dataclass(frozen=True, slots=True)
class UnknownAnnotation:
    name: str
    suggestion: str | None  # the supported annotation it most likely means, if any

    def message(self) -> str:
        if self.suggestion is not None:
            return f'unknown annotation "{self.name}": did you mean "{self.suggestion}"?'
        return f'annotation "{self.name}" is not supported by ingressproxy and has no effect'


def unknown_annotations(annotations: Mapping[str, str]) -> Iterator[UnknownAnnotation]:
    """The annotations under a known prefix that are not supported, in name order."""
    for name in sorted(annotations):
        if name in SUPPORTED or not name.startswith(KNOWN_PREFIXES):
            continue
        yield UnknownAnnotation(name, _near_miss(name))


def _near_miss(name: str) -> str | None:
    """The supported annotation `name` is a typo of. Names are compared after their last '/':
    the shared prefix would otherwise make every traefik.ingress.kubernetes.io/router.* name
    look close to router.entrypoints."""
    short = name.rsplit("/", 1)[-1]
    best: tuple[float, str] | None = None
    for candidate in sorted(SUPPORTED):
        ratio = difflib.SequenceMatcher(None, short, candidate.rsplit("/", 1)[-1]).ratio()
        if ratio >= 0.8 and (best is None or ratio > best[0]):
            best = (ratio, candidate)
    return None if best is None else best[1]
