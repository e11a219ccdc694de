"""Flow Restorer: restore scanned photographs with a normalizing-flow prior."""

__version__ = "0.1.0"
