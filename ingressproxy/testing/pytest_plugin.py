"""pytest plugin (entry point `pytest11`): run ingressproxy inside users' integration tests.

Fixtures on top of `testing.start_proxy`: the whole proxy in-process, the server `serve` runs
(server/stack.py) in a thread on a free 127.0.0.1 port, stopped after the test; fake echo
backends wired in as backend overrides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from .server import Proxy, start_proxy

__all__ = [
    "ingressproxy",
    "ingressproxy_factory",
    "ingressproxy_fake",
    "ingressproxy_manifests",
    "pytest_addoption",
    "pytest_configure",
]

_MARKER = (
    "ingressproxy(manifests=None, fake=(), backends=None, dns=None, **settings):"
    " options of the `ingressproxy` fixture for one test (see ingressproxy.testing.start_proxy)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "ingressproxy_manifests",
        "folder (or file) of Kubernetes manifests the `ingressproxy` fixture serves, relative"
        " to the ini file",
        default="",
    )
    parser.addini(
        "ingressproxy_fake",
        "Services the `ingressproxy` fixture replaces with echo backends: ns/svc, svc, or *",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)


@pytest.fixture
def ingressproxy_manifests(request: pytest.FixtureRequest) -> Path:
    """The manifests the `ingressproxy` fixture serves: the `ingressproxy_manifests` ini
    option. Override this fixture to choose them in code (e.g. a folder written in tmp_path)."""
    config = request.config
    value = str(config.getini("ingressproxy_manifests") or "")
    if not value:
        raise pytest.UsageError(
            "the ingressproxy fixture needs manifests: set `ingressproxy_manifests = k8s` in"
            " the pytest configuration, override the `ingressproxy_manifests` fixture, or use"
            " @pytest.mark.ingressproxy(manifests=...)"
        )
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return base / value


@pytest.fixture
def ingressproxy_fake(request: pytest.FixtureRequest) -> Sequence[str]:
    """Services to fake with echo backends: the `ingressproxy_fake` ini option (one a line)."""
    return [str(v) for v in request.config.getini("ingressproxy_fake")]


@pytest.fixture
def ingressproxy_factory() -> Iterator[Callable[..., Proxy]]:
    """`start(manifests, fake=..., backends=..., dns=..., **settings) -> Proxy`: as many
    proxies as a test needs, all stopped (and their fake backends too) after it."""
    with ExitStack() as stack:

        def start(manifests: str | Path, **kwargs: Any) -> Proxy:
            return stack.enter_context(start_proxy(manifests, **kwargs))

        yield start


@pytest.fixture
def ingressproxy(
    request: pytest.FixtureRequest,
    ingressproxy_fake: Sequence[str],
    ingressproxy_factory: Callable[..., Proxy],
) -> Proxy:
    """The proxy serving `ingressproxy_manifests`, with `ingressproxy_fake` Services faked;
    `@pytest.mark.ingressproxy(...)` on a test changes any of start_proxy's arguments.

    `ingressproxy.get("/search", host="api.example.com")`, `.explain(url)`, `.fakes`, `.url`.
    """
    marker = request.node.get_closest_marker("ingressproxy")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise pytest.UsageError("@pytest.mark.ingressproxy takes keyword arguments only")
    manifests = kwargs.pop("manifests", None)
    if manifests is None:
        # Asked only now, so a marker's manifests need no ini option.
        manifests = request.getfixturevalue("ingressproxy_manifests")
    kwargs.setdefault("fake", ingressproxy_fake)
    return ingressproxy_factory(manifests, **kwargs)
