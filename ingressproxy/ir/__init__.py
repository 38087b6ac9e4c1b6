"""The compiled routing state every tool and the proxy read, and the one place it is swapped."""
