"""Joining a response's head and body into one write (uvicorn writes them separately).

Flow: ProxyApp (has the whole small response) -> scope["extensions"][HEAD_WITH_BODY]["hold"]()
-> uvicorn's response cycle writes the head, then the body, through a HeadJoiner -> one
transport write. guard.GuardedHttpToolsProtocol installs the joiner and the extension; under
any other server the extension is absent and nothing changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["HEAD_WITH_BODY", "HeadJoiner"]

# ASGI scope extension (httptools protocol only): scope["extensions"][HEAD_WITH_BODY]["hold"]
# is a callable the app calls right before http.response.start when the body follows at once.
HEAD_WITH_BODY = "ingressproxy.head_with_body"


class HeadJoiner:
    """The transport as uvicorn's response cycle sees it. After `hold_next()`, the next write
    (the response head) waits for the one after it (the body), and both leave in one write:
    one system call and one wake-up of the client instead of two, ~2 µs of CPU and a few µs
    of latency per small response (docs/performance.md). The end of the response (the
    protocol's on_response_complete) and closing flush what is held, so a head is never lost,
    even when no body write follows (HEAD). Without `hold_next()` writes pass straight through.
    """

    __slots__ = ("_held", "_hold", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._hold = False
        self._held: bytes | None = None

    def hold_next(self) -> None:
        self._hold = True

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        elif self._hold:
            self._hold = False
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        self._hold = False
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
