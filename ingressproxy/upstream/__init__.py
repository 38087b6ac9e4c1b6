"""Talking to upstreams: the keep-alive pool, endpoint choice and passive health, timers."""
