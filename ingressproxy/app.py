"""Public entry point for `uvicorn --factory ingressproxy.app:create_app` (docs/cli.md).

The application itself is built in server.app; this module keeps the documented import path.
"""

from .server.app import create_app

__all__ = ["create_app"]
