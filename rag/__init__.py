"""OpenOps core: settings, permission mirror, index, permission-scoped retrieval."""

__version__ = "0.1.0"
