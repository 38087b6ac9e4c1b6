"""ingress-nginx's annotation keys in the nginx dialect: the key table (nginx/keys.py), the
Ingresses it refuses (snippets, unsafe values), and the fixed redirects (permanent-redirect,
temporal-redirect, relative-redirects, app-root) on real sockets: the cases of
kubernetes/ingress-nginx test/e2e/annotations/redirect.go, relativeredirects.go and
approot.go, ported, plus the same `return` directives beside a real nginx.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from e2e import cluster, echo, http_client, run_proxy
from test_nginx_compare import real_nginx
from test_nginx_rewrite import HOST, SERVICE, ingress, proxy

from ingressproxy.cli.main import main
from ingressproxy.frontends.annotations import unknown_annotations
from ingressproxy.frontends.certs import CertTable
from ingressproxy.frontends.nginx.annotations import KEYS, PREFIX
from ingressproxy.frontends.nginx.keys import KNOWN, Support, support_of
from ingressproxy.frontends.nginx.returns import returns_of
from ingressproxy.frontends.options import CompileOptions
from ingressproxy.frontends.pipeline import compile_routes
from ingressproxy.frontends.semantics import Flavor
from ingressproxy.ir.filters import AppRoot, FilterRequest, RedirectScheme, RedirectURL
from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.loader import load_text
from ingressproxy.manifests.model import Diagnostic, Manifests

TESTS = Path(__file__).parent
URL = "http://redirect.example.com"


# --------------------------------------------------------------------------- the key table


def test_every_honoured_key_is_one_ingress_nginx_knows() -> None:
    assert {k for k in KEYS if k.startswith(PREFIX)} <= set(KNOWN)


def test_every_honoured_key_names_a_test_that_exists() -> None:
    for key in sorted(k for k in KNOWN if support_of(k) is Support.SUPPORTED):
        test = KNOWN[key].test
        assert test, f"{key} is honoured: name the test that shows it in nginx/keys.py"
        file, _, function = test.partition("::")
        tree = ast.parse((TESTS.parent / file).read_text(encoding="utf-8"))
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert function in names, f"{key}: {test} does not exist"


def test_snippets_are_refused_and_typos_are_unknown() -> None:
    for name in ("configuration-snippet", "server-snippet", "auth-snippet", "stream-snippet"):
        assert support_of(PREFIX + name) is Support.REFUSED
    # Not a key of any parser, but the admission webhook refuses every "-snippet" key.
    assert support_of(PREFIX + "location-snippet") is Support.REFUSED
    assert support_of(PREFIX + "rewrite-targt") is None
    assert support_of("example.com/owner") is None


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "rewrite-targt",
            'unknown annotation "nginx.ingress.kubernetes.io/rewrite-targt": did you mean'
            ' "nginx.ingress.kubernetes.io/rewrite-target"?',
        ),
        # A typo of a key ingress-nginx knows but we lack is a typo all the same.
        (
            "proxy-bodysize",
            'unknown annotation "nginx.ingress.kubernetes.io/proxy-bodysize": did you mean'
            ' "nginx.ingress.kubernetes.io/proxy-body-size"?',
        ),
        (
            "made-up",
            'unknown annotation "nginx.ingress.kubernetes.io/made-up": ingress-nginx has no'
            " such annotation",
        ),
    ],
)
def test_typos(key: str, message: str) -> None:
    (unknown,) = unknown_annotations({PREFIX + key: "x"})
    assert unknown.message() == message


def test_known_keys_are_not_typos() -> None:
    assert list(unknown_annotations({k: "x" for k in KNOWN})) == []


# --------------------------------------------------------------------------- compiling


def _compile(text: str, flavor: Flavor = Flavor.NGINX) -> tuple[Manifests, list[Diagnostic]]:
    documents, problems = load_text(text, "app.yaml")
    manifests, diags = decode(documents)
    assert [str(d) for d in (*problems, *diags)] == []
    result, _ = compile_routes(manifests, CompileOptions(flavor=flavor), CertTable())
    return manifests, list(result.diagnostics)


def _codes(diags: list[Diagnostic]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in diags:
        out.setdefault(d.code, []).append(d.field.removeprefix("metadata.annotations."))
    return out


def test_key_warnings() -> None:
    notes = {"proxy-buffering": "off", "limit-connections": "5", "rewrite-targt": "/"}
    _, diags = _compile(SERVICE + "---\n" + ingress("app", "/", notes))
    codes = _codes(diags)
    assert codes["annotation-no-effect"] == [PREFIX + "proxy-buffering"]
    assert codes["unsupported-annotation"] == [PREFIX + "limit-connections"]
    assert codes["unknown-annotation"] == [PREFIX + "rewrite-targt"]
    # A key that only tunes nginx is an info-level note (ingress-nginx issue 16: "accepted
    # with an info-level note, never an error"); the others are warnings.
    severities = {d.code: str(d.severity) for d in diags}
    assert severities["annotation-no-effect"] == "info"
    assert severities["unsupported-annotation"] == severities["unknown-annotation"] == "warning"


def test_check_strict_passes_on_an_info_note(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "app"
    folder.mkdir()
    ready = (
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: http-svc-1, namespace: default,"
        " labels: {kubernetes.io/service-name: http-svc}}\n"
        "addressType: IPv4\nports: [{name: http, port: 8080}]\n"
        "endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]\n"
    )
    app = ingress("app", "/", {"proxy-buffering": "off"})
    (folder / "app.yaml").write_text("---\n".join([SERVICE, app, ready]))
    proc = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(folder), "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ": info: " in proc.stdout and "annotation-no-effect" not in proc.stderr


def test_a_snippet_outside_the_nginx_dialect_is_ignored_not_refused() -> None:
    app = ingress("app", "/", {"configuration-snippet": "more_set_headers 'A: b';"})
    _, diags = _compile(SERVICE + "---\n" + app, Flavor.SPEC)
    codes = _codes(diags)
    assert codes["annotation-ignored-in-dialect"] == [PREFIX + "configuration-snippet"]
    assert all(d.severity == "warning" for d in diags)


@pytest.mark.parametrize(
    ("notes", "want"),
    [
        ({"permanent-redirect": URL}, (301, URL, PREFIX + "permanent-redirect")),
        ({"permanent-redirect": URL, "permanent-redirect-code": "308"}, (308, URL, None)),
        # Outside 300-308 (http.StatusMultipleChoices..StatusPermanentRedirect): 301.
        ({"permanent-redirect": URL, "permanent-redirect-code": "309"}, (301, URL, None)),
        ({"permanent-redirect": URL, "permanent-redirect-code": "200"}, (301, URL, None)),
        # strconv.Atoi takes a sign and leading zeros.
        ({"permanent-redirect": URL, "permanent-redirect-code": "+0307"}, (307, URL, None)),
        ({"temporal-redirect": URL}, (302, URL, PREFIX + "temporal-redirect")),
        # Temporal codes stop at 307 (http.StatusTemporaryRedirect).
        ({"temporal-redirect": URL, "temporal-redirect-code": "308"}, (302, URL, None)),
        ({"temporal-redirect": URL, "temporal-redirect-code": "303"}, (303, URL, None)),
        # Temporal first: it wins, and a bad permanent code is never read.
        (
            {"temporal-redirect": URL, "permanent-redirect": "/", "permanent-redirect-code": "x"},
            (302, URL, None),
        ),
        ({"permanent-redirect": "/new-location"}, (301, "/new-location", None)),
    ],
)  # fmt: skip
def test_redirect_values(notes: dict[str, str], want: tuple[int, str, str | None]) -> None:
    manifests, _ = _compile(SERVICE + "---\n" + ingress("app", "/", notes))
    got = returns_of(manifests.ingresses[0], lambda d: None)
    assert got.refused is None and got.redirect is not None
    assert (got.redirect.status, got.redirect.url) == want[:2]
    if want[2] is not None:
        assert got.redirect.reason == want[2]


@pytest.mark.parametrize(
    ("notes", "code"),
    [
        # parser.URLIsValidRegex refuses "#", "%", spaces...: a ValidationError, which
        # Extractor.Extract returns, and the store skips the Ingress.
        ({"permanent-redirect": "https://x.example/#top"}, "invalid-annotation"),
        ({"temporal-redirect": "https://x.example/a b"}, "invalid-annotation"),
        # ValidateInt, read even without permanent-redirect.
        ({"permanent-redirect-code": "301x"}, "invalid-annotation"),
        ({"from-to-www-redirect": "yes"}, "invalid-annotation"),
    ],
)
def test_redirect_values_ingress_nginx_refuses(notes: dict[str, str], code: str) -> None:
    manifests, diags = _compile(SERVICE + "---\n" + ingress("app", "/", notes))
    got = returns_of(manifests.ingresses[0], lambda d: None)
    assert got.refused is not None and got.refused.code == code
    assert got.refused.severity == "error"
    assert code in _codes(diags)


@pytest.mark.parametrize(
    ("notes", "warning"),
    [
        # isValidURL: a temporal redirect must be http(s); the whole group is dropped.
        ({"temporal-redirect": "/relative", "permanent-redirect": URL}, "not an http(s) URL"),
        ({"temporal-redirect": "ftp://x.example/"}, "not an http(s) URL"),
        # An empty value: parseString's InvalidContent, the group is dropped silently.
        ({"permanent-redirect": ""}, None),
    ],
)
def test_redirect_values_ingress_nginx_ignores(notes: dict[str, str], warning: str | None) -> None:
    manifests, _ = _compile(SERVICE + "---\n" + ingress("app", "/", notes))
    said: list[Diagnostic] = []
    got = returns_of(manifests.ingresses[0], said.append)
    assert got.redirect is None and got.refused is None
    assert [warning in d.message for d in said] == ([True] if warning else [])


@pytest.mark.parametrize(
    ("value", "root"),
    [
        ("/foo", "/foo"),
        ("/app1/", "/app1/"),
        # rewrite.Parse: not RegexPathWithCapture, not a path (ParseRequestURI), or absolute.
        ("/foo bar", None),
        ("foo", None),
        ("http://x.example/foo", None),
        # nginx would expand a "$" as a variable; we expand none.
        ("/app$1", None),
    ],
)
def test_app_root_values(value: str, root: str | None) -> None:
    manifests, _ = _compile(SERVICE + "---\n" + ingress("app", "/", {"app-root": value}))
    got = returns_of(manifests.ingresses[0], lambda d: None).app_root
    assert (got.root if got else None) == root


def test_filter_order_follows_nginx_phases() -> None:
    # The server's app-root `if` first, the location's `return` next, the ssl-redirect
    # (rewrite_by_lua, after the rewrite module) last.
    notes = {"app-root": "/app", "permanent-redirect": URL, "force-ssl-redirect": "true"}
    documents, _ = load_text(SERVICE + "---\n" + ingress("app", "/", notes), "app.yaml")
    manifests, _ = decode(documents)
    result, _ = compile_routes(manifests, CompileOptions(flavor=Flavor.NGINX), CertTable())
    (router,) = result.table.routes()
    assert [type(f) for f in router.filters] == [AppRoot, RedirectURL, RedirectScheme]


def _request(path: str = "/x", host: str = "redirect", scheme: str = "http") -> FilterRequest:
    return FilterRequest("GET", scheme, host.split(":")[0].lower(), path, None, path=path,
                         headers=[(b"host", host.encode())])  # fmt: skip


@pytest.mark.parametrize(
    ("status", "location", "body"),
    [
        (300, None, "https://x.example/a"),
        (301, "https://x.example/a", None),
        (302, "https://x.example/a", None),
        (303, "https://x.example/a", None),
        (304, None, ""),
        (305, None, "https://x.example/a"),
        (306, None, "https://x.example/a"),
        (307, "https://x.example/a", None),
        (308, "https://x.example/a", None),
    ],
)
def test_redirect_url_statuses(status: int, location: str | None, body: str | None) -> None:
    # ngx_http_send_response: a Location only for 301, 302, 303, 307, 308; else the body.
    answer = RedirectURL(status, "https://x.example/a").on_request(_request())
    assert answer is not None and answer.status == status
    assert dict(answer.headers).get("location") == location
    if body is not None:
        assert answer.body == body


def test_redirect_url_relative_locations() -> None:
    # absolute_redirect on (nginx's default): scheme and host, no port (port_in_redirect off).
    got = RedirectURL(301, "/new").on_request(_request(host="Redirect:8080", scheme="https"))
    assert got is not None and dict(got.headers)["location"] == "https://redirect/new"
    got = RedirectURL(301, "/new", relative=True).on_request(_request(host="redirect:8080"))
    assert got is not None and dict(got.headers)["location"] == "/new"


def test_app_root_filter() -> None:
    # `return 302 $scheme://$http_host<root>`: the Host as sent, port included.
    got = AppRoot("/foo").on_request(_request("/", host="Approot.bar.com:8080"))
    assert got is not None and got.status == 302
    assert dict(got.headers)["location"] == "http://Approot.bar.com:8080/foo"
    assert AppRoot("/foo").on_request(_request("/foo")) is None


# --------------------------------------------------------------------------- real sockets


def test_permanent_redirect_standard_code(tmp_path: Path) -> None:
    # redirect.go "should respond with a standard redirect code".
    with proxy(tmp_path, ingress("redirect", "/something", {"permanent-redirect": URL})) as s:
        r = s.get("/something", host=HOST)
        assert r.status_code == 301
        assert r.headers["location"] == URL
        # The query string is not carried over (nginx's `return` with a URL).
        assert s.get("/something/x?a=1", host=HOST).headers["location"] == URL
        # Any method.
        assert s.request("POST", "/something", host=HOST).status_code == 301


def test_permanent_redirect_custom_code(tmp_path: Path) -> None:
    # redirect.go "should respond with a custom redirect code".
    notes = {"permanent-redirect": URL, "permanent-redirect-code": "302"}
    with proxy(tmp_path, ingress("redirect", "/something", notes)) as served:
        r = served.get("/something", host=HOST)
        assert r.status_code == 302
        assert r.headers["location"] == URL


def test_temporal_redirect_wins_over_permanent(tmp_path: Path) -> None:
    # redirect.go's Parse reads temporal-redirect first: "the execution order is temporal and
    # then permanent".
    notes = {"temporal-redirect": URL, "permanent-redirect": "http://other.example.com"}
    with proxy(tmp_path, ingress("redirect", "/something", notes)) as served:
        r = served.get("/something", host=HOST)
        assert r.status_code == 302
        assert r.headers["location"] == URL
        codes = [d.code for d in served.app.state.holder.current.diagnostics]
        assert "redirect-ignored" in codes


def test_temporal_redirect_code(tmp_path: Path) -> None:
    a = ingress("a", "/a", {"temporal-redirect": URL, "temporal-redirect-code": "307"})
    b = ingress("b", "/b", {"temporal-redirect": URL, "temporal-redirect-code": "308"})
    with proxy(tmp_path, a, b) as served:
        assert served.get("/a", host=HOST).status_code == 307
        assert served.get("/b", host=HOST).status_code == 302  # outside 300-307


def test_relative_redirects(tmp_path: Path) -> None:
    # relativeredirects.go "should respond with absolute URL in Location" and "... relative
    # URL in Location".
    to = {"permanent-redirect": "/new-location"}
    absolute = ingress("absolute", "/something", {**to, "relative-redirects": "false"})
    relative = ingress("relative", "/other", {**to, "relative-redirects": "true"})
    with proxy(tmp_path, absolute, relative) as served:
        r = served.get("/something", host=HOST)
        assert r.status_code == 301
        assert r.headers["location"] == f"http://{HOST}/new-location"
        r = served.get("/other", host=HOST)
        assert r.status_code == 301
        assert r.headers["location"] == "/new-location"


def test_app_root(tmp_path: Path) -> None:
    # approot.go "should redirect to /foo"; the rest of the host is served as usual.
    with proxy(tmp_path, ingress("approot", "/", {"app-root": "/foo"})) as served:
        r = served.get("/", host=HOST)
        assert r.status_code == 302
        assert r.headers["location"] == f"http://{HOST}/foo"
        # $http_host: the port the client wrote stays; the query string goes.
        r = served.get("/?a=1", host=f"{HOST}:8080")
        assert r.headers["location"] == f"http://{HOST}:8080/foo"
        assert echo(served.get("/foo", host=HOST)).target == "/foo"
        assert served.get("/other", host=HOST).status_code == 200


def test_app_root_redirects_slash_when_no_rule_takes_it(tmp_path: Path) -> None:
    # The `if ($uri = /)` is the server's, so "/" is redirected even when the Ingress's only
    # path is the app's; any other unmatched path is still 404.
    with proxy(tmp_path, ingress("approot", "/app1", {"app-root": "/app1"})) as served:
        r = served.get("/", host=HOST)
        assert r.status_code == 302
        assert r.headers["location"] == f"http://{HOST}/app1"
        assert served.get("/app1", host=HOST).status_code == 200
        assert served.get("/nope", host=HOST).status_code == 404


def test_app_root_applies_to_every_rule_of_the_host(tmp_path: Path) -> None:
    # Another Ingress's `/` on the same host: the server-level `if` answers first.
    root = ingress("root", "/", created="2026-01-01T00:00:00Z")
    app = ingress("app", "/app1", {"app-root": "/app1"}, created="2026-01-02T00:00:00Z")
    with proxy(tmp_path, root, app) as served:
        assert served.get("/", host=HOST).headers["location"] == f"http://{HOST}/app1"
        assert served.get("/x", host=HOST).status_code == 200


# --------------------------------------------------------------------------- refused Ingresses


OTHER_HOST = "other.bar.com"


def _other() -> str:
    return ingress("other", "/").replace(HOST, OTHER_HOST)


def _check(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()  # the proxy's access log
    status = main(["check", str(folder), "--format", "json"])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("annotation", "code"),
    [
        ('nginx.ingress.kubernetes.io/configuration-snippet: |\n      more_set_headers "A: b";\n',
         "snippet-annotation"),
        ("nginx.ingress.kubernetes.io/server-snippet: 'return 200;'\n", "snippet-annotation"),
        ("nginx.ingress.kubernetes.io/location-snippet: 'return 200;'\n", "snippet-annotation"),
        ('nginx.ingress.kubernetes.io/upstream-vhost: "a.example\\r\\nX-Evil: 1"\n',
         "unsafe-annotation-value"),
        ('nginx.ingress.kubernetes.io/proxy-body-size: "1m\\n"\n', "unsafe-annotation-value"),
        ('nginx.ingress.kubernetes.io/custom-headers: "a\\0b"\n', "unsafe-annotation-value"),
        ("nginx.ingress.kubernetes.io/permanent-redirect: 'https://x.example/%41'\n",
         "invalid-annotation"),
    ],
)  # fmt: skip
def test_a_refused_ingress_is_an_error_and_the_rest_is_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], annotation: str, code: str
) -> None:
    refused = ingress("refused", "/").replace(
        "  annotations: {}", "  annotations:\n    " + annotation
    )
    key = annotation.split(":", 1)[0]
    with proxy(tmp_path, refused, _other()) as served:
        assert served.get("/", host=HOST).status_code == 404
        assert served.get("/", host=OTHER_HOST).status_code == 200
        status, report = _check(tmp_path / "manifests", capsys)
    assert status == 1
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert [(d["code"], d["object"], d["field"]) for d in errors] == [
        (code, "Ingress default/refused", f"metadata.annotations.{key}")
    ]


def test_check_text_names_the_refused_ingress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = "  annotations:\n    nginx.ingress.kubernetes.io/server-snippet: 'return 200;'"
    refused = ingress("refused", "/").replace("  annotations: {}", notes)
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "app.yaml").write_text("---\n".join([SERVICE, refused]))
    assert main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert re.search(
        r"app\.yaml:\d+: error: Ingress default/refused: metadata\.annotations\.nginx\.ingress"
        r"\.kubernetes\.io/server-snippet: .*never interprets.*not served",
        out,
    ), out


# --------------------------------------------------------------------------- a real nginx

NGINX_LOCATIONS = (
    """
port_in_redirect off;
if ($uri = /) { return 302 $scheme://$http_host/app; }
"""
    + "".join(
        f'location ~* "^/c{code}" {{ return {code} https://x.example/a?b=c; }}\n'
        for code in range(300, 309)
    )
    + 'location ~* "^/rel" { return 301 /new-location; }\n'
)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_redirects_as_a_real_nginx(tmp_path: Path) -> None:
    # nginx.tmpl's directives for these Ingresses (port_in_redirect is off in its http block).
    docs = [
        ingress(f"c{code}", f"/c{code}", {"permanent-redirect": "https://x.example/a?b=c",
                                          "permanent-redirect-code": str(code)})
        for code in range(300, 309)
    ]  # fmt: skip
    docs.append(ingress("rel", "/rel", {"permanent-redirect": "/new-location"}))
    docs.append(ingress("root", "/", {"app-root": "/app"}))
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    (fixture / "app.yaml").write_text("---\n".join([SERVICE, *docs]))
    with cluster(fixture) as pods:
        folder = pods.write(tmp_path / "manifests")
        (pod,) = pods.pods
        with (
            run_proxy(folder, flavor=Flavor.NGINX) as ours,
            real_nginx(tmp_path, pod.port, NGINX_LOCATIONS) as theirs,
            http_client(theirs) as nginx,
        ):
            for target in [f"/c{code}?q=1" for code in range(300, 309)] + ["/rel", "/", "/?x=1"]:
                for host in (HOST, f"{HOST.upper()}:8080"):
                    got = ours.get(target, host=host)
                    want = nginx.get(target, headers={"Host": host})
                    assert got.status_code == want.status_code, target
                    assert got.headers.get("location") == want.headers.get("location"), target
                    if want.status_code in (300, 305, 306):
                        assert got.text == want.text, target


# --------------------------------------------------------------------------- docs/flavors.md

FLAVORS = TESTS.parent / "docs" / "flavors.md"
_BEGIN = (
    "<!-- nginx-annotations: generated from nginx/keys.py by tests/test_nginx_annotations.py -->"
)
_END = "<!-- /nginx-annotations -->"
_SAYS = {
    Support.SUPPORTED: "nothing (honoured)",
    Support.ACCEPTED: "info `annotation-no-effect`",
    Support.NOT_YET: "warning `unsupported-annotation`",
    Support.REFUSED: "error `snippet-annotation`; the Ingress is not served",
}


def annotations_table() -> str:
    """The table of every ingress-nginx annotation docs/flavors.md shows."""
    lines = [
        "| annotation | here | in ingress-nginx | `check` says (nginx dialect) |",
        "| --- | --- | --- | --- |",
    ]
    for key in sorted(KNOWN):
        known = KNOWN[key]
        support = support_of(key)
        assert support is not None
        here = {
            Support.SUPPORTED: f"**supported**, `{known.test}`",
            Support.ACCEPTED: "accepted, no effect",
            Support.NOT_YET: "not yet supported",
            Support.REFUSED: "**refused**",
        }[support]
        note = known.note + (f" ({known.versions} only)" if known.versions else "")
        lines.append(f"| `{known.name}` | {here} | {note} | {_SAYS[support]} |")
    return "\n".join(lines)


def test_flavors_md_lists_every_annotation(request: pytest.FixtureRequest) -> None:
    text = FLAVORS.read_text(encoding="utf-8")
    head, found, rest = text.partition(_BEGIN + "\n")
    assert found, f"docs/flavors.md has no {_BEGIN} block"
    body, found, tail = rest.partition(_END)
    assert found, f"docs/flavors.md has no {_END}"
    want = annotations_table() + "\n"
    if request.config.getoption("--update-golden"):
        FLAVORS.write_text(head + _BEGIN + "\n" + want + _END + tail, encoding="utf-8")
        return
    assert body == want, "docs/flavors.md's annotation table is stale: run pytest --update-golden"
