"""Header rewriting: hop-by-hop removal both ways, X-Forwarded-* for untrusted and trusted peers."""

from __future__ import annotations

import ipaddress
import re

import pytest

from ingressproxy.errors import BadRequest
from ingressproxy.proxy.headers import HOP_BY_HOP, HeaderRewriter, RequestHead, connection_tokens

Headers = list[tuple[bytes, bytes]]

LOCAL = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8"))


def rewrite(
    headers: Headers,
    *,
    trusted: bool = False,
    client: str | None = "203.0.113.7",
    scheme: str = "http",
    server_port: int | None = 8080,
) -> RequestHead:
    rewriter = HeaderRewriter(LOCAL if trusted else (), "ingressproxy")
    return rewriter.request(headers, client=client, scheme=scheme, server_port=server_port)


def values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == name]


def names(headers: Headers) -> list[bytes]:
    return [n.lower() for n, _ in headers]


# --------------------------------------------------------------------------- request


def test_request_hop_by_hop_headers_are_removed() -> None:
    head = rewrite(
        [
            (b"host", b"foo.com"),
            (b"connection", b"keep-alive, X-Private"),
            (b"connection", b"X-Other"),
            (b"keep-alive", b"timeout=5"),
            (b"proxy-connection", b"keep-alive"),
            (b"te", b"trailers"),
            (b"trailer", b"x-checksum"),
            (b"upgrade", b"h2c"),
            (b"x-private", b"secret"),
            (b"x-other", b"1"),
            (b"x-kept", b"yes"),
            (b"expect", b"100-continue"),
        ]
    )
    got = set(names(head.headers))
    assert not got & HOP_BY_HOP
    assert not got & {b"x-private", b"x-other", b"expect"}
    assert values(head.headers, b"x-kept") == [b"yes"]


def test_connection_cannot_remove_our_own_headers_or_framing() -> None:
    head = rewrite(
        [
            (b"host", b"foo.com"),
            (b"content-length", b"3"),
            (b"connection", b"X-Forwarded-For, X-Real-IP, X-Request-ID, Host, Content-Length"),
        ]
    )
    assert values(head.headers, b"x-forwarded-for") == [b"203.0.113.7"]
    assert values(head.headers, b"x-real-ip") == [b"203.0.113.7"]
    assert len(values(head.headers, b"x-request-id")) == 1
    assert values(head.headers, b"host") == [b"foo.com"]
    assert values(head.headers, b"content-length") == [b"3"]
    assert head.has_body


def test_untrusted_peer_forwarded_headers_are_replaced() -> None:
    head = rewrite(
        [
            (b"host", b"Foo.com:8080"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"evil.example"),
            (b"x-forwarded-port", b"1"),
            (b"x-real-ip", b"6.6.6.6"),
            (b"x_forwarded_for", b"9.9.9.9"),
            (b"x_real_ip", b"9.9.9.9"),
            (b"x-forwarded_proto", b"https"),
        ]
    )
    h = head.headers
    assert values(h, b"x-forwarded-for") == [b"203.0.113.7"]
    assert values(h, b"x-forwarded-proto") == [b"http"]
    assert values(h, b"x-forwarded-host") == [b"Foo.com:8080"]
    assert values(h, b"x-forwarded-port") == [b"8080"]
    assert values(h, b"x-real-ip") == [b"203.0.113.7"]
    assert not [n for n in names(h) if b"_" in n]
    # Host goes upstream exactly as received.
    assert values(h, b"host") == [b"Foo.com:8080"]
    assert head.host == b"Foo.com:8080"


def test_trusted_peer_chain_is_extended_and_kept() -> None:
    head = rewrite(
        [
            (b"host", b"foo.com"),
            (b"x-forwarded-for", b"198.51.100.1, 10.1.1.1"),
            (b"x-forwarded-for", b"10.2.2.2"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"public.example"),
            (b"x-forwarded-port", b"443"),
            (b"x-real-ip", b"6.6.6.6"),
        ],
        trusted=True,
        client="127.0.0.1",
    )
    h = head.headers
    assert values(h, b"x-forwarded-for") == [b"198.51.100.1, 10.1.1.1, 10.2.2.2, 127.0.0.1"]
    assert values(h, b"x-forwarded-proto") == [b"https"]
    assert values(h, b"x-forwarded-host") == [b"public.example"]
    assert values(h, b"x-forwarded-port") == [b"443"]
    # The first untrusted address from the nearest hop back, never the client's own claim.
    assert values(h, b"x-real-ip") == [b"198.51.100.1"]


def test_trusted_peer_without_incoming_headers_gets_ours() -> None:
    head = rewrite([(b"host", b"foo.com")], trusted=True, client="10.0.0.5", scheme="https")
    h = head.headers
    assert values(h, b"x-forwarded-for") == [b"10.0.0.5"]
    assert values(h, b"x-forwarded-proto") == [b"https"]
    assert values(h, b"x-forwarded-host") == [b"foo.com"]
    assert values(h, b"x-real-ip") == [b"10.0.0.5"]


def test_all_trusted_chain_gives_the_farthest_hop_as_real_ip() -> None:
    head = rewrite(
        [(b"host", b"foo.com"), (b"x-forwarded-for", b"10.9.9.9, 127.0.0.2")],
        trusted=True,
        client="127.0.0.1",
    )
    assert values(head.headers, b"x-real-ip") == [b"10.9.9.9"]


def test_trusted_peer_connection_naming_xff_drops_the_incoming_chain() -> None:
    head = rewrite(
        [
            (b"host", b"foo.com"),
            (b"x-forwarded-for", b"198.51.100.1"),
            (b"x-forwarded-proto", b"https"),
            (b"connection", b"x-forwarded-for, x-forwarded-proto"),
        ],
        trusted=True,
        client="127.0.0.1",
    )
    assert values(head.headers, b"x-forwarded-for") == [b"127.0.0.1"]
    assert values(head.headers, b"x-forwarded-proto") == [b"http"]


def test_untrusted_peer_is_not_trusted_by_a_trusted_config() -> None:
    head = rewrite(
        [(b"host", b"foo.com"), (b"x-forwarded-for", b"10.0.0.1")],
        trusted=True,
        client="203.0.113.9",
    )
    assert values(head.headers, b"x-forwarded-for") == [b"203.0.113.9"]
    assert values(head.headers, b"x-real-ip") == [b"203.0.113.9"]


@pytest.mark.parametrize("scheme", ["https", "wss"])
def test_forwarded_proto_for_secure_schemes(scheme: str) -> None:
    assert values(rewrite([], scheme=scheme).headers, b"x-forwarded-proto") == [b"https"]


def test_no_client_or_server_address() -> None:
    head = rewrite([], client=None, server_port=None)
    got = set(names(head.headers))
    assert not got & {b"x-forwarded-for", b"x-real-ip", b"x-forwarded-port", b"x-forwarded-host"}
    assert head.host is None


def test_sane_request_id_is_kept() -> None:
    rid = b"7d4c2a0e-5b1f-4d7e-9a34-2f1b8c9d0e11"
    head = rewrite([(b"x-request-id", rid), (b"x-request-id", b"second")])
    assert values(head.headers, b"x-request-id") == [rid]


@pytest.mark.parametrize("rid", [b"", b"has space", b"a" * 201, b"line\x01break", b"<script>"])
def test_insane_request_id_is_replaced(rid: bytes) -> None:
    got = values(rewrite([(b"x-request-id", rid)]).headers, b"x-request-id")
    assert len(got) == 1
    assert re.fullmatch(rb"[0-9a-f]{32}", got[0])


def test_generated_request_ids_differ() -> None:
    a = values(rewrite([]).headers, b"x-request-id")
    b = values(rewrite([]).headers, b"x-request-id")
    assert a != b


def test_more_than_one_host_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        rewrite([(b"host", b"a.com"), (b"host", b"b.com")])


def test_chunked_body_goes_up_with_one_framing_header() -> None:
    head = rewrite([(b"transfer-encoding", b" Chunked ")])
    assert values(head.headers, b"transfer-encoding") == [b"chunked"]
    assert values(head.headers, b"content-length") == []
    assert head.chunked
    assert head.has_body
    assert head.content_length is None


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"10"), (b"transfer-encoding", b"chunked")],
        [(b"transfer-encoding", b"chunked"), (b"content-length", b"10")],
        [(b"content-length", b"10"), (b"content-length", b"10")],
        [(b"content-length", b"10"), (b"content-length", b"11")],
        [(b"content-length", b"+10")],
        [(b"content-length", b"1 0")],
        [(b"content-length", b"0x10")],
        [(b"content-length", b"9" * 19)],
        [(b"content-length", b"")],
        [(b"transfer-encoding", b"gzip, chunked")],
        [(b"transfer-encoding", b"gzip")],
        [(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")],
    ],
)
def test_ambiguous_framing_is_a_bad_request(headers: Headers) -> None:
    # The guard (guard.py) refuses these first; the rewriter holds the same line for servers
    # run without it, so the upstream never gets two framing headers.
    with pytest.raises(BadRequest):
        rewrite(headers)


def test_content_length_is_parsed() -> None:
    assert rewrite([(b"content-length", b" 1234 ")]).content_length == 1234


@pytest.mark.parametrize(
    ("headers", "has_body"),
    [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b"12")], True),
        ([(b"transfer-encoding", b"chunked")], True),
    ],
)
def test_has_body(headers: Headers, has_body: bool) -> None:
    head = rewrite(headers)
    assert head.has_body is has_body
    # Content-Length passes unchanged.
    assert values(head.headers, b"content-length") == values(headers, b"content-length")


def test_other_headers_keep_their_order_and_bytes() -> None:
    incoming = [
        (b"host", b"foo.com"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"x-bin", b"\xff\xfe"),
        (b"accept", b"*/*"),
    ]
    head = rewrite(incoming)
    assert head.headers[: len(incoming)] == incoming


def test_connection_tokens() -> None:
    assert connection_tokens([b"Keep-Alive, X-Foo", b" ,x-BAR ,"]) == {
        b"keep-alive",
        b"x-foo",
        b"x-bar",
    }


def test_trust_check_handles_garbage_and_ipv6() -> None:
    rewriter = HeaderRewriter((ipaddress.ip_network("::1/128"),), "")
    assert rewriter.is_trusted("::1")
    assert not rewriter.is_trusted("::2")
    assert not rewriter.is_trusted("not-an-ip")
    assert not rewriter.is_trusted(None)
    assert not HeaderRewriter((), "").is_trusted("127.0.0.1")


# --------------------------------------------------------------------------- response


def test_response_hop_by_hop_headers_are_removed() -> None:
    head = HeaderRewriter((), "ingressproxy").response(
        [
            (b"Content-Type", b"text/plain"),
            (b"Connection", b"close, X-Private"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Proxy-Connection", b"keep-alive"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Trailer", b"X-Checksum"),
            (b"Upgrade", b"h2c"),
            (b"TE", b"trailers"),
            (b"X-Private", b"secret"),
            (b"X-Kept", b"yes"),
        ]
    )
    got = set(names(head.headers))
    assert not got & HOP_BY_HOP
    assert b"x-private" not in got
    assert (b"X-Kept", b"yes") in head.headers
    assert (b"Content-Type", b"text/plain") in head.headers  # the upstream's spelling


def test_server_header_added_only_when_missing() -> None:
    rewriter = HeaderRewriter((), "ingressproxy")
    assert values(rewriter.response([]).headers, b"server") == [b"ingressproxy"]
    theirs = rewriter.response([(b"Server", b"nginx/1.25")]).headers
    assert values(theirs, b"server") == [b"nginx/1.25"]
    assert values(HeaderRewriter((), "").response([]).headers, b"server") == []


def test_date_header_added_only_when_missing() -> None:
    rewriter = HeaderRewriter((), "")
    added = values(rewriter.response([]).headers, b"date")
    assert len(added) == 1
    assert re.fullmatch(rb"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", added[0])
    date = b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert values(rewriter.response([(b"date", date)]).headers, b"date") == [date]


def test_set_cookie_lines_and_content_length_pass_unchanged() -> None:
    upstream = [
        (b"set-cookie", b"a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/"),
        (b"content-length", b"42"),
        (b"set-cookie", b"b=2; HttpOnly"),
        (b"Set-Cookie", b"c=3"),
    ]
    head = HeaderRewriter((), "").response(upstream)
    assert [h for h in head.headers if h[0].lower() == b"set-cookie"] == [
        upstream[0],
        upstream[2],
        upstream[3],
    ]
    assert values(head.headers, b"content-length") == [b"42"]
    assert head.content_length == 42


@pytest.mark.parametrize("value", [b"", b"abc", b"-1", b"1.5"])
def test_unusable_content_length_is_reported_as_unknown(value: bytes) -> None:
    assert HeaderRewriter((), "").response([(b"content-length", value)]).content_length is None


@pytest.mark.parametrize("status", [204, 304, 101, 103])
def test_bodiless_statuses_lose_their_content_length(status: int) -> None:
    # A 304's Content-Length describes another representation; uvicorn's httptools server
    # would wait for that many body bytes.
    head = HeaderRewriter((), "").response([(b"content-length", b"1234")], status)
    assert values(head.headers, b"content-length") == []
    assert head.content_length is None


def test_content_length_with_transfer_encoding_is_ambiguous() -> None:
    rewriter = HeaderRewriter((), "")
    both = [(b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")]
    assert rewriter.response(both).ambiguous
    assert not rewriter.response([(b"Transfer-Encoding", b"chunked")]).ambiguous
    assert not rewriter.response([(b"Content-Length", b"5")]).ambiguous


def test_response_connection_cannot_remove_content_length() -> None:
    head = HeaderRewriter((), "").response(
        [(b"content-length", b"5"), (b"connection", b"content-length, server")]
    )
    assert values(head.headers, b"content-length") == [b"5"]
