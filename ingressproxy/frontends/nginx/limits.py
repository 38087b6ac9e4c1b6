"""ingress-nginx's request rate limits (limit-rps, limit-rpm, limit-burst-multiplier,
limit-allowlist and its alias limit-whitelist), as RateLimit filters.

As internal/ingress/annotations/ratelimit Parse and template.go buildRateLimit build them:
one zone per Ingress and per unit (`<ns>_<name>_<uid>_rps`), keyed by the client address,
`rate=<N>r/s` (or r/m), `limit_req ... burst=<N * multiplier> nodelay` (multiplier default
5); clients in the allow list are not counted; a rejected request gets the ConfigMap's
limit-req-status-code, 503 by default. A value that is not an integer fails ingress-nginx's
validation, which refuses the whole Ingress (`limit_refusal`); a list that is not CIDRs makes
Parse fail, and the limits are then not applied (a warning).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from ...ir.filters import Filter, IPNet, RateLimit
from ...manifests.model import Diagnostic, Ingress, Severity
from .annotations import PREFIX, annotation_diagnostic

__all__ = ["LIMIT_KEYS", "limit_refusal", "rate_limits"]

RPS = PREFIX + "limit-rps"
RPM = PREFIX + "limit-rpm"
MULTIPLIER = PREFIX + "limit-burst-multiplier"
ALLOWLIST = PREFIX + "limit-allowlist"
WHITELIST = PREFIX + "limit-whitelist"  # AnnotationAliases of limit-allowlist
LIMIT_KEYS = frozenset({RPS, RPM, MULTIPLIER, ALLOWLIST, WHITELIST})


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def limit_refusal(ing: Ingress) -> Diagnostic | None:
    """The error that refuses `ing` when limit-rps or limit-rpm is not an integer."""
    for key in (RPS, RPM):
        raw = ing.meta.annotations.get(key)
        if raw is not None and _int(raw) is None:
            msg = (
                f'"{raw}" is not an integer: ingress-nginx refuses an Ingress whose annotation'
                " fails validation, so none of its rules are served"
            )
            return annotation_diagnostic(ing, "invalid-annotation", msg, key, Severity.ERROR)
    return None


def rate_limits(ing: Ingress, report: Callable[[Diagnostic], None]) -> tuple[Filter, ...]:
    notes = ing.meta.annotations
    rps = _int(notes.get(RPS)) or 0
    rpm = _int(notes.get(RPM)) or 0
    if rps <= 0 and rpm <= 0:
        return ()
    multiplier = _int(notes.get(MULTIPLIER))
    if multiplier is None:
        multiplier = 5
    key = ALLOWLIST if ALLOWLIST in notes else WHITELIST
    exempt: list[IPNet] = []
    for text in (t.strip() for t in notes.get(key, "").split(",")):
        if not text:
            continue
        try:
            exempt.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            msg = (
                f'"{text}" is not an address or CIDR: ingress-nginx fails to parse the rate'
                " limits of this Ingress and applies none"
            )
            report(annotation_diagnostic(ing, "invalid-annotation", msg, key))
            return ()
    zone = f"{ing.meta.namespace}_{ing.meta.name}"
    out: list[Filter] = []
    if rps > 0:
        out.append(RateLimit(zone + "_rps", rps * 1000, rps * multiplier, 503, tuple(exempt)))
    if rpm > 0:
        out.append(RateLimit(zone + "_rpm", rpm * 1000 // 60, rpm * multiplier, 503, tuple(exempt)))
    return tuple(out)
