"""ingress-nginx's backend-protocol annotation: how to speak to the endpoints.

ingress-nginx reads HTTP, HTTPS, GRPC, GRPCS, AUTO_HTTP and FCGI here; we speak the first two.
"""

from __future__ import annotations

from collections.abc import Mapping

from .annotations import BACKEND_PROTOCOL

__all__ = ["backend_protocol_problem", "backend_scheme"]

_SCHEMES = {"http": "http", "https": "https"}


def backend_scheme(annotations: Mapping[str, str]) -> str | None:
    """The scheme the Ingress asks for with backend-protocol ("https" or "http"), or None."""
    raw = annotations.get(BACKEND_PROTOCOL)
    return None if raw is None else _SCHEMES.get(raw.strip().lower())


def backend_protocol_problem(annotations: Mapping[str, str]) -> str | None:
    """Why a backend-protocol annotation is ignored, or None."""
    raw = annotations.get(BACKEND_PROTOCOL)
    if raw is None or raw.strip().lower() in _SCHEMES:
        return None
    return f'backend protocol "{raw}" is not supported (only HTTP and HTTPS); HTTP is used'
