"""Command line: `ingressproxy serve DIR`, `echo`, `check DIR`, `explain DIR URL`.

The only place that turns flags into Settings and starts uvicorn; everything else is a library.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..frontends.semantics import Flavor, parse_flavor
from ..server.settings import Settings, SettingsError, parse_networks, parse_size

if TYPE_CHECKING:
    from ..frontends.backends import BackendOverride
    from ..frontends.options import CompileOptions

__all__ = ["build_parser", "main", "settings_from_args"]


def _add_routing_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ingress-class",
        action="append",
        default=[],
        metavar="NAME",
        help="serve only Ingresses of this class (repeatable); default: every Ingress",
    )
    p.add_argument(
        "--allow-external-name",
        action="store_true",
        help="allow backends that are Services of type ExternalName",
    )
    p.add_argument(
        "--flavor",
        type=_flavor,
        default=Flavor.SPEC,
        metavar="|".join(Flavor),
        help="route like the Ingress spec (default), ingress-nginx or Traefik (docs/flavors.md)",
    )
    p.add_argument(
        "--default-certificate",
        default=None,
        metavar="NS/SECRET|CERT.pem,KEY.pem",
        help="certificate for TLS clients no Ingress certificate matches (default: self-signed)",
    )
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="[NS/]SVC[:PORT]=URL",
        help="send a Service's traffic to URL, whatever the manifests' endpoints say "
        "(repeatable; repeat a key for round robin); also INGRESSPROXY_BACKEND",
    )
    p.add_argument(
        "--backends",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML mapping of [NS/]SVC[:PORT] to a URL or list of URLs; --backend wins on the "
        "same key; also INGRESSPROXY_BACKENDS",
    )
    p.add_argument(
        "--dns-backends",
        nargs="?",
        type=_dns_pattern,
        const="{service}",
        default=None,
        metavar="PATTERN",
        help="reach a Service without endpoints at host name PATTERN on its targetPort "
        "(default {service}; e.g. {service}.{namespace}); also INGRESSPROXY_DNS_BACKENDS",
    )


def _dns_pattern(value: str) -> str:
    from ..server.overrides import OverrideError, parse_dns_pattern

    try:
        return parse_dns_pattern(value, "")
    except OverrideError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _backend_options(args: argparse.Namespace) -> tuple[tuple[BackendOverride, ...], str | None]:
    """The backend overrides and DNS pattern of --backend, --backends and --dns-backends, on
    top of INGRESSPROXY_BACKENDS / _BACKEND / _DNS_BACKENDS (flags win on the same key)."""
    import os

    from ..server.overrides import OverrideError, backends_from_env, merge_overrides, overrides_from

    try:
        env_overrides, env_dns = backends_from_env(os.environ)
        flags = overrides_from(args.backend, args.backends)
        dns = env_dns if args.dns_backends is None else str(args.dns_backends)
    except OverrideError as exc:
        raise SettingsError(str(exc)) from None
    return merge_overrides(env_overrides, flags), dns


def _flavor(value: str) -> Flavor:
    try:
        return parse_flavor(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _flavors(value: str) -> tuple[Flavor, ...]:
    flavors = tuple(dict.fromkeys(_flavor(v) for v in value.split(",") if v.strip()))
    if len(flavors) < 2:
        raise argparse.ArgumentTypeError("name at least two flavors, e.g. nginx,traefik")
    return flavors


def _add_tls_flags(p: argparse.ArgumentParser) -> None:
    """The `websecure` listener and HTTPS upstreams (docs/tls.md)."""
    p.add_argument("--https-host", default="127.0.0.1", help="HTTPS listen address")
    p.add_argument(
        "--https-port",
        type=_https_port,
        default="auto",
        help="HTTPS port (default auto: 8443 when a certificate is available; 0 = any free"
        " port; off = no HTTPS listener)",
    )
    p.add_argument(
        "--redirect-to-https",
        action="store_true",
        help="redirect every plain-HTTP request to HTTPS (Traefik's entry point redirection)",
    )
    p.add_argument(
        "--upstream-tls-verify",
        action="store_true",
        help="verify the certificates of HTTPS upstreams (off by default, as ingress-nginx)",
    )
    p.add_argument(
        "--upstream-ca",
        type=Path,
        default=None,
        metavar="FILE",
        help="CA bundle to verify HTTPS upstreams with (implies --upstream-tls-verify)",
    )


def _https_port(value: str) -> int | str | None:
    from ..server.settings import parse_https_port

    try:
        return parse_https_port(value, "--https-port")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of processes") from None
    if n < 1:
        raise argparse.ArgumentTypeError("at least 1 worker")
    return n


def _admin_port(value: str) -> int | None:
    if value.lower() in ("off", "none", "false"):
        return None
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number or 'off'") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _size(value: str) -> int | None:
    try:
        return parse_size(value, "size")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("size: ")) from None


def _add_limit_flags(p: argparse.ArgumentParser) -> None:
    """Limits and deadlines (docs/reliability.md); defaults as in Settings."""
    d = Settings()
    p.add_argument(
        "--max-body-size",
        type=_size,
        default=d.max_body_size,
        metavar="SIZE",
        help="largest request body, e.g. 10m (default: unlimited); 413 above it",
    )
    # (flag, metavar, help with {} for the default); the default is Settings' field of the
    # same name, its type the value's type (seconds are floats, counts and bytes ints).
    numeric = [
        ("--max-header-bytes", "BYTES", "request header fields in bytes (default {}); 431 above"),
        ("--max-headers", "N", "request header fields in number (default {}); 431 above"),
        ("--max-uri-length", "BYTES", "request target length (default {}); 414 above"),
        ("--header-timeout", "SECONDS", "time to send a request head (default {}); 408 after"),
        ("--body-timeout", "SECONDS", "longest pause within a body (default {}); 408 after"),
        ("--graceful-timeout", "SECONDS", "time in-flight requests get after SIGTERM (default {})"),
        ("--pool-size", "N", "upstream connections at most (default {})"),
        (
            "--pool-timeout",
            "SECONDS",
            "wait for a free upstream connection (default {}); 503 after",
        ),
    ]
    for flag, metavar, text in numeric:
        default = getattr(d, flag[2:].replace("-", "_"))
        p.add_argument(
            flag,
            type=type(default),
            default=default,
            metavar=metavar,
            help=text.format(f"{default:g}"),
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingressproxy",
        description="A reverse proxy that routes by Kubernetes Ingress manifests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve HTTP routed by the manifests in DIR")
    serve.add_argument(
        "manifests", metavar="DIR", help="folder (or file) of Kubernetes YAML; - for standard input"
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    serve.add_argument("--admin-host", default="127.0.0.1", help="admin listen address")
    serve.add_argument(
        "--admin-port",
        type=_admin_port,
        default=9000,
        help="admin port (default 9000; 0 = any free port; off = no admin listener)",
    )
    _add_routing_flags(serve)
    _add_tls_flags(serve)
    serve.add_argument(
        "--trusted-proxies",
        action="append",
        default=[],
        metavar="CIDR",
        help="peers whose X-Forwarded-* headers are kept and appended to (repeatable)",
    )
    serve.add_argument("--connect-timeout", type=float, default=5.0, metavar="SECONDS")
    serve.add_argument("--read-timeout", type=float, default=60.0, metavar="SECONDS")
    _add_limit_flags(serve)
    serve.add_argument(
        "--poll",
        action="store_true",
        help="watch the folder by polling (bind mounts, network filesystems); "
        "also INGRESSPROXY_POLL=1",
    )
    serve.add_argument(
        "--debug-headers",
        action="store_true",
        help="add X-Ingressproxy-Route to each proxied response: the Ingress rule and endpoint "
        "used (also INGRESSPROXY_DEBUG_HEADERS=1)",
    )
    serve.add_argument(
        "--fake-backends",
        action="store_true",
        help="also start echo backends on every loopback endpoint the manifests name",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="serve with N processes, each watching DIR (default 1); the admin and HTTPS "
        "listeners run in the first",
    )
    # A worker of --workers N: serve the listening socket inherited as this descriptor.
    serve.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--access-log",
        default="text",
        choices=["text", "json", "off"],
        help="one line per request on stdout, as text (default) or JSON; off to disable",
    )

    echo = sub.add_parser("echo", help="run a fake backend that echoes each request as JSON")
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--port", type=int, required=True)
    echo.add_argument("--service", required=True)
    echo.add_argument("--pod", default=None)
    echo.add_argument("--namespace", default=None)

    check = sub.add_parser("check", help="load and compile DIR, print every diagnostic")
    check.add_argument("manifests", metavar="DIR", help="as for serve; - for standard input")
    _add_routing_flags(check)
    check.add_argument("--strict", action="store_true", help="fail on warnings too")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument(
        "--compare",
        type=_flavors,
        default=(),
        metavar="FLAVOR,FLAVOR",
        help="list the requests these flavors route differently (e.g. nginx,traefik)",
    )

    explain = sub.add_parser("explain", help="show how a request would be routed, and why")
    explain.add_argument("manifests", metavar="DIR", help="as for serve; - for standard input")
    explain.add_argument("url", metavar="URL", help="http://host/path, or /path with -H Host")
    explain.add_argument("-X", "--request", dest="method", default="GET", metavar="METHOD")
    explain.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable); Host overrides the URL's host",
    )
    _add_routing_flags(explain)
    explain.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    import os

    env_poll = os.environ.get("INGRESSPROXY_POLL", "").lower() in ("1", "true", "yes", "on")
    overrides, dns = _backend_options(args)
    return Settings(
        manifests=Path(args.manifests),
        host=args.host,
        port=args.port,
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        ingress_classes=tuple(args.ingress_class),
        trusted_proxies=parse_networks(args.trusted_proxies, "--trusted-proxies"),
        allow_external_name=args.allow_external_name,
        flavor=args.flavor,
        debug_headers=args.debug_headers
        or os.environ.get("INGRESSPROXY_DEBUG_HEADERS", "").lower() in ("1", "true", "yes", "on"),
        poll=args.poll or env_poll,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        max_body_size=args.max_body_size,
        max_header_bytes=args.max_header_bytes,
        max_headers=args.max_headers,
        max_uri_length=args.max_uri_length,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        graceful_timeout=args.graceful_timeout,
        pool_size=args.pool_size,
        pool_timeout=args.pool_timeout,
        log_level=args.log_level,
        access_log=args.access_log,
        backend_overrides=overrides,
        dns_pattern=dns,
        https_host=args.https_host,
        https_port=args.https_port,
        default_certificate=args.default_certificate,
        redirect_to_https=args.redirect_to_https,
        upstream_tls_verify=args.upstream_tls_verify or args.upstream_ca is not None,
        upstream_ca=args.upstream_ca,
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..server.app import create_app
    from ..server.guard import RequestLimits, guarded_protocol

    settings = settings_from_args(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.workers > 1 and args.worker_fd is None:
        from ..server.workers import run_workers

        argv = getattr(args, "argv", None) or sys.argv[1:]
        return run_workers(
            argv, settings.host, settings.port, args.workers, settings.graceful_timeout
        )
    app = create_app(settings, fake_backends=args.fake_backends)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=False,  # we decide which peers to trust (--trusted-proxies)
        server_header=False,  # Server is added only when the upstream sent none
        date_header=False,  # the upstream's Date passes through; uvicorn would add a second
        access_log=False,
        lifespan="on",
        # Header limits and deadlines, and framing rules both parsers agree on (guard.py).
        http=guarded_protocol(RequestLimits.from_settings(settings)),
        # Annotated int, used as asyncio.wait_for's timeout: seconds as a float work.
        timeout_graceful_shutdown=settings.graceful_timeout,  # type: ignore[arg-type]
    )
    draining = app.state.draining

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # /ping answers 503 from the moment shutdown begins, while uvicorn lets in-flight
            # requests finish, so a load balancer stops sending before we are gone.
            draining.set()
            await super().shutdown(sockets)

    server = Server(config)
    # uvicorn re-raises the signal that stopped it once shutdown is complete. A SIGTERM after a
    # graceful shutdown is a clean exit (0, what orchestrators expect); Ctrl-C keeps the
    # conventional 130 through KeyboardInterrupt.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if args.worker_fd is not None:
        server.run(sockets=[socket.socket(fileno=args.worker_fd)])
    else:
        server.run()
    return 0 if server.started else 1


def _echo(args: argparse.Namespace) -> int:
    from ..testing.echo import serve_echo

    serve_echo(args.host, args.port, args.service, args.pod, args.namespace)
    return 0


def _compile_options(args: argparse.Namespace) -> CompileOptions:
    from ..frontends.options import CompileOptions

    overrides, dns = _backend_options(args)
    return CompileOptions(
        ingress_classes=tuple(args.ingress_class),
        allow_external_name=args.allow_external_name,
        flavor=args.flavor,
        backend_overrides=overrides,
        dns_pattern=dns,
        default_certificate=args.default_certificate,
    )


def _check(args: argparse.Namespace) -> int:
    from .check import run_check

    return run_check(
        Path(args.manifests),
        _compile_options(args),
        fmt=args.format,
        strict=args.strict,
        compare=args.compare,
        out=sys.stdout,
    )


def _explain(args: argparse.Namespace) -> int:
    import json

    from ..server.reloader import build_snapshot
    from .explain import explain

    headers: dict[str, str] = {}
    for raw in args.headers:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise SettingsError(f"-H {raw!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    built = build_snapshot(Path(args.manifests), _compile_options(args))
    if built is None:  # only when asked to skip an unchanged digest, which we never do
        raise RuntimeError("build_snapshot returned nothing")
    result = explain(built[0], args.url, args.method, headers)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(result.to_text(), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --workers' children
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "echo":
            return _echo(args)
        if args.command == "check":
            return _check(args)
        if args.command == "explain":
            return _explain(args)
    except SettingsError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
