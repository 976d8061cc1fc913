"""What every study's figures share: matplotlib, imported lazily (an optional extra)."""

from __future__ import annotations

__all__ = ["import_pyplot"]


def import_pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or an ImportError naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError('Figures need matplotlib: pip install "steinlatent[plot]"') from exc
    return plt
