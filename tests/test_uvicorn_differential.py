"""Our uvicorn protocols against uvicorn's own, byte for byte (issue 15).

guard.py and cycle.py copy parts of uvicorn's HttpToolsProtocol and RequestResponseCycle
(the versions in guard.UVICORN_CHECKED). Every request-framing case below goes over a real
socket to two uvicorn servers serving the same ASGI app, one with uvicorn's plain protocol and
one with ours (`guarded_protocol`), under each parser, and what the two write back must be the
same bytes, to the close. One thing is normalised, because it must differ: a request both
refuse as malformed gets uvicorn's 400 with its text "Invalid HTTP request received." from
uvicorn and the guard's one generic refusal (`400 Bad Request`) from ours; the status line
must match, and whatever came before it on the connection must be identical. What the guard
refuses and uvicorn serves (limits, smuggling, deadlines) is tests/test_guard.py's, and the one
place ours answers differently on purpose (a connection closed after an h2c Upgrade) is a test
of its own here.

The version test at the end is the CI check: it fails, naming what to do, on a uvicorn that
the copies were not checked against.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ingressproxy.server import guard
from ingressproxy.server.cycle import BODY_FOLLOWS
from ingressproxy.server.guard import UVICORN_CHECKED, RequestLimits, guarded_protocol
from ingressproxy.testing.server import ServerThread

WAIT = 10.0
PLAIN: dict[str, type[asyncio.Protocol]] = {"httptools": HttpToolsProtocol, "h11": H11Protocol}
# What both servers of a pair run with, besides their protocol: no Date (it would differ
# between the two by the second), no Server header unless a case asks for uvicorn's.
BASE_OPTIONS: dict[str, Any] = {
    "proxy_headers": False,
    "server_header": False,
    "date_header": False,
}


# --------------------------------------------------------------------------- the app


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers by the request path; the default reflects the request (what the protocol put
    in the scope, and the body it delivered), ending with `|` and the query string, which
    the cases use as a marker."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "echo " + message["text"]})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.endswith("/early"):  # answers without reading the body
        await send(_start(200, [(b"content-length", b"2")]))
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    query = scope["query_string"]
    reflected = (
        repr(
            {
                "keys": sorted(scope),
                "asgi": scope["asgi"],
                "http_version": scope["http_version"],
                "method": scope["method"],
                "scheme": scope["scheme"],
                "path": scope["path"],
                "raw_path": scope["raw_path"],
                "root_path": scope["root_path"],
                "headers": scope["headers"],
                "client": scope["client"][0],
                "server": scope["server"][0],
                "state": scope["state"],
                "body": body,
            }
        ).encode()
        + b"|"
        + query
    )
    await _ANSWERS.get(path.rsplit("/", 1)[-1], _plain)(send, reflected)


def _start(status: int, headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers, **extra}


async def _body(send: Any, data: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


def _length(data: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(data))]


async def _plain(send: Any, data: bytes) -> None:
    await send(_start(200, _length(data)))
    await _body(send, data)


async def _follows(send: Any, data: bytes) -> None:
    # Ours joins the head to the body's write; uvicorn ignores the key: the same bytes.
    await send(_start(200, _length(data), **{BODY_FOLLOWS: True}))
    await _body(send, data)


async def _chunked(send: Any, data: bytes) -> None:  # no length: the server chunks it
    await send(_start(200, [(b"content-type", b"text/plain")]))
    await _body(send, data[:10], True)
    await _body(send, b"", True)
    await _body(send, data[10:])


async def _app_chunked(send: Any, data: bytes) -> None:
    await send(_start(200, [(b"Transfer-Encoding", b"Chunked")]))
    await _body(send, data, True)
    await _body(send, b"")


async def _streamed(send: Any, data: bytes) -> None:
    await send(_start(200, _length(data)))
    await _body(send, data[:5], True)
    await _body(send, data[5:])


async def _big(send: Any, data: bytes) -> None:  # past the transport's write buffer limits
    big = data * (300_000 // len(data) + 1)
    await send(_start(200, _length(big)))
    await _body(send, big[:100_000], True)
    await _body(send, big[100_000:])


async def _no_content(send: Any, data: bytes) -> None:
    await send(_start(204, [(b"x-seen", b"%d" % len(data))]))
    await _body(send, b"")


async def _not_modified(send: Any, data: bytes) -> None:
    await send(_start(304, [(b"etag", b'"1"')]))
    await _body(send, b"")


async def _close(send: Any, data: bytes) -> None:
    await send(_start(200, [*_length(data), (b"Connection", b"Keep-Alive, Close")]))
    await _body(send, data)


async def _mixed_case(send: Any, data: bytes) -> None:
    headers = [
        (b"X-Mixed-Case", b"Value"),
        (b"X-Tab", b"a\tb"),
        (b"X-Empty", b""),
        (b"x-dup", b"1"),
    ]
    await send(_start(201, [*headers, (b"x-dup", b"2"), *_length(data)]))
    await _body(send, data)


async def _crash(send: Any, data: bytes) -> None:  # before the response: uvicorn's 500
    raise RuntimeError("the app failed")


async def _crash_late(send: Any, data: bytes) -> None:  # after the head: the connection drops
    await send(_start(200, _length(data)))
    raise RuntimeError("the app failed mid-response")


async def _silent(send: Any, data: bytes) -> None:  # returns without a response: 500
    return


async def _unfinished(send: Any, data: bytes) -> None:  # head only: the connection drops
    await send(_start(200, _length(data)))


async def _bad_name(send: Any, data: bytes) -> None:
    await send(_start(200, [(b"bad name", b"v"), *_length(data)]))


async def _bad_value(send: Any, data: bytes) -> None:
    await send(_start(200, [(b"x-a", b"v\r\nx-b: smuggled"), *_length(data)]))


async def _too_long(send: Any, data: bytes) -> None:
    await send(_start(200, [(b"content-length", b"1")]))
    await _body(send, data)


async def _too_short(send: Any, data: bytes) -> None:
    await send(_start(200, [(b"content-length", b"%d" % (len(data) + 5))]))
    await _body(send, data)


_ANSWERS = {
    "follows": _follows,
    "chunked": _chunked,
    "app-chunked": _app_chunked,
    "streamed": _streamed,
    "big": _big,
    "204": _no_content,
    "304": _not_modified,
    "close": _close,
    "mixed-case": _mixed_case,
    "crash": _crash,
    "crash-late": _crash_late,
    "silent": _silent,
    "unfinished": _unfinished,
    "bad-name": _bad_name,
    "bad-value": _bad_value,
    "too-long": _too_long,
    "too-short": _too_short,
}


# --------------------------------------------------------------------------- the servers


@dataclass
class Pair:
    theirs: ServerThread
    ours: ServerThread


@contextlib.contextmanager
def serve_pair(http: str, **options: Any) -> Iterator[Pair]:
    """uvicorn with its plain `http` protocol, and with ours, both serving `app`."""
    options = {**BASE_OPTIONS, **options}
    ours = guarded_protocol(RequestLimits(), http=http)  # type: ignore[arg-type]
    with (
        ServerThread(app, http=PLAIN[http], **options) as theirs,
        ServerThread(app, http=ours, **options) as mine,
    ):
        yield Pair(theirs, mine)


@pytest.fixture(scope="module", params=list(PLAIN))
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    with serve_pair(request.param) as p:
        yield p


# --------------------------------------------------------------------------- the client


def converse(port: int, steps: list[tuple[bytes, bytes]]) -> bytes:
    """Send each step's bytes, then read until its marker has arrived (b"": nothing to wait
    for); after the last step, read to the server's close. Everything the server wrote."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        for data, until in steps:
            if data:
                sock.sendall(data)
            while until not in out:
                chunk = sock.recv(65536)
                assert chunk, f"closed before {until!r}; got {out!r}"
                out += chunk
        while chunk := _recv(sock):
            out += chunk
    return out


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:  # a close with our request bytes still unread
        return b""


REFUSAL = b"HTTP/1.1 400 Bad Request\r\n"


def normalised(out: bytes) -> bytes:
    """`out` with a final 400 refusal cut to its status line (module docstring)."""
    at = out.rfind(REFUSAL)
    return out if at < 0 else out[:at] + REFUSAL + b"<refused, then closed>"


def same_bytes(pair: Pair, steps: list[tuple[bytes, bytes]]) -> bytes:
    theirs = converse(pair.theirs.port, steps)
    ours = converse(pair.ours.port, steps)
    assert normalised(ours) == normalised(theirs)
    return theirs


# --------------------------------------------------------------------------- the cases


def get(target: bytes, *fields: bytes, version: bytes = b"1.1", method: bytes = b"GET") -> bytes:
    head = [method + b" " + target + b" HTTP/" + version, b"Host: diff.test", *fields]
    return b"\r\n".join(head) + b"\r\n\r\n"


CLOSE = b"Connection: close"


def once(request: bytes) -> list[tuple[bytes, bytes]]:
    return [(request, b"")]


def post(target: bytes, body: bytes, *fields: bytes, chunked: bool = False) -> bytes:
    if chunked:
        framing = b"Transfer-Encoding: chunked"
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:3], body[3:]) if p)
        payload += b"0\r\n\r\n"
    else:
        framing, payload = b"Content-Length: %d" % len(body), body
    return get(target, framing, *fields, method=b"POST") + payload


PIPELINED = get(b"/?n=1") + post(b"/?n=2", b"hello") + get(b"/chunked?n=3") + get(b"/?n=4", CLOSE)
CASES: dict[str, list[tuple[bytes, bytes]]] = {
    "GET, Connection: close": once(get(b"/?q=1", CLOSE)),
    "percent-encoded path and query": once(get(b"/a%20b/%2F/c?x=%41&y", CLOSE)),
    "OPTIONS *": once(get(b"*", CLOSE, method=b"OPTIONS")),
    "repeated and mixed-case request fields": once(
        get(b"/", b"X-A: 1", b"x-a: 2", b"Accept:  spaced  ", b"X-Empty:", CLOSE)
    ),
    "Content-Length body": once(post(b"/?n=1", b"hello", CLOSE)),
    "Content-Length: 0": once(post(b"/", b"", CLOSE)),
    "chunked body": once(post(b"/", b"hello world", CLOSE, chunked=True)),
    "chunked body with extensions and trailers": once(
        get(b"/", b"Transfer-Encoding: chunked", CLOSE, method=b"POST")
        + b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    ),
    "a body past uvicorn's 64 KiB high-water mark": once(post(b"/", b"b" * 200_000, CLOSE)),
    "keep-alive, one request after the other": [
        (get(b"/?n=1"), b"|n=1"),
        (post(b"/?n=2", b"abc"), b"|n=2"),
        (get(b"/?n=3", CLOSE), b""),
    ],
    "pipelined requests in one write": once(PIPELINED),
    "pipelined requests a byte at a time": once(PIPELINED),  # see test_each_case
    "HEAD": once(get(b"/", CLOSE, method=b"HEAD")),
    "HEAD, then GET on the same connection": once(
        get(b"/?n=1", method=b"HEAD") + get(b"/?n=2", CLOSE)
    ),
    "Expect: 100-continue": [
        (get(b"/?n=1", b"Expect: 100-continue", b"Content-Length: 2", method=b"POST"), b"100"),
        (b"hi", b"|n=1"),
        (get(b"/?n=2", CLOSE), b""),
    ],
    "Expect: 100-continue, the body sent at once": once(
        post(b"/", b"hi", b"Expect: 100-continue", CLOSE)
    ),
    "Expect: 100-continue unanswered (the app does not read)": once(
        get(b"/early", b"Expect: 100-continue", b"Content-Length: 2", CLOSE, method=b"POST") + b"hi"
    ),
    "a body the app never reads, then another request": once(
        post(b"/early", b"x" * 1000) + get(b"/?n=2", CLOSE)
    ),
    "HTTP/1.0": once(get(b"/", version=b"1.0")),
    "HTTP/1.0 with a body": once(
        get(b"/", b"Content-Length: 3", version=b"1.0", method=b"POST") + b"abc"
    ),
    "HTTP/1.0, Connection: keep-alive": once(
        get(b"/?n=1", b"Connection: keep-alive", version=b"1.0") + get(b"/?n=2", CLOSE)
    ),
    "Connection: close in a token list": once(get(b"/", b"Connection: keep-alive, Close")),
    # Responses, as the cycle writes them.
    "head held for the body (BODY_FOLLOWS)": once(get(b"/follows?n=1") + get(b"/follows", CLOSE)),
    "response chunked by the server": once(get(b"/chunked", CLOSE)),
    "response chunked by the app": once(get(b"/app-chunked", CLOSE)),
    "response body in two messages": once(get(b"/streamed", CLOSE)),
    "a 300 KB response": once(get(b"/big", CLOSE)),
    "204 and 304, then another request": once(get(b"/204") + get(b"/304") + get(b"/?n=3", CLOSE)),
    "the app's Connection: close": once(get(b"/close") + get(b"/?n=2")),
    "the app's field names and values as given": once(get(b"/mixed-case", CLOSE)),
    "the app fails before its response: 500": once(get(b"/crash") + get(b"/?n=2")),
    "the app fails mid-response: dropped": once(get(b"/crash-late")),
    "the app returns without a response: 500": once(get(b"/silent")),
    "the app leaves the body out: dropped": once(get(b"/unfinished")),
    "the app's bad field name: dropped": once(get(b"/bad-name")),
    "the app's bad field value: dropped": once(get(b"/bad-value")),
    "body longer than the app's Content-Length: dropped": once(get(b"/too-long")),
    "body shorter than the app's Content-Length: dropped": once(get(b"/too-short")),
    # Malformed requests both refuse (normalised: see the module docstring).
    "garbage request line": once(b"HELLO\r\n\r\n"),
    "bad chunk size": once(
        get(b"/", b"Transfer-Encoding: chunked", method=b"POST") + b"zz\r\nabc\r\n0\r\n\r\n"
    ),
    "a valid request, then garbage": once(get(b"/?n=1") + b"\x00\x01 nonsense\r\n\r\n"),
    "two different Content-Lengths": once(
        get(b"/", b"Content-Length: 1", b"Content-Length: 2", method=b"POST") + b"ab"
    ),
    "NUL in a field value": once(get(b"/", b"X-A: a\x00b")),
    "space before the colon": once(get(b"/", b"X-A : b")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_gets_the_same_bytes_from_both(pair: Pair, case: str) -> None:
    steps = CASES[case]
    if case.endswith("a byte at a time"):
        steps = [(bytes([b]), b"") for b in steps[0][0]]
    got = same_bytes(pair, steps)
    # Both closing at once would also be the same bytes: every case gets an answer or part of
    # one, but a bad head from the app, which uvicorn drops before writing anything.
    assert (got == b"") == case.startswith("the app's bad field")


def test_a_websocket_handshake_and_messages(pair: Pair) -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    handshake = get(
        b"/ws",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + key,
        b"Sec-WebSocket-Version: 13",
    )
    mask = b"\x01\x02\x03\x04"
    text = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
    close = bytes(b ^ mask[i % 4] for i, b in enumerate(b"\x03\xe8"))
    got = same_bytes(
        pair,
        [
            # Frames in the handshake's packet would be lost: uvicorn hands the WebSocket
            # protocol the head alone (both ways, so not a difference to test here).
            (handshake, b"\r\n\r\n"),
            (b"\x81\x82" + mask + text, b"\x88\x02\x03\xe8"),  # until the server's close
            (b"\x88\x82" + mask + close, b""),  # ours in reply; then the server hangs up
        ],
    )
    assert got.startswith(b"HTTP/1.1 101 ") and b"echo hi" in got


# --------------------------------------------------------------------------- server options


@pytest.mark.parametrize("http", list(PLAIN))
@pytest.mark.parametrize(
    ("options", "steps"),
    [
        ({"root_path": "/mnt"}, once(get(b"/mnt/x?n=1", CLOSE))),
        ({"server_header": True, "headers": [("X-Default", "d")]}, once(get(b"/", CLOSE))),
        # A busy server answers 503 from uvicorn's service_unavailable (one connection is
        # already as many as the limit).
        ({"limit_concurrency": 1}, once(get(b"/", CLOSE))),
        # An idle keep-alive connection is closed by the server (ours: within a second more).
        ({"timeout_keep_alive": 1}, once(get(b"/?n=1"))),
    ],
    ids=["root_path", "default headers", "limit_concurrency", "keep-alive timeout"],
)
def test_server_options_act_the_same(
    http: str, options: dict[str, Any], steps: list[tuple[bytes, bytes]]
) -> None:
    with serve_pair(http, **options) as p:
        same_bytes(p, steps)


@pytest.mark.parametrize("http", list(PLAIN))
def test_the_access_log_lines_are_the_same(http: str) -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    handler = Keep()
    level = access.level
    with serve_pair(http, access_log=True) as p:
        # Set after both Configs were made (each sets the logger's level and handlers);
        # uvicorn's protocols look for a handler on every new connection.
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        try:
            lines = []
            for port in (p.theirs.port, p.ours.port):
                converse(port, once(get(b"/a%20b?x=1", b"X-A: 1", CLOSE)))
                converse(port, once(get(b"/", version=b"1.0", method=b"HEAD")))
                lines.append([re.sub(r":\d+ - ", " - ", line, count=1) for line in records])
                records.clear()
        finally:
            access.removeHandler(handler)
            access.setLevel(level)
    assert lines[0] == lines[1] and len(lines[0]) == 2


# --------------------------------------------------------------------------- on purpose


def test_after_an_h2c_upgrade_ours_closes_where_uvicorn_keeps_the_connection() -> None:
    """llhttp stops reading a connection at an Upgrade it does not perform: uvicorn answers
    the request and then keeps a connection it can never read again, until its keep-alive
    timeout; ours says `connection: close` and closes. Otherwise the same bytes."""
    request = get(
        b"/?n=1", b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c", b"HTTP2-Settings: AA"
    )
    with serve_pair("httptools", timeout_keep_alive=1) as p:
        theirs = converse(p.theirs.port, once(request))
        ours = converse(p.ours.port, once(request))
    head, _, body = theirs.partition(b"\r\n\r\n")
    assert ours == head + b"\r\nconnection: close\r\n\r\n" + body


# --------------------------------------------------------------------------- the version


def test_uvicorn_is_a_version_the_copies_were_checked_against() -> None:
    assert uvicorn.__version__ in UVICORN_CHECKED, (
        f"uvicorn {uvicorn.__version__} is installed, but guard.py and cycle.py copy parts of "
        f"uvicorn {', '.join(UVICORN_CHECKED)} (HttpToolsProtocol's data_received, "
        "on_message_begin, on_header, on_headers_complete, on_response_complete and "
        "RequestResponseCycle.send). Compare them with this version's, bring the copies up "
        "to date, run tests/test_uvicorn_differential.py, tests/test_cycle.py and "
        "tests/test_guard.py, then add the version to UVICORN_CHECKED in "
        "ingressproxy/server/guard.py (and widen pyproject.toml's uvicorn range if needed)."
    )


def test_a_server_on_an_unchecked_uvicorn_logs_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(uvicorn, "__version__", "0.99.0")
    guard._warn_if_unchecked.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="ingressproxy.guard"):
            for _ in range(2):  # a second listener (HTTPS) in the same process
                guarded_protocol(RequestLimits())
    finally:
        guard._warn_if_unchecked.cache_clear()
    (record,) = [r for r in caplog.records if r.name == "ingressproxy.guard"]
    assert record.levelno == logging.WARNING and "\n" not in record.getMessage()
    assert "uvicorn 0.99.0 is not a version" in record.getMessage()
    assert guard.unchecked_uvicorn() is not None
    monkeypatch.undo()
    assert guard.unchecked_uvicorn() is None
