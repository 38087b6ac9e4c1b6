"""The data plane: the catch-all ASGI app, request canonicalisation, forwarding to upstreams."""
