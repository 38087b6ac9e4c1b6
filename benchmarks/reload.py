"""Hot-reload benchmark: write-to-answer latency, a 5,000-Ingress rebuild, a reload loop under load.

Runs `ingressproxy serve --fake-backends` as a user would (a real process, real sockets on
loopback) and prints one table; `--json FILE` also writes the figures. Every figure is measured
side by side in the same run (a no-op write as the baseline for the write-to-answer latency, an
idle period as the baseline for latencies during a rebuild). Bounded in count and time.

    python benchmarks/reload.py [--rounds 20] [--ingresses 5000] [--loop-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HOST = "bench.example"
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: svc{i}, namespace: bench}}
spec:
  ports: [{{name: http, port: 80}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc{i}-1
  namespace: bench
  labels: {{kubernetes.io/service-name: svc{i}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints: [{{addresses: ["127.0.{octet}.{host}"]}}]
"""
INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing{i}, namespace: bench}}
spec:
  rules:
    - host: {host}
      http:
        paths:
          - path: {path}
            pathType: Prefix
            backend: {{service: {{name: svc{svc}, port: {{name: http}}}}}}
"""


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def make_folder(root: Path, ingresses: int, services: int = 4) -> None:
    root.mkdir(parents=True, exist_ok=True)
    svc = "---\n".join(
        SERVICE.format(i=i, octet=200 + i // 200, host=1 + i % 200) for i in range(services)
    )
    (root / "services.yaml").write_text(svc)
    # Many Ingresses on many hosts, 100 to a file (a team's folder), one on the benchmark's host.
    for start in range(0, ingresses, 100):
        docs = [
            INGRESS.format(i=i, host=f"h{i}.example", path=f"/p{i}", svc=i % services)
            for i in range(start, min(start + 100, ingresses))
        ]
        (root / f"team{start // 100:03d}.yaml").write_text("---\n".join(docs))
    (root / "main.yaml").write_text(INGRESS.format(i="main", host=HOST, path="/live", svc=0))


class Proxy:
    """`python -m ingressproxy serve ...` with its log read on a thread."""

    def __init__(self, folder: Path) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "ingressproxy", "serve", str(folder), "--port", "0",
             "--admin-port", "0", "--fake-backends", "--log-level", "info"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            self.port = int(self.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
            self.admin = int(self.expect_seen(r"admin listening on http://[\d.]+:(\d+)").group(1))
        except BaseException:
            self.p.kill()
            raise

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                continue
            self.seen.append(line)
            m = rx.search(line)
            if m:
                return m
        raise SystemExit(f"proxy never logged {pattern!r}:\n" + "\n".join(self.seen[-30:]))

    def expect_seen(self, pattern: str) -> re.Match[str]:
        rx = re.compile(pattern)
        for line in self.seen:
            m = rx.search(line)
            if m:
                return m
        return self.expect(pattern)

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()


@contextmanager
def running(folder: Path) -> Iterator[Proxy]:
    proxy = Proxy(folder)
    try:
        yield proxy
    finally:
        proxy.stop()


def time_until_answer(client: httpx.Client, url: str, ok: int, deadline: float) -> float:
    """Poll `url` until it answers `ok`; seconds from now. Bounded by `deadline` seconds."""
    start = time.perf_counter()
    while time.perf_counter() - start < deadline:
        if client.get(url, headers={"Host": HOST}).status_code == ok:
            return time.perf_counter() - start
    raise SystemExit(f"{url} never answered {ok} within {deadline}s")


def bench_write_to_answer(proxy: Proxy, folder: Path, rounds: int) -> dict[str, float]:
    base = f"http://127.0.0.1:{proxy.port}"
    main = folder / "main.yaml"
    original = main.read_text()
    real: list[float] = []
    noop: list[float] = []
    with httpx.Client(base_url=base, trust_env=False, timeout=5) as client:
        for r in range(rounds):
            # Baseline: a no-op write, then the time to an answer from a route that exists.
            write_atomic(main, main.read_text())
            t0 = time.perf_counter()
            time_until_answer(client, "/live", 200, 10)
            noop.append(time.perf_counter() - t0)
            # Real: a write that adds a route, then the time until that route answers.
            path = f"/new{r}"
            text = original.replace("/live", path).replace("ing" + "main", f"ingnew{r}")
            t0 = time.perf_counter()
            write_atomic(folder / "extra.yaml", text)
            time_until_answer(client, path, 200, 10)
            real.append(time.perf_counter() - t0)
    (folder / "extra.yaml").unlink()
    return {
        "write_to_answer_median_ms": statistics.median(real) * 1000,
        "write_to_answer_p90_ms": sorted(real)[int(len(real) * 0.9) - 1] * 1000,
        "noop_write_baseline_median_ms": statistics.median(noop) * 1000,
    }


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def bench_big_rebuild(proxy: Proxy, folder: Path) -> dict[str, float]:
    """Time the rebuild of the big folder after one team's file changes, and the latencies of
    /ping and a proxied request while it runs, against the same measured while idle. The cold
    first load (every file parsed) is reported too."""
    cold = float(proxy.expect_seen(r"config generation=1 .* took=([\d.]+)ms").group(1))
    base = f"http://127.0.0.1:{proxy.port}"
    admin = f"http://127.0.0.1:{proxy.admin}"

    def sample(seconds: float) -> tuple[list[float], list[float]]:
        ping: list[float] = []
        proxied: list[float] = []
        with httpx.Client(trust_env=False, timeout=10) as c:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t = time.perf_counter()
                c.get(admin + "/ping")
                ping.append(time.perf_counter() - t)
                t = time.perf_counter()
                c.get(base + "/live", headers={"Host": HOST})
                proxied.append(time.perf_counter() - t)
        return ping, proxied

    idle_ping, idle_proxied = sample(1.0)
    took: list[float] = []
    busy_ping: list[float] = []
    busy_proxied: list[float] = []
    team = folder / "team007.yaml"
    for n in range(5):
        result: dict[str, tuple[list[float], list[float]]] = {}

        def run_sampler(into: dict[str, tuple[list[float], list[float]]] = result) -> None:
            into["s"] = sample(1.5)

        sampler = threading.Thread(target=run_sampler)
        sampler.start()
        write_atomic(team, team.read_text() + f"\n# edit {n}\n")  # a whole new table results
        m = proxy.expect(r"config generation=\d+ objects=\d+ routes=\d+ .* took=([\d.]+)ms")
        sampler.join()
        took.append(float(m.group(1)))
        busy_ping += result["s"][0]
        busy_proxied += result["s"][1]
    return {
        "cold_first_load_ms": cold,
        "rebuild_after_one_file_edit_median_ms": statistics.median(took),
        "ping_p99_idle_ms": _percentile(idle_ping, 0.99) * 1000,
        "ping_p99_during_rebuild_ms": _percentile(busy_ping, 0.99) * 1000,
        "proxied_p99_idle_ms": _percentile(idle_proxied, 0.99) * 1000,
        "proxied_p99_during_rebuild_ms": _percentile(busy_proxied, 0.99) * 1000,
    }


def bench_reload_loop(proxy: Proxy, folder: Path, seconds: float) -> dict[str, float]:
    """Steady load from 4 client threads while the folder changes once a second."""
    base = f"http://127.0.0.1:{proxy.port}"
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    failures: list[str] = []
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=base, trust_env=False, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.get("/live", headers={"Host": HOST})
                    good = r.status_code == 200
                    why = f"status {r.status_code}: {r.text[:80]}"
                except httpx.HTTPError as exc:
                    good, why = False, repr(exc)
                with lock:
                    counts["ok" if good else "failed"] += 1
                    if not good and len(failures) < 5:
                        failures.append(why)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    edits = 0
    end = time.perf_counter() + seconds
    main = folder / "main.yaml"
    original = main.read_text()
    while time.perf_counter() < end:
        # Alternate between two valid versions; /live is in both.
        extra = f"\n# edit {edits}\n" if edits % 2 else ""
        write_atomic(main, original + extra)
        edits += 1
        time.sleep(1.0)  # the benchmark's own pacing: one edit a second
    stop.set()
    for t in threads:
        t.join()
    if failures:
        print("failures:", *failures, sep="\n  ")
    return {
        "loop_edits": edits,
        "loop_requests": counts["ok"] + counts["failed"],
        "loop_failed": counts["failed"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--ingresses", type=int, default=5000)
    ap.add_argument("--loop-seconds", type=float, default=30.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small"
        make_folder(small, ingresses=10)
        with running(small) as proxy:
            results.update(bench_write_to_answer(proxy, small, args.rounds))
            results.update(bench_reload_loop(proxy, small, args.loop_seconds))
        big = Path(tmp) / "big"
        make_folder(big, ingresses=args.ingresses)
        with running(big) as proxy:
            results.update(bench_big_rebuild(proxy, big))
    results["ingresses_in_big_folder"] = args.ingresses
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v:10.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
