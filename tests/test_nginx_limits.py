"""ingress-nginx's request rate limits in the nginx dialect, on real sockets (limit-rps,
limit-rpm, limit-burst-multiplier, limit-allowlist), and nginx's limit_req algorithm itself
with a fixed clock: `burst=N nodelay` lets N extra requests through at once, then one per
1/rate seconds."""

from __future__ import annotations

from pathlib import Path

from test_nginx_rewrite import HOST, ingress, proxy

from ingressproxy.ir.limits import LeakyBucket


def test_the_leaky_bucket_of_limit_req() -> None:
    bucket = LeakyBucket(rate=2000, burst=2)  # 2 r/s, burst=2
    assert [bucket.allow("a", 0) for _ in range(4)] == [True, True, True, False]
    # Another key has a bucket of its own.
    assert bucket.allow("b", 0)
    # 500 ms drain one request's worth at 2 r/s.
    assert bucket.allow("a", 500)
    assert not bucket.allow("a", 500)
    # A rejected request adds nothing: after 1 s the bucket has room for two again.
    assert bucket.allow("a", 1500) and bucket.allow("a", 1500)
    assert not bucket.allow("a", 1500)


def test_limit_rps_with_its_burst_then_503(tmp_path: Path) -> None:
    notes = {"limit-rps": "1", "limit-burst-multiplier": "2"}
    with proxy(tmp_path, ingress("app", "/", notes)) as served:
        statuses = [served.get("/", host=HOST).status_code for _ in range(6)]
        # The first, then a burst of 2 * 1 extra, then 503 (a few may pass as time drains).
        assert statuses[:3] == [200, 200, 200]
        assert statuses[-1] == 503
        assert statuses.count(503) >= 2


def test_limit_rpm(tmp_path: Path) -> None:
    notes = {"limit-rpm": "2", "limit-burst-multiplier": "1"}
    with proxy(tmp_path, ingress("app", "/", notes)) as served:
        statuses = [served.get("/", host=HOST).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 503]


def test_the_allowlist_is_not_limited(tmp_path: Path) -> None:
    notes = {"limit-rps": "1", "limit-burst-multiplier": "1", "limit-whitelist": "127.0.0.1/32"}
    with proxy(tmp_path, ingress("app", "/", notes)) as served:
        assert {served.get("/", host=HOST).status_code for _ in range(6)} == {200}


def test_an_invalid_limit_refuses_the_ingress_and_a_bad_allowlist_drops_the_limits(
    tmp_path: Path,
) -> None:
    with proxy(tmp_path, ingress("app", "/", {"limit-rps": "ten"})) as served:
        assert served.get("/", host=HOST).status_code == 404
        codes = [d.code for d in served.app.state.holder.current.diagnostics]
        assert "invalid-annotation" in codes
    (tmp_path / "b").mkdir()
    notes = {"limit-rps": "1", "limit-burst-multiplier": "1", "limit-allowlist": "nope"}
    with proxy(tmp_path / "b", ingress("app", "/", notes)) as served:
        assert {served.get("/", host=HOST).status_code for _ in range(5)} == {200}
