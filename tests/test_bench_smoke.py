"""benchmarks/run.py without the benchmark: configs, manifests, wrk parsing, the table, goals.

No timed assertions. The parts that need nginx, haproxy or wrk are skipped when those are not
installed (CI does not install them just for this).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ingressproxy.server.reloader import build_snapshot, compile_options
from ingressproxy.server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load()

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:40000/small
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.61ms  512.00us  12.00ms   90.00%
    Req/Sec     8.80k   300.00     9.10k    80.00%
  Latency Distribution
     50%    3.57ms
     75%    3.80ms
     90%    4.10ms
     99%    1.02s
  43766 requests in 5.00s, 12.01MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   8753.20
Transfer/sec:      2.40MB
"""


def test_parse_wrk_reads_rate_latencies_and_errors() -> None:
    r = bench.parse_wrk(WRK_OUTPUT)
    assert (r.requests, r.seconds, r.rps) == (43766, 5.0, 8753.2)
    assert (r.p50_us, r.p99_us) == (3570.0, 1_020_000.0)
    assert r.errors == 7


def test_parse_wrk_refuses_output_without_a_summary() -> None:
    with pytest.raises(ValueError, match="without its summary"):
        bench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("nginx-backend.conf", {"prefix": "/p", "port": 1, "root": "/www"}),
        ("nginx-proxy.conf", {"prefix": "/p", "port": 1, "backend_port": 2}),
        ("haproxy.cfg", {"port": 1, "backend_port": 2}),
    ],
)
def test_every_placeholder_of_a_config_is_filled(name: str, values: dict[str, object]) -> None:
    text = bench.render_config(name, **values)
    assert "@" not in text.replace("%[", "")
    assert "127.0.0.1:1" in text
    missing = dict(values)
    missing.pop("port")
    with pytest.raises(KeyError):
        bench.render_config(name, **missing)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.parametrize("name", ["nginx-backend.conf", "nginx-proxy.conf"])
def test_nginx_accepts_the_rendered_configs(tmp_path: Path, name: str) -> None:
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    port = bench.free_port()
    conf.write_text(
        bench.render_config(name, prefix=tmp_path, port=port, root=tmp_path, backend_port=port)
    )
    done = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_accepts_the_rendered_config(tmp_path: Path) -> None:
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(bench.render_config("haproxy.cfg", port=1, backend_port=2))
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(conf)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_manifests_route_the_benchmark_host_to_the_backend(tmp_path: Path) -> None:
    bench.make_manifests(tmp_path, 4321, 250)
    built = build_snapshot(tmp_path, compile_options(Settings(manifests=tmp_path)))
    assert built is not None
    snapshot = built[0]
    assert not snapshot.errors
    assert snapshot.routes == 250
    route = snapshot.table.match(bench.HOST, "/small").route
    assert route is not None and route.ingress.name == "main"
    assert [(e.address, e.port) for e in route.backend.endpoints] == [("127.0.0.1", 4321)]
    # Other Ingresses share the host with paths of their own, without taking /small.
    other = snapshot.table.match(bench.HOST, "/p10/x").route
    assert other is not None and other.ingress.name == "ing10"


def _row(scenario: str, server: str, role: str, rps: float, p50: float = 100.0) -> Any:
    result = bench.WrkResult(int(rps * 5), 5.0, rps, p50, p50 * 3, 0)
    return bench.summarize(scenario, server, server, role, [(result, rps * 5 * 20e-6)] * 3)


def test_summary_table_and_goals() -> None:
    rows = [
        _row("small-c1", "direct", "direct", 13000, 70),
        _row("small-c1", "nginx", "peer", 10000, 90),
        _row("small-c1", "ingressproxy", "ours", 5000, 170),
        _row("small-c32", "direct", "direct", 100000),
        _row("small-c32", "nginx", "peer", 40000),
        _row("small-c32", "haproxy", "peer", 50000),
        _row("small-c32", "ingressproxy", "ours", 9000),
        _row("small-c32", "ingressproxy-10k", "ours", 8500),
        _row("big-c32", "nginx", "peer", 900),
        _row("big-c32", "ingressproxy", "ours", 800),
    ]
    assert rows[0].cpu_us_per_request == pytest.approx(20.0)
    text = bench.table(rows)
    # ours/best peer against haproxy's 50,000; ours/direct against 100,000.
    assert "| 9,000 | 100 µs | 300 µs | 20 µs | 0.18 | 0.090 |" in text
    verdicts = {g.goal.split(":")[0]: g.met for g in bench.goals(rows, 10_000)}
    assert verdicts == {
        "small body, c=32": False,
        "small body, c=1": True,
        "1 MiB body, c=32": True,
        "10,000 Ingresses": True,
    }


@pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("wrk") is None,
    reason="nginx and wrk are not installed",
)
def test_wrk_against_the_nginx_backend() -> None:
    # Not tmp_path: nginx's workers drop root privileges and cannot enter pytest's 0700 folders.
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        work = Path(tmp)
        root = work / "www"
        root.mkdir()
        (root / "small").write_bytes(bench.SMALL_BODY)
        for p in (work, root, root / "small"):
            p.chmod(0o755)
        backend = bench.start_nginx(
            "direct", "direct", "nginx-backend.conf", work, False, "direct", root=root
        )
        try:
            result = bench.run_wrk(backend.url("/small"), 1, 1, False)
        finally:
            backend.stop()
    assert result.requests > 0
    assert result.errors == 0


def test_the_raw_proxy_floor_relays_a_real_upstream() -> None:
    """benchmarks/floor.py's minimal proxy (a benchmark reference) really proxies, over
    sockets: the upstream's status, headers and body, request after request."""
    from ingressproxy.testing.server import serve_in_thread

    spec = importlib.util.spec_from_file_location("bench_floor", ROOT / "benchmarks" / "floor.py")
    assert spec is not None and spec.loader is not None
    floor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floor)
    import httpx

    with (
        serve_in_thread(floor.hello_app) as upstream,
        serve_in_thread(floor.raw_proxy_app("127.0.0.1", upstream.port)) as proxy,
        httpx.Client(trust_env=False, timeout=10) as client,
    ):
        for _ in range(3):
            r = client.get(f"{proxy.url}/small", headers={"Host": "bench.example"})
            assert (r.status_code, r.content) == (200, b"x" * 50)
            assert r.headers["content-length"] == "50"
