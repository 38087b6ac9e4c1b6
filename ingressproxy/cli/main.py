"""Command line: `ingressproxy serve DIR`, `echo`, `check DIR`, `explain DIR URL`.

Flags are parsed here and resolved with their INGRESSPROXY_* variables by settings.resolve;
`serve` runs the server server/stack.py builds from the Settings. Everything else is a library.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..frontends.semantics import Flavor, parse_flavor
from ..server.settings import (
    ACCESS_LOG_FORMATS,
    LOG_LEVELS,
    NOT_GIVEN,
    Settings,
    SettingsError,
    parse_admin_port,
    parse_https_port,
    parse_size,
    parse_workers,
    resolve,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..frontends.options import CompileOptions

__all__ = ["EXIT_STATUS", "build_parser", "main", "settings_from_args"]

# The exit status contract of check, explain, serve and convert (docs/cli.md, "Exit status"):
# what a CI step can branch on.
EXIT_STATUS = (
    "exit status: 0 fine (warnings allowed); 1 errors in the manifests (check --strict: or"
    " warnings); 2 a usage or I/O problem (a bad option, a missing folder, a port in use)"
)


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
        default=NOT_GIVEN,
        help="allow backends that are Services of type ExternalName",
    )
    p.add_argument(
        "--allow-cross-namespace",
        action="store_true",
        default=NOT_GIVEN,
        help="let Traefik Middleware objects reference others in another namespace (a chain's"
        " members), as Traefik's allowCrossNamespace",
    )
    p.add_argument(
        "--flavor",
        type=_flavor,
        default=NOT_GIVEN,
        metavar="|".join(Flavor),
        help="route each Ingress as the controller of its class would (auto, the default), or"
        " all like the Ingress spec, ingress-nginx or Traefik (docs/flavors.md)",
    )
    p.add_argument(
        "--default-certificate",
        default=NOT_GIVEN,
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
        default=NOT_GIVEN,
        metavar="FILE",
        help="YAML mapping of [NS/]SVC[:PORT] to a URL or list of URLs; --backend wins on the "
        "same key; also INGRESSPROXY_BACKENDS",
    )
    p.add_argument(
        "--dns-backends",
        nargs="?",
        type=_dns_pattern,
        const="{service}",
        default=NOT_GIVEN,
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
    p.add_argument("--https-host", default=NOT_GIVEN, help="HTTPS listen address")
    p.add_argument(
        "--https-port",
        type=_argtype(parse_https_port),
        default=NOT_GIVEN,
        help="HTTPS port (default auto: 8443 when a certificate is available; 0 = any free"
        " port; off = no HTTPS listener)",
    )
    p.add_argument(
        "--redirect-to-https",
        action="store_true",
        default=NOT_GIVEN,
        help="redirect every plain-HTTP request to HTTPS (Traefik's entry point redirection)",
    )
    p.add_argument(
        "--upstream-tls-verify",
        action="store_true",
        default=NOT_GIVEN,
        help="verify the certificates of HTTPS upstreams (off by default, as ingress-nginx)",
    )
    p.add_argument(
        "--upstream-ca",
        type=Path,
        default=NOT_GIVEN,
        metavar="FILE",
        help="CA bundle to verify HTTPS upstreams with (implies --upstream-tls-verify)",
    )


def _argtype(parse: Callable[[str, str], object]) -> Callable[[str], object]:
    """argparse's `type=` from one of settings' parsers (the same one its variable uses);
    argparse names the flag in the message itself."""

    def convert(value: str) -> object:
        try:
            return parse(value, "")
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _add_limit_flags(p: argparse.ArgumentParser) -> None:
    """Limits and deadlines (docs/reliability.md); defaults as in Settings."""
    d = Settings()
    p.add_argument(
        "--max-body-size",
        type=_argtype(parse_size),
        default=NOT_GIVEN,
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
            default=NOT_GIVEN,
            metavar=metavar,
            help=text.format(f"{default:g}"),
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingressproxy",
        description="A reverse proxy that routes by Kubernetes Ingress manifests.",
        epilog=EXIT_STATUS + ".",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="serve HTTP routed by the manifests in DIR",
        epilog="Every option can also be given as the variable INGRESSPROXY_<OPTION>, e.g."
        " INGRESSPROXY_MAX_BODY_SIZE=10m; DIR as INGRESSPROXY_MANIFESTS. Options win"
        " (docs/cli.md, Environment). Exit status: 0 after SIGTERM, 130 after Ctrl-C, 2 when"
        " it cannot start (a bad option, a port in use, an unreadable certificate file), 1 when"
        " it fails to start for another reason; errors in the manifests are reported and the"
        " rest is served.",
    )
    serve.add_argument(
        "manifests",
        metavar="DIR",
        nargs="?",
        default=NOT_GIVEN,
        help="folder (or file) of Kubernetes YAML; - for standard input",
    )
    serve.add_argument("--host", default=NOT_GIVEN, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=NOT_GIVEN, help="listen port (default 8080)")
    serve.add_argument("--admin-host", default=NOT_GIVEN, help="admin listen address")
    serve.add_argument(
        "--admin-port",
        type=_argtype(parse_admin_port),
        default=NOT_GIVEN,
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
    serve.add_argument("--connect-timeout", type=float, default=NOT_GIVEN, metavar="SECONDS")
    serve.add_argument("--read-timeout", type=float, default=NOT_GIVEN, metavar="SECONDS")
    _add_limit_flags(serve)
    serve.add_argument(
        "--poll",
        action="store_true",
        default=NOT_GIVEN,
        help="watch the folder by polling (bind mounts, network filesystems); "
        "also INGRESSPROXY_POLL=1",
    )
    serve.add_argument(
        "--debug-headers",
        action="store_true",
        default=NOT_GIVEN,
        help="add X-Ingressproxy-Route to each proxied response: the Ingress rule and endpoint "
        "used (also INGRESSPROXY_DEBUG_HEADERS=1)",
    )
    serve.add_argument(
        "--fake-backends",
        action="store_true",
        default=NOT_GIVEN,
        help="also start echo backends on every loopback endpoint the manifests name",
    )
    serve.add_argument(
        "--workers",
        type=_argtype(parse_workers),
        default=NOT_GIVEN,
        metavar="N",
        help="serve with N processes, each watching DIR (default 1); the admin and HTTPS "
        "listeners run in the first",
    )
    # A worker of --workers N: serve the listening socket inherited as this descriptor; the
    # first (index 0) runs the admin and HTTPS listeners and says when all are ready.
    # Internal to the supervisor and its children, so they alone have no variable.
    serve.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default=NOT_GIVEN, choices=list(LOG_LEVELS))
    serve.add_argument(
        "--access-log",
        default=NOT_GIVEN,
        choices=list(ACCESS_LOG_FORMATS),
        help="one line per request on stdout, as text (default) or JSON; off to disable",
    )

    echo = sub.add_parser("echo", help="run a fake backend that echoes each request as JSON")
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--port", type=int, required=True)
    echo.add_argument("--service", required=True)
    echo.add_argument("--pod", default=None)
    echo.add_argument("--namespace", default=None)

    check = sub.add_parser(
        "check",
        help="load and compile DIR, print every diagnostic",
        epilog=f"{EXIT_STATUS}.",
    )
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

    explain = sub.add_parser(
        "explain",
        help="show how a request would be routed, and why",
        epilog=f"{EXIT_STATUS}; the explanation is printed either way.",
    )
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
    explain.add_argument(
        "--compare",
        type=_flavors,
        default=(),
        metavar="FLAVOR,FLAVOR",
        help="explain the request under each of these flavors (e.g. spec,nginx) and say"
        " whether they route it alike",
    )

    convert = sub.add_parser(
        "convert",
        help="print manifests with retired API versions (extensions/v1beta1 Ingress, ...)"
        " rewritten as the current ones",
        epilog="exit status: 0 converted; 1 a file that is not YAML; 2 a usage or I/O problem"
        " (a missing file or folder).",
    )
    convert.add_argument("manifests", metavar="FILE|DIR|-", help="a file, a folder, or - (stdin)")
    return parser


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The Settings of a parsed `serve` (or `check`, `explain`) command line: each flag given,
    else its INGRESSPROXY_* variable from `env` (default os.environ), else the default."""
    return resolve(vars(args), env)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ingressproxy")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _serve(args: argparse.Namespace) -> int:
    from ..server.app import create_app
    from ..server.embedded import listen_socket
    from ..server.stack import proxy_server, quiet_lifecycle_logs

    settings = settings_from_args(args)
    if settings.manifests is None:
        raise SettingsError("the following arguments are required: DIR (or INGRESSPROXY_MANIFESTS)")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.worker_fd is None:
        # Bound before anything is loaded: a port in use is one line and exit status 2.
        sock = listen_socket(settings.host, settings.port, "--port")
    else:
        import socket

        sock = socket.socket(fileno=args.worker_fd)
    if settings.workers > 1 and args.worker_fd is None:
        from ..server.workers import run_workers

        argv = getattr(args, "argv", None) or sys.argv[1:]
        return run_workers(argv, sock, settings.workers, settings.graceful_timeout)
    app = create_app(settings)
    server = proxy_server(app, settings, announce=args.worker_index == 0)
    quiet_lifecycle_logs()
    # uvicorn re-raises the signal that stopped it once shutdown is complete. A SIGTERM after a
    # graceful shutdown is a clean exit (0, what orchestrators expect); Ctrl-C keeps the
    # conventional 130 through KeyboardInterrupt.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with contextlib.suppress(SystemExit):  # uvicorn's exit when the app's startup failed
        server.run(sockets=[sock])
    if app.state.startup_error is not None:
        return 2  # a port in use, a certificate file: reported in one line by the server
    return 0 if server.started else 1


def _echo(args: argparse.Namespace) -> int:
    from ..testing.echo import serve_echo

    serve_echo(args.host, args.port, args.service, args.pod, args.namespace)
    return 0


def _compile_options(args: argparse.Namespace) -> CompileOptions:
    from ..server.reloader import compile_options

    return compile_options(settings_from_args(args))


def _manifests(args: argparse.Namespace) -> Path:
    """check's and explain's DIR: `-` (standard input), or a folder or file that exists;
    serve instead waits for a folder that may appear (a volume mounted later)."""
    from ..server.reloader import STDIN

    root = Path(args.manifests)
    if root != STDIN and not root.exists():
        raise SettingsError(f"{root.absolute()}: no such file or folder")
    return root


def _check(args: argparse.Namespace) -> int:
    import io

    from .check import run_check

    report = io.StringIO()
    status = run_check(
        _manifests(args),
        _compile_options(args),
        fmt=args.format,
        strict=args.strict,
        compare=args.compare,
        out=report,
    )
    _emit(report.getvalue())
    return status


def _explain(args: argparse.Namespace) -> int:
    import json

    from ..manifests.model import Severity
    from ..server.reloader import build_snapshot
    from .explain import explain

    headers: dict[str, str] = {}
    for raw in args.headers:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise SettingsError(f"-H {raw!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    root = _manifests(args)
    options = _compile_options(args)
    if args.compare:
        return _explain_compare(args, root, options, headers)
    built = build_snapshot(root, options)
    if built is None:  # only when asked to skip an unchanged digest, which we never do
        raise RuntimeError("build_snapshot returned nothing")
    snapshot = built[0]
    result = explain(snapshot, args.url, args.method, headers)
    if args.format == "json":
        _emit(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        _emit(result.to_text())
    return _explain_status(
        root, sum(1 for d in snapshot.diagnostics if d.severity is Severity.ERROR)
    )


def _explain_status(root: Path, errors: int) -> int:
    """explain's exit status: 1 when the manifests have errors (said on stderr), else 0."""
    if errors:
        print(
            f"ingressproxy explain: {root} has {errors} error(s) in its manifests;"
            f" `ingressproxy check {root}` lists them",
            file=sys.stderr,
        )
        return 1
    return 0


def _explain_compare(
    args: argparse.Namespace, root: Path, options: CompileOptions, headers: dict[str, str]
) -> int:
    """`explain --compare A,B`: the same request explained under each flavor, then one line
    per flavor of what the client gets, and whether they agree."""
    import dataclasses
    import json

    from ..manifests.model import Severity
    from ..server.reloader import STDIN, build_snapshot, read_stdin
    from .explain import explain

    data = read_stdin() if root == STDIN else None  # read once, built once per flavor
    results = []
    errors = 0
    for flavor in args.compare:
        built = build_snapshot(root, dataclasses.replace(options, flavor=flavor), stdin=data)
        if built is None:
            raise RuntimeError("build_snapshot returned nothing")
        snapshot = built[0]
        errors = max(errors, sum(1 for d in snapshot.diagnostics if d.severity is Severity.ERROR))
        results.append((flavor, explain(snapshot, args.url, args.method, headers)))
    outcomes = {flavor: r.outcome() for flavor, r in results}
    same = len(set(outcomes.values())) == 1
    if args.format == "json":
        report = {
            "compare": list(outcomes),
            "same": same,
            "outcomes": outcomes,
            "explanations": {flavor: r.to_json() for flavor, r in results},
        }
        _emit(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        parts = [f"=== flavor {flavor} ===\n{r.to_text()}" for flavor, r in results]
        width = max(len(f) for f in outcomes)
        summary = [f"  {f:<{width}}  {o}" for f, o in outcomes.items()]
        verdict = "the same" if same else "differently"
        head = f"{', '.join(outcomes)} route {args.method} {args.url} {verdict}:"
        _emit("\n".join([*parts, head, *summary]) + "\n")
    return _explain_status(root, errors)


def _convert(args: argparse.Namespace) -> int:
    from .convert import ConvertError, convert_text

    source = args.manifests
    if source == "-":
        files: list[tuple[str, str]] = [("-", sys.stdin.read())]
    else:
        root = Path(source)
        if root.is_dir():
            paths = sorted(
                p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
            )
        elif root.is_file():
            paths = [root]
        else:
            raise SettingsError(f"{root.absolute()}: no such file or folder")
        try:
            files = [(str(p), p.read_text(encoding="utf-8")) for p in paths]
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(str(exc)) from None
    out: list[str] = []
    converted = 0
    for name, text in files:
        try:
            result = convert_text(text, name)
        except ConvertError as exc:
            print(f"ingressproxy convert: {exc}", file=sys.stderr)
            return 1
        converted += result.converted
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        body = result.text if result.text.endswith("\n") or not result.text else result.text + "\n"
        out.append(body if len(files) == 1 else f"# Source: {name}\n{body}")
    _emit("---\n".join(out))
    print(f"{converted} object(s) converted to the current API versions", file=sys.stderr)
    return 0


def _emit(text: str) -> None:
    """Write `text` to standard output and flush it. A reader who stops early
    (`ingressproxy check DIR | head -1`) has what it wanted: the rest goes nowhere, and the
    command's exit status stands."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    """What is still buffered for the closed pipe goes nowhere, instead of failing again (and
    printing a traceback) when Python flushes standard output at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (EXIT_STATUS). Usage problems are one line on
    standard error, `ingressproxy COMMAND: error: ...`, and status 2 (argparse's own errors
    add the usage line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --workers' children
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": _serve,
        "echo": _echo,
        "check": _check,
        "explain": _explain,
        "convert": _convert,
    }
    try:
        return commands[args.command](args)
    except SettingsError as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    except BrokenPipeError:  # a write other than _emit's, to a reader that left: no traceback
        _stdout_to_devnull()
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
