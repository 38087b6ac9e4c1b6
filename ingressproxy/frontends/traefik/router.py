"""Traefik's router annotations on an Ingress (traefik.ingress.kubernetes.io/router.*) beyond
the entry points: priority and path matcher, and the ones accepted with a note.

As Traefik v3's provider reads them (pkg/provider/kubernetes/ingress: parseRouterConfig, then
loadRouter): `router.priority` replaces the rule-length priority of every router of the
Ingress (0 keeps it); `router.pathmatcher` (Path, PathPrefix, PathRegexp) applies to paths of
type ImplementationSpecific only, another value makes loadRouter fail for those paths
("invalid router path matcher", the path is skipped). A value label.Decode refuses (a
priority that is not an integer) makes the provider skip the whole Ingress ("Failed to parse
annotations").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...manifests.model import Diagnostic, Ingress, Severity
from .annotations import PREFIX

__all__ = ["PATH_MATCHER", "PRIORITY", "ROUTER_KEYS", "RouterAnnotations", "router_annotations"]

PRIORITY = PREFIX + "router.priority"
PATH_MATCHER = PREFIX + "router.pathmatcher"
_TLS = PREFIX + "router.tls"
# Read by Traefik and accepted here: what they change is not a routing decision we make.
_NOTED = {
    _TLS: "the routers are served on the HTTPS listener too, as every router here is",
    _TLS + ".certresolver": "no ACME here: the host's certificate comes from its Secret or"
    " the default one",
    _TLS + ".options": "TLSOption objects are not read: the HTTPS listener's settings apply",
    PREFIX + "router.middlewares": "Middleware objects are not read yet: they are not applied",
    PREFIX + "router.rulesyntax": "the v3 rule syntax is used",
}
ROUTER_KEYS: frozenset[str] = frozenset({PRIORITY, PATH_MATCHER, *_NOTED})
MATCHERS = ("Path", "PathPrefix", "PathRegexp")


@dataclass(frozen=True, slots=True)
class RouterAnnotations:
    priority: int | None = None  # None or 0: Traefik's default (the rule's length)
    path_matcher: str | None = None  # for ImplementationSpecific paths; None: PathPrefix
    refused: bool = False  # the provider skips the whole Ingress


def _diag(ing: Ingress, key: str, code: str, msg: str, severity: Severity) -> Diagnostic:
    where = f"metadata.annotations.{key}"
    return Diagnostic(severity, code, msg, ing.meta.source_of(where), ing.ref, where)


def router_annotations(ing: Ingress, report: Callable[[Diagnostic], None]) -> RouterAnnotations:
    notes = ing.meta.annotations
    priority: int | None = None
    refused = False
    raw = notes.get(PRIORITY)
    if raw is not None:
        try:
            priority = int(raw.strip())
        except ValueError:
            msg = (
                f'"{raw}" is not an integer: Traefik fails to parse the annotations and skips'
                " this Ingress (none of its rules is served)"
            )
            report(_diag(ing, PRIORITY, "invalid-annotation", msg, Severity.ERROR))
            refused = True
    matcher = notes.get(PATH_MATCHER)
    if matcher is not None and matcher not in MATCHERS:
        msg = (
            f'invalid router path matcher "{matcher}": must be one of Path, PathPrefix,'
            " PathRegexp; Traefik skips this Ingress's ImplementationSpecific paths"
        )
        report(_diag(ing, PATH_MATCHER, "invalid-annotation", msg, Severity.ERROR))
    elif matcher == "PathRegexp":
        msg = (
            "PathRegexp (an unanchored Go regular expression) is not supported yet: this"
            " Ingress's ImplementationSpecific paths are left out"
        )
        report(_diag(ing, PATH_MATCHER, "unsupported-annotation", msg, Severity.WARNING))
    for key, why in _NOTED.items():
        if key in notes:
            severity = Severity.WARNING if key.endswith("middlewares") else Severity.INFO
            report(_diag(ing, key, "annotation-no-effect", f'"{key}": {why}', severity))
    return RouterAnnotations(priority, matcher, refused)
