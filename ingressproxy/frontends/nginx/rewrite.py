"""ingress-nginx's rewrite-target, use-regex and x-forwarded-prefix annotations.

Sources (kubernetes/ingress-nginx): internal/ingress/annotations/rewrite/main.go (the values
and their validation: a target must match RegexPathWithCapture, else it is ignored),
internal/ingress/controller/location.go (updateServerLocations: Prefix locations get a `/`
and an exact twin unless they rewrite or use regex), controller.go (locations sorted by path,
then stably by length, both descending) and template.go (enforceRegexModifier: one rewriting
or use-regex location makes every location of the server `~* "^<path>"`; buildProxyPass: the
rewrite, and X-Forwarded-Prefix only with it; a target equal to the path is no rewrite).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ...manifests.model import Diagnostic, Ingress
from .annotations import DIALECT_ONLY, PREFIX, annotation_diagnostic, flag

__all__ = [
    "DIALECT_ONLY",
    "REWRITE_TARGET",
    "USE_REGEX",
    "X_FORWARDED_PREFIX",
    "Location",
    "Rewrite",
    "ignored_outside_nginx",
    "nginx_locations",
    "rewrite_of",
]

REWRITE_TARGET = PREFIX + "rewrite-target"
USE_REGEX = PREFIX + "use-regex"
X_FORWARDED_PREFIX = PREFIX + "x-forwarded-prefix"
# parser.RegexPathWithCapture: "/" and alphanumerics plus -._~:/ and $ for captures.
_TARGET = re.compile(r"^/?[\-._~a-zA-Z0-9/:$]*$")
# parser.RegexPathWithCapture after removing spaces (xforwardedprefix/main.go).
_PREFIX_VALUE = _TARGET


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One Ingress's rewrite settings."""

    target: str | None = None  # rewrite-target as given (validated), None when unset
    use_regex: bool = False
    x_forwarded_prefix: str | None = None

    def rewrites(self, path: str) -> bool:
        """needsRewrite: a target that differs from the location's path."""
        return bool(self.target) and self.target != path

    def enforces_regex(self, paths: list[str]) -> bool:
        """Whether this Ingress turns its hosts' locations into regexes."""
        return self.use_regex or any(self.rewrites(p) for p in paths)


def ignored_outside_nginx(ing: Ingress, dialect: str, report: Callable[[Diagnostic], None]) -> None:
    """Say so for each nginx-only annotation of an Ingress compiled in another dialect."""
    for key in DIALECT_ONLY:
        if key in ing.meta.annotations:
            msg = (
                f'"{key}" is ingress-nginx\'s: it takes effect in the nginx dialect (an Ingress of'
                f" ingress-nginx's class, or --flavor nginx) and is ignored in dialect {dialect}"
            )
            report(annotation_diagnostic(ing, "annotation-ignored-in-dialect", msg, key))


def rewrite_of(ing: Ingress, report: Callable[[Diagnostic], None]) -> Rewrite:
    annotations = ing.meta.annotations
    target = annotations.get(REWRITE_TARGET)
    if target is not None and not _TARGET.match(target):
        msg = (
            f'"{target}" is not a valid rewrite target (only "/", letters, digits, "-._~:" and'
            " $1..$9 captures); ingress-nginx ignores it, so requests are not rewritten"
        )
        report(annotation_diagnostic(ing, "invalid-annotation", msg, REWRITE_TARGET))
        target = None
    prefix = annotations.get(X_FORWARDED_PREFIX)
    if prefix is not None and not _PREFIX_VALUE.match(prefix.replace(" ", "")):
        msg = f'"{prefix}" is not a valid X-Forwarded-Prefix value; ingress-nginx ignores it'
        report(annotation_diagnostic(ing, "invalid-annotation", msg, X_FORWARDED_PREFIX))
        prefix = None
    return Rewrite(target or None, flag(ing, USE_REGEX, False, report), prefix or None)


@dataclass(frozen=True, slots=True)
class Location:
    """A location of one server as ingress-nginx builds it, before it becomes a router."""

    path: str  # the nginx location path (a regex once the server enforces regex)
    ingress_path: str  # the Ingress path it came from
    exact: bool  # PathType Exact (an exact twin of a Prefix location included)
    index: int  # which candidate (of the caller's list) it came from


def nginx_locations(candidates: list[tuple[str, str, Rewrite]]) -> list[Location]:
    """The regex locations of one server, in the order nginx tries them.

    `candidates` are the server's (path, pathType, Rewrite) in ingress-nginx's Ingress order,
    contested paths already settled. Prefix paths of Ingresses that neither rewrite nor use
    regex become `path/` plus an exact twin `path` (unless an Exact location has that path;
    `/` stays alone); then locations are sorted by path descending and stably by length
    descending; with enforceRegex every one is `~* "^<path>"`, Exact ones included.
    """
    exact_paths = {path for path, path_type, _ in candidates if path_type == "Exact"}
    out: list[Location] = []
    for i, (path, path_type, rw) in enumerate(candidates):
        if path == "/" or path_type != "Prefix" or rw.rewrites(path) or rw.use_regex:
            out.append(Location(path, path, path_type == "Exact", i))
            continue
        normalized = path if path.endswith("/") else path + "/"
        out.append(Location(normalized, path, False, i))
        if path not in exact_paths:
            out.append(Location(path, path, True, i))
    out.sort(key=lambda loc: loc.path, reverse=True)
    out.sort(key=lambda loc: len(loc.path), reverse=True)
    return out
