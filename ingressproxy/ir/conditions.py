"""The request conditions of the routing IR: header, query, cookie and method matches.

Flow: a front-end gives a router conditions (ir.model.Router.conditions) when its dialect
matches on more than host and path (Gateway API HTTPRouteMatch headers/queryParams/method,
ingress-nginx's canary-by-header and canary-by-cookie, Traefik's Header()/Query()/Method()).
ir.table chains the routers that share a path slot, most specific first; the proxy asks the
table again with a RequestView only when the router it found has conditions, so a folder
without them pays nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

__all__ = [
    "Condition",
    "CookieMatch",
    "HeaderMatch",
    "MethodMatch",
    "QueryMatch",
    "RequestView",
    "ValueMatch",
]


class ValueMatch(StrEnum):
    """How a header, query parameter or cookie value is compared."""

    EXACT = "exact"  # the whole value, case-sensitive
    REGEX = "regex"  # a regular expression that must match the whole value (RE2-like)
    PRESENT = "present"  # the field is there, whatever its value


@dataclass(slots=True)
class RequestView:
    """What conditions read of a request: made only when a matched router has conditions.

    `headers` are the request's fields with lower-case names (as they go upstream); `query`
    is the raw query string without "?". Parsed forms are computed once, on first use.
    """

    method: str
    headers: list[tuple[bytes, bytes]]
    query: str = ""
    _params: list[tuple[str, str]] | None = None
    _cookies: dict[str, str] | None = None

    def header_values(self, name: bytes) -> list[str]:
        return [v.decode("latin-1") for k, v in self.headers if k == name]

    def params(self) -> list[tuple[str, str]]:
        if self._params is None:
            self._params = parse_qsl(self.query, keep_blank_values=True)
        return self._params

    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            jar: dict[str, str] = {}
            for value in self.header_values(b"cookie"):
                parsed: SimpleCookie = SimpleCookie()
                try:
                    parsed.load(value)
                except Exception:  # a malformed Cookie header matches no cookie condition
                    continue
                for key, morsel in parsed.items():
                    jar.setdefault(key, morsel.value)
            self._cookies = jar
        return self._cookies


def _compare(how: ValueMatch, want: str, got: str | None) -> bool:
    if got is None:
        return False
    if how is ValueMatch.PRESENT:
        return True
    if how is ValueMatch.REGEX:
        return _regex(want).fullmatch(got) is not None
    return got == want


_REGEXES: dict[str, re.Pattern[str]] = {}


def _regex(pattern: str) -> re.Pattern[str]:
    """Compiled once per process; the front-end refuses patterns that do not compile."""
    found = _REGEXES.get(pattern)
    if found is None:
        if len(_REGEXES) > 4096:
            _REGEXES.clear()
        found = _REGEXES[pattern] = re.compile(pattern)
    return found


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """A request header field's value. The name is case-insensitive; with several fields
    of the name, their values are joined with "," (RFC 9110 5.3), as Gateway API says."""

    name: str  # lower case
    value: str = ""
    how: ValueMatch = ValueMatch.EXACT

    def test(self, view: RequestView) -> bool:
        values = view.header_values(self.name.encode("latin-1"))
        return _compare(self.how, self.value, ",".join(values) if values else None)

    def __str__(self) -> str:
        return f"header {self.name} {_shown(self.how, self.value)}"


@dataclass(frozen=True, slots=True)
class QueryMatch:
    """A query parameter's value; with the parameter repeated, the first one counts (Gateway
    API leaves it to the implementation; Envoy and most proxies take the first)."""

    name: str
    value: str = ""
    how: ValueMatch = ValueMatch.EXACT

    def test(self, view: RequestView) -> bool:
        got = next((v for k, v in view.params() if k == self.name), None)
        return _compare(self.how, self.value, got)

    def __str__(self) -> str:
        return f"query {self.name} {_shown(self.how, self.value)}"


@dataclass(frozen=True, slots=True)
class CookieMatch:
    """A cookie's value (ingress-nginx's canary-by-cookie reads one cookie by name)."""

    name: str
    value: str = ""
    how: ValueMatch = ValueMatch.EXACT

    def test(self, view: RequestView) -> bool:
        return _compare(self.how, self.value, view.cookies().get(self.name))

    def __str__(self) -> str:
        return f"cookie {self.name} {_shown(self.how, self.value)}"


@dataclass(frozen=True, slots=True)
class MethodMatch:
    """The request method, one of `methods` (upper case, compared exactly)."""

    methods: frozenset[str]

    def test(self, view: RequestView) -> bool:
        return view.method in self.methods

    def __str__(self) -> str:
        return "method " + "|".join(sorted(self.methods))


def _shown(how: ValueMatch, value: str) -> str:
    if how is ValueMatch.PRESENT:
        return "present"
    if how is ValueMatch.REGEX:
        return f"~ {value!r}"
    return f"= {value!r}"


Condition = HeaderMatch | QueryMatch | CookieMatch | MethodMatch
