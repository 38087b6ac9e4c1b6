"""Access log: one line per request, text or JSON, through a real proxy and as pure formats."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from e2e import example_copy, run_proxy

from ingressproxy.ir.model import Backend, Endpoint, Router
from ingressproxy.ir.table import HostTable, RouteTable
from ingressproxy.manifests.model import ObjectRef, PathType, Source
from ingressproxy.observe.accesslog import AccessLog, format_json, format_text
from ingressproxy.observe.record import RequestRecord

HOST = "api.notesmanager.io"
ROUTER = "notesmanager-notesmanager-services-api-notesmanager-io-search"
SERVICE = "notesmanager-notes-search-http"


def _record(**changes: object) -> RequestRecord:
    backend = Backend("ns", "svc", "http", (Endpoint("10.0.0.1", 8080),))
    route = Router(
        ObjectRef("Ingress", "ns", "web"),
        Source("x.yaml", 3),
        "f",
        "a.io",
        "/p",
        PathType.PREFIX,
        backend,
    )
    table = RouteTable(exact_hosts={"a.io": HostTable(prefix={"/p": route})})
    fields: dict[str, object] = {
        "time": 1643991826.25,  # 2022-02-04T16:23:46.250Z, the blog's Traefik log line
        "client": "127.0.0.1",
        "method": "GET",
        "host": "a.io",
        "path": "/p/x",
        "status": 200,
        "duration": 0.0123456,
        "bytes_sent": 42,
        "table": table,
        "route": route,
        "endpoint": backend.endpoints[0],
        "request_id": "abc123",
    }
    fields.update(changes)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def test_text_format() -> None:
    assert format_text(_record()) == (
        '127.0.0.1 - - [04/Feb/2022:16:23:46 +0000] "GET /p/x" 200 42 host=a.io'
        " router=ns-web-a-io-p service=ns-svc-http endpoint=10.0.0.1:8080 request_id=abc123"
        " duration=12.346ms"
    )


def test_text_format_unrouted_and_failed() -> None:
    line = format_text(
        _record(
            route=None,
            endpoint=None,
            request_id=None,
            status=502,
            path='/a "b"',
            upstream_error="timeout",
        )
    )
    assert line == (
        '127.0.0.1 - - [04/Feb/2022:16:23:46 +0000] "GET /a \\"b\\"" 502 42 host=a.io router=-'
        " service=- endpoint=- request_id=- duration=12.346ms upstream_error=timeout"
    )


def test_json_format() -> None:
    assert json.loads(format_json(_record())) == {
        "time": "2022-02-04T16:23:46.250Z",
        "client": "127.0.0.1",
        "method": "GET",
        "host": "a.io",
        "path": "/p/x",
        "status": 200,
        "duration": 0.012346,
        "bytes": 42,
        "router": "ns-web-a-io-p",
        "service": "ns-svc-http",
        "endpoint": "10.0.0.1:8080",
        "request_id": "abc123",
        "upstream_error": None,
    }


def test_writes_whole_lines() -> None:
    out = io.StringIO()
    log = AccessLog("json", out)
    log(_record())
    log(_record(status=404))
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["status"] for x in lines] == [200, 404]


def test_from_setting() -> None:
    assert AccessLog.from_setting("off") is None
    assert isinstance(AccessLog.from_setting("text"), AccessLog)
    with pytest.raises(ValueError, match="text, json or off"):
        AccessLog.from_setting("xml")


@pytest.mark.parametrize("fmt", ["text", "json", "off"])
def test_one_line_per_request(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = example_copy("notesmanager", tmp_path / "n")
    with run_proxy(folder, fake_backends=True, access_log=fmt) as served:
        capsys.readouterr()
        ok = served.request("GET", "/search?q=secret", host=HOST, headers={"X-Request-Id": "req-1"})
        missing = served.get("/nope", host=HOST)
        # The record is written once the exchange is over, before the server thread stops.
    out = capsys.readouterr().out.splitlines()
    assert (ok.status_code, missing.status_code) == (200, 404)
    lines = [x for x in out if "/search" in x or "/nope" in x]
    if fmt == "off":
        assert lines == []
        return
    assert len(lines) == 2, out
    if fmt == "json":
        first, second = (json.loads(x) for x in lines)
        assert (first["method"], first["host"], first["path"], first["status"]) == (
            "GET",
            HOST,
            "/search",
            200,
        )
        assert (first["router"], first["service"], first["request_id"]) == (
            ROUTER,
            SERVICE,
            "req-1",
        )
        assert first["endpoint"].startswith("127.0.") and first["bytes"] == len(ok.content)
        assert (second["status"], second["router"], second["endpoint"]) == (404, None, None)
    else:
        assert (
            f'"GET /search" 200 {len(ok.content)} host={HOST} router={ROUTER} service={SERVICE}'
            in lines[0]
        )
        assert "request_id=req-1" in lines[0]
        assert '"GET /nope" 404' in lines[1] and "router=- " in lines[1]
    # The query string stays out of the log (it often carries tokens).
    assert "secret" not in "\n".join(lines)
