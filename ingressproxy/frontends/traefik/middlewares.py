"""Traefik Middleware objects referenced by `router.middlewares`, compiled to IR filters.

Flow: pipeline (traefik dialect) -> MiddlewareIndex(manifests) -> router_middlewares(ing) ->
IngressPolicy.middlewares (filters, or why the Ingress's routers are left out) -> the engine
appends them to each router of the Ingress.

References follow Traefik v3 (traefik/traefik pkg/provider/kubernetes): the Ingress
provider hands `router.middlewares` (comma-separated, applied in that order) to the router as
written; a name without `@provider` is qualified with the Ingress provider (`@kubernetes`),
which defines no middlewares, and `<namespace>-<name>@kubernetescrd` names the Middleware
object (crd provider: `Normalize(namespace-name)`), in any namespace. References made inside
Middleware objects (a chain's members) follow crd's resolveReference: `{name, namespace}`
(namespace default the chain's own), another namespace only with allowCrossNamespace
(`--allow-cross-namespace`), and an `@kubernetescrd` name only with it too. A reference that
resolves to nothing, or a Middleware that cannot be built, leaves the router out, as Traefik
does ("middleware ... does not exist"): 404, or a less specific router answers.

Kinds built here, with the semantics of pkg/middlewares/*: stripPrefix, addPrefix,
replacePath, headers (customRequestHeaders / customResponseHeaders; an empty value removes),
redirectScheme, ipAllowList (and ipWhiteList), chain, basicAuth. Authentication and limits
we do not build (digestAuth, forwardAuth, rateLimit, inFlightReq) leave the router out, so
nothing is served without its protection; the other kinds are skipped with a warning.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...ir.filters import (
    AddPrefix,
    BasicAuth,
    Filter,
    HeaderEdit,
    RedirectScheme,
    ReplacePath,
    RequestHeaders,
    ResponseHeaders,
    SourceRange,
    StripPrefix,
)
from ...ir.passwords import parse_htpasswd, supported
from ...manifests.model import Diagnostic, Ingress, Manifests, Middleware, Severity
from .annotations import PREFIX

__all__ = ["MIDDLEWARES", "MiddlewareIndex", "Resolved", "router_middlewares"]

MIDDLEWARES = PREFIX + "router.middlewares"
CRD = "@kubernetescrd"
# Kinds whose absence would serve a protected route unprotected: such a router is left out.
_FAIL_CLOSED = frozenset({"digestAuth", "forwardAuth", "rateLimit", "inFlightReq"})
_MAX_DEPTH = 10  # chains of chains; Traefik refuses recursion


Report = Callable[[Diagnostic], None]
_UNQUALIFIED = (
    " (a name without @provider is the Ingress provider's, which has none: write"
    " <namespace>-<name>@kubernetescrd)"
)
_NO_CRD_REFS = "when allowCrossNamespace is disabled, @kubernetescrd references are disallowed"
_NO_CROSS_NAMESPACE = (
    "allowCrossNamespace is disabled (--allow-cross-namespace), cross-namespace references"
    " are disallowed"
)


def _failed(mw: Middleware, why: str) -> Resolved:
    return Resolved(error=f"Middleware {mw.meta.namespace}/{mw.meta.name}: {why}")


def _diag(mw: Middleware, code: str, msg: str, path: str) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, msg, mw.meta.source_of(path), mw.ref, path)


def _ing_diag(ing: Ingress, code: str, msg: str, where: str) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, msg, ing.meta.source_of(where), ing.ref, where)


def _normalize(name: str) -> str:
    """Traefik's provider.Normalize: runs of other characters than letters and digits -> "-"."""
    return re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-")


@dataclass(frozen=True, slots=True)
class Resolved:
    filters: tuple[Filter, ...] = ()
    error: str | None = None  # set: the routers are left out, this says why
    names: tuple[str, ...] = ()  # the qualified names referenced, in order


class MiddlewareIndex:
    """The folder's Middleware objects by Traefik's qualified name."""

    def __init__(self, manifests: Manifests, *, allow_cross_namespace: bool) -> None:
        self.allow_cross_namespace = allow_cross_namespace
        self._secrets = {(s.meta.namespace, s.meta.name): s for s in reversed(manifests.secrets)}
        self._by_name: dict[str, Middleware] = {}
        for mw in manifests.middlewares:
            key = _normalize(f"{mw.meta.namespace}-{mw.meta.name}") + CRD
            self._by_name.setdefault(key, mw)

    def get(self, qualified: str) -> Middleware | None:
        return self._by_name.get(qualified)

    def build(self, mw: Middleware, report: Report, depth: int = 0) -> Resolved:
        """The filters of one Middleware (its single kind), or why it cannot be built."""
        kinds = [k for k, v in mw.spec.items() if v is not None]
        if len(kinds) != 1:
            return _failed(mw, f"it must set exactly one kind, it sets {len(kinds)}")
        kind = kinds[0]
        conf = mw.spec[kind]
        if not isinstance(conf, Mapping):
            return _failed(mw, f"spec.{kind} is not an object")
        try:
            if kind == "chain":
                return self._chain(mw, conf, report, depth)
            if kind == "basicAuth":
                return self._basic_auth(mw, conf, report)
            built = _build(kind, conf)
        except ValueError as exc:
            return _failed(mw, f"spec.{kind}: {exc}")
        if built is not None:
            filters, ignored = built
            for option in ignored:
                path = f"spec.{kind}.{option}"
                msg = f"{path} is not supported yet: the rest of the middleware applies"
                report(_diag(mw, "unsupported-middleware-option", msg, path))
            return Resolved(filters)
        if kind in _FAIL_CLOSED:
            why = "serving the routes without it would drop their protection"
            return _failed(mw, f"kind {kind} is not supported yet, and {why}")
        msg = f"kind {kind} is not supported yet: the routers using it are served without it"
        report(_diag(mw, "unsupported-middleware", msg, f"spec.{kind}"))
        return Resolved()

    def _basic_auth(self, mw: Middleware, conf: Mapping[str, object], report: Report) -> Resolved:
        """crd's createBasicAuthMiddleware and pkg/middlewares/auth: the users come from a
        Secret of the Middleware's namespace, `kubernetes.io/basic-auth` (username and
        password, the password hashed as {SHA}) or one key of htpasswd lines; realm
        "traefik" by default; the Authorization header goes upstream unless removeHeader;
        headerField names a request header that carries the user."""
        name = _text(conf, "secret")
        if not name:
            return _failed(mw, "spec.basicAuth.secret: auth secret must be set")
        namespace = mw.meta.namespace
        secret = self._secrets.get((namespace, name))
        if secret is None:
            return _failed(mw, f"secret '{namespace}/{name}' not found")
        if secret.type == "kubernetes.io/basic-auth":
            login, password = secret.data.get("username"), secret.data.get("password")
            if login is None or password is None:
                why = f"secret '{namespace}/{name}' must contain both username and password keys"
                return _failed(mw, why)
            digest = base64.b64encode(hashlib.sha1(password).digest()).decode()
            users = {login.decode("utf-8", "replace"): "{SHA}" + digest}
        else:
            if len(secret.data) != 1:
                why = (
                    f"found {len(secret.data)} elements for secret '{namespace}/{name}', must be"
                    " single element exactly"
                )
                return _failed(mw, why)
            (content,) = secret.data.values()
            users, _ = parse_htpasswd(content.decode("utf-8", "replace"))
            if not users:
                return _failed(mw, f"secret '{namespace}/{name}' does not contain any credentials")
        for user in sorted(u for u, h in users.items() if not supported(h)):
            msg = (
                f'the hash of user "{user}" is in a format not read here: that user cannot sign in'
            )
            report(_diag(mw, "invalid-auth-secret", msg, "spec.basicAuth.secret"))
        realm = _text(conf, "realm") or "traefik"
        header = _text(conf, "headerField") or None
        remove = conf.get("removeHeader") is True
        return Resolved((BasicAuth(users, realm, remove_header=remove, user_header=header),))

    def _chain(
        self, mw: Middleware, conf: Mapping[str, object], report: Report, depth: int
    ) -> Resolved:
        if depth >= _MAX_DEPTH:
            return _failed(mw, f"chains nested deeper than {_MAX_DEPTH} (a loop?)")
        members = conf.get("middlewares") or []
        if not isinstance(members, list):
            raise ValueError("middlewares is not a list")
        filters: list[Filter] = []
        parent = mw.meta.namespace
        for i, member in enumerate(members):
            if not isinstance(member, Mapping) or not isinstance(member.get("name"), str):
                raise ValueError(f"middlewares[{i}] has no name")
            name = str(member["name"])
            namespace = member.get("namespace")
            if "@" in name:
                if name.endswith(CRD) and not self.allow_cross_namespace:
                    return _failed(mw, f"chain member {name}: {_NO_CRD_REFS}")
                qualified = name
            else:
                ns = namespace if isinstance(namespace, str) and namespace else parent
                if ns != parent and not self.allow_cross_namespace:
                    return _failed(mw, f"chain member {ns}/{name}: {_NO_CROSS_NAMESPACE}")
                qualified = _normalize(f"{ns}-{name}") + CRD
            found = self.get(qualified)
            if found is None:
                return _failed(mw, f"chain member {qualified} does not exist")
            got = self.build(found, report, depth + 1)
            if got.error is not None:
                return got
            filters += got.filters
        return Resolved(tuple(filters))


def router_middlewares(ing: Ingress, index: MiddlewareIndex, report: Report) -> Resolved:
    """The filters `router.middlewares` gives every router of `ing`, in order; or why its
    routers are left out (said as an error on the annotation)."""
    raw = ing.meta.annotations.get(MIDDLEWARES)
    if raw is None:
        return Resolved()
    where = f"metadata.annotations.{MIDDLEWARES}"
    filters: list[Filter] = []
    names: list[str] = []
    for ref in (r.strip() for r in raw.split(",")):
        if not ref:
            continue
        qualified = ref if "@" in ref else ref + "@kubernetes"
        mw = index.get(qualified)
        if mw is None:
            hint = "" if "@" in ref else _UNQUALIFIED
            why = f'middleware "{qualified}" does not exist{hint}: Traefik leaves the routers out'
            report(_ing_diag(ing, "middleware-not-found", why, where))
            return Resolved(error=why)
        got = index.build(mw, report)
        if got.error is not None:
            msg = f"{got.error}: Traefik leaves the routers that use {qualified} out"
            report(_ing_diag(ing, "invalid-middleware", msg, where))
            return Resolved(error=msg)
        filters += got.filters
        names.append(qualified)
    return Resolved(tuple(filters), names=tuple(names))


# --------------------------------------------------------------------------- kinds


def _strings(conf: Mapping[str, object], key: str) -> list[str]:
    value = conf.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return [str(v) for v in value]


def _text(conf: Mapping[str, object], key: str, default: str = "") -> str:
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (str, int)):
        raise ValueError(f"{key} must be a string")
    return str(value)


def _header_edit(value: object, key: str) -> HeaderEdit:
    """Traefik's custom headers: a value sets the field, an empty value removes it."""
    if value is None:
        return HeaderEdit()
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be a map of header names to values")
    sets = tuple((str(k), str(v)) for k, v in value.items() if v not in ("", None))
    removes = tuple(str(k) for k, v in value.items() if v in ("", None))
    return HeaderEdit(set=sets, remove=removes)


_HEADERS_BUILT = ("customRequestHeaders", "customResponseHeaders")


def _build(kind: str, conf: Mapping[str, object]) -> tuple[tuple[Filter, ...], list[str]] | None:
    """(filters, options not applied) for a kind built here; None for other kinds."""
    if kind == "stripPrefix":
        prefixes = tuple(p.strip() for p in _strings(conf, "prefixes"))
        return (StripPrefix(prefixes, add_header=True, reject_dot_segments=True),), []
    if kind == "addPrefix":
        return (AddPrefix(_text(conf, "prefix")),), []
    if kind == "replacePath":
        return (ReplacePath(_text(conf, "path")),), []
    if kind == "headers":
        request = _header_edit(conf.get("customRequestHeaders"), "customRequestHeaders")
        response = _header_edit(conf.get("customResponseHeaders"), "customResponseHeaders")
        filters: list[Filter] = []
        if request.set or request.remove:
            filters.append(RequestHeaders(request))
        if response.set or response.remove:
            filters.append(ResponseHeaders(response))
        return tuple(filters), sorted(k for k in conf if k not in _HEADERS_BUILT)
    if kind == "redirectScheme":
        scheme = _text(conf, "scheme", "https")
        if scheme != "https":
            raise ValueError(f'scheme "{scheme}": only https is supported here')
        permanent = conf.get("permanent") is True
        port = _text(conf, "port")
        return (RedirectScheme(None, "redirectScheme", permanent=permanent, port=port or None),), []
    if kind in ("ipAllowList", "ipWhiteList"):
        ranges = []
        for text in _strings(conf, "sourceRange"):
            try:
                ranges.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"sourceRange: {exc}") from None
        status = conf.get("rejectStatusCode") or 403
        if not isinstance(status, int):
            raise ValueError("rejectStatusCode must be an integer")
        ignored = ["ipStrategy"] if conf.get("ipStrategy") else []
        return (SourceRange(tuple(ranges), (), status),), ignored
    return None
