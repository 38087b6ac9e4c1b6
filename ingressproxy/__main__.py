"""`python -m ingressproxy` is the `ingressproxy` command."""

import sys

from .cli.main import main

sys.exit(main())
