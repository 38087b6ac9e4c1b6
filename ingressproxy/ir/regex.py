"""Regex paths, compiled once for the whole process (routers and filters share them)."""

from __future__ import annotations

import functools
import re

__all__ = ["compiled"]


@functools.lru_cache(maxsize=4096)
def compiled(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled case-insensitively, as nginx's `~*` locations and ingress-nginx's
    `rewrite "(?i)..."` treat it. Python's `re` stands in for PCRE; the front-end refuses a
    pattern `re` cannot compile, so none reaches here."""
    return re.compile(pattern, re.IGNORECASE)
