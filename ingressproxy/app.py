"""Public entry point for `uvicorn --factory ingressproxy.app:create_app` (docs/cli.md).

The application itself is built in server.app; this module keeps the documented import path.
`uvicorn --http ingressproxy.app:http_protocol` loads the protocol `serve` runs (the request
guard, server/stack.py) with the limits of the INGRESSPROXY_* variables.
"""

from typing import Any

from .server.app import create_app

__all__ = ["create_app"]  # and http_protocol, made on demand by __getattr__


def __getattr__(name: str) -> Any:
    # Made when uvicorn asks, from the environment of the process it runs in.
    if name == "http_protocol":
        from .server.settings import Settings
        from .server.stack import proxy_protocol

        return proxy_protocol(Settings.from_env())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
