"""`serve --workers N` as a user runs it: one supervisor, N worker processes on one socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e import example_copy

from ingressproxy.cli.main import build_parser, settings_from_args
from ingressproxy.server.workers import worker_argv, worker_env
from ingressproxy.testing.server import LoggedProcess

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WAIT = 30.0
HOST = {"Host": "api.imagemanager.io"}


class Supervisor(LoggedProcess):
    """`python -m ingressproxy serve ... --workers N` with its log read on a thread."""

    def __init__(self, *args: str) -> None:
        super().__init__("serve", *args, wait=WAIT)

    def workers(self) -> list[int]:
        """The pids of the supervisor's children (its workers)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == self.p.pid:
                    found.append(int(entry.name))
        return found


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for s in started:
        if s.p.poll() is None:
            s.p.send_signal(signal.SIGTERM)
            try:
                s.p.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                s.p.kill()
                s.p.wait(timeout=WAIT)


def _all_answer(port: int, n: int = 20) -> list[int]:
    statuses = []
    for _ in range(n):
        # A new connection each time, so the kernel may hand it to either worker.
        with httpx.Client(trust_env=False, timeout=10) as client:
            r = client.get(f"http://127.0.0.1:{port}/labeling", headers=HOST)
            statuses.append(r.status_code)
    return statuses


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for the worker processes")
def test_two_workers_serve_reload_survive_a_crash_and_stop(
    supervisors: list[Supervisor], tmp_path: Path
) -> None:
    folder, _ = example_copy("imagemanager", tmp_path / "imagemanager")
    sup = Supervisor(
        str(folder), "--port", "0", "--admin-port", "0", "--https-port",
        "off", "--fake-backends", "--workers", "2", "--access-log", "off",
        "--log-level", "debug",  # each worker's ready line; at info only the first says it
    )  # fmt: skip
    supervisors.append(sup)
    port = int(sup.expect(r"listening on http://127\.0\.0\.1:(\d+) with 2 worker").group(1))
    # Each worker loads the folder itself; only the first runs the admin listener. The two
    # workers' lines interleave differently on every run, so they are counted, not ordered.
    sup.expect_counts({r"config generation=1 .*errors=0": 2, r"Uvicorn running on": 2})
    assert len(sup.workers()) == 2
    assert _all_answer(port) == [200] * 20
    assert sum("admin listening" in line for line in sup.seen) <= 1

    # SIGHUP reaches every worker: each reloads.
    sup.p.send_signal(signal.SIGHUP)
    sup.expect_counts({r"config generation=2 ": 2})

    # A worker that dies is replaced; the other keeps serving meanwhile.
    victim = max(sup.workers())
    os.kill(victim, signal.SIGKILL)
    sup.expect(rf"worker \d \(pid {victim}\) exited with -9; starting it again")
    sup.expect(r"Uvicorn running on")
    assert victim not in sup.workers() and len(sup.workers()) == 2
    assert _all_answer(port, 5) == [200] * 5

    workers = sup.workers()
    sup.p.send_signal(signal.SIGTERM)
    assert sup.p.wait(timeout=WAIT) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_worker_command_lines_keep_the_users_flags_and_leave_ports_to_the_first() -> None:
    argv = ["serve", "dir", "--fake-backends", "--admin-port", "9100", "--workers", "3"]
    first = worker_argv(argv, 7, 0)
    other = worker_argv(argv, 7, 2)
    assert (
        first[-10:]
        == [*argv[2:], "--workers", "1", "--worker-fd", "7", "--worker-index", "0"][-10:]
    )
    assert other[-6:-4] == ["--worker-index", "2"]
    assert "--fake-backends" in first and "--fake-backends" not in other
    # argparse keeps the last value: the other workers run without admin or HTTPS listeners.
    assert other[-4:] == ["--admin-port", "off", "--https-port", "off"]


def test_only_the_first_worker_runs_fake_backends_asked_for_by_variable() -> None:
    """Each worker resolves its settings from its command line and environment: variables
    reach every worker, but the fake backends, the admin and HTTPS listeners stay with the
    first however they were asked for."""
    env = {
        "INGRESSPROXY_FAKE_BACKENDS": "1",
        "INGRESSPROXY_WORKERS": "3",
        "INGRESSPROXY_ADMIN_PORT": "9100",
        "INGRESSPROXY_MAX_HEADERS": "50",
    }
    parser = build_parser()
    resolved = []
    for index in (0, 1):
        argv = worker_argv(["serve", "dir"], 7, index)[3:]  # after python -m ingressproxy
        resolved.append(settings_from_args(parser.parse_args(argv), worker_env(env, index == 0)))
    first_worker, other = resolved
    assert first_worker.fake_backends and first_worker.admin_port == 9100
    assert not other.fake_backends and other.admin_port is None and other.https_port is None
    assert first_worker.workers == other.workers == 1
    assert first_worker.max_headers == other.max_headers == 50


def test_workers_must_be_at_least_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "serve", "dir", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 2
    assert "at least 1 worker" in done.stderr
