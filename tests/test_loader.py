"""loader.py: finding files, parsing YAML/JSON with line numbers, and refusing hostile input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ingressproxy.manifests import loader
from ingressproxy.manifests.loader import (
    MAX_NODES,
    LoadResult,
    is_ignored_name,
    load_path,
    load_text,
)
from ingressproxy.manifests.model import Diagnostic, RawDocument, Severity

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  ports:
  - port: 80
"""


def one(text: str, file: str = "x.yaml") -> RawDocument:
    docs, diags = load_text(text, file)
    assert diags == ()
    assert len(docs) == 1
    return docs[0]


def only_diagnostic(diags: tuple[Diagnostic, ...]) -> Diagnostic:
    assert len(diags) == 1, [str(d) for d in diags]
    return diags[0]


def names(result: LoadResult) -> list[str]:
    out = []
    for doc in result.documents:
        meta = doc.data["metadata"]
        assert isinstance(meta, dict)
        out.append(str(meta["name"]))
    return out


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def assert_plain(value: object) -> None:
    """Only builtin JSON-like types may leave the loader (no ruamel subclasses)."""
    assert type(value) in (dict, list, str, int, float, bool, type(None)), type(value)
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain(item)


# --------------------------------------------------------------------------- line numbers

INGRESS = """\
# a comment line
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    kubernetes.io/ingress.class: nginx
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              name: http
"""


def test_line_numbers_of_keys_and_list_items() -> None:
    doc = one(INGRESS)
    assert doc.file == "x.yaml"
    assert doc.line == 2
    assert doc.lines[""] == 2
    assert doc.lines["metadata.name"] == 5
    assert doc.lines["metadata.annotations.kubernetes.io/ingress.class"] == 8
    assert doc.lines["spec.rules"] == 10
    assert doc.lines["spec.rules[0]"] == 11
    assert doc.lines["spec.rules[0].host"] == 11
    assert doc.lines["spec.rules[0].http.paths[0]"] == 14
    assert doc.lines["spec.rules[0].http.paths[0].backend.service.port.name"] == 20
    assert doc.source("spec.rules[0].http.paths[0].pathType").line == 15
    # A field that is absent falls back to its nearest written parent.
    assert doc.source("spec.rules[0].http.paths[0].backend.service.port.number").line == 19


def test_data_is_plain_python() -> None:
    doc = one(INGRESS + "  tls:\n  - hosts: [a.example.com]\n    secretName: s\n")
    assert_plain(doc.data)
    assert doc.data["kind"] == "Ingress"
    assert type(doc.lines) is not dict  # read-only view


def test_scalar_types() -> None:
    doc = one(
        "apiVersion: v1\nkind: X\n"
        "s: hello\ni: 42\nneg: -7\nhex: 0x1F\noct: 0o17\nf: 1.5\nexp: 1e3\n"
        "t: true\nn: null\ntilde: ~\nempty:\nquoted: '80'\nstamp: 2022-02-04T16:23:46Z\n"
    )
    assert doc.data == {
        "apiVersion": "v1",
        "kind": "X",
        "s": "hello",
        "i": 42,
        "neg": -7,
        "hex": 31,
        "oct": 15,
        "f": 1.5,
        "exp": 1000.0,
        "t": True,
        "n": None,
        "tilde": None,
        "empty": None,
        "quoted": "80",
        # Kubernetes goes through JSON, so a timestamp stays a string until decode parses it.
        "stamp": "2022-02-04T16:23:46Z",
    }
    assert_plain(doc.data)


def test_yaml_1_2_keeps_on_yes_no_as_strings() -> None:
    doc = one("apiVersion: v1\nkind: X\na: on\nb: yes\nc: no\nd: off\ne: 0755\nf: True\n")
    assert doc.data["a"] == "on"
    assert doc.data["b"] == "yes"
    assert doc.data["c"] == "no"
    assert doc.data["d"] == "off"
    assert doc.data["e"] == 755  # no YAML 1.1 octal
    assert doc.data["f"] is True


def test_yaml_1_1_directive_is_honoured() -> None:
    doc = one("%YAML 1.1\n---\napiVersion: v1\nkind: X\na: on\ne: 0755\n")
    assert doc.data["a"] is True
    assert doc.data["e"] == 0o755


# --------------------------------------------------------------------------- documents


def test_multi_document_skips_empty_documents() -> None:
    text = "---\n" + SERVICE.format(name="a") + "---\n# only a comment\n---\n---\n"
    text += SERVICE.format(name="b") + "...\n"
    docs, diags = load_text(text, "m.yaml")
    assert diags == ()
    assert [d.data["metadata"] for d in docs] == [{"name": "a"}, {"name": "b"}]
    assert [d.line for d in docs] == [2, 13]
    assert docs[1].lines["metadata.name"] == 16


def test_list_is_flattened_with_item_lines() -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: a
- apiVersion: v1
  kind: Endpoints
  metadata:
    name: b
"""
    docs, diags = load_text(text, "l.yaml")
    assert diags == ()
    assert [(d.data["kind"], d.line) for d in docs] == [("Service", 4), ("Endpoints", 8)]
    assert docs[1].lines["metadata.name"] == 11
    assert docs[1].lines["kind"] == 9
    assert not any(path.startswith("items") for path in docs[1].lines)


def test_typed_list_items_get_kind_and_api_version() -> None:
    text = """\
apiVersion: networking.k8s.io/v1
kind: IngressList
items:
- metadata:
    name: a
- kind: Ingress
  apiVersion: networking.k8s.io/v1
  metadata:
    name: b
"""
    docs, diags = load_text(text, "l.yaml")
    assert diags == ()
    assert [(d.data["kind"], d.data["apiVersion"]) for d in docs] == [
        ("Ingress", "networking.k8s.io/v1"),
        ("Ingress", "networking.k8s.io/v1"),
    ]
    assert docs[0].line == 4


def test_list_item_that_is_not_an_object() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- just a string\n- " + "kind: Service\n"
    docs, diags = load_text(text, "l.yaml")
    assert docs == ()
    assert [(d.code, d.source.line if d.source else 0) for d in diags] == [
        ("not-an-object", 4),
        ("not-an-object", 5),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "the document is a list, not a mapping"),
        ("just text\n", "the document is a string, not a mapping"),
        ("apiVersion: v1\nmetadata: {}\n", "`kind` is missing"),
        ("kind: Service\n", "`apiVersion` is missing"),
        ("apiVersion: v1\nkind: 5\n", "`kind` must be a non-empty string"),
        ("apiVersion: ''\nkind: Service\n", "`apiVersion` must be a non-empty string"),
    ],
)
def test_not_an_object(text: str, message: str) -> None:
    docs, diags = load_text(text + "---\n" + SERVICE.format(name="ok"), "n.yaml")
    assert [d.data["kind"] for d in docs] == ["Service"]  # the next document still loads
    diag = only_diagnostic(diags)
    assert diag.severity is Severity.ERROR
    assert diag.code == "not-an-object"
    assert str(diag) == f"n.yaml:1: error: not a Kubernetes object: {message}; skipped"


def test_merge_keys() -> None:
    text = """\
apiVersion: v1
kind: X
base: &base
  a: 1
  b: 2
other: &other
  b: 20
  c: 30
merged:
  <<: [*base, *other]
  a: 10
"""
    doc = one(text)
    assert doc.data["merged"] == {"a": 10, "b": 2, "c": 30}
    assert doc.lines["merged.a"] == 11


def test_aliases_are_expanded_as_plain_copies() -> None:
    doc = one("apiVersion: v1\nkind: X\na: &x {k: [1, 2]}\nb: *x\n")
    assert doc.data["a"] == doc.data["b"] == {"k": [1, 2]}
    assert_plain(doc.data)


# --------------------------------------------------------------------------- keys


def test_number_and_boolean_keys_become_strings_with_a_warning() -> None:
    docs, diags = load_text("apiVersion: v1\nkind: X\nm:\n  80: a\n  true: b\n  1.0: c\n", "k.yaml")
    assert docs[0].data["m"] == {"80": "a", "true": "b", "1": "c"}
    assert [str(d) for d in diags] == [
        "k.yaml:4: warning: mapping key 80 is not a string; read as '80'",
        "k.yaml:5: warning: mapping key true is not a string; read as 'true'",
        "k.yaml:6: warning: mapping key 1.0 is not a string; read as '1'",
    ]


@pytest.mark.parametrize(
    ("body", "code", "line"),
    [
        ("m:\n  ~: a\n", "non-string-key", 4),
        ("m:\n  ? [a, b]\n  : c\n", "non-string-key", 4),
        ("m:\n  a: 1\n  a: 2\n", "duplicate-key", 5),
        ("apiVersion: v2\n", "duplicate-key", 3),
    ],
)
def test_bad_keys_skip_the_document(body: str, code: str, line: int) -> None:
    text = "apiVersion: v1\nkind: X\n" + body + "---\n" + SERVICE.format(name="ok")
    docs, diags = load_text(text, "k.yaml")
    assert [d.data["kind"] for d in docs] == ["Service"]
    diag = only_diagnostic(diags)
    assert (diag.severity, diag.code, diag.source and diag.source.line) == (
        Severity.ERROR,
        code,
        line,
    )


# --------------------------------------------------------------------------- hostile input


def test_python_tags_construct_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: evil
data:
  x: !!python/object/apply:os.system ["touch {marker}"]
---
apiVersion: v1
kind: ConfigMap
metadata: !!python/object/new:os.system ["touch {marker}"]
---
apiVersion: v1
kind: ConfigMap
name: !!python/name:os.system
---
apiVersion: v1
kind: ConfigMap
blob: !!binary aGVsbG8=
---
apiVersion: v1
kind: ConfigMap
custom: !Ref thing
"""
    docs, diags = load_text(text, "evil.yaml")
    assert not marker.exists()
    assert docs == ()
    assert [(d.code, d.source and d.source.line) for d in diags] == [
        ("unsupported-tag", 6),
        ("unsupported-tag", 10),
        ("unsupported-tag", 14),
        ("unsupported-tag", 18),
        ("unsupported-tag", 22),
    ]
    assert "python/object/apply:os.system" in diags[0].message


def test_explicit_standard_tags_are_fine() -> None:
    doc = one("apiVersion: v1\nkind: X\na: !!str 80\nb: !!int '7'\nc: !!map {k: v}\n")
    assert doc.data["a"] == "80"
    assert doc.data["b"] == 7
    assert doc.data["c"] == {"k": "v"}


def test_billion_laughs_is_capped() -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    text = "apiVersion: v1\nkind: X\n" + "\n".join(levels) + "\n"
    text += "---\n" + SERVICE.format(name="after")
    docs, diags = load_text(text, "bomb.yaml")
    diag = only_diagnostic(diags)
    assert diag.code == "too-large"
    assert str(MAX_NODES) in diag.message
    assert docs == ()  # the cap is per file: the rest of the file is not converted


def test_self_referencing_alias() -> None:
    docs, diags = load_text("apiVersion: v1\nkind: X\na: &a [1, *a]\n", "r.yaml")
    assert docs == ()
    assert only_diagnostic(diags).code == "yaml-error"


def test_deep_nesting() -> None:
    depth = loader.MAX_DEPTH + 5
    text = "apiVersion: v1\nkind: X\na: " + "[" * depth + "]" * depth + "\n"
    docs, diags = load_text(text, "d.yaml")
    assert docs == ()
    assert only_diagnostic(diags).code == "too-deep"


def test_absurd_flow_nesting_is_refused_before_parsing() -> None:
    docs, diags = load_text("[" * 3000 + "]" * 3000, "d.yaml")
    assert docs == ()
    assert str(only_diagnostic(diags)) == (
        "d.yaml: error: cannot parse YAML: flow collections nested more than 200 levels; "
        "the file is skipped"
    )


def test_brackets_in_strings_and_comments_are_not_nesting() -> None:
    many = "[" * 300
    doc = one(f"apiVersion: v1\nkind: X\na: '{many}'\nb: \"{many}\"\n# {many}\nc: [[1]]\n")
    assert doc.data["a"] == doc.data["b"] == many
    assert doc.data["c"] == [[1]]


def test_absurd_block_nesting_does_not_crash_the_parser() -> None:
    text = "apiVersion: v1\nkind: X\n" + "".join(" " * i + "a:\n" for i in range(600))
    docs, diags = load_text(text, "d.yaml")
    assert docs == ()
    # The C parser reads it; our converter refuses it with the line where it got too deep.
    assert str(only_diagnostic(diags)) == (
        "d.yaml:104: error: nested more than 100 levels; the document is skipped"
    )


# --------------------------------------------------------------------------- malformed


def test_malformed_yaml_drops_the_whole_file() -> None:
    text = SERVICE.format(name="a") + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [b\n"
    docs, diags = load_text(text, "bad.yaml")
    assert docs == ()  # also the valid first document: a partial parse is untrustworthy
    diag = only_diagnostic(diags)
    assert diag.code == "yaml-error"
    assert diag.severity is Severity.ERROR
    # The bracket opened on line 12 is what to fix; the parser noticed at the end (13).
    assert str(diag).startswith("bad.yaml:12: error: cannot parse YAML: ")
    assert str(diag).endswith("; noticed at line 13; the file is skipped")


def test_an_unclosed_quote_is_reported_where_it_opens() -> None:
    # Issue 19: an unclosed quote on line 4 of a 9-line file was reported at line 10.
    text = (
        'apiVersion: v1\nkind: Service\nmetadata:\n  name: "web\n  namespace: shop\n'
        "spec:\n  ports:\n    - port: 80\n      name: http\n"
    )
    diag = only_diagnostic(load_text(text, "svc.yaml")[1])
    assert str(diag) == (
        "svc.yaml:4: error: cannot parse YAML: found unexpected end of stream (while scanning"
        " a quoted scalar); noticed at line 10; the file is skipped"
    )


def test_a_bad_indentation_is_reported_at_its_own_line() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n namespace: shop\n"
    diag = only_diagnostic(load_text(text, "svc.yaml")[1])
    assert diag.source is not None and diag.source.line == 5, str(diag)
    assert "noticed" not in diag.message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n", 4),
        ("{{- if .Values.enabled }}\napiVersion: v1\nkind: Service\n", 1),
        ('metadata:\n  labels:\n    app: {{ include "app.name" . }}\n', 3),
    ],
)
def test_helm_templates_are_named_as_such(text: str, line: int) -> None:
    diag = only_diagnostic(load_text(text, "templates/svc.yaml")[1])
    assert diag.code == "template-syntax" and diag.source is not None
    assert diag.source.line == line
    assert "helm template RELEASE CHART | ingressproxy check -" in diag.message


def test_braces_in_a_comment_or_a_plain_value_are_not_a_template() -> None:
    text = "# rendered from {{ .Values.x }}\napiVersion: v1\nkind: Service\nmetadata:\n"
    text += "  name: web\n  annotations: {a: '{{x}}'}\n"
    assert [d.code for d in load_text(text, "svc.yaml")[1]] == []


def test_malformed_yaml_names_the_line() -> None:
    docs, diags = load_text("apiVersion: v1\nkind: Service\n  bad: indent\n", "bad.yaml")
    assert docs == ()
    assert str(only_diagnostic(diags)) == (
        "bad.yaml:3: error: cannot parse YAML: mapping values are not allowed here; "
        "the file is skipped"
    )


# --------------------------------------------------------------------------- JSON


def test_json_with_tabs_and_line_numbers() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "j", "labels": {"a/b": "c\td"}},
        "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]},
    }
    text = json.dumps(obj, indent="\t")
    doc = one(text, "s.json")
    assert doc.data == obj
    lines = text.splitlines()
    assert lines[doc.lines["metadata.name"] - 1].strip() == '"name": "j",'
    assert lines[doc.lines["spec.ports[1]"] - 1].strip() == "{"
    assert lines[doc.lines["spec.ports[1].port"] - 1].strip() == '"port": 443,'


def test_json_list() -> None:
    obj = {"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Service"}]}
    doc = one(json.dumps(obj, indent=2), "l.json")
    assert doc.data == {"apiVersion": "v1", "kind": "Service"}
    assert doc.line == 5


def test_invalid_json() -> None:
    docs, diags = load_text('{\n  "apiVersion": "v1",\n  "kind": "Service",,\n}\n', "bad.json")
    assert docs == ()
    diag = only_diagnostic(diags)
    assert diag.code == "yaml-error"
    assert str(diag).startswith("bad.json:3: error: cannot parse JSON: ")


# --------------------------------------------------------------------------- folders


def test_folder_recursive_sorted_and_named_as_given(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    write(root / "b.yaml", SERVICE.format(name="b"))
    write(root / "a" / "z.yml", SERVICE.format(name="az"))
    write(root / "a" / "deeper" / "y.json", json.dumps(json.loads(_json_service("ay"))))
    write(root / "c.yaml", SERVICE.format(name="c1") + "---\n" + SERVICE.format(name="c2"))
    write(root / "notes.txt", SERVICE.format(name="txt"))
    write(root / "README.md", "# hi\n")
    result = load_path(root)
    assert result.diagnostics == ()
    assert names(result) == ["ay", "az", "b", "c1", "c2"]
    assert result.files == tuple(
        str(root / rel) for rel in ("a/deeper/y.json", "a/z.yml", "b.yaml", "c.yaml")
    )
    assert result.documents[0].file == str(root / "a" / "deeper" / "y.json")
    assert result.documents[4].line == 9


def _json_service(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}})


def test_relative_root_keeps_relative_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "examples" / "imagemanager" / "ingress.yaml", SERVICE.format(name="x"))
    monkeypatch.chdir(tmp_path)
    result = load_path(Path("examples/imagemanager"))
    assert result.files == ("examples/imagemanager/ingress.yaml",)
    assert (
        str(result.documents[0].source("metadata.name")) == "examples/imagemanager/ingress.yaml:4"
    )


@pytest.mark.parametrize(
    ("name", "ignored"),
    [
        (".hidden.yaml", True),
        ("..data", True),
        ("..2024_01_01_00_00_00.123", True),
        ("x.yaml~", True),
        (".x.yaml.swp", True),
        ("x.yaml.swp", True),
        ("x.yaml.swx", True),
        ("x.yaml.tmp", True),
        ("#x.yaml#", True),
        ("x.yaml", False),
        ("#", False),
        ("a#b.yaml", False),
    ],
)
def test_ignored_names(name: str, ignored: bool) -> None:
    assert is_ignored_name(name) is ignored


def test_hidden_swap_and_backup_files_are_skipped(tmp_path: Path) -> None:
    write(tmp_path / "ok.yaml", SERVICE.format(name="ok"))
    for junk in (".hidden.yaml", "ok.yaml~", ".ok.yaml.swp", "#ok.yaml#", "x.tmp"):
        write(tmp_path / junk, SERVICE.format(name="junk"))
    write(tmp_path / ".git" / "config.yaml", SERVICE.format(name="git"))
    write(tmp_path / "backup~" / "old.yaml", SERVICE.format(name="old"))
    result = load_path(tmp_path)
    assert names(result) == ["ok"]
    assert result.files == (str(tmp_path / "ok.yaml"),)


def test_configmap_mount_layout(tmp_path: Path) -> None:
    """A ConfigMap volume: real files in a hidden timestamped folder, `..data` links to it, and
    visible top-level symlinks through `..data`. Each file must load exactly once."""
    stamp = tmp_path / "..2024_05_01_12_00_00.000000001"
    write(stamp / "ingress.yaml", SERVICE.format(name="cm"))
    os.symlink(stamp.name, tmp_path / "..data")
    os.symlink("..data/ingress.yaml", tmp_path / "ingress.yaml")
    result = load_path(tmp_path)
    assert result.diagnostics == ()
    assert names(result) == ["cm"]
    assert result.files == (str(tmp_path / "ingress.yaml"),)


def test_symlinks_followed_and_loops_guarded(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "svc.yaml", SERVICE.format(name="linked"))
    root = tmp_path / "root"
    write(root / "sub" / "a.yaml", SERVICE.format(name="a"))
    os.symlink(outside, root / "linked.yaml")
    os.symlink(root, root / "sub" / "loop")  # back to the root: a cycle
    os.symlink(root / "sub", root / "sub2")  # the same folder twice
    os.symlink(tmp_path / "nowhere.yaml", root / "dangling.yaml")
    result = load_path(root)
    assert result.diagnostics == ()
    assert names(result) == ["linked", "a"]
    assert result.files == (str(root / "linked.yaml"), str(root / "sub" / "a.yaml"))


def test_single_file_root(tmp_path: Path) -> None:
    path = write(tmp_path / "only.yaml", SERVICE.format(name="only"))
    result = load_path(path)
    assert names(result) == ["only"]
    assert result.files == (str(path),)
    assert result.documents[0].file == str(path)


def test_missing_folder_is_a_warning(tmp_path: Path) -> None:
    result = load_path(tmp_path / "absent")
    assert result.documents == ()
    assert result.files == ()
    diag = only_diagnostic(result.diagnostics)
    assert (diag.severity, diag.code) == (Severity.WARNING, "missing-folder")
    assert str(diag).startswith(f"{tmp_path / 'absent'}: warning: ")
    assert result.digest != load_path(_empty(tmp_path)).digest


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_broken_file_does_not_stop_other_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", SERVICE.format(name="a"))
    write(tmp_path / "b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [\n")
    (tmp_path / "c.yaml").write_bytes(b"apiVersion: v1\nkind: Service\nname: \xff\xfe\n")
    write(tmp_path / "d.yaml", SERVICE.format(name="d"))
    result = load_path(tmp_path)
    assert names(result) == ["a", "d"]
    assert [(d.code, d.source and d.source.file) for d in result.diagnostics] == [
        ("yaml-error", str(tmp_path / "b.yaml")),
        ("unreadable", str(tmp_path / "c.yaml")),
    ]
    assert str(result.diagnostics[1]) == (
        f"{tmp_path / 'c.yaml'}:3: error: not UTF-8 text (byte 0xff); the file is skipped"
    )


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + SERVICE.format(name="bom").encode())
    assert names(load_path(tmp_path)) == ["bom"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", SERVICE.format(name="a"))
    secret = write(tmp_path / "secret.yaml", SERVICE.format(name="s"))
    secret.chmod(0)
    try:
        result = load_path(tmp_path)
    finally:
        secret.chmod(0o644)
    assert names(result) == ["a"]
    diag = only_diagnostic(result.diagnostics)
    assert diag.code == "unreadable"
    assert str(diag) == f"{secret}: error: cannot read file: Permission denied"


def test_read_error_is_reported_and_other_files_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as above without relying on permissions (CI may run as root)."""
    write(tmp_path / "a.yaml", SERVICE.format(name="a"))
    broken = write(tmp_path / "b.yaml", SERVICE.format(name="b"))
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == broken:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = load_path(tmp_path)
    assert names(result) == ["a"]
    assert [str(d) for d in result.diagnostics] == [
        f"{broken}: error: cannot read file: Permission denied"
    ]
    assert result.files == (str(tmp_path / "a.yaml"), str(broken))


def test_file_vanishing_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a.yaml", SERVICE.format(name="a"))
    gone = write(tmp_path / "b.yaml", SERVICE.format(name="b"))
    real = loader._find_files

    def list_then_delete(root: Path, diagnostics: list[Diagnostic]) -> list[str]:
        found = real(root, diagnostics)
        gone.unlink()  # an editor's atomic save, or a ConfigMap update, in between
        return found

    monkeypatch.setattr(loader, "_find_files", list_then_delete)
    result = load_path(tmp_path)
    assert names(result) == ["a"]
    assert result.diagnostics == ()
    assert result.files == (str(tmp_path / "a.yaml"),)


def test_empty_folder(tmp_path: Path) -> None:
    result = load_path(tmp_path)
    assert result == LoadResult((), (), result.digest, ())


# --------------------------------------------------------------------------- digest


def test_digest_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    root = tmp_path / "m"
    a = write(root / "a.yaml", SERVICE.format(name="a"))
    write(root / "sub" / "b.yaml", SERVICE.format(name="b"))
    first = load_path(root).digest
    assert len(first) == 64
    assert load_path(root).digest == first

    # Touching a file (new mtime, same bytes) changes nothing.
    stat = a.stat()
    os.utime(a, (stat.st_atime + 10, stat.st_mtime + 10))
    assert load_path(root).digest == first

    # Irrelevant files do not count either.
    write(root / ".a.yaml.swp", "junk")
    write(root / "notes.txt", "junk")
    assert load_path(root).digest == first

    a.write_text(SERVICE.format(name="a2"))
    changed = load_path(root).digest
    assert changed != first
    a.write_text(SERVICE.format(name="a"))
    assert load_path(root).digest == first

    # The same bytes under another name are a different configuration (file names show up in
    # diagnostics), and a new empty file is a change too.
    a.rename(root / "c.yaml")
    assert load_path(root).digest != first
    (root / "c.yaml").rename(a)
    write(root / "empty.yaml", "")
    assert load_path(root).digest != first


def test_digest_does_not_depend_on_the_root_spelling(tmp_path: Path) -> None:
    write(tmp_path / "m" / "a.yaml", SERVICE.format(name="a"))
    os.symlink(tmp_path / "m", tmp_path / "alias")
    assert load_path(tmp_path / "m").digest == load_path(tmp_path / "alias").digest


def test_large_folder_loads_in_sorted_order(tmp_path: Path) -> None:
    for i in range(200):
        write(tmp_path / f"d{i % 7}" / f"svc{i:03}.yaml", SERVICE.format(name=f"s{i:03}"))
    result = load_path(tmp_path)
    rels = [Path(f).relative_to(tmp_path).as_posix() for f in result.files]
    assert rels == sorted(rels)
    assert len(result.documents) == 200


def test_parse_cache_reparses_only_changed_files(tmp_path: Path) -> None:
    from ingressproxy.manifests.loader import ParseCache

    (tmp_path / "a.yaml").write_text(SERVICE.format(name="a"))
    (tmp_path / "b.yaml").write_text(SERVICE.format(name="b"))
    cache = ParseCache()
    first = load_path(tmp_path, cache)
    (tmp_path / "b.yaml").write_text(SERVICE.format(name="b2"))
    second = load_path(tmp_path, cache)
    a1, b1 = first.documents
    a2, b2 = second.documents
    assert a2 is a1  # unchanged file: the very same parsed document, no second parse
    assert b2 is not b1
    assert b2.data["metadata"] == {"name": "b2"}
    assert second == load_path(tmp_path)  # the cache never changes the result


def test_yaml_1_2_plain_scalars_the_c_parser_refuses_still_load() -> None:
    # libyaml (YAML 1.1) refuses ':' inside a flow plain scalar; YAML 1.2 allows it.
    doc = one('apiVersion: v1\nkind: X\nargs: [-listen=:8080, "-text=hi"]\n')
    assert doc.data["args"] == ["-listen=:8080", "-text=hi"]


def test_the_fast_resolver_tags_every_scalar_as_ruamel_does() -> None:
    from ruamel.yaml import YAML

    from ingressproxy.manifests.compose import compose_fast, tag_of

    scalars = [
        "on", "yes", "No", "true", "True", "TRUE", "false", "~", "null", "", "0o12", "012",
        "0x1F", "1_000", "1e3", "1.5", ".inf", "-.Inf", ".nan", "+1", "-0", "2001-12-14",
        "2001-12-14t21:59:43.10-05:00", "abc", "<<", "=", "'quoted'", '"80"', "0b101", "1:20",
    ]  # fmt: skip
    text = "\n".join(f"k{i}: {s}" for i, s in enumerate(scalars)) + "\n"
    reference = YAML(typ="safe", pure=False).compose(text)
    fast = compose_fast(text)[0]
    want = [(str(k.value), str(v.tag)) for k, v in reference.value]
    got = [(str(k.value), tag_of(v)) for k, v in fast.value]
    assert got == want
