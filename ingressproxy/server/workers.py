"""`serve --workers N`: N proxy processes sharing one listening socket, each watching the folder.

Flow: cli binds the HTTP socket -> run_workers(argv, sock) starts N `ingressproxy serve ...
--worker-fd FD` children (the same flags and INGRESSPROXY_* variables, so every setting reaches
each worker exactly as given) and supervises them; each child serves the inherited socket with
its own event loop, snapshot and reloader. The kernel spreads connections over the processes
accepting on the socket.

Only the first worker runs the admin listener, the HTTPS listener and --fake-backends (one
process can own a port), and logs the ready line: its metrics count that worker's requests only.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from .settings import env_name

__all__ = ["run_workers", "worker_argv", "worker_env"]

log = logging.getLogger("ingressproxy.workers")

# Seconds to wait for the workers after forwarding SIGTERM before killing them; each drains
# for up to --graceful-timeout itself.
_STOP_MARGIN = 15.0
# A worker that dies on its own is started again, at most once per this many seconds.
_RESTART_PAUSE = 1.0
# A worker's exit status for a usage or I/O problem (cli.main.EXIT_STATUS).
_USAGE = 2


def worker_argv(argv: Sequence[str], fd: int, index: int) -> list[str]:
    """The command line of worker `index`: the user's own flags, then ours (argparse keeps the
    last value of a repeated flag). Workers after the first leave the admin and HTTPS ports,
    the fake backends and the ready line to the first."""
    first = index == 0
    own = [a for a in argv if first or a != "--fake-backends"]
    args = [sys.executable, "-m", "ingressproxy", *own, "--workers", "1", "--worker-fd", str(fd)]
    args += ["--worker-index", str(index)]
    if not first:
        args += ["--admin-port", "off", "--https-port", "off"]
    return args


def worker_env(env: Mapping[str, str], first: bool) -> dict[str, str]:
    """The environment of one worker: ours, but workers after the first leave the fake
    backends to the first whether a flag (worker_argv) or a variable asked for them."""
    if first:
        return dict(env)
    return {k: v for k, v in env.items() if k != env_name("--fake-backends")}


def run_workers(
    argv: Sequence[str], sock: socket.socket, workers: int, graceful_timeout: float = 0.0
) -> int:
    """Serve the listening socket `sock` with `workers` processes until SIGTERM/SIGINT;
    SIGHUP reloads every worker. `argv` is the `serve` command line as the user gave it;
    `graceful_timeout` is how long each worker drains after SIGTERM. A worker that cannot
    start for a usage problem (exit status 2: its admin or HTTPS port in use, say) stops
    them all with that status, instead of being started again every second."""
    sock.set_inheritable(True)
    fd = sock.fileno()
    host, bound = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info("listening on http://%s:%d with %d worker processes", shown, bound, workers)
    stop = threading.Event()
    hup = threading.Event()
    interrupted = False

    def on_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = interrupted or signum == signal.SIGINT
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        hup.set()
        stop.set()  # wakes the loop below; it tells hup from a real stop

    def start(i: int) -> subprocess.Popen[bytes]:
        # A session of its own: a terminal's Ctrl-C reaches the supervisor only, which passes
        # it on once (uvicorn takes a second SIGINT as "exit now, do not drain").
        return subprocess.Popen(
            worker_argv(argv, fd, i),
            env=worker_env(os.environ, i == 0),
            pass_fds=(fd,),
            start_new_session=True,
        )

    status = 0
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    procs = [start(i) for i in range(workers)]
    started = [time.monotonic()] * workers
    try:
        while True:
            stop.wait(0.5)  # a supervisor's poll: notices dead workers within half a second
            if hup.is_set():
                hup.clear()
                stop.clear()
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGHUP)
            if stop.is_set():
                break
            if any(p.poll() == _USAGE for p in procs):
                status = _USAGE  # it said why in one line; starting it again would not help
                break
            for i, p in enumerate(procs):
                code = p.poll()
                if code is not None and time.monotonic() - started[i] >= _RESTART_PAUSE:
                    log.error(
                        "worker %d (pid %d) exited with %s; starting it again", i, p.pid, code
                    )
                    procs[i] = start(i)
                    started[i] = time.monotonic()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT if interrupted else signal.SIGTERM)
        deadline = time.monotonic() + _STOP_MARGIN + graceful_timeout
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        sock.close()
    return 130 if interrupted else status


if os.name != "posix":  # pragma: no cover
    raise ImportError("--workers needs a POSIX system (inherited sockets, signals)")
