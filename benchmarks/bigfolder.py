"""Big-folder benchmark: `check` time and peak memory, `serve` time to first answer and memory,
by object count (issue 19).

Writes a folder of N Ingress + Service + EndpointSlice triples (one host and path each), one
file per triple as users keep them (`--layout files`), or the same objects in three big files
(`--layout big`), then for each N:

- `ingressproxy check DIR`, `--repeat` times: wall time (median and fastest) and the peak
  resident memory of the process (ru_maxrss from wait4);
- `ingressproxy serve DIR --port <free> --admin-port off --access-log off`: the time from
  starting the process to the first request that is routed to the benchmark's own backend
  (polled on 127.0.0.1), and the resident memory right after that answer (/proc/PID/status).

Only loopback is used: every EndpointSlice address is in 127.0.0.0/8, the first one is the
benchmark's backend on 127.0.0.1; no other address is ever requested. Every process started is
stopped on the way out. Prints one table and a linear fit per figure (cost per object);
`--json FILE` also writes the figures.

    python benchmarks/bigfolder.py [--counts 1000,3000,10000,30000] [--layout files|big]
                                   [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["Row", "fit", "host_of", "main", "make_folder", "table", "triple"]

ROOT = Path(__file__).resolve().parent.parent
BODY = b"bigfolder backend\n"
START_TIMEOUT = 180.0  # seconds for serve to answer (30,000 triples on a slow machine)
DEFAULT_COUNTS = (1000, 3000, 10000, 30000)

INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app{i:05d}
  namespace: team{ns:02d}
  labels:
    app.kubernetes.io/name: app{i:05d}
spec:
  rules:
    - host: {host}
      http:
        paths:
          - path: /api
            pathType: Prefix
            backend:
              service:
                name: app{i:05d}
                port:
                  name: http
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: app{i:05d}
  namespace: team{ns:02d}
spec:
  selector:
    app.kubernetes.io/name: app{i:05d}
  ports:
    - name: http
      port: 80
      targetPort: {port}
"""
SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app{i:05d}-abcde
  namespace: team{ns:02d}
  labels:
    kubernetes.io/service-name: app{i:05d}
addressType: IPv4
ports:
  - name: http
    port: {port}
    protocol: TCP
endpoints:
  - addresses:
      - {address}
    conditions:
      ready: true
"""


def host_of(i: int) -> str:
    return f"app{i:05d}.example.com"


def _address(i: int) -> str:
    """Loopback only: the first triple is the benchmark's backend, the rest never answer (and
    are never asked)."""
    if i == 0:
        return "127.0.0.1"
    return f"127.{1 + i // 65536}.{i // 256 % 256}.{i % 256}"


def triple(i: int, port: int) -> tuple[str, str, str]:
    """The Ingress, Service and EndpointSlice of triple `i`, as YAML documents."""
    fields = {"i": i, "ns": i % 20, "host": host_of(i), "port": port, "address": _address(i)}
    return INGRESS.format(**fields), SERVICE.format(**fields), SLICE.format(**fields)


def make_folder(root: Path, count: int, *, port: int = 8080, layout: str = "files") -> int:
    """Write `count` triples under `root`; returns the bytes written."""
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    if layout == "files":
        for i in range(count):
            text = "---\n".join(triple(i, port))
            (root / f"app{i:05d}.yaml").write_text(text)
            written += len(text)
        return written
    if layout != "big":
        raise ValueError(f"unknown layout {layout!r}")
    docs = [triple(i, port) for i in range(count)]
    for n, name in enumerate(("ingresses", "services", "endpointslices")):
        text = "---\n".join(d[n] for d in docs)
        (root / f"{name}.yaml").write_text(text)
        written += len(text)
    return written


# --------------------------------------------------------------------------- processes


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def backend() -> Iterator[int]:
    """A small HTTP server on 127.0.0.1 for the first triple's endpoint; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ingressproxy", *args]


def _env() -> dict[str, str]:
    # The checkout's package, whichever directory the benchmark is started from.
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def run_check(folder: Path) -> tuple[float, int, str]:
    """One `check`: wall seconds, peak resident KiB, and its summary line."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            _command("check", str(folder)), stdout=out, stderr=subprocess.STDOUT, env=_env()
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"check exited {proc.returncode}: {lines[-5:]}")
    return seconds, int(usage.ru_maxrss), lines[-1]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def _answer(port: int, host: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=START_TIMEOUT)
    try:
        conn.request("GET", "/api", headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run_serve(folder: Path) -> tuple[float, int, int]:
    """One `serve`: seconds from start to the first routed answer, then its resident and
    peak resident KiB."""
    port = free_port()
    args = ("serve", str(folder), "--port", str(port), "--admin-port", "off")
    started = time.perf_counter()
    proc = subprocess.Popen(
        _command(*args, "--access-log", "off"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        deadline = started + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode} before answering")
            try:
                status, body = _answer(port, host_of(0))
            except OSError:
                status, body = 0, b""
            if status == 200 and body == BODY:
                seconds = time.perf_counter() - started
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"serve did not route within {START_TIMEOUT} s ({status})")
            time.sleep(0.02)
        return seconds, _status_kib(proc.pid, "VmRSS"), _status_kib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True, slots=True)
class Row:
    triples: int
    objects: int
    files: int
    megabytes: float
    check_s: float  # median wall time of the runs
    check_fastest_s: float
    check_peak_mb: float  # the largest peak resident memory of the runs
    serve_first_answer_s: float | None = None
    serve_rss_mb: float | None = None  # resident right after the first answer
    serve_peak_mb: float | None = None


def measure(count: int, layout: str, repeat: int, serve: bool, port: int, tmp: Path) -> Row:
    folder = tmp / f"{layout}-{count}"
    size = make_folder(folder, count, port=port, layout=layout)
    files = len(list(folder.iterdir()))
    runs = [run_check(folder) for _ in range(repeat)]
    want = f"{3 * count} objects, {count} routes, 0 errors, 0 warnings"
    for _, _, summary in runs:
        if want not in summary:
            raise RuntimeError(f"unexpected check summary: {summary}")
    times = [seconds for seconds, _, _ in runs]
    row = Row(
        triples=count,
        objects=3 * count,
        files=files,
        megabytes=round(size / 2**20, 1),
        check_s=round(statistics.median(times), 2),
        check_fastest_s=round(min(times), 2),
        check_peak_mb=round(max(kib for _, kib, _ in runs) / 1024, 1),
    )
    if serve:
        first, rss, peak = run_serve(folder)
        row = Row(
            **{
                **asdict(row),
                "serve_first_answer_s": round(first, 2),
                "serve_rss_mb": round(rss / 1024, 1),
                "serve_peak_mb": round(peak / 1024, 1),
            }
        )
    return row


def fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line y = a + b*x: (a, b)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - b * mx, b


def table(rows: Sequence[Row]) -> list[str]:
    """The figures as a Markdown table, then a linear fit of each against the object count."""
    lines = [
        "| triples | objects | files | MB of YAML | check (median) | check (fastest) |"
        " check peak RSS | serve: first answer | serve RSS after it |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        first = f"{r.serve_first_answer_s:.2f} s" if r.serve_first_answer_s is not None else ""
        rss = f"{r.serve_rss_mb:.0f} MB" if r.serve_rss_mb is not None else ""
        lines.append(
            f"| {r.triples:,} | {r.objects:,} | {r.files:,} | {r.megabytes:.1f} |"
            f" {r.check_s:.2f} s | {r.check_fastest_s:.2f} s | {r.check_peak_mb:.0f} MB |"
            f" {first} | {rss} |"
        )
    if len(rows) >= 2:
        xs = [r.objects for r in rows]
        series: list[tuple[str, list[float], str, str, float]] = [
            ("check time", [r.check_s for r in rows], "s", "µs", 1e6),
            ("check peak RSS", [r.check_peak_mb for r in rows], "MB", "KB", 1024),
        ]
        if all(r.serve_first_answer_s is not None for r in rows):
            series += [
                (
                    "serve first answer",
                    [r.serve_first_answer_s or 0.0 for r in rows],
                    "s",
                    "µs",
                    1e6,
                ),
                ("serve RSS", [r.serve_rss_mb or 0.0 for r in rows], "MB", "KB", 1024),
            ]
        lines.append("")
        for name, ys, unit, small, scale in series:
            base, per = fit(xs, ys)
            lines.append(
                f"{name}: {base:.2f} {unit} + {per * scale:.1f} {small} per object"
                f" (least squares over {len(rows)} counts)"
            )
    return lines


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "cpu": f"{os.cpu_count()} x {cpu}",
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--counts",
        default=",".join(str(c) for c in DEFAULT_COUNTS),
        help="triples per folder, comma-separated (default %(default)s)",
    )
    parser.add_argument("--layout", choices=["files", "big"], default="files")
    parser.add_argument("--repeat", type=int, default=3, help="check runs per count")
    parser.add_argument("--no-serve", action="store_true", help="measure check only")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    counts = [int(c.replace("_", "")) for c in args.counts.split(",") if c.strip()]
    if not counts or min(counts) < 1 or args.repeat < 1:
        parser.error("--counts and --repeat must be positive")
    about = {**machine(), "layout": args.layout, "repeat": str(args.repeat)}
    print(", ".join(f"{k} {v}" for k, v in about.items()), flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bigfolder-") as tmp, backend() as port:
        for count in counts:
            rows.append(
                measure(count, args.layout, args.repeat, not args.no_serve, port, Path(tmp))
            )
            print(f"  {count} triples done", file=sys.stderr, flush=True)
    print("\n".join(table(rows)))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        report = {"machine": about, "rows": [asdict(r) for r in rows]}
        path.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
