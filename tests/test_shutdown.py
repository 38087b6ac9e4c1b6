"""SIGTERM as an orchestrator sends it: a real `ingressproxy serve` process with a request in
flight. It must stop accepting, answer /ping with 503, let the request finish within
--graceful-timeout, and exit 0."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from proxykit import WAIT, Conn, RawResponse, RawUpstream, ok, read_response

from ingressproxy.testing.server import LoggedProcess, one_service_manifests


class Proc(LoggedProcess):
    """`python -m ingressproxy ...`; log lines are awaited for at most 2 * WAIT seconds."""

    def __init__(self, *args: str) -> None:
        super().__init__(*args, wait=2 * WAIT)


@pytest.fixture
def slow_upstream() -> Iterator[tuple[RawUpstream, threading.Event]]:
    release = threading.Event()

    def handler(conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            if seen.target == b"/slow":
                release.wait(3 * WAIT)
            conn.send(ok(b"finished"))

    with RawUpstream(handler) as upstream:
        yield upstream, release
        release.set()


@pytest.fixture
def started(
    tmp_path: Path, slow_upstream: tuple[RawUpstream, threading.Event]
) -> Iterator[tuple[Proc, int, int]]:
    upstream, _ = slow_upstream
    (tmp_path / "app.yaml").write_text(
        one_service_manifests("app.test", "app", upstream.port, namespace="shop")
    )
    proc = Proc(
        "serve", str(tmp_path), "--port", "0", "--admin-port", "0", "--graceful-timeout", "2"
    )
    try:
        admin = int(proc.expect(r"admin listening on http://127\.0\.0\.1:(\d+)").group(1))
        port = int(proc.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        yield proc, port, admin
    finally:
        if proc.p.poll() is None:
            proc.p.kill()
        proc.p.wait(WAIT)


def _in_flight(port: int) -> tuple[threading.Thread, list[RawResponse]]:
    result: list[RawResponse] = []

    def run() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=3 * WAIT) as sock:
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
            result.append(read_response(sock))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_sigterm_drains_in_flight_requests_then_exits_0(
    started: tuple[Proc, int, int], slow_upstream: tuple[RawUpstream, threading.Event]
) -> None:
    proc, port, admin = started
    upstream, release = slow_upstream
    with httpx.Client(trust_env=False, timeout=WAIT) as client:
        assert client.get(f"http://127.0.0.1:{admin}/ping").status_code == 200
        thread, result = _in_flight(port)
        upstream.wait_for(1)  # the request is at the upstream, waiting

        proc.p.send_signal(signal.SIGTERM)
        proc.expect(r"Waiting for connections to close")  # uvicorn closed its listener first
        ping = client.get(f"http://127.0.0.1:{admin}/ping")
        assert (ping.status_code, ping.text) == (503, "draining")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()

        release.set()
        thread.join(WAIT)
    assert [(r.status, r.body, r.complete) for r in result] == [(200, b"finished", True)]
    assert proc.p.wait(WAIT) == 0
    proc.expect(r"Application shutdown complete")
    assert not any("Traceback" in line for line in proc.seen)


def test_requests_still_running_at_the_graceful_timeout_are_cut_and_exit_is_still_0(
    started: tuple[Proc, int, int], slow_upstream: tuple[RawUpstream, threading.Event]
) -> None:
    proc, port, _ = started
    upstream, _ = slow_upstream  # never released
    thread, result = _in_flight(port)
    upstream.wait_for(1)
    proc.p.send_signal(signal.SIGTERM)
    proc.expect(r"timeout graceful shutdown exceeded")  # --graceful-timeout 2
    assert proc.p.wait(WAIT) == 0
    thread.join(WAIT)
    assert not thread.is_alive()
    assert [(r.status, r.body) for r in result] == [(503, b"503 Service Unavailable\n")]
    proc.expect(r"Application shutdown complete")
    assert not any("Traceback" in line for line in proc.seen)
