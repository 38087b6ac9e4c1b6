"""`python -m ingressproxy` is the `ingressproxy` command."""

import sys

from .cli import main

sys.exit(main())
