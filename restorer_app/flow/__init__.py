"""The learned prior: a multi-scale Glow flow, its layers and its weight files. No Qt here."""

from restorer_app.flow.glow import FlowConfig, Glow

__all__ = ["FlowConfig", "Glow"]
