"""Proxy benchmark: ingressproxy beside nginx and haproxy, all driven by wrk on loopback.

Starts a fake backend (Debian's nginx serving a 50-byte and a 1 MiB file, else a small Python
server), nginx and haproxy as reverse proxies with equivalent configs (benchmarks/configs/),
and `ingressproxy serve` on generated manifests, then drives each with `wrk -t1` in
alternating rounds and prints one table of medians: req/s, p50, p99, proxy CPU per request
(utime+stime of the proxy's processes, from /proc), and the ratios ours/best peer and
ours/direct. `--json FILE` writes the same figures. wrk runs on core 0, proxies and the backend
on core 1 (so every proxy has the same core, shared with the same backend) when `taskset` and
two cores are there. Only loopback is used, every
run is bounded by wrk's duration, and every process started is stopped on the way out.

    python benchmarks/run.py [--rounds 3] [--duration 5] [--variants] [--json FILE]

`--variants` adds the hot-path alternatives measured for issue 8 (httpx's own transport, the
full Starlette stack, uvicorn's pure-Python loop and parser, httpx over the `httpx-aiohttp`
transport when installed), issue 15's alternatives to the guard's copies of uvicorn's internals
(benchmarks/protocols.py, and uvicorn's plain protocol with no guard), and two floors from
benchmarks/floor.py: uvicorn answering by itself, and uvicorn with a minimal raw proxy, shown
without ratios (they are references, not proxies).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "SCENARIOS",
    "Row",
    "Scenario",
    "WrkResult",
    "goals",
    "main",
    "make_manifests",
    "parse_wrk",
    "render_config",
    "summarize",
    "table",
]

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
HOST = "bench.example"
SMALL_BODY = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM\n"  # 50 bytes
BIG_SIZE = 1 << 20
WRK_CORE = "0"
SERVER_CORE = "1"
START_TIMEOUT = 120.0  # seconds for a server to answer its first request (10,000 Ingresses)


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    path: str
    connections: int
    title: str


SCENARIOS = (
    Scenario("small-c1", "/small", 1, "50 B, 1 connection"),
    Scenario("small-c32", "/small", 32, "50 B, 32 connections"),
    Scenario("big-c32", "/big", 32, "1 MiB, 32 connections"),
)
ALL_SCENARIOS = tuple(s.key for s in SCENARIOS)
SMALL_SCENARIOS = ("small-c1", "small-c32")
PEERS = ("nginx", "haproxy")
OURS = "ingressproxy"  # the headline row: one worker, no admin listener, no access log


# --------------------------------------------------------------------------- configs


def render_config(name: str, **values: object) -> str:
    """A template from benchmarks/configs with each @KEY@ replaced by `values[key.lower()]`.

    Raises KeyError when the template names a value that was not given (a typo would
    otherwise leave `@PORT@` in a config that nginx rejects with a less helpful message).
    """
    text = (CONFIGS / name).read_text()

    def fill(m: re.Match[str]) -> str:
        return str(values[m.group(1).lower()])

    return re.sub(r"@([A-Z_]+)@", fill, text)


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: bench}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-1
  namespace: bench
  labels: {kubernetes.io/service-name: backend}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: ["127.0.0.1"]}]
"""
INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}, namespace: bench}}
spec:
  rules:
    - host: {host}
      http:
        paths:
          - path: {path}
            pathType: Prefix
            backend: {{service: {{name: backend, port: {{name: http}}}}}}
"""


def make_manifests(root: Path, backend_port: int, ingresses: int) -> None:
    """A folder of `ingresses` Ingresses, one of which routes `HOST` `/` to the backend.

    Of the others, every tenth shares the benchmark's host with a path of its own (so the
    host's table has many prefixes to walk past), the rest have hosts of their own; 100
    Ingresses to a file, like a team's folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "backend.yaml").write_text(SERVICE % backend_port)
    docs = [INGRESS.format(name="main", host=HOST, path="/")]
    for i in range(1, ingresses):
        host = HOST if i % 10 == 0 else f"h{i}.example"
        docs.append(INGRESS.format(name=f"ing{i}", host=host, path=f"/p{i}"))
    for start in range(0, len(docs), 100):
        (root / f"ingresses{start // 100:03d}.yaml").write_text("---\n".join(docs[start:][:100]))


# --------------------------------------------------------------------------- wrk


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_us: float
    p99_us: float
    errors: int  # socket errors plus non-2xx/3xx answers


_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0}


def _duration_us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The figures of one `wrk --latency` run. Raises ValueError when they are not there."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if done is None or rps is None or p50 is None or p99 is None:
        raise ValueError("wrk output without its summary:\n" + output)
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors is not None:
        errors += sum(int(g) for g in socket_errors.groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad is not None:
        errors += int(bad.group(1))
    return WrkResult(
        requests=int(done.group(1)),
        seconds=_duration_us(done.group(2) + done.group(3)) / 1e6,
        rps=float(rps.group(1)),
        p50_us=_duration_us(p50.group(1)),
        p99_us=_duration_us(p99.group(1)),
        errors=errors,
    )


def run_wrk(url: str, connections: int, duration: float, pin: bool, host: str = HOST) -> WrkResult:
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency",
        "-H", f"Host: {host}", url,
    ]  # fmt: skip
    if pin:
        cmd = ["taskset", "-c", WRK_CORE, *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    return parse_wrk(done.stdout)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A port that was free a moment ago (nginx and haproxy need one in their config; a clash
    makes the start fail loudly, never a wrong figure)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (nginx's workers, uvicorn's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found = [pid]
    i = 0
    while i < len(found):
        found.extend(children.get(found[i], ()))
        i += 1
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of `pids` (each one's threads included), in seconds."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _ticks()


def peak_rss_mb(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def mapped_libraries(pids: Sequence[int]) -> list[str]:
    """Which of uvloop and httptools are loaded in the process (uvicorn's `auto` picks them
    when they import, so loaded means in use)."""
    found: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            maps = Path(f"/proc/{pid}/maps").read_text()
            if "uvloop/loop." in maps:
                found.add("uvloop")
            if "httptools/parser/parser." in maps:
                found.add("httptools")
            if "aiohttp/_http_parser." in maps:
                found.add("aiohttp")
    return sorted(found)


@dataclass
class Server:
    """A process we started, answering on `port`."""

    name: str
    label: str
    proc: subprocess.Popen[bytes]
    port: int
    scenarios: tuple[str, ...] = ALL_SCENARIOS
    host: str = HOST
    pids: list[int] = field(default_factory=list)
    role: str = "ours"  # ours | peer | direct | floor

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def _pinned(cmd: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", SERVER_CORE, *cmd] if pin else cmd


def _wait_answer(server: Server, path: str, log: Path | None) -> None:
    """Until `path` answers 200 on `server` (bounded); the process must stay alive. The
    server is stopped when it never does (or on Ctrl-C meanwhile)."""
    try:
        _poll_answer(server, path, log)
    except BaseException:
        server.stop()
        raise


def _poll_answer(server: Server, path: str, log: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", path, headers={"Host": server.host})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return
            last = f"status {response.status}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.05)  # polling a process we do not control; bounded by the deadline
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise SystemExit(f"{server.name} never answered {path} ({last}):\n{tail}")


def _wait_log(proc: subprocess.Popen[bytes], log: Path, pattern: str) -> re.Match[str]:
    rx = re.compile(pattern)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        m = rx.search(log.read_text(errors="replace")) if log.exists() else None
        if m is not None:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)  # the log is a file another process writes; bounded
    proc.kill()
    raise SystemExit(f"never logged {pattern!r}:\n" + log.read_text(errors="replace")[-3000:])


def start_nginx(
    name: str, label: str, template: str, work: Path, pin: bool, role: str, **values: object
) -> Server:
    prefix = work / name
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    # nginx's workers drop root privileges: let them read the files and the prefix.
    for p in (work, prefix):
        p.chmod(0o755)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render_config(template, prefix=prefix, port=port, **values))
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _pinned(["nginx", "-p", str(prefix), "-c", str(conf)], pin),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, label, proc, port, role=role)
    _wait_answer(server, "/small", log)
    return server


def start_haproxy(work: Path, backend_port: int, pin: bool) -> Server:
    prefix = work / "haproxy"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "haproxy.cfg"
    conf.write_text(render_config("haproxy.cfg", port=port, backend_port=backend_port))
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _pinned(["haproxy", "-db", "-f", str(conf)], pin), stdout=out, stderr=subprocess.STDOUT
        )
    server = Server("haproxy", "haproxy 1 thread", proc, port, role="peer")
    _wait_answer(server, "/small", log)
    return server


def start_python_backend(work: Path, pin: bool) -> Server:
    """The fallback backend when nginx is not installed: `python run.py --python-backend`."""
    log = work / "python-backend.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _pinned([sys.executable, str(Path(__file__)), "--python-backend"], pin),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    port = int(_wait_log(proc, log, r"backend listening on 127\.0\.0\.1:(\d+)").group(1))
    server = Server("direct", "backend (Python, direct)", proc, port, role="direct")
    _wait_answer(server, "/small", log)
    return server


def start_ours(
    name: str,
    label: str,
    folder: Path,
    work: Path,
    pin: bool,
    flags: Sequence[str] = ("--admin-port", "off", "--access-log", "off"),
    scenarios: tuple[str, ...] = ALL_SCENARIOS,
    variant: str | None = None,
    role: str = "ours",
) -> Server:
    """`ingressproxy serve FOLDER --port 0 FLAGS`, or a hot-path `variant` of it (see
    `serve_variant`). Its output goes to a file: the access log, when on, costs a write like
    it would in production, and nothing here reads it while wrk runs."""
    log = work / f"{name}.log"
    if variant is None:
        cmd = [sys.executable, "-m", "ingressproxy", "serve", str(folder), "--port", "0", *flags]
    else:
        cmd = [sys.executable, str(Path(__file__)), "--serve-variant", variant, str(folder)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _pinned(cmd, pin),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    # uvicorn's line for one process; the supervisor's for --workers N.
    listening = r"(?:Uvicorn running on|workers: listening on) http://127\.0\.0\.1:(\d+)"
    try:
        port = int(_wait_log(proc, log, listening).group(1))
    except BaseException:
        proc.kill()
        raise
    server = Server(name, label, proc, port, role=role, scenarios=scenarios)
    _wait_answer(server, "/small", log)
    return server


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class Row:
    """Medians over the rounds for one server in one scenario."""

    scenario: str
    server: str
    label: str
    role: str
    rps: float
    p50_us: float
    p99_us: float
    cpu_us_per_request: float | None
    errors: int
    rounds: tuple[float, ...]  # req/s of each round


def summarize(
    scenario: str, server: str, label: str, role: str, runs: Sequence[tuple[WrkResult, float]]
) -> Row:
    """`runs` are (wrk result, CPU seconds the server used during it) for each round."""
    cpu = [c / r.requests for r, c in runs if r.requests]
    return Row(
        scenario=scenario,
        server=server,
        label=label,
        role=role,
        rps=statistics.median(r.rps for r, _ in runs),
        p50_us=statistics.median(r.p50_us for r, _ in runs),
        p99_us=statistics.median(r.p99_us for r, _ in runs),
        cpu_us_per_request=statistics.median(cpu) * 1e6 if cpu else None,
        errors=sum(r.errors for r, _ in runs),
        rounds=tuple(round(r.rps, 1) for r, _ in runs),
    )


def _best_peer(rows: Sequence[Row], scenario: str) -> Row | None:
    peers = [r for r in rows if r.scenario == scenario and r.role == "peer"]
    return max(peers, key=lambda r: r.rps) if peers else None


def _find(rows: Sequence[Row], scenario: str, server: str) -> Row | None:
    for r in rows:
        if r.scenario == scenario and r.server == server:
            return r
    return None


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} ms" if value >= 10_000 else f"{value:.0f} µs"


def table(rows: Sequence[Row]) -> str:
    """The results as one Markdown table, scenario by scenario."""
    out = [
        "| scenario | server | req/s | p50 | p99 | proxy CPU/req | ours/best peer | ours/direct |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    titles = {s.key: s.title for s in SCENARIOS}
    for scenario in dict.fromkeys(r.scenario for r in rows):
        best = _best_peer(rows, scenario)
        direct = next((r for r in rows if r.scenario == scenario and r.role == "direct"), None)
        for r in (r for r in rows if r.scenario == scenario):
            vs_peer = vs_direct = ""
            if r.role == "ours":
                if best is not None and best.rps:
                    vs_peer = f"{r.rps / best.rps:.2f}"
                if direct is not None and direct.rps:
                    vs_direct = f"{r.rps / direct.rps:.3f}"
            errors = f" ({r.errors} errors)" if r.errors else ""
            out.append(
                f"| {titles.get(scenario, scenario)} | {r.label}{errors} | {r.rps:,.0f} | "
                f"{_us(r.p50_us)} | {_us(r.p99_us)} | {_us(r.cpu_us_per_request)} | "
                f"{vs_peer} | {vs_direct} |"
            )
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class Goal:
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


def goals(rows: Sequence[Row], big_ingresses: int) -> list[Goal]:
    """Issue 8's goals, judged on this run's rows."""
    found: list[Goal] = []

    def ratio_goal(
        text: str, scenario: str, ours: Row | None, other: Row | None, least: float
    ) -> None:
        if ours is None or other is None or not other.rps:
            found.append(Goal(text, "not measured", None))
            return
        ratio = ours.rps / other.rps
        found.append(
            Goal(
                text,
                f"{ours.rps:,.0f} vs {other.label} {other.rps:,.0f} req/s = {ratio:.2f}x",
                ratio >= least,
            )
        )

    ratio_goal(
        "small body, c=32: >= 0.25x the best peer's req/s, one worker",
        "small-c32",
        _find(rows, "small-c32", OURS),
        _best_peer(rows, "small-c32"),
        0.25,
    )
    ours1 = _find(rows, "small-c1", OURS)
    nginx1 = _find(rows, "small-c1", "nginx")
    if ours1 is None or nginx1 is None:
        found.append(Goal("small body, c=1: p50 within 2x of nginx's", "not measured", None))
    else:
        ratio = ours1.p50_us / nginx1.p50_us
        found.append(
            Goal(
                "small body, c=1: p50 within 2x of nginx's",
                f"{_us(ours1.p50_us)} vs {_us(nginx1.p50_us)} = {ratio:.2f}x",
                ratio <= 2.0,
            )
        )
    ratio_goal(
        "1 MiB body, c=32: >= 0.5x the best peer's throughput",
        "big-c32",
        _find(rows, "big-c32", OURS),
        _best_peer(rows, "big-c32"),
        0.5,
    )
    big = _find(rows, "small-c32", "ingressproxy-10k")
    small = _find(rows, "small-c32", OURS)
    if big is None or small is None:
        found.append(Goal(f"{big_ingresses:,} Ingresses: req/s within 10% of 10", "-", None))
    else:
        ratio = big.rps / small.rps
        found.append(
            Goal(
                f"{big_ingresses:,} Ingresses: req/s within 10% of 10 Ingresses",
                f"{big.rps:,.0f} vs {small.rps:,.0f} req/s = {ratio:.2f}x",
                ratio >= 0.9,
            )
        )
    return found


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(cmd: list[str]) -> str:
        if shutil.which(cmd[0]) is None:
            return "not installed"
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        text = (done.stdout + done.stderr).strip().splitlines()
        return text[0] if text else "?"

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "nginx": version(["nginx", "-v"]),
        "haproxy": version(["haproxy", "-v"]),
        "wrk": version(["wrk", "--version"]),
    }


def _supports_workers() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "ingressproxy", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--workers" in done.stdout


def _variant_available(variant: str) -> bool:
    import importlib.util

    return variant != "aiohttp" or importlib.util.find_spec("httpx_aiohttp") is not None


VARIANTS = {
    "httpcore": "variant: httpx's own transport (httpcore)",
    "aiohttp": "variant: httpx over httpx-aiohttp",
    "h11": "variant: asyncio loop + h11 parser",
    "starlette": "variant: full Starlette router + middleware",
    # Issue 15: guard.py's copies of uvicorn's internals against what would replace them
    # (benchmarks/protocols.py), and uvicorn's plain protocol with no guard at all.
    "super-guard": "variant: guard calling uvicorn's methods (no copies)",
    "wrapped-guard": "variant: guard wrapping uvicorn's protocol (nothing private)",
    "plain-uvicorn": "variant: uvicorn's plain httptools protocol (no guard)",
    # Not proxies to ship: what uvicorn costs before any proxy logic (benchmarks/floor.py).
    "floor-proxy": "floor: uvicorn + minimal raw proxy (floor.py)",
    "floor-hello": "floor: uvicorn answering itself (no upstream)",
}


def start_all(
    work: Path, pin: bool, variants: bool, big_ingresses: int, only: set[str] | None
) -> list[Server]:
    """Every server of the run, direct backend first. Stops what it started on failure."""
    servers: list[Server] = []

    def want(name: str) -> bool:
        return only is None or name in only or name == "direct"

    try:
        root = work / "www"
        root.mkdir()
        (root / "small").write_bytes(SMALL_BODY)
        (root / "big").write_bytes(os.urandom(BIG_SIZE))
        for p in root.iterdir():
            p.chmod(0o644)
        root.chmod(0o755)
        have_nginx = shutil.which("nginx") is not None
        if have_nginx:
            backend = start_nginx(
                "direct",
                "backend (nginx, direct)",
                "nginx-backend.conf",
                work,
                pin,
                "direct",
                root=root,
            )
        else:
            backend = start_python_backend(work, pin)
        servers.append(backend)
        if have_nginx and want("nginx"):
            servers.append(
                start_nginx(
                    "nginx",
                    "nginx 1 worker",
                    "nginx-proxy.conf",
                    work,
                    pin,
                    "peer",
                    backend_port=backend.port,
                )
            )
        if shutil.which("haproxy") is not None and want("haproxy"):
            servers.append(start_haproxy(work, backend.port, pin))
        small = work / "manifests-10"
        make_manifests(small, backend.port, 10)
        if want(OURS):
            servers.append(start_ours(OURS, "ingressproxy 1 worker", small, work, pin))
        if want("ingressproxy-2w") and _supports_workers():
            servers.append(
                start_ours(
                    "ingressproxy-2w",
                    "ingressproxy 2 workers",
                    small,
                    work,
                    pin,
                    flags=("--admin-port", "off", "--access-log", "off", "--workers", "2"),
                )
            )
        if want("ingressproxy-defaults"):
            servers.append(
                start_ours(
                    "ingressproxy-defaults",
                    "ingressproxy defaults (admin+metrics, access log)",
                    small,
                    work,
                    pin,
                    flags=("--admin-port", "0"),
                )
            )
        if want("ingressproxy-10k"):
            big = work / f"manifests-{big_ingresses}"
            make_manifests(big, backend.port, big_ingresses)
            servers.append(
                start_ours(
                    "ingressproxy-10k",
                    f"ingressproxy, {big_ingresses:,} Ingresses",
                    big,
                    work,
                    pin,
                    scenarios=("small-c32",),
                )
            )
        if variants:
            for variant, label in VARIANTS.items():
                name = f"variant-{variant}"
                if not (want(name) and _variant_available(variant)):
                    continue
                floor = variant.startswith("floor-")
                servers.append(
                    start_ours(
                        name,
                        label,
                        small,
                        work,
                        pin,
                        variant=variant,
                        # A floor is a reference, not ours: no ratios. The hello floor answers
                        # 50 bytes to every path, so it has no 1 MiB row.
                        role="floor" if floor else "ours",
                        scenarios=SMALL_SCENARIOS if variant == "floor-hello" else ALL_SCENARIOS,
                    )
                )
    except BaseException:
        for s in servers:
            s.stop()
        raise
    for s in servers:
        s.pids = process_tree(s.proc.pid)
    return servers


def run(
    servers: Sequence[Server], rounds: int, duration: float, pin: bool, echo: Callable[[str], None]
) -> list[Row]:
    """`rounds` alternating rounds: in each, every scenario runs on every server, the order of
    servers rotating from round to round so no one always runs first or last."""
    for s in servers:  # warm up: pools filled, caches hot
        run_wrk(s.url("/small"), 32, 1, pin, s.host)
    results: dict[tuple[str, str], list[tuple[WrkResult, float]]] = {}
    for n in range(rounds):
        for scenario in SCENARIOS:
            taking = [s for s in servers if scenario.key in s.scenarios]
            shift = n % len(taking)
            for s in taking[shift:] + taking[:shift]:
                before = cpu_seconds(s.pids)
                result = run_wrk(s.url(scenario.path), scenario.connections, duration, pin, s.host)
                used = cpu_seconds(s.pids) - before
                results.setdefault((scenario.key, s.name), []).append((result, used))
                echo(
                    f"round {n + 1}/{rounds} {scenario.key:9} {s.name:24} "
                    f"{result.rps:10,.0f} req/s  p50 {_us(result.p50_us):>9}  "
                    f"cpu/req {_us(used / result.requests * 1e6 if result.requests else None)}"
                )
    rows: list[Row] = []
    for scenario in SCENARIOS:
        for s in servers:
            runs = results.get((scenario.key, s.name))
            if runs:
                rows.append(summarize(scenario.key, s.name, s.label, s.role, runs))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    ap.add_argument("--ingresses", type=int, default=10_000, help="size of the big route table")
    ap.add_argument("--variants", action="store_true", help="also measure hot-path variants")
    ap.add_argument("--only", default=None, help="comma list of servers (direct always runs)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "proxy.json")
    # Internal modes: the processes this script starts as servers.
    ap.add_argument("--python-backend", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-variant", nargs=2, metavar=("VARIANT", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.python_backend:
        return python_backend()
    if args.serve_variant:
        return serve_variant(args.serve_variant[0], Path(args.serve_variant[1]))
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk nginx haproxy)", file=sys.stderr)
        return 2
    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    only = set(args.only.split(",")) if args.only else None
    info = machine()
    print(f"# {info['date']}: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}")
    with tempfile.TemporaryDirectory(prefix="ingressproxy-bench-") as tmp:
        servers = start_all(Path(tmp), pin, args.variants, args.ingresses, only)
        try:
            libraries = {s.name: mapped_libraries(s.pids) for s in servers if s.role == "ours"}
            rows = run(servers, args.rounds, args.duration, pin, print)
            rss = {s.name: round(peak_rss_mb(s.pids), 1) for s in servers}
        finally:
            for s in servers:
                s.stop()
    print()
    print(table(rows))
    print()
    verdicts = goals(rows, args.ingresses)
    for g in verdicts:
        mark = {True: "met", False: "NOT met", None: "not measured"}[g.met]
        print(f"- {g.goal}: {g.measured} ({mark})")
    print("\nuvicorn loop/parser in use:", ", ".join(f"{k}={v}" for k, v in libraries.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "machine": info,
            "settings": {
                "rounds": args.rounds,
                "duration_s": args.duration,
                "pinned": pin,
                "big_ingresses": args.ingresses,
            },
            "rows": [asdict(r) for r in rows],
            "goals": [asdict(g) for g in verdicts],
            "libraries": libraries,
            "peak_rss_mb": rss,
            "table": table(rows),
        }
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------- server modes


def python_backend() -> int:
    """A small keep-alive HTTP/1.1 server answering GET /small and /big (for machines without
    nginx). Requests are assumed bodiless, as wrk sends them."""
    import asyncio

    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    big = os.urandom(BIG_SIZE)
    answers = {
        b"/small": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
        % (len(SMALL_BODY), SMALL_BODY),
        b"/big": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG_SIZE + big,
    }
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
                target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
                self.transport.write(answers.get(target, missing))

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"backend listening on 127.0.0.1:{port}", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(serve())
    return 0


def serve_variant(variant: str, folder: Path) -> int:
    """Serve `folder` as `serve --admin-port off --access-log off` does, changed in one
    respect: httpcore = httpx's own transport instead of ours, aiohttp = httpx over the
    httpx-aiohttp transport, h11 = uvicorn's asyncio loop and h11 parser instead of uvloop and
    httptools, starlette = every request through Starlette's router and middleware,
    super-guard / wrapped-guard = the guard without copies of uvicorn's internals / without
    anything private of uvicorn (benchmarks/protocols.py), plain-uvicorn = uvicorn's own
    httptools protocol with no guard; or one of the floors (floor-proxy, floor-hello:
    `_serve_floor`)."""
    import importlib
    import logging

    import httpx
    from starlette.applications import Starlette

    sys.path.insert(0, str(HERE.parent))
    from ingressproxy.server.app import create_app
    from ingressproxy.server.guard import RequestLimits
    from ingressproxy.server.settings import Settings
    from ingressproxy.server.stack import proxy_server

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    if variant.startswith("floor-"):
        return _serve_floor(variant, folder)
    settings = Settings(manifests=folder, port=0, admin_port=None, access_log="off")
    app = create_app(settings)
    forwarder = app.state.proxy._forwarder
    limits: httpx.Limits = forwarder._limits
    if variant == "httpcore":
        forwarder._transport = httpx.AsyncHTTPTransport(
            verify=False, trust_env=False, limits=limits, retries=0
        )
    elif variant == "aiohttp":
        base: Any = importlib.import_module("httpx_aiohttp").AiohttpTransport

        class Transport(base):  # type: ignore[misc]
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                # It ignores httpx's "target" extension (the path we send): put the target
                # in the URL, which aiohttp then sends (re-quoted by yarl).
                target = request.extensions["target"].decode("ascii")
                request.url = httpx.URL(str(request.url).rstrip("/") + target)
                response: httpx.Response = await super().handle_async_request(request)
                return response

        forwarder._transport = Transport(trust_env=False, limits=limits)
    elif variant == "starlette":
        app.middleware_stack = Starlette.build_middleware_stack(app)
    # The server `serve` runs (server/stack.py: the request guard over the chosen parser),
    # but for the variant's loop or protocol.
    options: dict[str, Any] = {"loop": "asyncio" if variant == "h11" else "auto"}
    parser: Literal["auto", "h11"] = "h11" if variant == "h11" else "auto"
    if variant in ("super-guard", "wrapped-guard"):
        from protocols import SuperGuardedProtocol, WrappedGuardProtocol

        guard = SuperGuardedProtocol if variant == "super-guard" else WrappedGuardProtocol
        limits = RequestLimits.from_settings(settings)
        options["http"] = type(guard.__name__, (guard,), {"limits": limits})
    elif variant == "plain-uvicorn":
        options["http"] = "httptools"
    proxy_server(app, settings, parser=parser, **options).run()
    return 0


def _serve_floor(variant: str, folder: Path) -> int:
    """A floor (benchmarks/floor.py) under plain uvicorn with uvloop and httptools, sending to
    the endpoint the generated manifests give the benchmark's host."""
    import uvicorn
    from floor import hello_app, raw_proxy_app

    from ingressproxy.server.reloader import build_snapshot, compile_options
    from ingressproxy.server.settings import Settings

    app: Any = hello_app
    if variant == "floor-proxy":
        built = build_snapshot(folder, compile_options(Settings(manifests=folder)))
        route = built[0].table.route(HOST, "/small") if built is not None else None
        if route is None or not route.backend.endpoints:
            raise SystemExit(f"no endpoint for {HOST} in {folder}")
        endpoint = route.backend.endpoints[0]
        app = raw_proxy_app(endpoint.address, endpoint.port)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, loop="uvloop", http="httptools", access_log=False,
        lifespan="off", log_level="info", proxy_headers=False, server_header=False,
        date_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
