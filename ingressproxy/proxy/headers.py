"""Pure header rewriting on raw ASGI header lists: hop-by-hop removal both ways, X-Forwarded-*.

Flow: proxy -> HeaderRewriter.request (client headers -> upstream headers) and
HeaderRewriter.response (upstream headers -> client headers). Lists of (bytes, bytes), never
dicts, so repeated fields (Set-Cookie) and byte values survive untouched.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import NamedTuple

from ..errors import BadRequest

__all__ = [
    "FORWARDED_HEADERS",
    "HOP_BY_HOP",
    "HeaderRewriter",
    "RequestHead",
    "ResponseHead",
    "connection_tokens",
    "http_date",
]

Headers = list[tuple[bytes, bytes]]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 9110 7.6.1 (Connection and the fields it names) plus the legacy ones every proxy drops
# (nginx, Go's httputil.ReverseProxy as used by Traefik), and HTTP2-Settings, which belongs
# to an h2c upgrade (RFC 7540 3.2.1) and is dropped with Upgrade even when Connection does not
# name it: the upstream must never see half of an upgrade the proxy does not perform.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"http2-settings",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Set by us; from an untrusted peer they are lies. Traefik also drops the underscore spellings
# because some backends (CGI, PHP, Django's META) read `X_Forwarded_For` as `X-Forwarded-For`.
FORWARDED_HEADERS = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
    }
)

# A Connection header may not take these away: removing Host or Content-Length would change
# how the upstream routes or frames the request (a request-smuggling vector).
_PROTECTED = frozenset({b"host", b"content-length"})

# The Connection values nearly every client sends; they name no other header.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})

# What a client-supplied X-Request-ID may look like to be passed on (UUIDs, ULIDs, base64 ids).
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+/=-]{1,200}")

# Per-header actions for the request pass, one dict look-up per header.
_DROP = 0
_HOST = 1
_CONNECTION = 2
_TRANSFER_ENCODING = 3
_XFF = 4
_KEEP_IF_TRUSTED = 5
_REQUEST_ID = 6
_CONTENT_LENGTH = 7
_REQUEST_ACTIONS: dict[bytes, int] = {
    **{name: _DROP for name in HOP_BY_HOP},
    b"host": _HOST,
    b"connection": _CONNECTION,
    b"transfer-encoding": _TRANSFER_ENCODING,
    # uvicorn already answered `Expect: 100-continue` when we first read the body; passing it
    # on would make the upstream wait for a 100 that httpx does not wait for.
    b"expect": _DROP,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _KEEP_IF_TRUSTED,
    b"x-forwarded-host": _KEEP_IF_TRUSTED,
    b"x-forwarded-port": _KEEP_IF_TRUSTED,
    # Recomputed from the X-Forwarded-For chain, even for trusted peers.
    b"x-real-ip": _DROP,
    b"x-request-id": _REQUEST_ID,
    b"content-length": _CONTENT_LENGTH,
}

# The same for the response pass (the action numbers above, two more); fields not listed pass
# unchanged.
_SERVER = 8
_DATE = 9
_RESPONSE_ACTIONS: dict[bytes, int] = {
    **{name: _DROP for name in HOP_BY_HOP},
    b"connection": _CONNECTION,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"server": _SERVER,
    b"date": _DATE,
    b"content-length": _CONTENT_LENGTH,
}
_NOTHING_NAMED: frozenset[bytes] = frozenset()

# A Content-Length longer than this is not a length any upstream accepts (nor fits an int64,
# where parsers that disagree about overflow open a smuggling hole).
_MAX_LENGTH_DIGITS = 18

# Response statuses that never carry a body (RFC 9110 6.4.1). A Content-Length on them
# describes another response (304) or is forbidden (1xx, 204); uvicorn's httptools server would
# expect that many body bytes, so we drop it.
_NO_BODY_STATUSES = frozenset({*range(100, 200), 204, 304})


def connection_tokens(values: Iterable[bytes]) -> set[bytes]:
    """Lower-cased field names listed in Connection header values (comma lists)."""
    tokens: set[bytes] = set()
    for value in values:
        for part in value.split(b","):
            token = part.strip().lower()
            if token:
                tokens.add(token)
    return tokens


class _RandomIds:
    """Request ids as ingress-nginx's $req_id (16 random bytes, hex), from the OS's CSPRNG
    256 at a time: one getrandom() system call per 256 requests instead of one each."""

    __slots__ = ("_buffer", "_offset")

    _BATCH = 256

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def reset(self) -> None:
        """Forget what is buffered (a forked child must not repeat its parent's ids)."""
        self._buffer = b""
        self._offset = 0

    def __call__(self) -> bytes:
        offset = self._offset
        if offset >= len(self._buffer):
            self._buffer = os.urandom(16 * self._BATCH).hex().encode("ascii")
            offset = 0
        self._offset = offset + 32
        return self._buffer[offset : offset + 32]


_new_request_id = _RandomIds()
os.register_at_fork(after_in_child=_new_request_id.reset)


def _named_by_connection(values: list[bytes] | None) -> frozenset[bytes] | set[bytes]:
    """The fields a message's Connection header values name for removal, besides the
    hop-by-hop ones (always removed) and Host/Content-Length (never). Nothing for the plain
    `keep-alive` or `close` nearly every message carries, without parsing it."""
    if values is None or (len(values) == 1 and values[0].lower() in _PLAIN_CONNECTION):
        return _NOTHING_NAMED
    return connection_tokens(values) - HOP_BY_HOP - _PROTECTED


_date_second = -1
_date_value = b""


def http_date() -> bytes:
    """The current IMF-fixdate, formatted at most once a second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value = formatdate(now, usegmt=True).encode("ascii")
        _date_second = now
    return _date_value


class RequestHead(NamedTuple):
    """The client's request headers as they go upstream, plus what the proxy needs from them.

    A NamedTuple, not a frozen dataclass: built once per request, and a tuple is several
    times cheaper to make than a frozen dataclass's field-by-field __init__."""

    headers: Headers
    host: bytes | None  # the Host header as received, None when absent
    chunked: bool  # the client framed its body with Transfer-Encoding: chunked
    has_body: bool  # chunked, or a Content-Length other than 0
    content_length: int | None = None  # the client's Content-Length, None when absent


class ResponseHead(NamedTuple):
    """The upstream's response headers as they go to the client (a NamedTuple: per response)."""

    headers: Headers
    content_length: int | None  # the upstream's Content-Length, None when absent or invalid
    # Content-Length and Transfer-Encoding both: RFC 9112 6.3 calls this a possible smuggling
    # or response-splitting attempt "that ought to be handled as an error" (502).
    ambiguous: bool = False


class HeaderRewriter:
    """Request and response header rewriting for one Settings (trusted peers, Server value)."""

    __slots__ = ("_server", "_trust_cache", "_trusted")

    def __init__(
        self, trusted_proxies: tuple[IPNetwork, ...] = (), server_header: str = ""
    ) -> None:
        self._trusted = trusted_proxies
        self._server = server_header.encode("latin-1")
        self._trust_cache: dict[str, bool] = {}

    def is_trusted(self, address: str | None) -> bool:
        """Whether `address` falls in one of the trusted proxy networks."""
        if not self._trusted or not address:
            return False
        known = self._trust_cache.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            trusted = False
        else:
            trusted = any(ip in net for net in self._trusted)
        if len(self._trust_cache) >= 4096:
            self._trust_cache.clear()  # bounded: peers are few in practice
        self._trust_cache[address] = trusted
        return trusted

    def request(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        client: str | None,
        scheme: str,
        server_port: int | None,
    ) -> RequestHead:
        """Headers to send upstream. `headers` are ASGI's (lower-case names).

        Raises BadRequest for more than one Host header (RFC 9112 3.2) and for ambiguous
        framing (RFC 9112 6.3): Content-Length with Transfer-Encoding, more than one or a
        malformed Content-Length, a Transfer-Encoding other than plain `chunked`. The guard
        (guard.py) refuses these before the request is parsed further; this is the same rule
        for servers run without it, so the upstream always gets exactly one framing header
        or none.
        """
        trusted = self.is_trusted(client)
        out: Headers = []
        host: bytes | None = None
        connection: list[bytes] | None = None
        chunked = False
        content_length: bytes | None = None
        transfer_encodings = 0
        incoming_xff: list[bytes] = []
        kept: set[bytes] = set()
        request_id: bytes | None = None
        for name, value in headers:
            action = _REQUEST_ACTIONS.get(name)
            if action is None:
                if b"_" in name and name.replace(b"_", b"-") in FORWARDED_HEADERS:
                    continue
                out.append((name, value))
            elif action == _CONTENT_LENGTH:
                if content_length is not None:
                    raise BadRequest("more than one Content-Length header")
                content_length = value
                out.append((name, value))
            elif action == _HOST:
                if host is not None:
                    raise BadRequest("more than one Host header")
                host = value
                out.append((name, value))
            elif action == _CONNECTION:
                if connection is None:
                    connection = []
                connection.append(value)
            elif action == _TRANSFER_ENCODING:
                transfer_encodings += 1
                chunked = value.strip().lower() == b"chunked"
                if not chunked or transfer_encodings > 1:
                    # Only plain chunked: codings we cannot decode leave the length unknowable.
                    raise BadRequest(f"unsupported Transfer-Encoding {value[:40]!r}")
            elif action == _XFF:
                if trusted:
                    incoming_xff.append(value)
            elif action == _KEEP_IF_TRUSTED:
                if trusted:
                    kept.add(name)
                    out.append((name, value))
            elif (
                action == _REQUEST_ID
                and request_id is None
                and _SANE_REQUEST_ID.fullmatch(value) is not None
            ):
                request_id = value  # the first sane one; the others are dropped

        tokens = _named_by_connection(connection)
        if tokens:
            out = [(n, v) for n, v in out if n not in tokens]
            if b"x-forwarded-for" in tokens:
                incoming_xff.clear()
            kept -= tokens
            if b"x-request-id" in tokens:
                request_id = None

        length: int | None = None
        if content_length is not None:
            if chunked:
                # RFC 9112 6.3 lets a server reject this, and it must: the upstream might
                # believe the other header (the classic CL.TE / TE.CL smuggling).
                raise BadRequest("both Content-Length and Transfer-Encoding")
            digits = content_length.strip(b" \t")
            if not digits.isdigit() or len(digits) > _MAX_LENGTH_DIGITS:
                raise BadRequest(f"malformed Content-Length {content_length[:40]!r}")
            length = int(digits)
        if chunked:
            out.append((b"transfer-encoding", b"chunked"))

        # Our own headers go last, after the Connection clean-up, so a client cannot name them
        # in Connection to have them removed.
        chain = b", ".join(incoming_xff)
        if client:
            peer = client.encode("latin-1")
            chain = chain + b", " + peer if chain else peer
        if chain:
            out.append((b"x-forwarded-for", chain))
        if b"x-forwarded-proto" not in kept:
            out.append((b"x-forwarded-proto", b"https" if scheme in ("https", "wss") else b"http"))
        if host is not None and b"x-forwarded-host" not in kept:
            out.append((b"x-forwarded-host", host))
        if server_port is not None and b"x-forwarded-port" not in kept:
            out.append((b"x-forwarded-port", str(server_port).encode("ascii")))
        real_ip = self._real_ip(incoming_xff, client) if trusted else client
        if real_ip:
            out.append((b"x-real-ip", real_ip.encode("latin-1")))
        out.append((b"x-request-id", request_id or _new_request_id()))

        has_body = chunked or bool(length)
        return RequestHead(out, host, chunked, has_body, length)

    def _real_ip(self, incoming_xff: list[bytes], client: str | None) -> str | None:
        """The first untrusted address walking the chain from the nearest hop back, like
        nginx's real_ip_recursive; the farthest one when every hop is trusted."""
        chain = [
            part.strip().decode("latin-1")
            for value in incoming_xff
            for part in value.split(b",")
            if part.strip()
        ]
        if client:
            chain.append(client)
        for address in reversed(chain):
            if not self.is_trusted(address):
                return address
        return chain[0] if chain else None

    def response(self, headers: Iterable[tuple[bytes, bytes]], status: int = 200) -> ResponseHead:
        """Headers to send to the client. Names keep the upstream's spelling.

        `status` is the upstream's: responses that carry no body lose their Content-Length.
        """
        out: Headers = []
        connection: list[bytes] | None = None
        has_server = has_date = False
        content_length: bytes | None = None
        transfer_encoding = False
        for name, value in headers:
            action = _RESPONSE_ACTIONS.get(name.lower())
            if action is None:
                out.append((name, value))  # most fields: one dict lookup and on
            elif action == _CONNECTION:
                if connection is None:
                    connection = []
                connection.append(value)
            elif action == _TRANSFER_ENCODING:
                transfer_encoding = True
            elif action == _SERVER:
                has_server = True
                out.append((name, value))
            elif action == _DATE:
                has_date = True
                out.append((name, value))
            elif action == _CONTENT_LENGTH:
                content_length = value
                if status not in _NO_BODY_STATUSES:
                    out.append((name, value))
            # _DROP: the other hop-by-hop fields
        tokens = _named_by_connection(connection)
        if tokens:
            out = [(n, v) for n, v in out if n.lower() not in tokens]
            has_server = has_server and b"server" not in tokens
            has_date = has_date and b"date" not in tokens
        if not has_server and self._server:
            out.append((b"server", self._server))
        if not has_date:
            # RFC 9110 6.6.1: a recipient with a clock forwarding a response without Date
            # must add one.
            out.append((b"date", http_date()))
        length: int | None = None
        if (
            content_length is not None
            and content_length.strip().isdigit()
            and status not in _NO_BODY_STATUSES
        ):
            length = int(content_length)
        return ResponseHead(out, length, content_length is not None and transfer_encoding)
