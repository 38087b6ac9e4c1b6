"""The command line: `ingressproxy serve | check | explain | echo` (main), and the tools it runs."""

from .main import build_parser, main, settings_from_args

__all__ = ["build_parser", "main", "settings_from_args"]
