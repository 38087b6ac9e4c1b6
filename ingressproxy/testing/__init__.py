"""Test support: the whole proxy in-process, fake backends and the pytest plugin.

`ingressproxy.testing` is public (docs/ci.md): everything in testing.server is exported here.
"""

from .server import *  # noqa: F403
from .server import __all__ as __all__
