"""The access log: one line per finished request, as text or JSON, written to a stream.

Flow: proxy -> RequestRecord -> AccessLog -> stdout (like Traefik's and nginx's access logs,
kept apart from the error/config log on stderr so each can be shipped on its own).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Literal, TextIO

from .record import RequestRecord

__all__ = ["AccessLog", "AccessLogFormat", "format_json", "format_text"]

AccessLogFormat = Literal["text", "json", "off"]


def _clf_time(ts: float) -> str:
    # Common Log Format's timestamp, as nginx and Traefik's CLF print it (in UTC).
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ts))


def _iso_time(ts: float) -> str:
    ms = int((ts % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{ms:03d}Z"


def _quote(value: str) -> str:
    # The path is canonical but may hold '"' or spaces once decoded; keep one record per line.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_text(r: RequestRecord) -> str:
    """`client - - [time] "METHOD path" status bytes key=value...`: Common Log Format first
    (so existing tools parse it), then our fields as key=value, `-` when unknown."""
    endpoint = str(r.endpoint) if r.endpoint is not None else "-"
    line = (
        f'{r.client or "-"} - - [{_clf_time(r.time)}] "{r.method} {_quote(r.path)}" '
        f"{r.status} {r.bytes_sent} host={r.host or '-'} router={r.router or '-'} "
        f"service={r.service or '-'} endpoint={endpoint} request_id={r.request_id or '-'} "
        f"duration={r.duration * 1000:.3f}ms"
    )
    if r.upstream_error is not None:
        line += f" upstream_error={r.upstream_error}"
    return line


def format_json(r: RequestRecord) -> str:
    """One JSON object per line; `duration` in seconds (as the Prometheus histogram)."""
    return json.dumps(
        {
            "time": _iso_time(r.time),
            "client": r.client,
            "method": r.method,
            "host": r.host,
            "path": r.path,
            "status": r.status,
            "duration": round(r.duration, 6),
            "bytes": r.bytes_sent,
            "router": r.router,
            "service": r.service,
            "endpoint": None if r.endpoint is None else str(r.endpoint),
            "request_id": r.request_id,
            "upstream_error": r.upstream_error,
        },
        separators=(",", ":"),
    )


class AccessLog:
    """A request observer that writes one line per record to `stream` (stdout by default).

    Each line is written and flushed whole, so lines from one process never interleave and a
    crash loses none.
    """

    __slots__ = ("_format", "_stream")

    def __init__(self, fmt: Literal["text", "json"] = "text", stream: TextIO | None = None) -> None:
        self._format = format_json if fmt == "json" else format_text
        self._stream = stream

    def __call__(self, record: RequestRecord) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(self._format(record) + "\n")
        stream.flush()

    @classmethod
    def from_setting(cls, fmt: str, stream: TextIO | None = None) -> AccessLog | None:
        """The access log for `--access-log FMT`; None for `off`."""
        if fmt == "off":
            return None
        if fmt not in ("text", "json"):
            raise ValueError(f"access log format must be text, json or off, not {fmt!r}")
        return cls("json" if fmt == "json" else "text", stream)
