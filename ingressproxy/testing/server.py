"""Test support: a real uvicorn server in a thread on a socket bound to 127.0.0.1:0 first.

Used by our own tests (proxy, echo, end to end) and meant for users' tests: binding before the
server starts means no port races, and every wait is bounded and event-driven. Given Settings,
the server is the one `ingressproxy serve` runs (server/stack.py); start_proxy always is.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from ..ir.snapshot import Snapshot, SnapshotHolder
from ..manifests.model import Diagnostic
from ..server.settings import Settings
from ..server.stack import ProxyServer, draining_of, listener_config

if TYPE_CHECKING:
    from ..cli.explain import Explanation
    from ..frontends.backends import BackendOverride
    from ..server.reloader import Reloader

__all__ = [
    "FakeService",
    "LoggedProcess",
    "Proxy",
    "ServerThread",
    "one_service_manifests",
    "serve_in_thread",
    "start_proxy",
]


class _Server(ProxyServer):
    """The server `serve` runs (it sets the proxy app's `draining` as shutdown begins), but it
    reports startup through an Event and leaves signals alone (only the main thread may
    install handlers, and a test run's Ctrl-C belongs to pytest)."""

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config, draining_of(config.app))
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._started_event.set()  # also on failure, so the waiter wakes up and checks

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServerThread:
    """A uvicorn server for `app` running in a daemon thread.

    `start()` binds 127.0.0.1:0, starts the thread and returns once uvicorn is serving;
    `stop()` asks it to exit and joins. `port` and `url` are valid after `start()`.

    `settings`: serve `app` as `ingressproxy serve` does for them, the `web` listener of
    stack.listener_config (the guarded protocol with their limits, the headers uvicorn may
    add or trust, their graceful period; `parser="h11"` puts h11 under the guard); without,
    uvicorn's defaults. Extra keyword arguments go to uvicorn.Config either way (e.g.
    `http="h11"` or `"httptools"`, uvicorn's own protocols).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        settings: Settings | None = None,
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 10.0,
        **uvicorn_kwargs: Any,
    ) -> None:
        uvicorn_kwargs.setdefault("log_level", "warning")
        # None: do not reconfigure logging (pytest's capture keeps working).
        uvicorn_kwargs.setdefault("log_config", None)
        if settings is None:
            uvicorn_kwargs.setdefault("access_log", False)
            uvicorn_kwargs.setdefault("timeout_graceful_shutdown", shutdown_timeout / 2)
            self.config = uvicorn.Config(app, **uvicorn_kwargs)
        else:
            self.config = listener_config(app, settings, "web", **uvicorn_kwargs)
            # stop() waits out the graceful period `serve` would give in-flight requests.
            shutdown_timeout = max(shutdown_timeout, settings.graceful_timeout + 5.0)
        self.host = host
        self.port = 0
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._started = threading.Event()
        self.server = _Server(self.config, self._started)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ServerThread:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            sock.listen(self.config.backlog)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [sock]},
            name=f"uvicorn-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not self._started.wait(self._startup_timeout) or not self.server.started:
            self.stop()
            raise RuntimeError(f"uvicorn on {self.url} did not start")
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is not None:
            self.server.should_exit = True
            thread.join(self._shutdown_timeout)
            if thread.is_alive():
                self.server.force_exit = True
                thread.join(self._shutdown_timeout)
            self._thread = None
            if thread.is_alive():
                raise RuntimeError(f"uvicorn on {self.url} did not stop")
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp, *, settings: Settings | None = None, **uvicorn_kwargs: Any
) -> Iterator[ServerThread]:
    """Serve `app` on 127.0.0.1:<free port> for the duration of the block; with `settings`,
    as `ingressproxy serve` serves it (ServerThread).

    Yields the running ServerThread: `.url` (`http://127.0.0.1:PORT`), `.port`, `.server`.
    """
    server = ServerThread(app, settings=settings, **uvicorn_kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- the whole proxy
# What the pytest plugin (pytest_plugin.py) hands to users' tests; usable without pytest too.


@dataclass(frozen=True, slots=True)
class FakeService:
    """An echo backend (ingressproxy.echo) standing in for a Service, wired in as its
    backend override; it answers every request with JSON naming `service` and `namespace`."""

    key: str  # the override key it serves: "ns/svc" or "svc"
    namespace: str
    service: str
    url: str  # http://127.0.0.1:PORT


class Proxy:
    """A running ingressproxy (the whole app: reload, routing, forwarding) on 127.0.0.1 and a
    client that talks only to it. Made by `start_proxy`; stopped when its block ends."""

    def __init__(
        self, app: Starlette, server: ServerThread, fakes: Mapping[str, FakeService]
    ) -> None:
        self.app = app
        self.server = server
        self.fakes = fakes
        self.client = httpx.Client(
            base_url=server.url, trust_env=False, follow_redirects=False, timeout=10.0
        )

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def admin_url(self) -> str | None:
        port = self.app.state.admin_port
        return None if port is None else f"http://127.0.0.1:{port}"

    @property
    def snapshot(self) -> Snapshot:
        """The configuration serving now (routes, diagnostics, generation)."""
        holder: SnapshotHolder = self.app.state.holder
        return holder.current

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self.snapshot.diagnostics

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`method path` through the proxy with `Host: host` (the proxy's own address when
        None); other keyword arguments go to httpx (content=, json=, params=, ...)."""
        sent = dict(headers or {})
        if host is not None:
            sent["Host"] = host
        return self.client.request(method, path, headers=sent, **kwargs)

    def get(self, path: str, *, host: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, host=host, **kwargs)

    def post(self, path: str, *, host: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, host=host, **kwargs)

    def explain(
        self, url: str, method: str = "GET", headers: Mapping[str, str] | None = None
    ) -> Explanation:
        """How the serving configuration routes `method url`, and why (nothing is sent)."""
        from ..cli.explain import explain

        return explain(self.snapshot, url, method, headers)

    def reload(self) -> Snapshot:
        """Rebuild from the manifests now (after a test edits them without `watch=True`)."""
        reloader: Reloader = self.app.state.reloader
        reloader.reload(force=True)
        return self.snapshot

    def close(self) -> None:
        self.client.close()


def _service_namespaces(snapshot: Snapshot) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for route in snapshot.table.routes():
        for b in route.backend.members or (route.backend,):
            found.setdefault(b.service, set()).add(b.namespace)
    return found


@contextlib.contextmanager
def start_proxy(
    manifests: str | os.PathLike[str],
    *,
    fake: Iterable[str] | str = (),
    backends: Mapping[str, str | Sequence[str]] | None = None,
    dns: str | None = None,
    admin: bool = True,
    watch: bool = False,
    **settings: Any,
) -> Iterator[Proxy]:
    """Serve `manifests` (a folder or file) on 127.0.0.1:<free port> for the block.

    `fake`: Services to stand in for with echo backends, as `ns/svc` or `svc` (or "*": every
    Service an Ingress routes to); each becomes that Service's backend override.
    `backends`: more overrides, `{"ns/svc": "http://127.0.0.1:3001"}` (a list for several).
    `dns`: the --dns-backends pattern, e.g. "{service}". `admin`: start the admin listener on
    a free port (`proxy.admin_url`). `watch`: follow edits of the folder. Other keyword
    arguments are Settings fields (flavor=, ingress_classes=, ...).
    """
    from ..server.app import create_app
    from ..server.overrides import merge_overrides, parse_backend, parse_key
    from ..server.reloader import build_snapshot, compile_options
    from .echo import create_echo_app

    root = Path(manifests)
    keys = [fake] if isinstance(fake, str) else list(fake)
    given: list[BackendOverride] = []
    for key, urls in (backends or {}).items():
        for url in [urls] if isinstance(urls, str) else urls:
            given.append(parse_backend(f"{key}={url}", "start_proxy(backends=)"))
    with contextlib.ExitStack() as stack:
        fakes: dict[str, FakeService] = {}
        if keys:
            # Which namespace a namespace-less key stands for, and what "*" means: ask the
            # configuration the proxy would serve without fakes.
            built = build_snapshot(root, compile_options(Settings(manifests=root, **settings)))
            namespaces = _service_namespaces(built[0]) if built is not None else {}
            if "*" in keys:
                keys.remove("*")
                keys += [f"{ns}/{svc}" for svc, nss in namespaces.items() for ns in sorted(nss)]
            for key in dict.fromkeys(keys):
                ns, svc, _port = parse_key(key, f"start_proxy(fake={key!r})")
                only = sorted(namespaces.get(svc, ())) if ns is None else [ns]
                echo_ns = only[0] if len(only) == 1 else ""
                app = create_echo_app(svc, pod=f"{svc}-fake", namespace=echo_ns)
                srv = stack.enter_context(serve_in_thread(app))
                fakes[key] = FakeService(key, echo_ns, svc, srv.url)
                given.append(parse_backend(f"{key}={srv.url}", "start_proxy(fake=)"))
        settings["backend_overrides"] = merge_overrides(
            settings.get("backend_overrides", ()), given
        )
        settings.setdefault("admin_port", 0 if admin else None)
        settings.setdefault("dns_pattern", dns)
        resolved = Settings(manifests=root, **settings)
        proxy_app = create_app(resolved, watch=watch)
        # The server `ingressproxy serve` runs for these settings (server/stack.py).
        server = stack.enter_context(serve_in_thread(proxy_app, settings=resolved))
        proxy = Proxy(proxy_app, server, MappingProxyType(fakes))
        stack.callback(proxy.close)
        yield proxy


class LoggedProcess:
    """A real process (by default `python -m ingressproxy ARGS`) whose combined output is read
    line by line on a thread, so a test can wait for a log line instead of sleeping."""

    def __init__(
        self,
        *args: str,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stdin: str | None = None,
        wait: float = 20.0,
    ) -> None:
        self.wait = wait
        self.p = subprocess.Popen(
            list(argv) if argv is not None else [sys.executable, "-m", "ingressproxy", *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(env) if env is not None else {**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=cwd,
        )
        if stdin is not None:
            assert self.p.stdin is not None
            self.p.stdin.write(stdin)
            self.p.stdin.close()
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float | None = None) -> re.Match[str]:
        """The next line matching `pattern`, waiting at most `timeout` (default: `wait`)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + (self.wait if timeout is None else timeout)
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            m = rx.search(line)
            if m:
                return m
        raise AssertionError(f"no line matching {pattern!r}; got:\n" + "\n".join(self.seen))

    def expect_counts(self, counts: Mapping[str, int], timeout: float | None = None) -> None:
        """Read lines until each pattern has matched its count, in whatever order they come:
        processes that log concurrently (workers) interleave their lines differently each run."""
        left_over = {re.compile(p): n for p, n in counts.items()}
        deadline = time.monotonic() + (self.wait if timeout is None else timeout)
        while any(n > 0 for n in left_over.values()):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                missing = {rx.pattern: n for rx, n in left_over.items() if n > 0}
                raise AssertionError(
                    f"still waiting for {missing}; got:\n" + "\n".join(self.seen)
                ) from None
            self.seen.append(line)
            for rx in left_over:
                if left_over[rx] > 0 and rx.search(line):
                    left_over[rx] -= 1

    def drain(self) -> list[str]:
        """Every line read so far (after the process ended: all of its output)."""
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` if still running, wait, kill after `wait` seconds; the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=self.wait)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait(timeout=self.wait)


def one_service_manifests(
    host: str, service: str, port: int, *, namespace: str = "default", path: str = "/"
) -> str:
    """The smallest folder's worth of YAML that routes `host` + `path` (Prefix) to one Service
    whose single ready endpoint is 127.0.0.1:`port`: an Ingress, a Service, an EndpointSlice."""
    return f"""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {service}, namespace: {namespace}}}
spec:
  rules:
    - host: {host}
      http:
        paths:
          - path: {path}
            pathType: Prefix
            backend: {{service: {{name: {service}, port: {{name: http}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {service}, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-1
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {service}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
"""
