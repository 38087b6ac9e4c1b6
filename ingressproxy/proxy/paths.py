"""Request path canonicalization: the one form of the path that is both matched and forwarded.

Flow: proxy takes scope["raw_path"] -> canonicalize -> RouteTable.match and the upstream target.
Matching and forwarding the same string means no rule can be bypassed by an encoding the
backend would undo (the class of bugs behind nginx's merge_slashes and Envoy's path
normalization options).
"""

from __future__ import annotations

import re

__all__ = ["BadPath", "canonical_rule_path", "canonicalize"]


class BadPath(ValueError):
    """The path cannot be canonicalized safely; the proxy answers 400."""


# Anything outside this regex is already canonical and is returned unchanged, so a path the
# backend would have received from a direct client reaches it byte-identical.
_NEEDS_WORK = re.compile(rb"[^\x21-\x7e]|%|//|/\.|\\")

# RFC 3986 2.3: unreserved characters; their percent-encoded forms are equivalent (6.2.2.2)
# and are decoded, so `/%7Euser` and `/~user` match the same rule.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789abcdefABCDEF")

# Escapes that would change the path's structure or smuggle a terminator: an encoded '/' or
# '\' makes one segment look like two to some backends (the reason ingress-nginx and Traefik
# reject them by default), and NUL truncates strings in C backends.
_FORBIDDEN_ESCAPES = {0x00: "NUL", 0x2F: "an encoded '/'", 0x5C: "an encoded '\\'"}

# Raw bytes that are not visible ASCII. Controls (and DEL) are rejected; space and non-ASCII
# bytes (which some HTTP parsers let through) are percent-encoded so the upstream request line
# stays valid.
_NOT_VISIBLE = re.compile(rb"[^\x21-\x7e]")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def canonicalize(raw_path: bytes | str) -> str:
    """The canonical form of a request path (the part of the target before '?').

    - percent-encoded unreserved characters are decoded, other escapes kept with upper-case hex;
    - dot segments are resolved (RFC 3986 5.2.4), also when written `%2e`, never above '/';
    - runs of '/' are merged;
    - `%2F`, `%5C`, a raw '\\', NUL (raw or `%00`), control characters and malformed escapes
      raise BadPath.

    A `str` is taken as the raw (still percent-encoded) path, UTF-8 encoded.
    """
    raw = raw_path.encode("utf-8") if isinstance(raw_path, str) else raw_path
    if not raw.startswith(b"/"):
        # Origin-form only; absolute-form and `OPTIONS *` are not routed by Ingress rules.
        raise BadPath("the path does not start with '/'")
    if _NEEDS_WORK.search(raw) is None:
        return raw.decode("ascii")
    if b"\\" in raw:
        raise BadPath("the path contains a backslash")
    if _CONTROL.search(raw) is not None:
        raise BadPath("the path contains a control character or NUL")
    return _resolve_dots(_normalize_escapes(raw))


def canonical_rule_path(path: str) -> str:
    """An Ingress rule path in the form requests are matched in (see `canonicalize`).

    Requests are canonicalized before matching, so a rule written `/caf%c3%a9`, `/a//b`,
    `/%7Euser` or `/café` must be stored canonical (`/caf%C3%A9`, `/a/b`, `/~user`,
    `/caf%C3%A9`) or it could never match. A trailing '/' is kept (Prefix `/foo/` and `/foo`
    stay distinguishable for prefix_key). Raises BadPath for a rule no canonical request path
    can ever equal (an encoded '/', a backslash, a control character): the compiler reports
    it instead of installing a dead rule.
    """
    return canonicalize(path)


def _encode_invisible(piece: bytes) -> bytes:
    if _NOT_VISIBLE.search(piece) is None:
        return piece
    return _NOT_VISIBLE.sub(lambda m: b"%%%02X" % m.group()[0], piece)


def _normalize_escapes(raw: bytes) -> str:
    out: list[bytes] = []
    i = 0
    while True:
        j = raw.find(b"%", i)
        if j < 0:
            out.append(_encode_invisible(raw[i:]))
            break
        out.append(_encode_invisible(raw[i:j]))
        pair = raw[j + 1 : j + 3]
        if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
            raise BadPath(f"malformed percent-escape {raw[j : j + 3].decode('latin-1')!r}")
        value = int(pair, 16)
        if value in _UNRESERVED:
            out.append(bytes((value,)))
        elif value in _FORBIDDEN_ESCAPES:
            raise BadPath(f"the path contains {_FORBIDDEN_ESCAPES[value]}")
        else:
            out.append(b"%" + pair.upper())
        i = j + 3
    return b"".join(out).decode("ascii")


def _resolve_dots(path: str) -> str:
    """RFC 3986 5.2.4 on an absolute path, with empty segments (from '//') dropped.

    A path whose last segment is '.', '..' or empty keeps a trailing '/', as in the RFC's
    examples (`/a/b/..` -> `/a/`).
    """
    segments = path.split("/")
    last = len(segments) - 1
    out: list[str] = []
    trailing = False
    for i, seg in enumerate(segments):
        if i == 0:
            continue  # the empty string before the leading '/'
        if seg == "" or seg == ".":
            trailing = i == last
        elif seg == "..":
            if out:
                out.pop()
            trailing = i == last
        else:
            out.append(seg)
            trailing = False
    if not out:
        return "/"
    return "/" + "/".join(out) + ("/" if trailing else "")
