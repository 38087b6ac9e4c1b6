"""Manifests from standard input: `helm template ... | ingressproxy serve -` and `... | check -`.

Real processes with a real pipe; the stream is read once, diagnostics name it <stdin>, and
there is no hot reload (a log line says so).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingressproxy.frontends.options import CompileOptions
from ingressproxy.ir.snapshot import SnapshotHolder
from ingressproxy.server.reloader import STDIN, Reloader, build_snapshot
from ingressproxy.server.settings import Settings
from ingressproxy.testing.echo import create_echo_app
from ingressproxy.testing.server import ServerThread, serve_in_thread

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOST = "api.imagemanager.io"
WAIT = 20.0


def helm_template(folder: Path) -> str:
    """The folder's files as `helm template` prints a chart: `---` and a `# Source:` line
    before each file's documents."""
    parts = []
    for path in sorted(folder.glob("*.yaml")):
        parts.append(f"---\n# Source: imagemanager/templates/{path.name}\n{path.read_text()}")
    return "".join(parts)


def run_check(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingressproxy", "check", "-", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_reads_standard_input() -> None:
    proc = run_check(helm_template(EXAMPLES / "imagemanager"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^-: \d+ objects, 3 routes, 0 errors, 0 warnings$", proc.stdout, re.M)


def test_check_names_stdin_in_diagnostics() -> None:
    text = helm_template(EXAMPLES / "imagemanager").replace("pathType: Prefix", "pathType: Pre", 1)
    proc = run_check(text)
    assert proc.returncode == 1
    assert re.search(
        r"^<stdin>:\d+: error: Ingress imagemanager/imagemanager-services: "
        r"spec\.rules\[0\]\.http\.paths\[0\]\.pathType: ",
        proc.stdout,
        re.M,
    ), proc.stdout


def test_check_of_empty_input() -> None:
    proc = run_check("")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 objects, 0 routes" in proc.stdout


def test_build_snapshot_from_bytes_and_reloader_reads_once() -> None:
    data = helm_template(EXAMPLES / "imagemanager").encode()
    built = build_snapshot(STDIN, CompileOptions(), stdin=data)
    assert built is not None
    assert built[0].routes == 3
    # A forced reload (SIGHUP) rebuilds from what was read, not from an exhausted stream.
    holder = SnapshotHolder()
    reloader = Reloader(Settings(manifests=STDIN), holder, stdin=data)
    first = reloader.reload(force=True)
    second = reloader.reload(force=True)
    assert first is not None and second is not None
    assert (first.routes, second.routes, second.generation) == (3, 3, 2)
    assert first.digest == second.digest == built[0].digest


def test_stdin_that_is_not_utf8() -> None:
    built = build_snapshot(STDIN, CompileOptions(), stdin=b"kind: \xff\n")
    assert built is not None
    (d,) = built[0].diagnostics
    assert (d.code, str(d.source)) == ("unreadable", "<stdin>:1")


@pytest.fixture
def search_backend() -> Iterator[ServerThread]:
    with serve_in_thread(create_echo_app("image-search", namespace="imagemanager")) as s:
        yield s


def test_serve_reads_standard_input(search_backend: ServerThread) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "ingressproxy", "serve", "-", "--port", "0",
            "--admin-port", "off", "--access-log", "off",
            "--backend", f"image-search={search_backend.url}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    def expect(pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(seen))
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert proc.stdin is not None
        proc.stdin.write(helm_template(EXAMPLES / "imagemanager"))
        proc.stdin.close()  # end of the pipe, as when `helm template` exits
        expect(r"config generation=1 objects=\d+ routes=3 errors=0")
        expect(r"manifests read from standard input: no hot reload")
        port = int(expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            r = client.get("/search", headers={"Host": HOST})
        assert r.status_code == 200, r.text
        assert r.json()["service"] == "image-search"
        # SIGHUP rebuilds from what was read: the same routes, a new generation.
        proc.send_signal(signal.SIGHUP)
        expect(r"config generation=2 objects=\d+ routes=3 errors=0")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0
