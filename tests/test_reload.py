"""Hot reload end to end: the real app watching a real folder, real echo backends, real sockets.

Every wait is on the snapshot generation or the reloader's rebuild count, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from e2e import CONFORMANCE, Cluster, Served, cluster, echo, run_proxy

from ingressproxy.ir.snapshot import Snapshot, SnapshotHolder
from ingressproxy.manifests.model import Severity
from ingressproxy.server.reloader import Reloader
from ingressproxy.testing.server import one_service_manifests, serve_in_thread

FIXTURE = CONFORMANCE.parent / "reload"
HOST = "shop.example"
WAIT = 15.0


@dataclass
class Live:
    cluster: Cluster
    folder: Path
    served: Served

    @property
    def holder(self) -> SnapshotHolder:
        holder: SnapshotHolder = self.served.app.state.holder
        return holder

    @property
    def reloader(self) -> Reloader:
        reloader: Reloader = self.served.app.state.reloader
        return reloader

    def get(self, path: str) -> httpx.Response:
        return self.served.get(path, host=HOST)

    def change(self, action: Callable[[], None], until: Callable[[Snapshot], bool]) -> Snapshot:
        """Run `action`, then wait for a snapshot that satisfies `until`."""
        action()
        return self.wait(until)

    def wait(self, until: Callable[[Snapshot], bool]) -> Snapshot:
        gen = self.holder.current.generation
        deadline = WAIT
        while not until(self.holder.current):
            assert self.holder.wait_for_generation(gen + 1, deadline), (
                f"no new snapshot within {WAIT}s; current diagnostics: "
                f"{[str(d) for d in self.holder.current.diagnostics]}"
            )
            gen = self.holder.current.generation
        return self.holder.current


def atomic_write(path: Path, text: str) -> None:
    """What editors and kubectl-like tools do: write a temp file, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def has_path(path: str) -> Callable[[Snapshot], bool]:
    def check(snap: Snapshot) -> bool:
        m = snap.table.match(HOST, path)
        return m.route is not None and m.route.path is not None

    return check


def lacks_path(path: str) -> Callable[[Snapshot], bool]:
    def check(snap: Snapshot) -> bool:
        return not has_path(path)(snap)

    return check


def errors(snap: Snapshot) -> list[str]:
    return [str(d) for d in snap.diagnostics if d.severity is Severity.ERROR]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with cluster(FIXTURE) as c:
        folder = c.write(tmp_path / "manifests")
        with run_proxy(folder, watch=True) as served:
            yield Live(c, folder, served)


def test_edit_applies_and_new_route_answers(live: Live) -> None:
    assert live.get("/alpha").status_code == 200
    assert live.get("/gamma").status_code == 404
    text = (live.folder / "team-a.yaml").read_text().replace("/alpha", "/gamma")
    live.change(lambda: atomic_write(live.folder / "team-a.yaml", text), has_path("/gamma"))
    r = live.get("/gamma")
    assert r.status_code == 200
    assert echo(r).service == "alpha"
    assert live.get("/alpha").status_code == 404


def test_in_place_write_is_picked_up(live: Live) -> None:
    path = live.folder / "team-b.yaml"
    text = path.read_text().replace("/beta", "/beta2")
    live.change(lambda: path.write_text(text), has_path("/beta2"))
    assert echo(live.get("/beta2")).service == "beta"


def test_unchanged_content_is_a_no_op(live: Live) -> None:
    path = live.folder / "team-a.yaml"
    gen = live.holder.current.generation
    checks = live.reloader.checks
    path.write_text(path.read_text())  # same bytes: an event, a rebuild check, no swap
    os.utime(path)
    assert live.reloader.wait_for_checks(checks + 1, WAIT)
    assert live.holder.current.generation == gen
    # A real change afterwards is exactly one new generation.
    atomic_write(path, path.read_text().replace("/alpha", "/alpha2"))
    snap = live.wait(has_path("/alpha2"))
    assert snap.generation == gen + 1


def test_invalid_edit_keeps_last_good_object_and_other_changes_apply(live: Live) -> None:
    a = live.folder / "team-a.yaml"
    b = live.folder / "team-b.yaml"
    broken = a.read_text().replace("pathType: Prefix", "pathType: Prefixx")
    snap = live.change(lambda: atomic_write(a, broken), lambda s: bool(errors(s)))
    msgs = errors(snap)
    assert any(
        "team-a.yaml:" in m and "Ingress shop/team-a" in m and "pathType" in m for m in msgs
    ), msgs
    assert any(d.code == "kept-last-good" for d in snap.diagnostics)
    # The previous valid version of team-a still serves...
    assert echo(live.get("/alpha")).service == "alpha"
    # ...and another team's edit still applies.
    atomic_write(b, b.read_text().replace("/beta", "/beta-new"))
    live.wait(has_path("/beta-new"))
    assert echo(live.get("/beta-new")).service == "beta"
    assert echo(live.get("/alpha")).service == "alpha"
    # Fixing the file brings the new version in and clears the error.
    fixed = (
        a.read_text()
        .replace("pathType: Prefixx", "pathType: Prefix")
        .replace("/alpha", "/alpha-fixed")
    )
    snap = live.change(lambda: atomic_write(a, fixed), has_path("/alpha-fixed"))
    assert not errors(snap)
    assert live.get("/alpha").status_code == 404


def test_bad_yaml_keeps_the_files_previous_objects(live: Live) -> None:
    a = live.folder / "team-a.yaml"
    snap = live.change(
        lambda: atomic_write(a, a.read_text() + "\n  oops: [unclosed\n"),
        lambda s: any(d.code == "yaml-error" for d in s.diagnostics),
    )
    err = next(d for d in snap.diagnostics if d.code == "yaml-error")
    assert err.source is not None and err.source.file.endswith("team-a.yaml")
    assert err.source.line > 0
    assert echo(live.get("/alpha")).service == "alpha"


def test_delete_removes_and_readd_restores(live: Live) -> None:
    a = live.folder / "team-a.yaml"
    text = a.read_text()
    live.change(a.unlink, lacks_path("/alpha"))
    assert live.get("/alpha").status_code == 404
    assert live.get("/beta").status_code == 200
    live.change(lambda: a.write_text(text), has_path("/alpha"))
    assert echo(live.get("/alpha")).service == "alpha"


def test_rename_into_place(live: Live) -> None:
    staged = live.folder / "new.yaml.part"  # not a manifest name: ignored until renamed
    text = (live.folder / "team-b.yaml").read_text()
    text = text.replace("team-b", "team-c").replace("/beta", "/gamma")
    staged.write_text(text)
    live.change(lambda: staged.rename(live.folder / "team-c.yaml"), has_path("/gamma"))
    assert echo(live.get("/gamma")).service == "beta"


def test_configmap_data_symlink_swap(tmp_path: Path) -> None:
    """The layout kubelet gives a mounted ConfigMap: visible names are symlinks through `..data`,
    which is itself a symlink swapped atomically to a new timestamped folder."""
    with cluster(FIXTURE) as c:
        staging = c.write(tmp_path / "staging")
        mount = tmp_path / "mount"
        mount.mkdir()
        v1 = mount / "..2026_11_27_00_00_00.1"
        v1.mkdir()
        for f in staging.iterdir():
            (v1 / f.name).write_text(f.read_text())
        (mount / "..data").symlink_to(v1.name)
        for f in staging.iterdir():
            (mount / f.name).symlink_to(f"..data/{f.name}")
        with run_proxy(mount, watch=True) as served:
            live = Live(c, mount, served)
            assert live.get("/alpha").status_code == 200
            v2 = mount / "..2026_11_27_00_01_00.2"
            v2.mkdir()
            for f in v1.iterdir():
                (v2 / f.name).write_text(f.read_text().replace("/alpha", "/alpha-v2"))
            tmp_link = mount / "..data_tmp"
            tmp_link.symlink_to(v2.name)

            def swap() -> None:
                os.replace(tmp_link, mount / "..data")

            live.change(swap, has_path("/alpha-v2"))
            assert echo(live.get("/alpha-v2")).service == "alpha"


def test_editor_swap_files_are_ignored(live: Live) -> None:
    gen = live.holder.current.generation
    checks = live.reloader.checks
    (live.folder / ".team-a.yaml.swp").write_bytes(b"\x00garbage: [")
    (live.folder / "team-a.yaml~").write_text("kind: [")
    (live.folder / "#team-a.yaml#").write_text("kind: [")
    assert live.reloader.wait_for_checks(checks + 1, WAIT)
    assert live.holder.current.generation == gen
    assert not errors(live.holder.current)


def test_broken_file_at_start_serves_the_rest_and_keeps_watching(tmp_path: Path) -> None:
    with cluster(FIXTURE) as c:
        folder = c.write(tmp_path / "m", extra={"broken.yaml": "kind: [unclosed\n"})
        with run_proxy(folder, watch=True) as served:
            live = Live(c, folder, served)
            assert any(d.code == "yaml-error" for d in live.holder.current.diagnostics)
            assert live.get("/alpha").status_code == 200
            fixed = (folder / "team-a.yaml").read_text().replace("team-a", "team-x")
            fixed = fixed.replace("/alpha", "/fixed")
            live.change(
                lambda: atomic_write(folder / "broken.yaml", fixed),
                has_path("/fixed"),
            )
            assert not errors(live.holder.current)
            assert echo(live.get("/fixed")).service == "alpha"


def test_missing_folder_serves_404_and_waits_for_files(tmp_path: Path) -> None:
    with cluster(FIXTURE) as c:
        staging = c.write(tmp_path / "staging")
        folder = tmp_path / "later" / "manifests"
        with run_proxy(folder, watch=True) as served:
            live = Live(c, folder, served)
            assert live.get("/alpha").status_code == 404

            def create() -> None:
                folder.parent.mkdir()
                tmp = tmp_path / "later" / "tmp"
                tmp.mkdir()
                for f in staging.iterdir():
                    (tmp / f.name).write_text(f.read_text())
                tmp.rename(folder)

            live.change(create, has_path("/alpha"))
            assert echo(live.get("/alpha")).service == "alpha"
            # ...and keeps following the folder once it exists.
            a = folder / "team-a.yaml"
            live.change(
                lambda: atomic_write(a, a.read_text().replace("/alpha", "/alpha3")),
                has_path("/alpha3"),
            )


def test_scale_to_zero_and_back(live: Live) -> None:
    slices = next(live.folder.glob("zz-*.yaml"))
    original = slices.read_text()
    docs = original.split("---\n")
    alpha = next(d for d in docs if "service-name: alpha" in d)
    scaled = alpha.split("endpoints:\n")[0] + "endpoints: []\n"
    live.change(
        lambda: atomic_write(slices, original.replace(alpha, scaled)),
        lambda s: any(d.code == "no-endpoints" for d in s.diagnostics),
    )
    r = live.get("/alpha")
    assert r.status_code == 503
    assert "shop/alpha:http" in r.text
    assert live.get("/beta").status_code == 200
    live.change(
        lambda: atomic_write(slices, original),
        lambda s: not any(d.code == "no-endpoints" for d in s.diagnostics),
    )
    assert echo(live.get("/alpha")).service == "alpha"


def test_polling_mode_follows_changes(tmp_path: Path) -> None:
    with cluster(FIXTURE) as c:
        folder = c.write(tmp_path / "m")
        with run_proxy(folder, watch=True, poll=True) as served:
            live = Live(c, folder, served)
            a = folder / "team-a.yaml"
            live.change(
                lambda: atomic_write(a, a.read_text().replace("/alpha", "/polled")),
                has_path("/polled"),
            )
            assert echo(live.get("/polled")).service == "alpha"


# --------------------------------------------------------------------------- in-flight streams


def _gated_stream_app(gate: threading.Event) -> Callable[..., object]:
    async def app(scope: dict[str, object], receive: object, send: Callable[..., object]) -> None:
        if scope["type"] != "http":
            return
        await send(  # type: ignore[misc]
            {"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"gated")]}
        )
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})  # type: ignore[misc]
        await asyncio.to_thread(gate.wait, WAIT)
        await send({"type": "http.response.body", "body": b"second;", "more_body": True})  # type: ignore[misc]
        await send({"type": "http.response.body", "body": b"end"})  # type: ignore[misc]

    return app


def test_stream_in_flight_survives_a_reload_that_removes_its_route(tmp_path: Path) -> None:
    gate = threading.Event()
    with serve_in_thread(_gated_stream_app(gate)) as backend, cluster(FIXTURE) as c:
        folder = c.write(
            tmp_path / "m",
            extra={
                "stream.yaml": one_service_manifests(
                    HOST, "streamer", backend.port, namespace="shop", path="/stream"
                ),
            },
        )
        with run_proxy(folder, watch=True) as served:
            live = Live(c, folder, served)
            with served.client.stream("GET", "/stream", headers={"Host": HOST}) as r:
                assert r.status_code == 200
                chunks = r.iter_raw()
                first = next(chunks)
                assert first.startswith(b"first;")
                live.change((folder / "stream.yaml").unlink, lacks_path("/stream"))
                assert live.get("/stream").status_code == 404  # the route is gone for new requests
                gate.set()
                rest = b"".join(chunks)
            assert first + rest == b"first;second;end"


async def _peer_app(scope: dict[str, object], receive: object, send: Callable[..., object]) -> None:
    """Answers with the client port it sees: the proxy's upstream connection to this backend."""
    if scope["type"] != "http":
        return
    client = scope.get("client") or ("", 0)
    body = str(client[1]).encode()  # type: ignore[index]
    await send(  # type: ignore[misc]
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})  # type: ignore[misc]


def test_endpoint_edits_keep_open_upstream_connections_to_other_endpoints(tmp_path: Path) -> None:
    with serve_in_thread(_peer_app) as backend, cluster(FIXTURE) as c:
        folder = c.write(
            tmp_path / "m",
            extra={
                "peer.yaml": one_service_manifests(
                    HOST, "peer", backend.port, namespace="shop", path="/peer"
                )
            },
        )
        with run_proxy(folder, watch=True) as served:
            live = Live(c, folder, served)
            before = live.get("/peer").text
            assert live.get("/peer").text == before  # a pooled keep-alive connection
            slices = next(folder.glob("zz-*.yaml"))
            original = slices.read_text()
            alpha = next(d for d in original.split("---\n") if "service-name: alpha" in d)
            scaled = alpha.split("endpoints:\n")[0] + "endpoints: []\n"
            live.change(
                lambda: atomic_write(slices, original.replace(alpha, scaled)),
                lambda s: any(d.code == "no-endpoints" for d in s.diagnostics),
            )
            assert live.get("/alpha").status_code == 503
            # The same upstream connection to the untouched endpoint still carries requests.
            assert live.get("/peer").text == before
