"""ingress-nginx's basic authentication annotations (auth-type, auth-secret,
auth-secret-type, auth-realm), as a BasicAuth filter.

As internal/ingress/annotations/auth Parse builds it: `auth-type` must be basic or digest;
`auth-secret` names a Secret `name` or `namespace/name` of the Ingress's own namespace (a
Secret in another namespace is refused: AllowCrossNamespaceResources is off by default);
`auth-secret-type` auth-file (default: the key `auth` holds htpasswd lines) or auth-map (one
user per key, its value the hash); `auth-realm` (absent: ""). Anything Parse refuses after
`auth-type` is given is a LocationDenied: the location answers 503 for every request, so a
mistake never serves the route unprotected. Digest authentication (nginx's auth_digest
module) is not done here: such a location fails closed too, with an error saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...ir.filters import BasicAuth
from ...ir.passwords import parse_htpasswd, supported
from ...manifests.model import Diagnostic, Ingress, Secret, Severity
from .annotations import PREFIX, annotation_diagnostic

__all__ = ["AUTH_KEYS", "basic_auth"]

AUTH_TYPE = PREFIX + "auth-type"
AUTH_SECRET = PREFIX + "auth-secret"
AUTH_SECRET_TYPE = PREFIX + "auth-secret-type"
AUTH_REALM = PREFIX + "auth-realm"
AUTH_KEYS = frozenset({AUTH_TYPE, AUTH_SECRET, AUTH_SECRET_TYPE, AUTH_REALM})


def basic_auth(
    ing: Ingress, secrets: Mapping[tuple[str, str], Secret], report: Callable[[Diagnostic], None]
) -> BasicAuth | None:
    """The BasicAuth filter of `ing`'s locations, None without `auth-type`."""
    notes = ing.meta.annotations
    kind = notes.get(AUTH_TYPE)
    if kind is None:
        return None
    realm = notes.get(AUTH_REALM, "")

    def denied(key: str, why: str) -> BasicAuth:
        msg = f"{why}: ingress-nginx denies the location, every request gets 503"
        report(annotation_diagnostic(ing, "auth-denied", msg, key, Severity.ERROR))
        return BasicAuth({}, realm, denied=why)

    if kind not in ("basic", "digest"):
        return denied(AUTH_TYPE, f'invalid authentication type "{kind}" (basic or digest)')
    if kind == "digest":
        return denied(AUTH_TYPE, "digest authentication is not supported by ingressproxy yet")
    secret_type = notes.get(AUTH_SECRET_TYPE, "auth-file")
    if secret_type not in ("auth-file", "auth-map"):
        return denied(AUTH_SECRET_TYPE, f'invalid auth-secret-type "{secret_type}"')
    ref = notes.get(AUTH_SECRET)
    if not ref:
        return denied(AUTH_SECRET, "no auth-secret names the Secret with the users")
    namespace, _, name = ref.rpartition("/")
    namespace = namespace or ing.meta.namespace
    if namespace != ing.meta.namespace:
        return denied(AUTH_SECRET, "cross namespace usage of secrets is not allowed")
    secret = secrets.get((namespace, name))
    if secret is None:
        return denied(AUTH_SECRET, f'Secret "{namespace}/{name}" is not in the manifests')
    if secret_type == "auth-file":
        content = secret.data.get("auth")
        if content is None:
            why = f'Secret "{namespace}/{name}" has no key "auth" (an htpasswd file)'
            return denied(AUTH_SECRET, why)
        users, bad = parse_htpasswd(content.decode("utf-8", "replace"))
        if bad:
            lines = ", ".join(map(str, bad))
            msg = f'Secret "{namespace}/{name}" key "auth": line(s) {lines} are not user:hash'
            report(annotation_diagnostic(ing, "invalid-auth-secret", msg, AUTH_SECRET))
    else:
        users = {u: v.decode("utf-8", "replace").strip() for u, v in secret.data.items()}
    for user in sorted(u for u, h in users.items() if not supported(h)):
        msg = (
            f'Secret "{namespace}/{name}": the hash of user "{user}" is in a format ingressproxy'
            " does not read (bcrypt, apr1, MD5-crypt, SHA-crypt, {SHA}, {SSHA}, {PLAIN}): that"
            " user cannot sign in"
        )
        report(annotation_diagnostic(ing, "invalid-auth-secret", msg, AUTH_SECRET))
    return BasicAuth(users, realm)
