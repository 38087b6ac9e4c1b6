"""`ingressproxy` as a user runs it: a real process, real signals, real sockets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e import example_copy

from ingressproxy.testing.server import LoggedProcess

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WAIT = 20.0


class Proc(LoggedProcess):
    """A running `python -m ingressproxy ...`; killed at the end of its test if still alive."""

    def stop(self, sig: int = signal.SIGKILL) -> int:
        return super().stop(sig)


@pytest.fixture
def proc_factory() -> Iterator[list[Proc]]:
    procs: list[Proc] = []
    yield procs
    for p in procs:
        p.stop()


def test_serve_example_sighup_and_ctrl_c(proc_factory: list[Proc], tmp_path: Path) -> None:
    folder, _ = example_copy("imagemanager", tmp_path / "imagemanager")  # its port: nobody's
    proc = Proc("serve", str(folder), "--port", "0", "--admin-port", "off")
    proc_factory.append(proc)
    # One line per reload: generation, objects, routes, errors, time taken.
    proc.expect(r"config generation=1 objects=\d+ routes=3 errors=0 warnings=0 took=[\d.]+ms")
    port = int(proc.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
    with httpx.Client(trust_env=False) as client:
        r = client.get(f"http://127.0.0.1:{port}/labeling", headers={"Host": "api.imagemanager.io"})
        # No fake backends in this run: the endpoints are not listening.
        assert r.status_code == 502
        r = client.get(f"http://127.0.0.1:{port}/nope", headers={"Host": "api.imagemanager.io"})
        assert r.status_code == 404
    proc.p.send_signal(signal.SIGHUP)
    proc.expect(r"config generation=2 ")
    proc.p.send_signal(signal.SIGINT)
    proc.expect(r"Application shutdown complete")
    assert proc.p.wait(timeout=WAIT) == 130  # the shell's convention for Ctrl-C
    assert not any("Traceback" in line for line in proc.drain()), proc.seen


def test_serve_with_fake_backends_answers_like_the_blog(
    proc_factory: list[Proc], tmp_path: Path
) -> None:
    folder, _ = example_copy("imagemanager", tmp_path / "imagemanager")
    proc = Proc(
        "serve", str(folder), "--port", "0", "--admin-port", "off", "--fake-backends",
    )  # fmt: skip
    proc_factory.append(proc)
    port = int(proc.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
    with httpx.Client(trust_env=False) as client:
        pods = set()
        for _ in range(3):
            r = client.get(
                f"http://127.0.0.1:{port}/labeling", headers={"Host": "api.imagemanager.io"}
            )
            assert r.status_code == 200
            body = r.json()
            assert body["service"] == "image-labeling"
            assert body["namespace"] == "imagemanager"
            pods.add(body["pod"])
        assert len(pods) == 3  # round robin over the three Pods
    proc.p.send_signal(signal.SIGTERM)
    assert proc.p.wait(timeout=WAIT) == 0


def test_check_reports_and_exits(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(EXAMPLES / "imagemanager")],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 errors" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (EXAMPLES / "imagemanager" / "ingress.yaml").read_text().replace("Prefix", "Pre")
    )
    r = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert r.returncode == 1
    assert re.search(
        r"bad\.yaml:\d+: error: Ingress imagemanager/imagemanager-services: ", r.stdout
    )


def test_uvicorn_factory_reads_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "INGRESSPROXY_MANIFESTS": str(EXAMPLES / "imagemanager"),
        "INGRESSPROXY_ADMIN_PORT": "off",
    }
    proc = Proc(
        argv=[sys.executable, "-m", "uvicorn", "--factory", "ingressproxy.app:create_app",
              "--port", "0", "--no-proxy-headers", "--no-server-header", "--no-date-header"],
        env=env,
    )  # fmt: skip
    try:
        proc.expect(r"config generation=1 objects=\d+ routes=3 errors=0")
        port = int(proc.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        with httpx.Client(trust_env=False) as client:
            r = client.get(f"http://127.0.0.1:{port}/x", headers={"Host": "api.imagemanager.io"})
            assert r.status_code == 404
            assert 'no route for host "api.imagemanager.io" path "/x"' in r.text
            assert r.headers.get_list("server") == ["ingressproxy"]
    finally:
        proc.stop()
