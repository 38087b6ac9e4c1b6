"""Caps on what one manifest file may cost to read: shared by the loader, composer and converter."""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES"]

# Values produced per file after expanding aliases: a "billion laughs" document is a few hundred
# bytes but expands exponentially, so we count while converting and stop at this cap.
MAX_NODES = 1_000_000
# Nesting depth of one document; Kubernetes objects are far shallower, and a self-referencing
# alias (`&a [*a]`) would otherwise recurse forever.
MAX_DEPTH = 100
# etcd caps an object at ~1.5 MiB; anything this big in a manifest folder is a mistake.
MAX_FILE_BYTES = 32 * 1024 * 1024
