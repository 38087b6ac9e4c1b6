"""Annotation values as the controllers' Go code parses them (shared by the dialects)."""

from __future__ import annotations

__all__ = ["parse_bool"]

# Go's strconv.ParseBool: what ingress-nginx's parser and Traefik's label decoder accept.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(raw: str) -> bool | None:
    """True or False as strconv.ParseBool reads `raw`; None when it refuses it."""
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    return None
