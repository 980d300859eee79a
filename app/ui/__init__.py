"""The web dashboard at /ui/ (docs/dashboard.md)."""
