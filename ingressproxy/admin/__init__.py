"""The admin listener: its JSON API and the dashboard."""
