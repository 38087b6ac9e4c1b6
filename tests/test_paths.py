"""Table tests for paths.canonicalize: what is matched is what is forwarded."""

from __future__ import annotations

import pytest

from ingressproxy.proxy.paths import BadPath, canonical_rule_path, canonicalize

# Already canonical: returned unchanged, byte for byte.
UNCHANGED = [
    "/",
    "/a",
    "/a/b/",
    "/A-b_c.d~e",
    "/.well-known/acme-challenge/x",  # '/.' but not a dot segment
    "/a/..b",
    "/a/b.",
    "/a/.../b",
    "/a;v=1/b",
    "/a:b@c!$&'()*+,;=",
    "/%C3%A9",
    "/a%20b",
    "/a%3Fb",  # an encoded '?' stays encoded: decoding it would cut the path
    "/a%25b",  # an encoded '%'
    "/a%23b",  # an encoded '#'
    '/a"b<c>{d}|e^f`g',  # not valid RFC 3986, but visible ASCII: passed on as sent
    "/api/v1/users/42/photos/7.jpg",
]

CHANGED = [
    # unreserved escapes decoded (RFC 3986 6.2.2.2), case-insensitively
    ("/%7Euser", "/~user"),
    ("/%7euser", "/~user"),
    ("/%41%42c", "/ABc"),
    ("/%2d%2E%5f%7e", "/-._~"),
    ("/%30%39", "/09"),
    # other escapes kept, hex upper-cased (6.2.2.1)
    ("/%3a", "/%3A"),
    ("/%c3%a9", "/%C3%A9"),
    ("/a%3fb", "/a%3Fb"),
    ("/%25", "/%25"),
    ("/%2541", "/%2541"),  # '%41' after decoding '%25' is data, not an escape
    # dot segments: RFC 3986 5.2.4 and 5.4 examples (absolute paths)
    ("/a/b/c/./../../g", "/a/g"),
    ("/mid/content=5/../6", "/mid/6"),
    ("/./a", "/a"),
    ("/../a", "/a"),
    ("/../../../etc/passwd", "/etc/passwd"),
    ("/a/..", "/"),
    ("/a/b/..", "/a/"),
    ("/a/b/../", "/a/"),
    ("/a/.", "/a/"),
    ("/a/./", "/a/"),
    ("/.", "/"),
    ("/..", "/"),
    ("/a/./b", "/a/b"),
    ("/a/../b", "/b"),
    # dot segments written with %2e
    ("/a/%2e%2e/b", "/b"),
    ("/a/%2E%2E/b", "/b"),
    ("/a/.%2e/b", "/b"),
    ("/a/%2e./b", "/b"),
    ("/a/%2e/b", "/a/b"),
    ("/%2e%2e/%2e%2e/etc", "/etc"),
    ("/a/%2e%2e", "/"),
    # runs of '/' merged
    ("//", "/"),
    ("///a", "/a"),
    ("/a//b", "/a/b"),
    ("//a///b//", "/a/b/"),
    ("/a//../b", "/b"),
    ("/a/.//b", "/a/b"),
    # raw bytes a lenient parser lets through are encoded
    ("/a b", "/a%20b"),
    ("/é", "/%C3%A9"),
]

BAD = [
    b"/a%2Fb",
    b"/a%2fb",
    b"/a%5Cb",
    b"/a%5cb",
    b"/a\\b",
    b"\\",
    b"/a\x00b",
    b"/a%00b",
    b"/a%zz",
    b"/a%4",
    b"/a%",
    b"/a%g1",
    b"/a%1g",
    b"/a%%41",
    b"/a% 1",
    b"/a%+1",
    b"/a\x01b",
    b"/a\tb",
    b"/a\x7fb",
    b"a/b",
    b"",
    b"*",
    b"http://example.com/a",
]


@pytest.mark.parametrize("path", UNCHANGED)
def test_canonical_paths_are_returned_unchanged(path: str) -> None:
    assert canonicalize(path.encode("ascii")) == path
    assert canonicalize(path) == path


@pytest.mark.parametrize(("raw", "expected"), CHANGED)
def test_canonicalization(raw: str, expected: str) -> None:
    assert canonicalize(raw) == expected
    assert canonicalize(raw.encode("utf-8")) == expected


@pytest.mark.parametrize("raw", BAD)
def test_rejected_paths(raw: bytes) -> None:
    with pytest.raises(BadPath):
        canonicalize(raw)


def test_raw_non_ascii_bytes_are_percent_encoded() -> None:
    assert canonicalize(b"/caf\xc3\xa9/\xff") == "/caf%C3%A9/%FF"


def test_bad_path_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(ValueError, match="encoded '/'"):
        canonicalize(b"/a%2Fb")
    with pytest.raises(BadPath, match="'%zz'"):
        canonicalize(b"/a%zz")


@pytest.mark.parametrize("raw", [p for p in UNCHANGED] + [c for c, _ in CHANGED])
def test_canonicalize_is_idempotent(raw: str) -> None:
    once = canonicalize(raw)
    assert canonicalize(once) == once


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("/", "/"),
        ("/foo/", "/foo/"),  # Prefix /foo/ keeps its slash (prefix_key drops it later)
        ("/a//b", "/a/b"),
        ("/%7euser", "/~user"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/café", "/caf%C3%A9"),
        ("/a/./b/../c", "/a/c"),
        ("/with space", "/with%20space"),
    ],
)
def test_rule_paths_are_stored_in_the_form_requests_are_matched_in(
    rule: str, expected: str
) -> None:
    assert canonical_rule_path(rule) == expected
    # A request written like the rule matches it.
    assert canonicalize(rule.encode("utf-8")) == expected


@pytest.mark.parametrize("rule", ["/a%2Fb", "/a\\b", "/a%00", "relative"])
def test_rule_paths_no_request_can_match_are_rejected(rule: str) -> None:
    with pytest.raises(BadPath):
        canonical_rule_path(rule)
