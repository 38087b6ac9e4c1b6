"""Input dialects: decoded objects -> compiled routes and Diagnostics, pure."""
