"""Restoring files: the one-file pipeline, the persistent SQLite queue and its Qt-free runner."""
