"""`ingressproxy check DIR`: every diagnostic, compiler-style or JSON, and flavor comparisons.

Flow: files -> reloader.build_snapshot (exactly what `serve` installs) -> diagnostics -> report;
with `--compare`, the same manifests built once per flavor and asked the same requests. Reads
only the folder (or standard input): no network, no cluster, so it runs as a CI step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from ..frontends.options import CompileOptions
from ..frontends.semantics import Flavor
from ..ir.dump import dump_diagnostic
from ..ir.model import Router
from ..ir.snapshot import Snapshot
from ..ir.table import RouteTable, prefix_key
from ..manifests.model import Diagnostic, Severity
from ..server.reloader import STDIN, build_snapshot, read_stdin
from .explain import route_label

__all__ = [
    "Difference",
    "Outcome",
    "compare_flavors",
    "outcome",
    "run_check",
    "summarized",
]


def run_check(
    root: Path,
    options: CompileOptions,
    *,
    fmt: str = "text",
    strict: bool = False,
    compare: Sequence[Flavor] = (),
    out: TextIO,
) -> int:
    """Print the report for `root` to `out`; the exit status: 1 on errors (or, with `strict`,
    warnings), else 0. Differences between flavors are information, not failures."""
    data = read_stdin() if root == STDIN else None  # read once: --compare builds it again
    snap = _build(root, options, data)
    differences = compare_flavors(root, options, compare, stdin=data) if compare else []
    errors = sum(1 for d in snap.diagnostics if d.severity is Severity.ERROR)
    warnings = sum(1 for d in snap.diagnostics if d.severity is Severity.WARNING)
    if fmt == "json":
        report = _json_report(root, options, snap, errors, warnings, compare, differences)
        out.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        out.writelines(f"{line}\n" for line in summarized(snap.diagnostics))
        if compare:
            out.writelines(_compare_text(compare, differences))
        summary = (
            f"{root}: {snap.objects} objects, {snap.routes} routes, {errors} errors,"
            f" {warnings} warnings"
        )
        if options.flavor not in (Flavor.SPEC, Flavor.AUTO):  # AUTO is the default
            summary += f" (flavor {options.flavor})"
        if compare:
            summary += f", {len(differences)} differences between {', '.join(compare)}"
        out.write(summary + "\n")
    return 1 if errors or (strict and warnings) else 0


# A text report longer than this is summarised per diagnostic code (--format json keeps all):
# a folder of 10,000 Ingresses must not bury its one error under 20,000 warnings.
MAX_TEXT_LINES = 100


def summarized(diagnostics: Sequence[Diagnostic], limit: int = MAX_TEXT_LINES) -> list[str]:
    """The diagnostics as lines, all of them when they fit in `limit` (less one line for the
    summary); else grouped by severity and code, errors first, each group showing its first
    few and one line counting the rest, with where they start."""
    if len(diagnostics) < limit:
        return [str(d) for d in diagnostics]
    groups: dict[tuple[bool, str], list[Diagnostic]] = {}
    for d in diagnostics:
        groups.setdefault((d.severity is not Severity.ERROR, d.code), []).append(d)
    ordered = [groups[k] for k in sorted(groups, key=lambda k: k[0])]  # stable: errors first
    keep = 1
    for candidate in (5, 3, 2, 1):
        lines = sum(min(len(g), candidate) + (len(g) > candidate) for g in ordered)
        if lines < limit:
            keep = candidate
            break
    out: list[str] = []
    for group in ordered:
        out.extend(str(d) for d in group[:keep])
        rest = group[keep:]
        if rest:
            where = ", ".join(str(d.source) for d in rest[:3] if d.source is not None)
            first = group[0]
            out.append(
                f"... and {len(rest)} more {first.severity} {first.code}"
                + (f" (next at {where}{', ...' if len(rest) > 3 else ''})" if where else "")
                + "; --format json lists every diagnostic"
            )
    return out[: limit - 1]


def _build(root: Path, options: CompileOptions, stdin: bytes | None) -> Snapshot:
    built = build_snapshot(root, options, stdin=stdin)
    if built is None:  # only when asked to skip an unchanged digest, which we never do
        raise RuntimeError("build_snapshot returned nothing")
    return built[0]


def _json_report(
    root: Path,
    options: CompileOptions,
    snap: Snapshot,
    errors: int,
    warnings: int,
    compare: Sequence[Flavor],
    differences: list[Difference],
) -> dict[str, object]:
    report: dict[str, object] = {
        "manifests": str(root),
        "flavor": str(options.flavor),
        "objects": snap.objects,
        "routes": snap.routes,
        "errors": errors,
        "warnings": warnings,
        "diagnostics": [dump_diagnostic(d) for d in snap.diagnostics],
    }
    if compare:
        report["compare"] = {
            "flavors": [str(f) for f in compare],
            "differences": [d.to_json() for d in differences],
        }
    return report


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request gets from one table: the status, and the rule and backend deciding it."""

    status: int  # 200 (forwarded to an endpoint), 404, 503
    rule: str  # "Ingress ns/name spec.rules[0].http.paths[1]", "" when no rule matched
    backend: str  # the Backend key, "" for 404
    reason: str = ""  # 503: why the backend is unusable
    # How a person names the rule; flavors may word one rule differently, so not compared.
    route: str = field(default="", compare=False)

    def text(self) -> str:
        if self.status == 404:
            return "404 no rule matches"
        tail = f": {self.reason}" if self.reason else ""
        turns = " in turn" if " + " in self.backend else ""
        return f"{self.status} {self.backend}{turns}{tail} ({self.route})"

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "rule": self.rule or None,
            "route": self.route or None,
            "backend": self.backend or None,
            "reason": self.reason or None,
        }


def outcome(table: RouteTable, host: str, path: str) -> Outcome:
    route = table.route(host, path)
    if route is None:
        return Outcome(404, "", "")
    backend = route.backend
    rule = f"{route.ingress} {route.field}"
    label = route_label(route)
    if backend.error is not None or not backend.endpoints:
        return Outcome(503, rule, backend.key, backend.error or "no endpoints", label)
    return Outcome(200, rule, backend.key, route=label)


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True, slots=True)
class Difference:
    """One request shape (host + path class) that the flavors route differently."""

    host: str  # the example request's host
    host_shape: str  # "api.example.com", "one label below *.example.com", "any other host"
    path: str  # the example request's (canonical) path
    path_shape: str  # how the path relates to the rule it was derived from
    outcomes: tuple[tuple[Flavor, Outcome], ...]

    @property
    def url(self) -> str:
        return f"http://{self.host}{self.path}"

    def to_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "host": self.host,
            "hostShape": self.host_shape,
            "path": self.path,
            "pathShape": self.path_shape,
            "outcomes": {str(f): o.to_json() for f, o in self.outcomes},
        }


def compare_flavors(
    root: Path,
    options: CompileOptions,
    flavors: Sequence[Flavor],
    *,
    stdin: bytes | None = None,
) -> list[Difference]:
    """Build the folder once per flavor and list every request shape whose outcome differs.

    Candidate requests come from the rules themselves: for each rule path, the path itself,
    with and without a trailing '/', extended inside its last element and below it, its
    parent, and a path no rule names; on each rule's host (one label below a wildcard), and
    on a host no rule names.
    """
    tables = [(f, _build(root, replace(options, flavor=f), stdin).table) for f in flavors]
    routes = [r for _, t in tables for r in _all_routes(t)]
    hosts = _candidate_hosts([t for _, t in tables])
    paths = _candidate_paths(routes)
    found: list[Difference] = []
    for host, host_shape in hosts:
        for path, path_shape in paths:
            outcomes = tuple((f, outcome(t, host, path)) for f, t in tables)
            if len({o for _, o in outcomes}) > 1:
                found.append(Difference(host, host_shape, path, path_shape, outcomes))
    return found


def _all_routes(table: RouteTable) -> Iterator[Router]:
    for r in table.routes():
        yield r
        yield from (o.route for o in r.overridden)
        yield from r.sharing


def _candidate_hosts(tables: Iterable[RouteTable]) -> list[tuple[str, str]]:
    exact: set[str] = set()
    wildcards: set[str] = set()
    for t in tables:
        exact.update(t.exact_hosts)
        wildcards.update(t.wildcard_hosts)
    out = [(h, h) for h in sorted(exact)]
    for suffix in sorted(wildcards):
        label = "a"
        while f"{label}.{suffix}" in exact:
            label += "a"
        out.append((f"{label}.{suffix}", f"one label below *.{suffix}"))
    other = "other.invalid"
    while other in exact or other.split(".", 1)[1] in wildcards:
        other = "x" + other
    out.append((other, "a host no rule names"))
    return out


def _candidate_paths(routes: Iterable[Router]) -> list[tuple[str, str]]:
    found: dict[str, str] = {}

    def add(path: str, shape: str) -> None:
        found.setdefault(path, shape)

    rule_paths = sorted({r.path for r in routes if r.path is not None})
    for p in rule_paths:
        add(p, f"{p} exactly")
    for p in rule_paths:
        key = prefix_key(p)
        if p.endswith("/"):
            add(key or "/", f"{p} without its trailing '/'")
        else:
            add(p + "/", f"{p} with a trailing '/'")
        add(key + "x", f"{p} followed by more characters in its last element")
        add(key + "/x", f"below {key or ''}/")
        parent = key[: key.rfind("/")] if key else ""
        add(parent or "/", f"the parent of {p}")
    token = "zz"
    while any(token in p for p in rule_paths):
        token += "z"
    add(f"/{token}", "a path no rule names")
    return sorted(found.items())


def _compare_text(flavors: Sequence[Flavor], differences: list[Difference]) -> Iterator[str]:
    names = ", ".join(flavors)
    if not differences:
        yield f"compare {names}: every request shape routes the same\n"
        return
    count = len(differences)
    yield f"compare {names}: {count} request shape{'s' if count > 1 else ''} route differently\n"
    width = max(len(f) for f in flavors)
    for d in differences:
        yield f"  {d.url}  (host: {d.host_shape}; path: {d.path_shape})\n"
        for f, o in d.outcomes:
            yield f"    {f:<{width}}  {o.text()}\n"
