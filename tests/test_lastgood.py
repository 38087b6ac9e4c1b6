"""Last good configuration, per file and per object (pure functions of lastgood.py)."""

from __future__ import annotations

from ingressproxy.manifests.decode import decode
from ingressproxy.manifests.lastgood import (
    GoodState,
    carry_forward_files,
    carry_forward_objects,
    objects_by_ref,
)
from ingressproxy.manifests.loader import load_text
from ingressproxy.manifests.model import Diagnostic, ObjectRef, Severity, Source

SECRET = """\
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {{name: site, namespace: web}}
stringData:
  tls.crt: {crt}
  tls.key: "k"
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: web}}
spec:
  ports: [{{name: http, port: {port}}}]
"""


def test_an_object_that_stops_validating_keeps_its_last_good_version() -> None:
    good_m, good_d = decode(load_text(SERVICE.format(name="a", port=80), "a.yaml")[0])
    assert not good_d
    previous = GoodState(objects=objects_by_ref(good_m))
    bad_docs, _ = load_text(SERVICE.format(name="a", port=0), "a.yaml")  # port 0: invalid
    bad_m, bad_d = decode(bad_docs)
    assert not bad_m.services
    kept, extra = carry_forward_objects(bad_m, bad_d, previous)
    assert [s.ports[0].port for s in kept.services] == [80]
    assert [d.code for d in extra] == ["kept-last-good"]
    assert extra[0].obj == ObjectRef("Service", "web", "a")


def test_secrets_keep_their_last_good_version_too() -> None:
    good_m, _ = decode(load_text(SECRET.format(crt='"c"'), "s.yaml")[0])
    assert good_m.secrets
    previous = GoodState(objects=objects_by_ref(good_m))
    bad_m, bad_d = decode(load_text(SECRET.format(crt="[not, a, string]"), "s.yaml")[0])
    assert not bad_m.secrets and any(d.code == "invalid" for d in bad_d)
    kept, extra = carry_forward_objects(bad_m, bad_d, previous)
    assert [s.meta.name for s in kept.secrets] == ["site"]
    assert extra


def test_a_removed_object_is_not_brought_back() -> None:
    good_m, _ = decode(load_text(SERVICE.format(name="a", port=80), "a.yaml")[0])
    previous = GoodState(objects=objects_by_ref(good_m))
    empty_m, empty_d = decode(())
    kept, extra = carry_forward_objects(empty_m, empty_d, previous)
    assert kept.services == () and extra == ()


def test_a_file_that_stops_parsing_keeps_its_documents_others_apply() -> None:
    a_docs, _ = load_text(SERVICE.format(name="a", port=80), "a.yaml")
    b_docs, _ = load_text(SERVICE.format(name="b", port=80), "b.yaml")
    previous = GoodState(documents_by_file={"a.yaml": a_docs, "b.yaml": b_docs})
    b_new, _ = load_text(SERVICE.format(name="b", port=81), "b.yaml")
    broken = Diagnostic(Severity.ERROR, "yaml-error", "cannot parse", Source("a.yaml", 3))
    docs, extra, remembered = carry_forward_files(b_new, (broken,), previous)
    assert [d.file for d in docs] == ["b.yaml", "a.yaml"]
    assert docs[0] is b_new[0]  # b's new version applies
    assert [d.code for d in extra] == ["kept-last-good"]
    assert set(remembered) == {"a.yaml", "b.yaml"}


def test_a_deleted_file_is_forgotten() -> None:
    a_docs, _ = load_text(SERVICE.format(name="a", port=80), "a.yaml")
    previous = GoodState(documents_by_file={"a.yaml": a_docs})
    docs, extra, remembered = carry_forward_files((), (), previous)
    assert docs == () and extra == () and remembered == {}
