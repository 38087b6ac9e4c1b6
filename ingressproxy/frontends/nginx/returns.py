"""ingress-nginx's fixed redirects: permanent-redirect, temporal-redirect (and their codes),
relative-redirects and app-root, read as ingress-nginx v1.13 reads them, as IR filters.

Sources (kubernetes/ingress-nginx): internal/ingress/annotations/redirect/redirect.go (Parse:
from-to-www-redirect, relative-redirects, then temporal-redirect, which wins over
permanent-redirect; a temporal code outside 300-307 is 302, a permanent one outside 300-308 is
301), internal/ingress/annotations/rewrite/main.go (app-root: a path, never an absolute URL),
parser/main.go and parser/validators.go (checkAnnotation: a value its validator refuses is a
ValidationError), annotations.go (Extractor.Extract: a ValidationError refuses the whole
Ingress; other errors drop the annotation group) and nginx.tmpl (`return <code> <url>;` in the
location; `if ($uri = /) { return 302 $scheme://$http_host<root>; }` in the server).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from ...ir.filters import AppRoot, RedirectURL
from ...ir.model import Backend, EntryPoint, Router
from ...ir.table import HostTable, RouteTable
from ...manifests.model import Diagnostic, Ingress, ObjectRef, PathType, Severity
from ..options import IngressPolicy
from ..traefik.rules import rule_text
from .annotations import PREFIX, annotation_diagnostic

__all__ = [
    "APP_ROOT",
    "PERMANENT_REDIRECT",
    "PERMANENT_REDIRECT_CODE",
    "RELATIVE_REDIRECTS",
    "TEMPORAL_REDIRECT",
    "TEMPORAL_REDIRECT_CODE",
    "Returns",
    "add_app_root_routers",
    "app_roots",
    "returns_of",
]

PERMANENT_REDIRECT = PREFIX + "permanent-redirect"
PERMANENT_REDIRECT_CODE = PREFIX + "permanent-redirect-code"
TEMPORAL_REDIRECT = PREFIX + "temporal-redirect"
TEMPORAL_REDIRECT_CODE = PREFIX + "temporal-redirect-code"
RELATIVE_REDIRECTS = PREFIX + "relative-redirects"
APP_ROOT = PREFIX + "app-root"
# Read first by the same parser: an invalid value refuses the Ingress like the others.
_FROM_TO_WWW = PREFIX + "from-to-www-redirect"

# parser.URLIsValidRegex: letters, digits, "-._~/:" and ",?&=".
_URL = re.compile(r"^[-._~a-zA-Z0-9/:,?&=]*$")
# parser.RegexPathWithCapture: an optional "/" then letters, digits, "-._~/:" and "$".
_PATH_WITH_CAPTURE = re.compile(r"^/?[-._~a-zA-Z0-9/:$]*$")
# Go's strconv.Atoi (parser.ValidateInt) and strconv.ParseBool (parser.ValidateBool).
_ATOI = re.compile(r"^[+-]?[0-9]+$")
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}
_BOOLS |= {"0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
# url.Parse's scheme: a letter, then letters, digits, "+-."; isValidURL wants it to start "http".
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


@dataclass(frozen=True, slots=True)
class Returns:
    """What one Ingress's redirect annotations ask for."""

    redirect: RedirectURL | None = None  # permanent-redirect or temporal-redirect
    app_root: AppRoot | None = None
    # Why ingress-nginx refuses the whole Ingress (a value its validator rejects), else None.
    refused: Diagnostic | None = None


class _Refused(Exception):
    """checkAnnotation's ValidationError: Extract returns it and the Ingress is not served."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Dropped(Exception):
    """Any other parse error: Extract skips the redirect group, the Ingress is served."""


def returns_of(ing: Ingress, report: Callable[[Diagnostic], None]) -> Returns:
    """The redirect filters an Ingress asks for, as redirect.Parse and rewrite.Parse read its
    annotations. Warnings go to `report`; a refusal comes back in `refused` (the caller says
    it, and leaves the Ingress out)."""
    app_root = _app_root(ing, report)
    try:
        redirect = _redirect(ing, report)
    except _Refused as refused:
        return Returns(None, app_root, refused.diagnostic)
    except _Dropped:
        redirect = None
    return Returns(redirect, app_root)


def _value(ing: Ingress, key: str) -> str | None:
    """The annotation's value, or None when absent; checkAnnotation does not validate an empty
    value, and parseString then fails (InvalidContent: the group is dropped)."""
    return ing.meta.annotations.get(key)


def _refuse(ing: Ingress, key: str, raw: str, what: str) -> _Refused:
    msg = (
        f'"{raw}" is not {what}; ingress-nginx refuses an Ingress whose annotation fails'
        " validation, so none of its rules are served"
    )
    return _Refused(annotation_diagnostic(ing, "invalid-annotation", msg, key, Severity.ERROR))


def _bool(ing: Ingress, key: str) -> bool:
    raw = _value(ing, key)
    if raw is None:
        return False
    if raw == "":
        raise _Dropped
    if raw not in _BOOLS:
        raise _refuse(ing, key, raw, "a boolean (true or false)")
    return _BOOLS[raw]


def _int(ing: Ingress, key: str) -> int:
    """GetIntAnnotation; 0 when absent (then out of every range, so the default applies)."""
    raw = _value(ing, key)
    if raw is None:
        return 0
    if raw == "":
        raise _Dropped
    if not _ATOI.match(raw) or not -(2**63) <= int(raw) < 2**63:
        raise _refuse(ing, key, raw, "an integer")
    return int(raw)


def _url(ing: Ingress, key: str) -> str | None:
    raw = _value(ing, key)
    if raw is None:
        return None
    if raw == "":
        raise _Dropped
    if not _URL.match(raw):
        what = 'a URL ingress-nginx accepts (only letters, digits and "-._~/:,?&=")'
        raise _refuse(ing, key, raw, what)
    return raw


def _redirect(ing: Ingress, report: Callable[[Diagnostic], None]) -> RedirectURL | None:
    """redirect.Parse, in its order: the first error decides."""
    _bool(ing, _FROM_TO_WWW)  # its redirect is nginx/hosts.py's; here only its validation
    relative = _bool(ing, RELATIVE_REDIRECTS)
    temporal = _url(ing, TEMPORAL_REDIRECT)
    if temporal is not None:
        code = _int(ing, TEMPORAL_REDIRECT_CODE)
        if not 300 <= code <= 307:  # http.StatusMultipleChoices .. StatusTemporaryRedirect
            code = 302
        scheme = _SCHEME.match(temporal)
        if scheme is None or not scheme.group(1).startswith("http"):
            # isValidURL: "only http and https are valid protocols"; the group is dropped.
            msg = (
                f'"{temporal}" is not an http(s) URL; ingress-nginx ignores the redirect'
                " annotations of this Ingress (permanent-redirect included)"
            )
            report(annotation_diagnostic(ing, "invalid-annotation", msg, TEMPORAL_REDIRECT))
            raise _Dropped
        if PERMANENT_REDIRECT in ing.meta.annotations:
            msg = (
                f"temporal-redirect wins over permanent-redirect (ingress-nginx reads it first):"
                f" requests get {code} to {temporal}"
            )
            report(annotation_diagnostic(ing, "redirect-ignored", msg, PERMANENT_REDIRECT))
        return RedirectURL(code, temporal, relative, TEMPORAL_REDIRECT)
    permanent = _url(ing, PERMANENT_REDIRECT)
    code = _int(ing, PERMANENT_REDIRECT_CODE)
    if not 300 <= code <= 308:  # http.StatusMultipleChoices .. StatusPermanentRedirect
        code = 301
    if permanent is None:
        return None
    return RedirectURL(code, permanent, relative, PERMANENT_REDIRECT)


def _app_root(ing: Ingress, report: Callable[[Diagnostic], None]) -> AppRoot | None:
    """rewrite.Parse's app-root: a bad value is logged and ignored (never refuses)."""
    raw = _value(ing, APP_ROOT)
    if not raw:
        return None
    problem = None
    if not _PATH_WITH_CAPTURE.match(raw):
        problem = 'only "/", letters, digits and "-._~:" are allowed'
    elif not raw.startswith("/"):
        # url.ParseRequestURI refuses a relative path; an absolute URL is refused too.
        problem = "it must be a path starting with /, not a URL"
    elif "$" in raw:
        # nginx would expand "$..." as a variable in `return 302 ...`; we expand none.
        problem = 'it contains "$", an nginx variable ingressproxy does not expand'
    if problem is not None:
        msg = f'"{raw}" is not a valid app-root ({problem}); ingress-nginx ignores it'
        report(annotation_diagnostic(ing, "invalid-annotation", msg, APP_ROOT))
        return None
    return AppRoot(raw)


# --------------------------------------------------------------------------- app-root per host


def app_roots(
    ingresses: Iterable[tuple[Ingress, AppRoot]], report: Callable[[Diagnostic], None]
) -> dict[str | None, tuple[Ingress, AppRoot]]:
    """host -> the app-root its server redirects "/" to, from (Ingress, app-root) pairs in
    ingress-nginx's order (oldest first).

    nginx.tmpl writes the `if ($uri = /)` once per location that carries app-root, in the
    server block, in the server's location order (longest path first): the first one
    written answers. So the Ingress with the longest path on the host wins; on a tie, the
    older one. The others are reported when they ask for another root.
    """
    best: dict[str | None, tuple[tuple[int, str, int], Ingress, AppRoot]] = {}
    claims: dict[str | None, list[tuple[Ingress, AppRoot]]] = {}
    for order, (ing, root) in enumerate(ingresses):
        for rule in ing.rules:
            paths = [p.path for p in rule.paths or ()] or ["/"]
            for path in paths:
                rank = (len(path), path, -order)
                got = best.get(rule.host)
                if got is None or rank > got[0]:
                    best[rule.host] = (rank, ing, root)
            claims.setdefault(rule.host, []).append((ing, root))
    out = {host: (ing, root) for host, (_, ing, root) in best.items()}
    for host, pairs in claims.items():
        winner, root = out[host]
        seen: set[int] = set()
        for ing, other in pairs:
            if ing is winner or other == root or id(ing) in seen:
                continue
            seen.add(id(ing))
            what = f'host "{host}"' if host is not None else "rules without a host"
            msg = (
                f"{what} redirects / to {root.root}, the app-root of {winner.ref} (the server's"
                f" first location with one); this app-root ({other.root}) is not used"
            )
            report(annotation_diagnostic(ing, "app-root-ignored", msg, APP_ROOT))
    return out


def add_app_root_routers(
    table: RouteTable,
    roots: Mapping[str | None, tuple[Ingress, AppRoot]],
    policies: Mapping[ObjectRef, IngressPolicy],
    entrypoint: EntryPoint,
) -> tuple[RouteTable, int]:
    """`table` (of `entrypoint`) with an `Exact /` router answering with the app-root redirect
    on each host of `roots` where no router takes "/": nginx's `if` is in the server block, so
    "/" is redirected even when no location of the Ingresses matches it. Returns the table
    and the number of routers added."""
    exact: dict[str, HostTable] = dict(table.exact_hosts)
    wildcard: dict[str, HostTable] = dict(table.wildcard_hosts)
    any_host = table.any_host
    added = 0
    for host, (ing, root) in roots.items():
        policy = policies.get(ing.ref, IngressPolicy())
        if entrypoint not in policy.entrypoints:
            continue
        if host is None:
            current = any_host
        elif host.startswith("*."):
            current = wildcard.get(host[2:])
        else:
            current = exact.get(host)
        if current is None or current.match_path("/") is not None or current.default is not None:
            continue
        where = f"metadata.annotations.{APP_ROOT}"
        router = Router(
            ingress=ing.ref,
            source=ing.meta.source_of(where),
            field=where,
            host=host,
            path="/",
            path_type=PathType.EXACT,
            backend=Backend(
                ing.meta.namespace,
                "app-root",
                "",
                (),
                error="no rule of this host matches /: only the app-root redirect answers it",
            ),
            rule=rule_text(host, "/", PathType.EXACT),
            filters=(root,),
            entrypoints=policy.entrypoints,
            dialect="nginx",
            dialect_reason=policy.dialect_reason,
        )
        updated = replace(current, exact=MappingProxyType({**current.exact, "/": router}))
        added += 1
        if host is None:
            any_host = updated
        elif host.startswith("*."):
            wildcard[host[2:]] = updated
        else:
            exact[host] = updated
    if not added:
        return table, 0
    return replace(
        table,
        exact_hosts=MappingProxyType(exact),
        wildcard_hosts=MappingProxyType(wildcard),
        any_host=any_host,
    ), added
