"""One rooted exception tree for the request path; each error knows the status it becomes.

Flow: forward_http maps httpx errors to these (as httpx maps httpcore's), proxy turns them into
400/502/504 answers with short generic bodies and logs the details.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ClientDisconnected",
    "ProxyError",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamTimeout",
]


class ProxyError(Exception):
    """Base of every error the proxy raises on purpose.

    `status` is what the client gets when the response has not started yet; `public` is the
    short body text. The exception message holds the details, which go to the log only.
    """

    status: int = 502
    public: str = "Bad Gateway"


class BadRequest(ProxyError):
    """The client's request cannot be routed (bad path, missing or repeated Host)."""

    status = 400
    public = "Bad Request"


class ClientDisconnected(ProxyError):
    """The client went away while we were still reading its request body.

    Never answered (there is nobody to answer); 499 is nginx's name for this in its logs.
    """

    status = 499
    public = "Client Closed Request"


class UpstreamError(ProxyError):
    """Something went wrong talking to the chosen endpoint."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made (refused, unreachable, DNS failure)."""

    status = 502
    public = "Bad Gateway"


class UpstreamTimeout(UpstreamError):
    """Connect, read or write took longer than Settings allows (nginx also answers 504)."""

    status = 504
    public = "Gateway Timeout"


class UpstreamProtocolError(UpstreamError):
    """The endpoint broke HTTP: closed early, sent garbage, reset the connection."""

    status = 502
    public = "Bad Gateway"
