"""Streaming benchmark: 1 GiB down and 1 GiB up through a real `ingressproxy serve` process,
checked byte for byte, reporting the proxy's resident memory (issue 6: growth < 50 MB).

    .venv/bin/python benchmarks/streaming.py [--size 1g]

The upstream (a uvicorn app in this process) sends and hashes distinct 1 MiB blocks; the proxy
runs as its own process so its RSS is its own: baseline after a warm-up, peak from VmHWM
(reset through /proc/PID/clear_refs where the kernel allows it) and from sampling. Exits 1 when
a transfer is not byte-exact or the proxy grew by 50 MB or more.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from starlette.types import Receive, Scope, Send

from ingressproxy.server.settings import parse_size
from ingressproxy.testing.server import one_service_manifests, serve_in_thread

MiB = 1024 * 1024
LIMIT_MB = 50.0


def blocks(total: int) -> Iterator[bytes]:
    """`total` bytes as distinct 1 MiB blocks (a counter in each), generated on the fly."""
    base = hashlib.sha256(b"bench").digest() * (MiB // 32)
    for i in range(0, total, MiB):
        yield (i.to_bytes(8, "big") + base[8:])[: min(MiB, total - i)]


async def upstream(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/upload":
        h, size = hashlib.sha256(), 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            h.update(body)
            size += len(body)
            if not message.get("more_body", False):
                break
        answer = json.dumps({"bytes": size, "sha256": h.hexdigest()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})
        return
    total = int(scope["query_string"] or b"0")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(total).encode())],
        }
    )
    for block in blocks(total):
        await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class Memory:
    """The proxy's resident set size from /proc, in MB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sampled = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def field(self, name: str) -> float:
        text = Path(f"/proc/{self.pid}/status").read_text()
        m = re.search(rf"^{name}:\s+(\d+) kB", text, re.M)
        return int(m.group(1)) / 1024 if m else 0.0

    def reset_peak(self) -> bool:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def start_sampling(self) -> None:
        def sample() -> None:
            while not self._stop.wait(0.05):
                self.sampled = max(self.sampled, self.field("VmRSS"))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def start_proxy(manifests: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "ingressproxy", "serve", str(manifests), "--port", "0"),
            *("--admin-port", "off", "--access-log", "off"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    found: list[int] = []
    ready = threading.Event()

    def pump() -> None:  # reads every line, so the proxy never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if m and not found:
                found.append(int(m.group(1)))
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(30):
        proc.kill()
        raise SystemExit("the proxy did not start within 30 s")
    return proc, found[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1g", help="bytes each way, e.g. 1g, 256m (default 1g)")
    args = parser.parse_args()
    size = parse_size(args.size, "--size") or MiB

    expected = hashlib.sha256()
    for block in blocks(size):
        expected.update(block)
    want = expected.hexdigest()

    with (
        serve_in_thread(upstream, lifespan="off") as up,
        tempfile.TemporaryDirectory() as tmp,
    ):
        (Path(tmp) / "bench.yaml").write_text(
            one_service_manifests("bench.test", "up", up.port, namespace="bench")
        )
        proc, port = start_proxy(Path(tmp))
        memory = Memory(proc.pid)
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"host": "bench.test"},
                trust_env=False,
                timeout=120,
            ) as client:
                for _ in range(3):  # warm-up: imports, pools, first-request allocations
                    client.get("/download?1048576").raise_for_status()
                    client.post("/upload", content=blocks(MiB)).raise_for_status()
                baseline = memory.field("VmRSS")
                exact_peak = memory.reset_peak()
                memory.start_sampling()

                t0 = time.perf_counter()
                h, got = hashlib.sha256(), 0
                with client.stream("GET", f"/download?{size}") as r:
                    for chunk in r.iter_raw():
                        h.update(chunk)
                        got += len(chunk)
                down_s = time.perf_counter() - t0
                down_ok = got == size and h.hexdigest() == want

                t0 = time.perf_counter()
                report = client.post("/upload", content=blocks(size)).json()
                up_s = time.perf_counter() - t0
                up_ok = report == {"bytes": size, "sha256": want}

                memory.stop_sampling()
                peak = max(memory.field("VmHWM") if exact_peak else 0.0, memory.sampled)
        finally:
            proc.terminate()
            proc.wait(30)

    growth = peak - baseline
    mb = size / MiB
    print(f"size each way      {mb:,.0f} MiB")
    print(f"download           {down_s:6.2f} s  {mb / down_s:8.1f} MiB/s  byte-exact: {down_ok}")
    print(f"upload             {up_s:6.2f} s  {mb / up_s:8.1f} MiB/s  byte-exact: {up_ok}")
    print(f"proxy RSS baseline {baseline:8.1f} MB")
    print(f"proxy RSS peak     {peak:8.1f} MB  ({'VmHWM' if exact_peak else 'sampled'})")
    print(f"proxy RSS growth   {growth:8.1f} MB  (limit {LIMIT_MB:.0f} MB)")
    ok = down_ok and up_ok and growth < LIMIT_MB
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
