"""Public import path of the pytest plugin (`-p ingressproxy.pytest_plugin`, docs/ci.md).

The plugin lives in testing.pytest_plugin, which the `pytest11` entry point names.
"""

from .testing.pytest_plugin import *  # noqa: F403
from .testing.pytest_plugin import __all__ as __all__
