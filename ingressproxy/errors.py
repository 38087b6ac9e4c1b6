"""One rooted exception tree for the request path; each error knows the status it becomes.

Flow: forward_http / forward_ws map httpx and websockets errors to these (as httpx maps
httpcore's), proxy turns them into 4xx/5xx answers with short generic bodies and logs details.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ClientDisconnected",
    "ClientError",
    "PayloadTooLarge",
    "ProxyError",
    "RequestTimeout",
    "ResponseAborted",
    "UpstreamClosedEarly",
    "UpstreamConnectError",
    "UpstreamConnectTimeout",
    "UpstreamError",
    "UpstreamLoop",
    "UpstreamPoolTimeout",
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


class ClientError(ProxyError):
    """The client's side of the exchange failed; answered (when possible) with a 4xx and the
    connection closed, since the rest of what the client sends can no longer be trusted."""

    status = 400
    public = "Bad Request"


class BadRequest(ClientError):
    """The client's request cannot be routed (bad path, missing or repeated Host, ambiguous
    framing)."""


class RequestTimeout(ClientError):
    """The client stopped sending its request body for longer than `--body-timeout`
    (nginx's client_body_timeout answers 408 too)."""

    status = 408
    public = "Request Timeout"


class PayloadTooLarge(ClientError):
    """The request body is larger than `--max-body-size` (nginx: client_max_body_size)."""

    status = 413
    public = "Content Too Large"  # RFC 9110 15.5.14's name for 413


class ClientDisconnected(ClientError):
    """The client went away before the response was complete.

    Never answered (there is nobody to answer); 499 is nginx's name for this in its logs.
    """

    status = 499
    public = "Client Closed Request"


class ResponseAborted(ProxyError):
    """Raised to uvicorn once the response has started and cannot be completed honestly: it
    closes the connection, so the client sees a truncated message. Logged by us, not by uvicorn
    (proxy.py keeps it out of uvicorn's error log)."""


class UpstreamError(ProxyError):
    """Something went wrong talking to the chosen endpoint."""

    # True when not one byte of the request left: any method may be retried elsewhere, and it
    # counts towards the endpoint's passive health (nginx's proxy_next_upstream error).
    nothing_sent: bool = False


class UpstreamConnectError(UpstreamError):
    """No connection could be made (refused, unreachable, DNS failure)."""

    status = 502
    public = "Bad Gateway"
    nothing_sent = True


class UpstreamLoop(UpstreamConnectError):
    """The endpoint is this proxy's own listen address: forwarding would loop forever."""


class UpstreamTimeout(UpstreamError):
    """Connect, read or write took longer than Settings allows (nginx also answers 504)."""

    status = 504
    public = "Gateway Timeout"


class UpstreamConnectTimeout(UpstreamTimeout):
    """No connection within `--connect-timeout`: nothing was sent, so another endpoint may be
    tried."""

    nothing_sent = True


class UpstreamPoolTimeout(UpstreamTimeout):
    """Every upstream connection is busy and none freed up within `--pool-timeout`: we are the
    bottleneck, not the endpoint, so 503 (Envoy's answer to an overflowing pool) rather than
    504, and the endpoint's health is not blamed."""

    status = 503
    public = "Service Unavailable"


class UpstreamProtocolError(UpstreamError):
    """The endpoint broke HTTP: closed early, sent garbage or ambiguous framing, reset the
    connection."""

    status = 502
    public = "Bad Gateway"


class UpstreamClosedEarly(UpstreamProtocolError):
    """The connection was closed or reset after the request went out and before the response
    head was complete (so before anything reached the client): typically a pooled keep-alive
    connection the endpoint closed while we were reusing it. The endpoint may have started
    processing the request, so only idempotent requests are retried (RFC 9110 9.2.2)."""
