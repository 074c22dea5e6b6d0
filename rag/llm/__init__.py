"""Language-model providers behind one small interface (see base.py)."""

from .base import ChatMessage, Generation, Generator, ProviderError

__all__ = ["ChatMessage", "Generation", "Generator", "ProviderError"]
