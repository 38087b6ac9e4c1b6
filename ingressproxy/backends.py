"""Resolve an Ingress service backend (Service + port) to its ready endpoints.

Flow: compiler -> BackendResolver.resolve(...) -> routetable.Backend, plus the problem to report.
Pure: indexes the decoded Services / EndpointSlices / Endpoints once, resolves each
namespace/service:port once, and hands out the same Backend object to every route using it.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .model import (
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
from .routetable import Backend, Endpoint

__all__ = ["BackendResolver", "Problem", "Resolved"]

# The label that ties an EndpointSlice to its Service (discovery.k8s.io/v1).
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"


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

    def __init__(self, manifests: Manifests, *, allow_external_name: bool) -> None:
        self._allow_external_name = allow_external_name
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
        self._cache: dict[tuple[str, str, ServiceBackendPort], Resolved] = {}

    def resolve(self, namespace: str, ref: IngressServiceBackend) -> Resolved:
        key = (namespace, ref.name, ref.port)
        got = self._cache.get(key)
        if got is None:
            got = self._resolve(namespace, ref)
            self._cache[key] = got
        return got

    # ------------------------------------------------------------------ steps

    def _resolve(self, namespace: str, ref: IngressServiceBackend) -> Resolved:
        svc = self._services.get((namespace, ref.name))
        if svc is None:
            return _failed(namespace, ref, self._missing_service(namespace, ref.name))
        service_port = self._service_port(svc, ref.port)
        if svc.type == "ExternalName":
            return self._external_name(svc, ref, service_port)
        if service_port is None:
            return _failed(namespace, ref, self._missing_port(svc, ref.port))
        endpoints, why = self._ready_endpoints(svc, service_port)
        if not endpoints:
            msg = f"no endpoints found for Service {namespace}/{ref.name} port {ref.port}: {why}"
            problem = Problem(Severity.WARNING, "no-endpoints", msg)
            return _failed(namespace, ref, problem, "no ready endpoints")
        return Resolved(Backend(namespace, ref.name, str(ref.port), endpoints))

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
