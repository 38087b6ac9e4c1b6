"""The one place that writes a router's rule in Traefik v3 syntax, and its default priority.

Traefik's Ingress provider (loadRouter) joins `Host(%q)` and `<matcher>(%q)` with ` && `;
v3 writes a wildcard host as it is (`Host("*.foo.com")`, matched one label deep by
muxer.DomainMatchHostExpression). The muxer's GetRulePriority is len(rule) in bytes, of the
rule as Go's %q quoted it. We show the rule with backticks, as Traefik's docs write rules.
"""

from __future__ import annotations

from ...manifests.model import PathType

__all__ = ["go_quote", "rule_priority", "rule_text"]

_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(s: str) -> str:
    """Go's strconv.Quote (the %q verb) for the strings a rule holds: `"` and `\\` escaped,
    control characters as escapes, printable non-ASCII kept."""
    out: list[str] = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _parts(host: str | None, path: str | None, path_type: PathType | None) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    if host:
        parts.append(("Host", host))
    if path:
        parts.append(("Path" if path_type is PathType.EXACT else "PathPrefix", path))
    return parts


def rule_text(host: str | None, path: str | None, path_type: PathType | None) -> str:
    """The rule as people read it: Host(`foo.com`) && PathPrefix(`/p`); a default backend
    (no host, no path) is PathPrefix(`/`), which is what it matches."""
    parts = _parts(host, path, path_type)
    if not parts:
        return "PathPrefix(`/`)"
    return " && ".join(f"{matcher}(`{value}`)" for matcher, value in parts)


def rule_priority(host: str | None, path: str | None, path_type: PathType | None) -> int:
    """Traefik's default priority of the router its provider writes for this rule."""
    rule = " && ".join(f"{m}({go_quote(v)})" for m, v in _parts(host, path, path_type))
    return len(rule.encode("utf-8"))
