"""uvicorn's httptools response cycle, with a response head's fields checked in one pass and
written together with the body when the app says the body follows at once.

Flow: guard.GuardedHttpToolsProtocol makes each request's cycle a ProxyCycle -> the app's
`http.response.start` (with BODY_FOLLOWS: held) -> the first body message -> one write to the
client.

uvicorn's RequestResponseCycle.send searches two regexes for every response header field (the
name for separators and controls, the value for controls): 16 searches for a proxied response
with 8 fields, most of uvicorn's cost per response head (docs/performance.md). ProxyCycle
searches the same two character classes once over all the names joined together (a name may
hold none of those characters, so the join adds nothing a search could find) and once over
all the values joined by a tab (the one control character values may hold): it refuses
exactly the heads uvicorn refuses, and writes byte for byte what uvicorn writes
(tests/test_cycle.py compares the two cycles, tests/test_uvicorn_differential.py the two
servers over sockets). Everything else is uvicorn's send, copied because a call to the
original would cost a coroutine per message; guard.UVICORN_CHECKED names the uvicorn versions
it was checked against, and docs/performance.md ("uvicorn's internals") why it is kept.

uvicorn writes a response's head and its body separately: two system calls and two wake-ups
of the client for a small response. A start message carrying BODY_FOLLOWS (the proxy sets it
when it holds the whole body) makes the cycle keep the head and write it with the first body
message, or alone when that message writes nothing (HEAD). ~2 µs of CPU and a few µs of
latency per small response (docs/performance.md). Other servers ignore the key (ASGI: unknown
keys are ignored), and write the two parts separately.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

__all__ = ["BODY_FOLLOWS", "ProxyCycle"]

# A key of the ASGI `http.response.start` message: the body follows at once (the app holds it
# whole), so the head may wait and leave with it. Other servers ignore it.
BODY_FOLLOWS = "ingressproxy.body_follows"


class ProxyCycle(RequestResponseCycle):
    """A RequestResponseCycle whose `send` checks the head's fields with two searches and
    holds the head for the body on BODY_FOLLOWS."""

    # The head waiting for the first body message (BODY_FOLLOWS).
    _held: bytes | None = None

    async def send(self, message: dict) -> None:  # type: ignore[override,type-arg]
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()

        if self.disconnected:
            return

        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
                )
            self.response_started = True
            self.waiting_for_100_continue = False

            status_code = message["status"]
            headers = message.get("headers", [])
            if self.default_headers or type(headers) is not list:
                # Any iterable, as uvicorn takes it: it is walked three times below.
                headers = self.default_headers + list(headers)

            if self.access_log:
                self.access_logger.info(
                    '%s - "%s %s HTTP/%s" %d',
                    get_client_addr(self.scope),
                    self.scope["method"],
                    get_path_with_query_string(self.scope),
                    self.scope["http_version"],
                    status_code,
                )

            # uvicorn's two checks per field, each made once for the whole head.
            if HEADER_RE.search(b"".join([name for name, _ in headers])):
                raise RuntimeError("Invalid HTTP header name.")
            if HEADER_VALUE_RE.search(b"\t".join([value for _, value in headers])):
                raise RuntimeError("Invalid HTTP header value.")

            content = [STATUS_LINE[status_code]]
            has_connection_close = False
            for name, value in headers:
                name = name.lower()
                if name == b"content-length" and self.chunked_encoding is None:
                    self.expected_content_length = int(value.decode())
                    self.chunked_encoding = False
                elif name == b"transfer-encoding" and value.lower() == b"chunked":
                    self.expected_content_length = 0
                    self.chunked_encoding = True
                elif name == b"connection":
                    connection = [token.lower().strip() for token in value.split(b",")]
                    if b"close" in connection:
                        self.keep_alive = False
                        has_connection_close = True
                content += (name, b": ", value, b"\r\n")

            if not self.keep_alive and not has_connection_close:
                content.append(b"connection: close\r\n")

            if (
                self.chunked_encoding is None
                and self.scope["method"] != "HEAD"
                and status_code not in (204, 304)
            ):
                # Neither content-length nor transfer-encoding specified
                self.chunked_encoding = True
                content.append(b"transfer-encoding: chunked\r\n")

            content.append(b"\r\n")
            if message.get(BODY_FOLLOWS):
                self._held = b"".join(content)
            else:
                self.transport.write(b"".join(content))

        elif not self.response_complete:
            # The body, as uvicorn sends it (inline: a super() call would cost a coroutine).
            if message["type"] != "http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.body', but got '{message['type']}'."
                )

            body = message.get("body", b"")
            more_body = message.get("more_body", False)
            held = self._held  # the head, when it waits for this message

            if self.scope["method"] == "HEAD":
                self.expected_content_length = 0
                if held is not None:
                    self._held = None
                    self.transport.write(held)
            elif self.chunked_encoding:
                chunk = [b"%x\r\n" % len(body), body, b"\r\n"] if body else []
                if not more_body:
                    chunk.append(b"0\r\n\r\n")
                if held is not None:
                    self._held = None
                    chunk.insert(0, held)
                self.transport.write(b"".join(chunk))
            else:
                num_bytes = len(body)
                if num_bytes > self.expected_content_length:
                    raise RuntimeError("Response content longer than Content-Length")
                self.expected_content_length -= num_bytes
                if held is not None:
                    self._held = None
                    body = held + body
                self.transport.write(body)

            if not more_body:
                if self.expected_content_length != 0:
                    raise RuntimeError("Response content shorter than Content-Length")
                self.response_complete = True
                self.message_event.set()
                if not self.keep_alive:
                    self.transport.close()
                self.on_response()

        else:
            raise RuntimeError(
                f"Unexpected ASGI message '{message['type']}' sent, after response already "
                "completed."
            )
