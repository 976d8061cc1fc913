"""Streaming fits (partial_fit) from sufficient statistics. Filled in by the scale work."""

from __future__ import annotations

__all__ = ["StreamingMixin"]


class StreamingMixin:
    """Adds ``partial_fit`` to :class:`steinlatent.SteinLatent`."""
