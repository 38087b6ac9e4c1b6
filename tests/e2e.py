"""End-to-end test helpers: real echo backends on 127.0.0.1:0, EndpointSlices naming their ports,
and the whole app (loader -> compiler -> proxy) serving a manifests folder on a real socket.

Used by test_conformance.py and test_examples.py; every wait is bounded by serve_in_thread.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML
from starlette.applications import Starlette

from ingressproxy.server.app import create_app
from ingressproxy.server.settings import Settings
from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import serve_in_thread

__all__ = [
    "CONFORMANCE",
    "EXAMPLES",
    "Cluster",
    "Echo",
    "Pod",
    "Served",
    "ServiceSpec",
    "cluster",
    "echo",
    "endpoint_slices_yaml",
    "example_copy",
    "http_client",
    "prepare_folder",
    "run_proxy",
    "services_in",
]

TESTS = Path(__file__).resolve().parent
CONFORMANCE = TESTS / "fixtures" / "conformance"
EXAMPLES = TESTS.parent / "examples"

# The file the helpers write next to the fixture's own manifests; sorts after them.
ENDPOINTS_FILE = "zz-e2e-endpointslices.yaml"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A Service found in a fixture folder: what its EndpointSlices must name."""

    namespace: str
    name: str
    port_names: tuple[str | None, ...]  # None for an unnamed port


@dataclass(frozen=True, slots=True)
class Pod:
    """One running echo backend standing in for a Pod of a Service."""

    namespace: str
    service: str
    name: str
    port: int  # on 127.0.0.1


@dataclass(frozen=True, slots=True)
class Echo:
    """What an echo backend (ingressproxy.echo) reported about the request it received."""

    service: str
    namespace: str
    pod: str
    method: str
    target: str  # the raw request target: path and query, as the backend received them
    host: str
    proto: str
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # lower-case names

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def echo(response: httpx.Response) -> Echo:
    """Parse an echo backend's JSON answer (fails the test with the body if it is not one)."""
    try:
        data: dict[str, Any] = response.json()
        headers = {
            str(k).lower(): tuple(str(v) for v in vs) for k, vs in dict(data["headers"]).items()
        }
        return Echo(
            service=str(data["service"]),
            namespace=str(data["namespace"]),
            pod=str(data["pod"]),
            method=str(data["method"]),
            target=str(data["path"]),
            host=str(data["host"]),
            proto=str(data["proto"]),
            headers=headers,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise AssertionError(
            f"not an echo answer: {response.status_code} {response.text[:300]!r}"
        ) from exc


# --------------------------------------------------------------------------- manifests


def _yaml_documents(folder: Path) -> Iterator[dict[str, Any]]:
    yaml = YAML(typ="safe", pure=True)
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".yaml", ".yml") and path.is_file():
            for doc in yaml.load_all(path.read_text(encoding="utf-8")):
                if isinstance(doc, dict):
                    yield doc


def services_in(folder: Path) -> list[ServiceSpec]:
    """Every non-ExternalName Service in the folder, in file order."""
    found: list[ServiceSpec] = []
    for doc in _yaml_documents(folder):
        spec = doc.get("spec") or {}
        if doc.get("kind") != "Service" or spec.get("type") == "ExternalName":
            continue
        meta = doc.get("metadata") or {}
        names = tuple(p.get("name") for p in spec.get("ports") or ())
        found.append(ServiceSpec(meta.get("namespace") or "default", meta["name"], names))
    return found


def endpoint_slices_yaml(specs: Collection[ServiceSpec], pods: Collection[Pod]) -> str:
    """One EndpointSlice per Pod: a slice has one port list for all its endpoints, and every
    echo backend listens on its own ephemeral port. Each of the Service's port names maps to
    that port (the endpoint port carries the Service port's name)."""
    by_service = {(s.namespace, s.name): s for s in specs}
    docs: list[str] = []
    for pod in pods:
        spec = by_service[(pod.namespace, pod.service)]
        ports = "".join(
            (f"  - name: {name}\n    port: {pod.port}\n" if name else f"  - port: {pod.port}\n")
            for name in spec.port_names
        )
        docs.append(
            "apiVersion: discovery.k8s.io/v1\n"
            "kind: EndpointSlice\n"
            "metadata:\n"
            f"  name: {pod.name}\n"
            f"  namespace: {pod.namespace}\n"
            "  labels:\n"
            f"    kubernetes.io/service-name: {pod.service}\n"
            "addressType: IPv4\n"
            "ports:\n"
            f"{ports}"
            "endpoints:\n"
            '  - addresses: ["127.0.0.1"]\n'
            "    conditions: {ready: true}\n"
        )
    return "---\n".join(docs)


def prepare_folder(fixture: Path, dest: Path, *, exclude: Collection[str] = ()) -> Path:
    """Copy a fixture folder to `dest`, leaving out the files named in `exclude`."""
    shutil.copytree(fixture, dest, ignore=lambda _d, names: [n for n in names if n in exclude])
    return dest


def example_copy(name: str, dest: Path) -> tuple[Path, int]:
    """examples/`name` copied to `dest`, its EndpointSlices' port (8080) replaced by a port
    free on every loopback address they name, and that port. `--fake-backends` on the copy
    binds only free sockets, whatever else runs here: `make run` holds 127.0.N.x:8080, and
    another test run the same addresses. Only the port changes: line numbers, addresses,
    Services and Ingresses stay the example's."""
    folder = prepare_folder(EXAMPLES / name, dest)
    texts = {path: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.yaml"))}
    addresses = sorted(
        {a for text in texts.values() for a in re.findall(r"\b127(?:\.\d{1,3}){3}\b", text)}
    )
    port = _port_free_on(addresses)
    for path, text in texts.items():
        docs = text.split("\n---\n")
        docs = [
            re.sub(r"(?m)^(\s+port:) 8080$", rf"\1 {port}", d) if "kind: EndpointSlice" in d else d
            for d in docs
        ]
        path.write_text("\n---\n".join(docs), encoding="utf-8")
    return folder, port


def _port_free_on(addresses: Collection[str], tries: int = 50) -> int:
    """A port no socket listens on at any of `addresses` (all loopback): the kernel's free
    port on the first, checked on the others by binding them too."""
    first_address, *others = sorted(addresses) or ["127.0.0.1"]
    for _ in range(tries):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind((first_address, 0))
            port: int = first.getsockname()[1]
            try:
                for address in others:
                    stack.enter_context(socket.socket()).bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free on all of {', '.join(addresses)}")


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True, slots=True)
class Cluster:
    """Running echo Pods for every Service of a fixture folder; `write` lays out a manifests
    folder (a copy of the fixture plus EndpointSlices naming the Pods' real ports)."""

    fixture: Path
    services: tuple[ServiceSpec, ...]
    pods: tuple[Pod, ...]

    def write(
        self,
        dest: Path,
        *,
        exclude: Collection[str] = (),
        extra: Mapping[str, str] | None = None,
    ) -> Path:
        """Copy the fixture to `dest` (without `exclude`), add the EndpointSlices and the
        `extra` files (name -> YAML text)."""
        folder = prepare_folder(self.fixture, dest, exclude=exclude)
        slices = endpoint_slices_yaml(self.services, self.pods)
        (folder / ENDPOINTS_FILE).write_text(slices, encoding="utf-8")
        for name, text in (extra or {}).items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder


@contextlib.contextmanager
def cluster(fixture: Path, replicas: Mapping[str, int] | None = None) -> Iterator[Cluster]:
    """Start `replicas[service]` (default 1) echo backends for each Service in `fixture`, each
    on its own 127.0.0.1:0 socket; Pods are named `<service>-<i>`."""
    replicas = replicas or {}
    specs = services_in(fixture)
    pods: list[Pod] = []
    with contextlib.ExitStack() as stack:
        for spec in specs:
            for i in range(replicas.get(spec.name, 1)):
                name = f"{spec.name}-{i}"
                app = create_echo_app(spec.name, pod=name, namespace=spec.namespace)
                server = stack.enter_context(serve_in_thread(app))
                pods.append(Pod(spec.namespace, spec.name, name, server.port))
        yield Cluster(fixture, tuple(specs), tuple(pods))


@dataclass(frozen=True, slots=True)
class Served:
    """The proxy app running on a socket, and a client bound to it."""

    app: Starlette  # tests read app.state.holder and app.state.admin_port
    base_url: str
    client: httpx.Client

    def request(
        self,
        method: str,
        path: str,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send `method path` with `Host: host` (the proxy's own address when None)."""
        sent = dict(headers or {})
        if host is not None:
            sent["Host"] = host
        return self.client.request(method, path, headers=sent)

    def get(self, path: str, host: str | None = None) -> httpx.Response:
        return self.request("GET", path, host)


@contextlib.contextmanager
def run_proxy(
    folder: Path, *, fake_backends: bool = False, watch: bool = False, **settings: Any
) -> Iterator[Served]:
    """The whole app on `folder` (admin off unless asked), served by uvicorn on 127.0.0.1:0
    as `ingressproxy serve` runs it. Entered once the lifespan (the first load) has finished."""
    settings.setdefault("admin_port", None)
    app = create_app(
        Settings(manifests=folder, **settings), watch=watch, fake_backends=fake_backends
    )
    with (
        serve_in_thread(app, settings=app.state.settings) as server,
        http_client(server.url) as client,
    ):
        yield Served(app, server.url, client)


def http_client(base_url: str) -> httpx.Client:
    """A client that talks only to `base_url`: no proxies from the environment, no redirects."""
    return httpx.Client(base_url=base_url, trust_env=False, follow_redirects=False, timeout=10.0)
