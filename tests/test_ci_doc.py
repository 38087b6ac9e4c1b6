"""docs/ci.md's commands, run as written: the readiness waits of its GitHub Actions and GitLab
CI jobs (only the host changes: the job's `localhost:9000` or service alias `ingressproxy`
becomes this test's admin address), its pytest fixtures in a user's project, and its
integration test against a running `serve`. Docker itself does not run here (test_image.py
says what of the image is tested)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e import example_copy
from ruamel.yaml import YAML

from ingressproxy.testing.server import LoggedProcess

pytest_plugins = ["pytester"]

CI_DOC = Path(__file__).resolve().parent.parent / "docs" / "ci.md"
WAIT = 60.0


def blocks(lang: str) -> list[str]:
    """The fenced code blocks of docs/ci.md in `lang`, in order."""
    text = CI_DOC.read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.M | re.S)


def github_wait() -> str:
    """The shell line of the GitHub workflow that waits for the proxy."""
    workflow: Any = YAML(typ="safe").load(next(b for b in blocks("yaml") if "runs-on" in b))
    steps = workflow["jobs"]["integration"]["steps"]
    lines = [ln.strip() for s in steps for ln in s.get("run", "").splitlines()]
    (line,) = [ln for ln in lines if "/ping" in ln and not ln.startswith("#")]
    return line


def gitlab_wait() -> str:
    """The script item of the GitLab job that waits for the proxy."""
    pipeline: Any = YAML(typ="safe").load(next(b for b in blocks("yaml") if "stages:" in b))
    (item,) = [s for s in pipeline["integration"]["script"] if "/ping" in s]
    return str(item)


def job_env() -> dict[str, str]:
    """The job's environment: `python` is one with httpx installed (ours)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def on(command: str, port: int) -> str:
    return command.replace("localhost:9000", f"127.0.0.1:{port}").replace(
        "ingressproxy:9000", f"127.0.0.1:{port}"
    )


@contextlib.contextmanager
def refusing_port() -> Iterator[tuple[socket.socket, int]]:
    """A port of ours where connections are refused (bound, not listening): where the proxy's
    container is not up yet."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock, sock.getsockname()[1]


@pytest.mark.parametrize("wait", [github_wait, gitlab_wait], ids=["github", "gitlab"])
def test_the_readiness_wait_outlasts_a_proxy_still_starting(wait: Any, tmp_path: Path) -> None:
    folder, _ = example_copy("notesmanager", tmp_path / "k8s")
    with refusing_port() as (sock, port):
        waiting = subprocess.Popen(
            ["sh", "-c", on(wait(), port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=job_env(),
        )  # fmt: skip
        # Refused a few times first: the wait must keep trying, not crash on the first.
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=2.5)
        sock.close()
        proxy = LoggedProcess(
            "serve", str(folder), "--port", "0", "--admin-port", str(port), "--https-port", "off",
            wait=WAIT,
        )  # fmt: skip
    try:
        output, _ = waiting.communicate(timeout=WAIT)
        assert waiting.returncode == 0, output
        assert "Traceback" not in output
    finally:
        waiting.kill()
        assert proxy.stop(signal.SIGTERM) == 0, proxy.drain()


@pytest.mark.parametrize(
    ("wait", "tries"),
    [(github_wait, ("--retry 30", "--retry 1")), (gitlab_wait, ("range(30)", "range(2)"))],
    ids=["github", "gitlab"],
)
def test_the_readiness_wait_fails_the_job_when_the_proxy_never_answers(
    wait: Any, tries: tuple[str, str]
) -> None:
    command = wait()
    assert tries[0] in command
    with refusing_port() as (_sock, port):
        done = subprocess.run(
            ["sh", "-c", on(command, port).replace(*tries)],
            capture_output=True, text=True, timeout=WAIT, check=False, env=job_env(),
        )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr


def test_the_pytest_fixtures_as_documented(pytester: pytest.Pytester) -> None:
    ini, *python = blocks("ini") + blocks("python")
    example_copy("imagemanager", pytester.path / "k8s")
    pytester.path.joinpath("pytest.ini").write_text(ini.split("\n", 1)[1], encoding="utf-8")
    fixture_test = next(b for b in python if "def test_search(ingressproxy)" in b)
    session = next(b for b in python if "start_proxy" in b)
    uses_session = """

def test_session_proxy(proxy):
    assert proxy.get("/search", host="api.imagemanager.io").json()["service"] == "image-search"
"""
    pytester.makepyfile(test_fixture=fixture_test, test_session=session + uses_session)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_integration_test_through_serve(pytester: pytest.Pytester, tmp_path: Path) -> None:
    folder, _ = example_copy("imagemanager", tmp_path / "k8s")
    (routes,) = [b for b in blocks("python") if "PROXY_URL" in b]
    pytester.makepyfile(test_routes=routes)
    proxy = LoggedProcess(
        "serve", str(folder), "--port", "0", "--admin-port", "off", "--https-port", "off",
        "--fake-backends", wait=WAIT,
    )  # fmt: skip
    try:
        port = int(proxy.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
            cwd=pytester.path, env={"PROXY_URL": f"http://127.0.0.1:{port}", "PATH": ""},
            capture_output=True, text=True, timeout=WAIT, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        assert proxy.stop(signal.SIGTERM) == 0
