"""Resolve an Ingress service backend (Service + port) to its ready endpoints.

Flow: compiler -> BackendResolver.resolve(...) -> ir.model.Backend, plus the problem to report.
Pure: indexes the decoded Services / EndpointSlices / Endpoints once, resolves each
namespace/service:port once, and hands out the same Backend object to every route using it.
Sources, first that applies: a backend override (`--backend`), the folder's EndpointSlices or
Endpoints, a DNS name for Services that have neither (`--dns-backends`).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ..ir.model import Backend, Endpoint, Router
from ..ir.table import RouteTable
from ..manifests.model import (
    Diagnostic,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    IngressServiceBackend,
    Manifests,
    Service,
    ServiceBackendPort,
    ServicePort,
    Severity,
)
from .traefik.annotations import SERVERS_SCHEME

__all__ = [
    "DNS_PLACEHOLDERS",
    "BackendOverride",
    "BackendResolver",
    "Problem",
    "Resolved",
    "dns_host",
    "unbacked_services",
]

# The label that ties an EndpointSlice to its Service (discovery.k8s.io/v1).
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"

_SCHEMES = {"http": "http", "https": "https"}


def _service_scheme(svc: Service, service_port: ServicePort | None) -> str | None:
    """Traefik's getProtocol: the Service's serversscheme annotation, else https for a port
    numbered 443 or named https*; None leaves the endpoints as they are (http)."""
    raw = svc.meta.annotations.get(SERVERS_SCHEME)
    if raw is not None and raw.strip().lower() in _SCHEMES:
        return _SCHEMES[raw.strip().lower()]
    if service_port is not None and (
        service_port.port == 443 or (service_port.name or "").startswith("https")
    ):
        return "https"
    return None


def _with_scheme(resolved: Resolved, scheme: str) -> Resolved:
    backend = resolved.backend
    if all(e.scheme == scheme for e in backend.endpoints):
        return resolved
    endpoints = tuple(Endpoint(e.address, e.port, scheme) for e in backend.endpoints)
    return Resolved(replace(backend, endpoints=endpoints), resolved.problem)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a backend is unusable or degraded; `field` is relative to the `service` backend
    field ("name", "port.name", "port.number", or "" for the backend as a whole)."""

    severity: Severity
    code: str
    message: str
    field: str = ""


@dataclass(frozen=True, slots=True)
class Resolved:
    backend: Backend
    problem: Problem | None = None
    # The endpoints are a backend override's URLs: their scheme is the user's, never changed.
    from_override: bool = False


# The names a --dns-backends pattern may use, e.g. "{service}.{namespace}".
DNS_PLACEHOLDERS = ("{service}", "{namespace}")


def dns_host(pattern: str, service: str, namespace: str) -> str:
    """The host name a DNS backend pattern gives for one Service (plain substitution: a
    pattern is user input, so no str.format and its attribute look-ups)."""
    return pattern.replace("{service}", service).replace("{namespace}", namespace)


@dataclass(frozen=True, slots=True)
class BackendOverride:
    """Where a Service lives when the manifests do not say (they rarely hold Endpoints):
    `--backend [NAMESPACE/]SERVICE[:PORT]=URL`. It beats the folder's endpoints.

    `namespace` None matches the Service in any namespace; `port` (a Service port name or
    number, or the port as an Ingress names it) None matches every port of the Service.
    """

    service: str
    endpoints: tuple[Endpoint, ...]
    namespace: str | None = None
    port: str | None = None
    origin: str = "--backend"  # where it was given, for messages: a flag or a file

    @property
    def key(self) -> str:
        ns = f"{self.namespace}/" if self.namespace is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{ns}{self.service}{port}"

    @property
    def specificity(self) -> int:
        """The more specific of two matching overrides wins: namespace, then port."""
        return (self.namespace is not None) * 2 + (self.port is not None)


def _port_field(port: ServiceBackendPort) -> str:
    return "port.name" if port.name is not None else "port.number"


def _endpoint_sort_key(ep: Endpoint) -> tuple[int, int, int, str, int]:
    """IPs numerically (IPv4 before IPv6), then host names, then port: stable output."""
    try:
        ip = ipaddress.ip_address(ep.address)
    except ValueError:
        return (1, 0, 0, ep.address, ep.port)
    return (0, ip.version, int(ip), "", ep.port)


def _same_port_name(endpoint_port: EndpointPort, service_port: ServicePort) -> bool:
    # Endpoint ports carry the Service port's *name* (the endpoints controller copies it);
    # an unnamed Service port (allowed only when it is the only one) matches an unnamed one.
    return (endpoint_port.name or None) == (service_port.name or None)


class BackendResolver:
    """Index the objects of one Manifests and resolve Ingress backends against them.

    Only the Ingress's own namespace is searched: an Ingress cannot reference a Service in
    another namespace (IngressServiceBackend has no namespace field).
    """

    def __init__(
        self,
        manifests: Manifests,
        *,
        allow_external_name: bool,
        overrides: Iterable[BackendOverride] = (),
        dns_pattern: str | None = None,
    ) -> None:
        self._allow_external_name = allow_external_name
        self._overrides: dict[str, list[BackendOverride]] = defaultdict(list)
        for o in overrides:
            self._overrides[o.service].append(o)
        self._dns_pattern = dns_pattern
        self._services: dict[tuple[str, str], Service] = {}
        self._namespaces_by_service: dict[str, set[str]] = defaultdict(set)
        for svc in manifests.services:
            # Decode orders objects by source; the first definition of a name wins.
            self._services.setdefault((svc.meta.namespace, svc.meta.name), svc)
            self._namespaces_by_service[svc.meta.name].add(svc.meta.namespace)
        self._slices: dict[tuple[str, str], list[EndpointSlice]] = defaultdict(list)
        for sl in manifests.endpoint_slices:
            if sl.service_name:
                self._slices[(sl.meta.namespace, sl.service_name)].append(sl)
        self._endpoints: dict[tuple[str, str], Endpoints] = {}
        for eps in manifests.endpoints:
            self._endpoints.setdefault((eps.meta.namespace, eps.meta.name), eps)
        self._cache: dict[tuple[str, str, ServiceBackendPort, str | None], Resolved] = {}

    def resolve(
        self, namespace: str, ref: IngressServiceBackend, scheme: str | None = None
    ) -> Resolved:
        """`scheme` is the Ingress's own choice (ingress_backend_scheme); without it the
        Service decides (_service_scheme); the endpoints speak plain HTTP otherwise."""
        key = (namespace, ref.name, ref.port, scheme)
        got = self._cache.get(key)
        if got is None:
            got = self._resolve(namespace, ref)
            if scheme is None:
                svc = self._services.get((namespace, ref.name))
                if svc is not None:
                    scheme = _service_scheme(svc, self._service_port(svc, ref.port))
            if scheme is not None and not got.from_override:
                got = _with_scheme(got, scheme)
            self._cache[key] = got
        return got

    # ------------------------------------------------------------------ steps

    def _resolve(self, namespace: str, ref: IngressServiceBackend) -> Resolved:
        svc = self._services.get((namespace, ref.name))
        if svc is None:
            missing = self._missing_service(namespace, ref.name)
            override = self._override(namespace, ref, None)
            if override is None:
                return _failed(namespace, ref, missing)
            # The Service may well live in manifests that were not rendered here (another
            # chart); the user said where it is, so route, but keep the finding visible.
            note = f"{missing.message}; routing to {override.origin} {override.key}"
            problem = Problem(Severity.WARNING, missing.code, note, missing.field)
            return Resolved(
                Backend(namespace, ref.name, str(ref.port), override.endpoints),
                problem,
                from_override=True,
            )
        service_port = self._service_port(svc, ref.port)
        if service_port is not None or svc.type == "ExternalName":
            override = self._override(namespace, ref, service_port)
            if override is not None:
                backend = Backend(namespace, ref.name, str(ref.port), override.endpoints)
                return Resolved(backend, from_override=True)
        if svc.type == "ExternalName":
            return self._external_name(svc, ref, service_port)
        if service_port is None:
            return _failed(namespace, ref, self._missing_port(svc, ref.port))
        if self._dns_pattern is not None and not self.has_endpoint_objects(namespace, ref.name):
            return self._dns(svc, ref, service_port, self._dns_pattern)
        endpoints, why = self._ready_endpoints(svc, service_port)
        if not endpoints:
            msg = f"no endpoints found for Service {namespace}/{ref.name} port {ref.port}: {why}"
            problem = Problem(Severity.WARNING, "no-endpoints", msg)
            return _failed(namespace, ref, problem, "no ready endpoints")
        return Resolved(Backend(namespace, ref.name, str(ref.port), endpoints))

    def has_endpoint_objects(self, namespace: str, name: str) -> bool:
        """Whether the manifests hold EndpointSlices or an Endpoints object for the Service
        (ready or not: an empty list is the Service scaled to zero, not an unknown address)."""
        return bool(self._slices.get((namespace, name))) or (namespace, name) in self._endpoints

    def _override(
        self, namespace: str, ref: IngressServiceBackend, service_port: ServicePort | None
    ) -> BackendOverride | None:
        """The most specific override for this Service port; ties go to the first given."""
        candidates = self._overrides.get(ref.name)
        if not candidates:
            return None
        # A port key may name the Service port by name or number, or be the port exactly as
        # the Ingress wrote it (the only choice when the Service is not in the manifests).
        ports = {str(ref.port)}
        if service_port is not None:
            ports.add(str(service_port.port))
            if service_port.name:
                ports.add(service_port.name)
        best: BackendOverride | None = None
        for o in candidates:
            if o.namespace not in (None, namespace) or o.port not in (None, *ports):
                continue
            if best is None or o.specificity > best.specificity:
                best = o
        return best

    @staticmethod
    def _dns(
        svc: Service, ref: IngressServiceBackend, service_port: ServicePort, pattern: str
    ) -> Resolved:
        """The Service as a host name, on its targetPort: how containers reach each other in a
        compose network or as CI service containers, where the Pod's port is the container's."""
        ns, name = svc.meta.namespace, svc.meta.name
        target = service_port.target_port
        if isinstance(target, str):
            # A named targetPort is a containerPort name of the Pods, which are not here.
            msg = (
                f"Service {ns}/{name} port {ref.port} has the named targetPort"
                f' "{target}", which only the Pods define; --dns-backends needs a number there,'
                f" or give the address with --backend {ns}/{name}:{ref.port}=URL"
            )
            problem = Problem(Severity.WARNING, "dns-named-target-port", msg)
            return _failed(ns, ref, problem, f'named targetPort "{target}" unknown without Pods')
        port = service_port.port if target is None else target
        endpoint = Endpoint(dns_host(pattern, name, ns), port)
        return Resolved(Backend(ns, name, str(ref.port), (endpoint,)))

    def _missing_service(self, namespace: str, name: str) -> Problem:
        msg = f"Service {namespace}/{name} not found"
        elsewhere = sorted(self._namespaces_by_service.get(name, set()) - {namespace})
        if elsewhere:
            where = "namespace " if len(elsewhere) == 1 else "namespaces "
            msg += (
                f" (a Service of that name exists in {where}{', '.join(elsewhere)};"
                " an Ingress can only use Services of its own namespace)"
            )
        return Problem(Severity.ERROR, "missing-service", msg, "name")

    @staticmethod
    def _service_port(svc: Service, port: ServiceBackendPort) -> ServicePort | None:
        # port.number refers to the Service's `port` (not targetPort); port.name to its name.
        for sp in svc.ports:
            if port.name is not None and sp.name == port.name:
                return sp
            if port.number is not None and sp.port == port.number:
                return sp
        return None

    @staticmethod
    def _missing_port(svc: Service, port: ServiceBackendPort) -> Problem:
        wanted = f'"{port.name}"' if port.name is not None else str(port.number)
        if port.name is not None:
            listed = [sp.name or str(sp.port) for sp in svc.ports]
        else:
            listed = [str(sp.port) for sp in svc.ports]
        ports = f"ports: {', '.join(listed)}" if listed else "it has no ports"
        msg = f"Service {svc.meta.namespace}/{svc.meta.name} has no port {wanted} ({ports})"
        return Problem(Severity.ERROR, "missing-port", msg, _port_field(port))

    def _external_name(
        self,
        svc: Service,
        ref: IngressServiceBackend,
        service_port: ServicePort | None,
    ) -> Resolved:
        ns, name = svc.meta.namespace, svc.meta.name
        if not self._allow_external_name:
            # Like Traefik's allowExternalNameServices: an ExternalName Service lets anyone who
            # can write a Service in a namespace make the proxy reach an arbitrary host.
            msg = (
                f"Service {ns}/{name} is of type ExternalName ({svc.external_name}), which is"
                " disabled; start with --allow-external-name to route to it"
            )
            problem = Problem(Severity.ERROR, "external-name-disabled", msg, "name")
            error = "ExternalName Services are disabled (--allow-external-name)"
            return _failed(ns, ref, problem, error)
        if not svc.external_name:
            msg = f"Service {ns}/{name} is of type ExternalName but has no spec.externalName"
            problem = Problem(Severity.ERROR, "missing-external-name", msg, "name")
            return _failed(ns, ref, problem)
        if service_port is not None:
            target = service_port.target_port
            number = target if isinstance(target, int) else service_port.port
        elif ref.port.number is not None:
            # ExternalName Services often list no ports; Traefik then uses the number as given.
            number = ref.port.number
        else:
            return _failed(ns, ref, self._missing_port(svc, ref.port))
        endpoint = Endpoint(svc.external_name, number)
        return Resolved(Backend(ns, name, str(ref.port), (endpoint,)))

    def _ready_endpoints(
        self, svc: Service, service_port: ServicePort
    ) -> tuple[tuple[Endpoint, ...], str]:
        """Ready endpoints for one Service port, and if there are none, why (for the message)."""
        key = (svc.meta.namespace, svc.meta.name)
        slices = self._slices.get(key)
        # EndpointSlices supersede the deprecated v1 Endpoints (as in Traefik v3) whenever any
        # slice names the Service; all of its slices together make up the endpoint set.
        if slices:
            found, not_ready, matched = _from_slices(slices, service_port)
        elif key in self._endpoints:
            found, not_ready, matched = _from_endpoints(self._endpoints[key], service_port)
        else:
            why = (
                f"no EndpointSlice labelled {_SERVICE_NAME_LABEL}={svc.meta.name} and no"
                " Endpoints object of that name"
            )
            return (), why
        if found:
            return tuple(sorted(set(found), key=_endpoint_sort_key)), ""
        if not matched:
            wanted = f'named "{service_port.name}"' if service_port.name else "without a name"
            return (), f"the endpoints have no port {wanted}"
        if not_ready:
            return (), f"{not_ready} endpoint{'s' if not_ready > 1 else ''} not ready"
        return (), "the endpoint list is empty"


def _failed(
    namespace: str, ref: IngressServiceBackend, problem: Problem, error: str | None = None
) -> Resolved:
    """A backend with nothing to send to: the proxy answers 503 and shows `error`."""
    backend = Backend(namespace, ref.name, str(ref.port), (), error or problem.message)
    return Resolved(backend, problem)


def _from_slices(
    slices: Iterable[EndpointSlice], service_port: ServicePort
) -> tuple[list[Endpoint], int, bool]:
    found: list[Endpoint] = []
    not_ready = 0
    matched = False
    for sl in slices:
        port = next((p for p in sl.ports if _same_port_name(p, service_port)), None)
        if port is None:
            continue
        matched = True
        for ep in sl.endpoints:
            # conditions.ready unset means ready (discovery.k8s.io/v1 EndpointConditions).
            if ep.ready is False:
                not_ready += len(ep.addresses)
                continue
            found.extend(Endpoint(addr, port.port) for addr in ep.addresses)
    return found, not_ready, matched


def _from_endpoints(eps: Endpoints, service_port: ServicePort) -> tuple[list[Endpoint], int, bool]:
    found: list[Endpoint] = []
    not_ready = 0
    matched = False
    for subset in eps.subsets:
        port = next((p for p in subset.ports if _same_port_name(p, service_port)), None)
        if port is None:
            continue
        matched = True
        # Only `addresses` are ready; `notReadyAddresses` never receive traffic.
        found.extend(Endpoint(addr, port.port) for addr in subset.addresses)
        not_ready += len(subset.not_ready_addresses)
    return found, not_ready, matched


def _used_backends(table: RouteTable) -> Iterator[tuple[Router, Backend, bool]]:
    """Every Service backend a router of `table` uses, with whether the router is one the
    table leaves out (flavor traefik skips a path whose Service has no endpoints, as
    Traefik does, so it is in no host's routes but still uses the Service)."""
    hosts = [*table.exact_hosts.values(), *table.wildcard_hosts.values()]
    if table.any_host is not None:
        hosts.append(table.any_host)
    routers = [(r, False) for r in table.routes()]
    routers += [(r, True) for t in hosts for r in t.skipped]
    for route, skipped in routers:
        for backend in route.backend.members or (route.backend,):
            yield route, backend, skipped


def unbacked_services(manifests: Manifests, table: RouteTable) -> tuple[Diagnostic, ...]:
    """One warning per Service that routers use and whose address nothing gives: no
    EndpointSlice or Endpoints in the manifests (a cluster makes those, so rendered charts
    lack them), no override, no DNS name. Reported at the Service, with the way out, in every
    dialect: the routers that flavor traefik leaves out use the Service too."""
    resolver = BackendResolver(manifests, allow_external_name=False)
    services = {(s.meta.namespace, s.meta.name): s for s in reversed(manifests.services)}
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    left_out: dict[tuple[str, str], set[bool]] = defaultdict(set)
    for route, backend, skipped in _used_backends(table):
        key = (backend.namespace, backend.service)
        svc = services.get(key)
        if (
            svc is None
            or backend.endpoints
            or svc.type == "ExternalName"
            or resolver.has_endpoint_objects(*key)
        ):
            continue
        users[key].add(str(route.ingress))
        left_out[key].add(skipped)
    out: list[Diagnostic] = []
    for (ns, name), ingresses in sorted(users.items()):
        svc = services[(ns, name)]
        msg = (
            f"used by {', '.join(sorted(ingresses))}, but the manifests have no EndpointSlice"
            " or Endpoints for it and no backend override says where it runs"
            f" ({_unbacked_outcome(left_out[(ns, name)])}): give --backend {ns}/{name}=URL,"
            " a --backends file, or --dns-backends"
        )
        out.append(Diagnostic(Severity.WARNING, "unbacked-service", msg, svc.meta.source, svc.ref))
    return tuple(out)


def _unbacked_outcome(left_out: set[bool]) -> str:
    """What requests for an unbacked Service get: 503 from a route, 404 where the dialect
    left the rule out (flavor traefik)."""
    if left_out == {False}:
        return "requests get 503"
    if left_out == {True}:
        return "its rules are left out: requests get 404 or a less specific rule"
    return "requests get 503, or 404 where a rule is left out"
