"""Backends without Endpoints: --backend / --backends FILE / INGRESSPROXY_BACKEND(S) overrides,
--dns-backends, and the `unbacked-service` report (overrides.py, backends.py).

Parsing and resolution are pure and tested exactly; each source is then tested end to end
through real sockets: flags on a real `ingressproxy serve` process, a file and the environment
through the app, DNS through the name `localhost`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import example_copy

from ingressproxy.cli.main import build_parser, settings_from_args
from ingressproxy.frontends.backends import BackendOverride
from ingressproxy.frontends.options import CompileOptions, CompileResult
from ingressproxy.frontends.spec.compiler import compile_manifests
from ingressproxy.ir.model import Backend, Endpoint
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import load_text
from ingressproxy.manifests.model import Severity
from ingressproxy.server.overrides import (
    OverrideError,
    backends_from_env,
    load_backends_file,
    merge_overrides,
    overrides_from,
    parse_backend,
    parse_dns_pattern,
)
from ingressproxy.server.reloader import build_snapshot
from ingressproxy.server.settings import Settings, SettingsError
from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import LoggedProcess, ServerThread, serve_in_thread, start_proxy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
IMAGEMANAGER = EXAMPLES / "imagemanager"
HOST = "api.imagemanager.io"


def manifest(
    service: str = "web",
    namespace: str = "shop",
    ports: str = "[{name: http, port: 80, targetPort: 8080}]",
    backend_port: str = "{name: http}",
    extra: str = "",
) -> str:
    """An Ingress routing a.example/ to `service`, the Service, and `extra` documents."""
    return textwrap.dedent(
        f"""\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {{name: site, namespace: {namespace}}}
        spec:
          rules:
          - host: a.example
            http:
              paths:
              - path: /
                pathType: Prefix
                backend:
                  service: {{name: {service}, port: {backend_port}}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: {service}, namespace: {namespace}}}
        spec:
          ports: {ports}
        """
    ) + (f"---\n{extra}" if extra else "")


SLICE = textwrap.dedent(
    """\
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: web-1
      namespace: shop
      labels: {kubernetes.io/service-name: web}
    addressType: IPv4
    ports: [{name: http, port: 8080}]
    endpoints: [{addresses: [10.0.0.1]}]
    """
)
EMPTY_SLICE = SLICE.replace("endpoints: [{addresses: [10.0.0.1]}]", "endpoints: []")


def compile_text(text: str, **options: object) -> CompileResult:
    docs, diags = load_text(text, "test.yaml")
    manifests, decode_diags = decode(docs)
    assert [str(d) for d in (*diags, *decode_diags)] == []
    return compile_manifests(manifests, CompileOptions(**options))  # type: ignore[arg-type]


def backend_of(result: CompileResult) -> Backend:
    route = result.table.exact_hosts["a.example"].prefix[""]
    return route.backend


def codes(result: CompileResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def ov(spec: str) -> BackendOverride:
    return parse_backend(spec)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("spec", "namespace", "service", "port", "endpoint"),
    [
        ("shop/web=http://127.0.0.1:3001", "shop", "web", None, Endpoint("127.0.0.1", 3001)),
        ("web=localhost:3001", None, "web", None, Endpoint("localhost", 3001)),
        (
            "shop/web:http=https://api.test",
            "shop",
            "web",
            "http",
            Endpoint("api.test", 443, "https"),
        ),
        ("web:0080=http://[::1]:81/", None, "web", "80", Endpoint("::1", 81)),
        ("web=http://compose-svc", None, "web", None, Endpoint("compose-svc", 80)),
    ],
)
def test_parse_backend(
    spec: str, namespace: str | None, service: str, port: str | None, endpoint: Endpoint
) -> None:
    got = parse_backend(spec)
    assert (got.namespace, got.service, got.port, got.endpoints) == (
        namespace,
        service,
        port,
        (endpoint,),
    )
    assert got.endpoints[0].base_url == endpoint.base_url


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("web", "expected [NAMESPACE/]SERVICE[:PORT]=URL"),
        ("web=", "expected [NAMESPACE/]SERVICE[:PORT]=URL"),
        ("=http://h:1", "names no Service"),
        ("Web=http://h:1", "is not a Kubernetes name"),
        ("shop_x/web=http://h:1", "namespace 'shop_x'"),
        ("web:70000=http://h:1", "not a port number"),
        ("web:Http=http://h:1", "not a Service port name"),
        ("web=ftp://h:1", "only http:// and https://"),
        ("web=http://h:1/api", "has a path or query"),
        ("web=http://h:1?x=1", "has a path or query"),
        ("web=http://u:p@h:1", "credentials"),
        ("web=http://h:99999", "is not a URL"),
        ("web=http://h:0", "port 0"),
        ("web=http://bad host:1", "no valid host"),
    ],
)
def test_parse_backend_errors(spec: str, why: str) -> None:
    with pytest.raises(OverrideError, match=re.escape(why)) as err:
        parse_backend(spec)
    assert str(err.value).startswith(f"--backend {spec}: ")


def test_backends_file_lists_lines_and_flags_win(tmp_path: Path) -> None:
    file = tmp_path / "backends.yaml"
    file.write_text(
        "# where the Services run in docker compose\n"
        "imagemanager/image-search: http://127.0.0.1:3001\n"
        "image-labeling:\n"
        "  - http://127.0.0.1:3002\n"
        "  - http://127.0.0.1:3003\n"
        "imagemanager/image-text-extraction:http: localhost:3004\n",
        encoding="utf-8",
    )
    got = load_backends_file(file)
    assert [(o.key, [str(e) for e in o.endpoints], o.origin) for o in got] == [
        ("imagemanager/image-search", ["127.0.0.1:3001"], str(file)),
        ("image-labeling", ["127.0.0.1:3002", "127.0.0.1:3003"], str(file)),
        ("imagemanager/image-text-extraction:http", ["localhost:3004"], str(file)),
    ]
    # A flag replaces the file's entry for the same key; repeated flags add up.
    merged = overrides_from(
        ["image-labeling=http://127.0.0.1:4000", "image-labeling=http://127.0.0.1:4001"], file
    )
    by_key = {o.key: [str(e) for e in o.endpoints] for o in merged}
    assert by_key["image-labeling"] == ["127.0.0.1:4000", "127.0.0.1:4001"]
    assert by_key["imagemanager/image-search"] == ["127.0.0.1:3001"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("- web=http://h:1\n", "expected a mapping"),
        ("web: http://h:1\nbad key!: http://h:2\n", ":2: bad key!: "),
        ("web: [http://h:1, 42]\n", ":1: web: 42 is not a URL"),
        ("web: []\n", "no URL given"),
        ("web: http://h:1\nweb: http://h:2\n", "not valid YAML"),
        ("web: [unclosed\n", "not valid YAML"),
    ],
)
def test_backends_file_errors(tmp_path: Path, text: str, why: str) -> None:
    file = tmp_path / "b.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(OverrideError, match=re.escape(why)):
        load_backends_file(file)


def test_backends_file_missing(tmp_path: Path) -> None:
    with pytest.raises(OverrideError, match="cannot read"):
        load_backends_file(tmp_path / "nope.yaml")


def test_empty_backends_file(tmp_path: Path) -> None:
    file = tmp_path / "b.yaml"
    file.write_text("# nothing yet\n", encoding="utf-8")
    assert load_backends_file(file) == ()


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("k8s", "does not contain {service}"),
        ("{namespace}", "does not contain {service}"),
        ("{service}.{cluster}", "only {service} and {namespace}"),
        ("{service.__class__}", "does not contain {service}"),
        ("{service} x", "does not make a valid host name"),
    ],
)
def test_dns_pattern_errors(pattern: str, why: str) -> None:
    with pytest.raises(OverrideError, match=re.escape(why)):
        parse_dns_pattern(pattern)


def test_env_sources(tmp_path: Path) -> None:
    file = tmp_path / "b.yaml"
    file.write_text("web: http://127.0.0.1:1\napi: http://127.0.0.1:2\n", encoding="utf-8")
    env = {
        "INGRESSPROXY_BACKENDS": str(file),
        "INGRESSPROXY_BACKEND": "web=http://127.0.0.1:3, shop/db=http://127.0.0.1:4",
        "INGRESSPROXY_DNS_BACKENDS": "{service}.{namespace}",
    }
    overrides, dns = backends_from_env(env)
    assert {o.key: str(o.endpoints[0]) for o in overrides} == {
        "web": "127.0.0.1:3",
        "api": "127.0.0.1:2",
        "shop/db": "127.0.0.1:4",
    }
    assert dns == "{service}.{namespace}"
    assert backends_from_env({"INGRESSPROXY_DNS_BACKENDS": "true"})[1] == "{service}"
    assert backends_from_env({"INGRESSPROXY_DNS_BACKENDS": "off"})[1] is None
    settings = Settings.from_env(env)
    assert (settings.backend_overrides, settings.dns_pattern) == (overrides, dns)
    with pytest.raises(SettingsError, match="INGRESSPROXY_BACKEND web: expected"):
        Settings.from_env({"INGRESSPROXY_BACKEND": "web"})


def test_cli_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INGRESSPROXY_BACKEND", "web=http://127.0.0.1:1 api=http://127.0.0.1:2")
    monkeypatch.setenv("INGRESSPROXY_DNS_BACKENDS", "1")
    args = build_parser().parse_args(
        ["serve", str(tmp_path), "--backend", "web=http://127.0.0.1:9", "--dns-backends"]
    )
    settings = settings_from_args(args)
    assert {o.key: str(o.endpoints[0]) for o in settings.backend_overrides} == {
        "web": "127.0.0.1:9",
        "api": "127.0.0.1:2",
    }
    assert settings.dns_pattern == "{service}"
    args = build_parser().parse_args(
        ["check", str(tmp_path), "--dns-backends={service}.{namespace}.svc"]
    )
    assert args.dns_backends == "{service}.{namespace}.svc"


def test_cli_rejects_bad_override(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(tmp_path), "--backend", "web"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--backend web: expected [NAMESPACE/]SERVICE[:PORT]=URL" in proc.stderr


def test_dns_backends_flag_before_the_folder_is_explained(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", "--dns-backends", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "put the folder first" in proc.stderr


# --------------------------------------------------------------------------- resolution


def test_override_beats_endpoints_in_the_folder() -> None:
    r = compile_text(manifest(extra=SLICE), backend_overrides=(ov("shop/web=http://h1:1"),))
    assert backend_of(r).endpoints == (Endpoint("h1", 1),)
    assert codes(r) == []


@pytest.mark.parametrize(
    ("keys", "winner"),
    [
        (["web", "shop/web"], "shop/web"),
        (["web", "web:http"], "web:http"),
        (["web:http", "shop/web"], "shop/web"),
        (["shop/web", "shop/web:80"], "shop/web:80"),
        (["web:http", "web:80"], "web:http"),  # equally specific: the first given
        (["web", "other/web", "web:grpc"], "web"),  # the others do not match
    ],
)
def test_most_specific_override_wins(keys: list[str], winner: str) -> None:
    overrides = tuple(ov(f"{k}=http://h{i}:1") for i, k in enumerate(keys))
    r = compile_text(manifest(), backend_overrides=overrides)
    assert backend_of(r).endpoints == (Endpoint(f"h{keys.index(winner)}", 1),)


def test_override_by_ingress_port_number() -> None:
    r = compile_text(
        manifest(backend_port="{number: 80}"), backend_overrides=(ov("web:80=http://h:1"),)
    )
    assert backend_of(r).endpoints == (Endpoint("h", 1),)


def test_override_for_a_service_not_in_the_manifests_routes_with_a_warning() -> None:
    text = manifest()
    text = text[: text.index("---")]  # only the Ingress: its Service is in another chart
    r = compile_text(text, backend_overrides=(ov("web=http://h:1"),))
    assert backend_of(r).endpoints == (Endpoint("h", 1),)
    (d,) = r.diagnostics
    assert (d.code, d.severity) == ("missing-service", Severity.WARNING)
    assert d.message == "Service shop/web not found; routing to --backend web"


def test_override_does_not_hide_a_missing_port() -> None:
    r = compile_text(
        manifest(backend_port="{name: grpc}"), backend_overrides=(ov("web=http://h:1"),)
    )
    assert backend_of(r).endpoints == ()
    assert codes(r) == ["missing-port"]


def test_override_keeps_the_scheme_of_its_url() -> None:
    # A Service port named https (or 443) means TLS to its Pods; a local stand-in given as
    # http:// speaks plain HTTP, and the user's URL says so.
    text = manifest(
        ports="[{name: https, port: 443, targetPort: 8443}]", backend_port="{name: https}"
    )
    r = compile_text(text, backend_overrides=(ov("web=http://127.0.0.1:3001"),))
    assert [e.base_url for e in backend_of(r).endpoints] == ["http://127.0.0.1:3001"]
    r = compile_text(manifest(), backend_overrides=(ov("web=https://127.0.0.1:3001"),))
    assert [e.base_url for e in backend_of(r).endpoints] == ["https://127.0.0.1:3001"]


def test_override_beats_external_name() -> None:
    text = manifest(ports="[]", backend_port="{number: 443}").replace(
        "spec:\n  ports: []", "spec:\n  type: ExternalName\n  externalName: api.example.org"
    )
    r = compile_text(text, backend_overrides=(ov("web=http://h:1"),))
    assert backend_of(r).endpoints == (Endpoint("h", 1),)
    assert codes(r) == []


@pytest.mark.parametrize(
    ("ports", "pattern", "endpoint"),
    [
        ("[{name: http, port: 80, targetPort: 8080}]", "{service}", Endpoint("web", 8080)),
        ("[{name: http, port: 80}]", "{service}", Endpoint("web", 80)),
        (
            "[{name: http, port: 80, targetPort: 8080}]",
            "{service}.{namespace}.svc.cluster.local",
            Endpoint("web.shop.svc.cluster.local", 8080),
        ),
    ],
    ids=["targetPort", "no targetPort", "pattern"],
)
def test_dns_backends(ports: str, pattern: str, endpoint: Endpoint) -> None:
    r = compile_text(manifest(ports=ports), dns_pattern=pattern)
    assert backend_of(r).endpoints == (endpoint,)
    assert codes(r) == []


def test_dns_backends_named_target_port() -> None:
    r = compile_text(
        manifest(ports="[{name: http, port: 80, targetPort: web-http}]"), dns_pattern="{service}"
    )
    assert backend_of(r).endpoints == ()
    (d,) = r.diagnostics
    assert d.code == "dns-named-target-port"
    assert 'named targetPort "web-http"' in d.message and "--backend shop/web:http=URL" in d.message


def test_dns_backends_leave_services_with_endpoint_objects_alone() -> None:
    # An empty EndpointSlice is the Service scaled to zero: still 503, not a DNS guess.
    r = compile_text(manifest(extra=EMPTY_SLICE), dns_pattern="{service}")
    assert backend_of(r).endpoints == ()
    assert codes(r) == ["no-endpoints"]
    r = compile_text(manifest(extra=SLICE), dns_pattern="{service}")
    assert backend_of(r).endpoints == (Endpoint("10.0.0.1", 8080),)


def test_overrides_beat_dns() -> None:
    r = compile_text(manifest(), dns_pattern="{service}", backend_overrides=(ov("web=h:1"),))
    assert backend_of(r).endpoints == (Endpoint("h", 1),)


def test_merge_overrides_keeps_one_per_key() -> None:
    a, b, c = ov("web=h:1"), ov("web=h:2"), ov("shop/web=h:3")
    assert [o.endpoints for o in merge_overrides([a, b, c])] == [
        (Endpoint("h", 1), Endpoint("h", 2)),
        (Endpoint("h", 3),),
    ]
    assert [o.endpoints for o in merge_overrides([a], [b])] == [(Endpoint("h", 2),)]


# --------------------------------------------------------------------------- check


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("extra", "options", "reported"),
    [
        ("", {}, True),
        (SLICE, {}, False),
        (EMPTY_SLICE, {}, False),  # scaled to zero: an address source, just no ready Pods
        ("", {"backend_overrides": (parse_backend("shop/web=http://h:1"),)}, False),
        ("", {"backend_overrides": (parse_backend("web:grpc=http://h:1"),)}, True),
        ("", {"dns_pattern": "{service}"}, False),
    ],
    ids=["nothing", "slice", "empty slice", "override", "other port", "dns"],
)
def test_check_reports_services_without_any_backend(
    tmp_path: Path, extra: str, options: dict[str, object], reported: bool
) -> None:
    folder = write(tmp_path / "m", manifest(extra=extra))
    built = build_snapshot(folder, CompileOptions(**options))  # type: ignore[arg-type]
    assert built is not None
    found = [d for d in built[0].diagnostics if d.code == "unbacked-service"]
    if not reported:
        assert found == []
        return
    (d,) = found
    assert d.severity is Severity.WARNING
    assert str(d.obj) == "Service shop/web" and d.source is not None
    assert (Path(d.source.file).name, d.source.line) == ("app.yaml", 14)
    assert "used by Ingress shop/site" in d.message
    assert "--backend shop/web=URL" in d.message


def test_check_command_prints_unbacked_services(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", manifest())
    proc = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(
        r"app\.yaml:14: warning: Service shop/web: used by Ingress shop/site", proc.stdout
    )


# ------------------------------------------------------------------ keys that match nothing


def unused(tmp_path: Path, text: str, *overrides: BackendOverride) -> list[str]:
    """The unused-backend-override warnings of the folder `text` with these overrides."""
    built = build_snapshot(write(tmp_path / "m", text), CompileOptions(backend_overrides=overrides))
    assert built is not None
    found = [d for d in built[0].diagnostics if d.code == "unused-backend-override"]
    assert all(d.severity is Severity.WARNING for d in found)
    return [str(d) for d in found]


@pytest.mark.parametrize(
    ("key", "warning"),
    [
        ("web", None),
        ("shop/web", None),
        ("web:http", None),  # the port as the Ingress names it
        ("shop/web:80", None),  # the Service port's number
        ("wbe", 'did you mean "web"?'),
        ("api", 'did you mean "web"?'),  # a Service of the folder, but no Ingress uses it
        (
            "blog/web",
            '(Ingresses use web in namespace shop only); did you mean "shop/web"?',
        ),
        ("web:8080", '(Ingresses use web on ports 80, http); did you mean "web:80"?'),
        ("shop/web:grpc", '(Ingresses use web on ports 80, http); did you mean "shop/web:http"?'),
    ],
)
def test_a_key_that_matches_no_service_an_ingress_uses_is_a_warning(
    tmp_path: Path, key: str, warning: str | None
) -> None:
    api = "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n"
    text = manifest(extra=api + "spec: {ports: [{port: 80}]}\n")
    got = unused(tmp_path, text, parse_backend(f"{key}=http://127.0.0.1:3001"))
    if warning is None:
        assert got == []
    else:
        assert got == [
            f"warning: --backend {key} matches no Service that an Ingress uses {warning}".replace(
                "uses did", "uses; did"
            )
        ]


def test_unused_keys_are_named_where_they_were_given(tmp_path: Path) -> None:
    file = tmp_path / "backends.yaml"
    file.write_text("wbe: http://127.0.0.1:3001\n", encoding="utf-8")
    from_env = overrides_from(
        ["shop/wbe=http://127.0.0.1:3001"], None, origin="INGRESSPROXY_BACKEND"
    )
    got = unused(tmp_path, manifest(), *load_backends_file(file), *from_env)
    assert got == [
        "warning: INGRESSPROXY_BACKEND shop/wbe matches no Service that an Ingress uses;"
        ' did you mean "shop/web"?',
        f'{file}: warning: wbe matches no Service that an Ingress uses; did you mean "web"?',
    ]
    assert unused(tmp_path / "empty", "", parse_backend("web=h:1")) == [
        "warning: --backend web matches no Service that an Ingress uses (no Ingress uses a Service)"
    ]


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingressproxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_check_warns_of_an_unused_key_with_the_closest_one() -> None:
    got = _check("check", str(IMAGEMANAGER), "--backend", "image-serch=http://127.0.0.1:3001")
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[0] == (
        "warning: --backend image-serch matches no Service that an Ingress uses; did you mean"
        ' "image-search"?'
    )
    strict = ["--strict", "--backend", "image-serch=http://127.0.0.1:3001"]
    assert _check("check", str(IMAGEMANAGER), *strict).returncode == 1


def test_an_unnamespaced_key_for_a_service_of_another_namespace_is_a_warning_saying_so(
    tmp_path: Path,
) -> None:
    """The Ingress (team-a) names `login`, which exists only in team-b: in a cluster that is
    a Service the Ingress cannot use. `--backend login` routes team-a's reference anyway, and
    says so: a warning (status 1 under --strict), not an error that vanished."""
    text = manifest(service="login", namespace="team-a").replace(
        "metadata: {name: login, namespace: team-a}", "metadata: {name: login, namespace: team-b}"
    )
    folder = write(tmp_path / "m", text)
    assert _check("check", str(folder)).returncode == 1  # service-in-other-namespace, an error
    got = _check("check", str(folder), "--backend", "login=http://127.0.0.1:3001")
    assert got.returncode == 0
    (line,) = [ln for ln in got.stdout.splitlines() if "login" in ln]
    assert ": warning: Ingress team-a/site: " in line
    assert (
        "Service team-a/login not found (a Service of that name exists in namespace team-b;" in line
    )
    assert line.endswith("; routing to --backend login")
    strict = ["--strict", "--backend", "login=http://127.0.0.1:3001"]
    assert _check("check", str(folder), *strict).returncode == 1


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("web", "expected [NAMESPACE/]SERVICE[:PORT]=URL"),
        ("web=3001", "'3001' is a port without a host; e.g. http://127.0.0.1:3001"),
        (
            "web=localhost",
            "'localhost' has no scheme and no port; expected http://HOST[:PORT],"
            " https://HOST[:PORT] or HOST:PORT",
        ),
        ("web=http:3001", "'http:3001' lacks '//' after http:"),
        ("web=http://", "'http://' has no valid host"),
        ("web=http://:3001", "'http://:3001' has no valid host"),
    ],
)
def test_a_malformed_backend_is_one_line_and_status_2(tmp_path: Path, value: str, why: str) -> None:
    folder = str(write(tmp_path / "m", manifest()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGRESSPROXY_")}
    for command in (["check", folder], ["explain", folder, "/"], ["serve", folder, "--port", "0"]):
        got = _check(*command, "--backend", value, env=env)
        assert got.returncode == 2, got.stdout + got.stderr
        assert got.stderr.splitlines() == [
            f"ingressproxy {command[0]}: error: --backend {value}: {why}"
        ]
        assert got.stdout == ""
    got = _check("check", folder, env={**env, "INGRESSPROXY_BACKEND": value})
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and f"INGRESSPROXY_BACKEND {value}: " in got.stderr


def test_serve_warns_of_an_unused_key_at_start_and_on_each_reload(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", manifest(extra=SLICE))
    proc = LoggedProcess(
        "serve", str(folder), "--port", "0", "--admin-port", "off", "--https-port", "off",
        "--backend", "wbe=http://127.0.0.1:3001",
    )  # fmt: skip
    try:
        warning = (
            r'WARNING .*--backend wbe matches no Service that an Ingress uses; did you mean "web"\?'
        )
        proc.expect(warning)
        proc.expect(r"Uvicorn running on")
        with (folder / "app.yaml").open("a", encoding="utf-8") as f:
            f.write("# edited\n")
        proc.expect(r"config generation=2 ")
        proc.expect(warning)
    finally:
        assert proc.stop() == 0


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def search_backend() -> Iterator[ServerThread]:
    with serve_in_thread(create_echo_app("image-search", pod="local", namespace="x")) as s:
        yield s


def test_flags_on_a_real_process(search_backend: ServerThread, tmp_path: Path) -> None:
    """`--backend` beats the example's EndpointSlices (127.0.N.x, on a port where nothing
    listens)."""
    folder, _ = example_copy("imagemanager", tmp_path / "imagemanager")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("INGRESSPROXY_BACKEND", None)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "ingressproxy", "serve", str(folder),
            "--port", "0", "--admin-port", "off", "--access-log", "off",
            "--backend", f"imagemanager/image-search={search_backend.url}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port is not None, "".join(seen)
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            r = client.get("/search/cats", headers={"Host": HOST})
            other = client.get("/labeling", headers={"Host": HOST})
        assert r.status_code == 200, r.text
        assert (r.json()["service"], r.json()["path"]) == ("image-search", "/search/cats")
        assert other.status_code == 502  # still the folder's endpoint, where nothing listens
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_backends_file_through_the_proxy(search_backend: ServerThread, tmp_path: Path) -> None:
    file = tmp_path / "backends.yaml"
    file.write_text(f"image-search: {search_backend.url}\n", encoding="utf-8")
    args = build_parser().parse_args(["serve", str(IMAGEMANAGER), "--backends", str(file)])
    overrides = settings_from_args(args).backend_overrides
    with start_proxy(IMAGEMANAGER, backend_overrides=overrides, admin=False) as proxy:
        r = proxy.get("/search", host=HOST)
    assert r.status_code == 200 and r.json()["service"] == "image-search"


def test_environment_through_the_uvicorn_factory(
    search_backend: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingressproxy.server.app import create_app
    from ingressproxy.testing.server import Proxy

    monkeypatch.setenv("INGRESSPROXY_MANIFESTS", str(IMAGEMANAGER))
    monkeypatch.setenv("INGRESSPROXY_ADMIN_PORT", "off")
    monkeypatch.setenv("INGRESSPROXY_BACKEND", f"imagemanager/image-search={search_backend.url}")
    app = create_app()  # what `uvicorn --factory ingressproxy.app:create_app` calls
    with serve_in_thread(app) as server:
        proxy = Proxy(app, server, {})
        try:
            r = proxy.get("/search", host=HOST)
        finally:
            proxy.close()
    assert r.status_code == 200 and r.json()["service"] == "image-search"


def test_dns_backends_through_the_name_localhost(
    search_backend: ServerThread, tmp_path: Path
) -> None:
    """A Service named `localhost` without endpoints: --dns-backends makes it the host name
    `localhost` on its targetPort, which the forwarder resolves and connects to by name."""
    text = manifest(
        service="localhost",
        ports=f"[{{name: http, port: 80, targetPort: {search_backend.port}}}]",
    )
    folder = write(tmp_path / "m", text)
    with start_proxy(folder, dns="{service}", admin=False) as proxy:
        r = proxy.get("/anything", host="a.example")
        route = proxy.snapshot.table.match("a.example", "/anything").route
    assert r.status_code == 200, r.text
    assert r.json()["service"] == "image-search"
    assert route is not None
    assert route.backend.endpoints == (Endpoint("localhost", search_backend.port),)


def test_without_dns_backends_the_same_service_is_503(tmp_path: Path) -> None:
    folder = write(tmp_path / "m", manifest(service="localhost"))
    with start_proxy(folder, admin=False) as proxy:
        r = proxy.get("/", host="a.example")
        codes_ = [d.code for d in proxy.diagnostics]
    assert r.status_code == 503
    assert "unbacked-service" in codes_
