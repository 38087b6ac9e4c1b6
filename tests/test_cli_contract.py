"""The command line's contract with CI scripts (issue 19), through the real command: exit
statuses, usage problems in one line, ports in use, `--version`, the ready line, and output
cut short by its reader. Each case runs `python -m ingressproxy` in a subprocess (or a shell
pipeline), as a CI step would, on sockets bound to free ports."""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e import example_copy

from ingressproxy.testing.server import LoggedProcess, one_service_manifests

WAIT = 30.0
READY = r"Uvicorn running on http://127\.0\.0\.1:(\d+) \(traffic\)"


def ingressproxy(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingressproxy", *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=cwd,
        check=False,
    )


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def procs() -> Iterator[list[LoggedProcess]]:
    started: list[LoggedProcess] = []
    yield started
    for p in started:
        p.stop(signal.SIGKILL)


@contextlib.contextmanager
def busy_port() -> Iterator[int]:
    """A port something else listens on, as `make run` holds 8080 and 9000."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _folder(tmp_path: Path, text: str, name: str = "m") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "app.yaml").write_text(text, encoding="utf-8")
    return folder


def _without_slices(text: str) -> str:
    """The manifests without their EndpointSlice: an unbacked Service, a warning."""
    return text.rsplit("---\n", 1)[0]


# --------------------------------------------------------------------------- exit status


@pytest.mark.parametrize("command", ["check", "explain", "convert"])
def test_a_folder_that_does_not_exist_is_one_line_and_status_2(
    tmp_path: Path, command: str
) -> None:
    extra = ["/"] if command == "explain" else []
    got = ingressproxy(command, "absent", *extra, cwd=tmp_path)
    assert got.returncode == 2
    absolute = tmp_path.resolve() / "absent"
    assert one_line(got.stderr) == (
        f"ingressproxy {command}: error: {absolute}: no such file or folder"
    )
    assert got.stdout == ""


def test_check_statuses_follow_the_manifests(tmp_path: Path) -> None:
    manifests = one_service_manifests("a.example", "web", 3001)
    clean = _folder(tmp_path, manifests, "clean")
    warned = _folder(tmp_path, _without_slices(manifests), "warned")
    broken = _folder(tmp_path, manifests.replace("pathType: Prefix", "pathType: Pre"), "broken")
    assert ingressproxy("check", str(clean)).returncode == 0
    warning = ingressproxy("check", str(warned))
    assert warning.returncode == 0 and "warning: Service default/web: " in warning.stdout
    assert ingressproxy("check", str(warned), "--strict").returncode == 1
    assert ingressproxy("check", str(broken)).returncode == 1
    assert ingressproxy("check", str(broken), "--format", "json").returncode == 1


def test_explain_explains_and_says_when_the_manifests_have_errors(tmp_path: Path) -> None:
    manifests = one_service_manifests("a.example", "web", 3001)
    ok = ingressproxy("explain", str(_folder(tmp_path, manifests, "ok")), "http://a.example/")
    assert ok.returncode == 0 and ok.stderr == ""
    assert "status: 200" in ok.stdout
    # A second Ingress with a bad path: an error in the manifests, not about this request.
    broken = _folder(tmp_path, manifests, "broken")
    (broken / "other.yaml").write_text(
        manifests.replace("name: web, namespace", "name: other, namespace")
        .replace("pathType: Prefix", "pathType: Pre")
        .split("---\n")[0],
        encoding="utf-8",
    )
    got = ingressproxy("explain", str(broken), "http://a.example/")
    assert got.returncode == 1
    assert "status: 200" in got.stdout  # the explanation is printed either way
    assert one_line(got.stderr) == (
        f"ingressproxy explain: {broken} has 1 error(s) in its manifests;"
        f" `ingressproxy check {broken}` lists them"
    )


def test_help_states_the_exit_statuses() -> None:
    for command in ("check", "explain", "serve", "convert"):
        text = " ".join(ingressproxy(command, "--help").stdout.split())
        assert re.search(r"[Ee]xit status: 0 ", text), (command, text)
        assert "2 " in text and ("usage or I/O problem" in text or "cannot start" in text)
    text = " ".join(ingressproxy("--help").stdout.split())
    assert "exit status: 0 fine (warnings allowed); 1 errors in the manifests" in text


def test_version_comes_from_the_package_metadata() -> None:
    got = ingressproxy("--version")
    assert got.returncode == 0
    assert got.stdout == f"ingressproxy {importlib.metadata.version('ingressproxy')}\n"


def test_output_cut_short_by_its_reader_is_no_traceback(tmp_path: Path) -> None:
    # 300 Ingresses, each with a missing Service: far more JSON than a pipe buffers.
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        text = one_service_manifests(f"app-{i}.example", f"web-{i}", 3001).split("---\n")[0]
        (folder / f"ing-{i:03}.yaml").write_text(text, encoding="utf-8")
    for args, status in (
        (["check", str(folder), "--format", "json"], 1),  # check's verdict: errors
        (["convert", str(folder)], 0),
    ):
        got = subprocess.run(
            ["bash", "-c", 'set -o pipefail; "$@" | head -1', "bash", sys.executable, "-m",
             "ingressproxy", *args],
            capture_output=True, text=True, timeout=WAIT, check=False,
        )  # fmt: skip
        assert got.returncode == status, got.stderr
        assert len(got.stdout.splitlines()) == 1
        assert "Traceback" not in got.stderr and "BrokenPipeError" not in got.stderr


# --------------------------------------------------------------------------- serve


def test_serve_waits_for_a_missing_folder_and_says_so_once(
    tmp_path: Path, procs: list[LoggedProcess]
) -> None:
    proc = LoggedProcess(
        "serve", "later", "--port", "0", "--admin-port", "off", "--https-port", "off",
        cwd=tmp_path, wait=WAIT,
    )  # fmt: skip
    procs.append(proc)
    warning = proc.expect(r"WARNING .*does not exist").string
    assert f"manifest folder {tmp_path.resolve() / 'later'} does not exist" in warning
    port = int(proc.expect(READY).group(1))
    with httpx.Client(trust_env=False) as client:
        assert client.get(f"http://127.0.0.1:{port}/", headers={"Host": "a.example"}).status_code
        # The folder appears (a volume mounted late): it is loaded, nothing restarted.
        _folder(tmp_path, one_service_manifests("a.example", "web", 3001), "later")
        proc.expect(r"config generation=2 objects=3 routes=1 errors=0 warnings=0")
    assert proc.stop() == 0
    assert sum("does not exist" in line for line in proc.drain()) == 1


@pytest.mark.parametrize(
    ("flag", "option"),
    [("--port", "--port"), ("--admin-port", "--admin-port"), ("--https-port", "--https-port")],
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_and_status_2(
    tmp_path: Path, flag: str, option: str, workers: str
) -> None:
    folder = _folder(tmp_path, one_service_manifests("a.example", "web", 3001))
    ports = {"--port": "0", "--admin-port": "0", "--https-port": "off"}
    with busy_port() as port:
        ports[flag] = str(port)
        args = [arg for item in ports.items() for arg in item]
        got = ingressproxy("serve", str(folder), *args, "--workers", workers)
    output = got.stdout + got.stderr
    assert got.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "ERROR" in line or "error:" in line]
    assert errors == [errors[0]], output
    assert f"cannot listen on 127.0.0.1:{port}: port {port} is already in use" in errors[0]
    assert f"choose another with {option} (0: any free port" in errors[0]


def test_serve_says_it_is_ready_in_one_line_naming_every_listener(
    tmp_path: Path, procs: list[LoggedProcess]
) -> None:
    folder, _ = example_copy("imagemanager", tmp_path / "m")
    proc = LoggedProcess(
        "serve", str(folder), "--port", "0", "--admin-port", "0", "--https-port", "0",
        "--fake-backends", wait=WAIT,
    )  # fmt: skip
    procs.append(proc)
    ready = proc.expect(
        READY + r", https://127\.0\.0\.1:(\d+) \(HTTPS\), http://127\.0\.0\.1:(\d+) \(admin\)"
    )
    web, https, admin = (int(ready.group(i)) for i in (1, 2, 3))
    # What it loaded, its fake backends, the admin listener, HTTPS and the ready line: no
    # line per server process, none per fake backend.
    assert len(proc.seen) <= 5, proc.seen
    assert not any("Started server process" in line for line in proc.seen)
    host = {"Host": "api.imagemanager.io"}
    with httpx.Client(trust_env=False, verify=False) as client:
        labeling = client.get(f"http://127.0.0.1:{web}/labeling", headers=host)
        assert labeling.json()["service"] == "image-labeling"
        assert client.get(f"https://127.0.0.1:{https}/labeling", headers=host).status_code == 200
        assert client.get(f"http://127.0.0.1:{admin}/ping").text == "OK"
    assert proc.stop(signal.SIGTERM) == 0
    assert sum("Uvicorn running on" in line for line in proc.drain()) == 1


def test_workers_say_ready_once(tmp_path: Path, procs: list[LoggedProcess]) -> None:
    folder, _ = example_copy("imagemanager", tmp_path / "m")
    proc = LoggedProcess(
        "serve", str(folder), "--port", "0", "--admin-port", "0", "--https-port", "off",
        "--fake-backends", "--workers", "2", wait=WAIT,
    )  # fmt: skip
    procs.append(proc)
    proc.expect_counts({r"config generation=1 ": 2, READY: 1})
    assert proc.stop(signal.SIGTERM) == 0
    lines = proc.drain()
    assert sum("Uvicorn running on" in line for line in lines) == 1
    assert not any("Started server process" in line for line in lines), lines
