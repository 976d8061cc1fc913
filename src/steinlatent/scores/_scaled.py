"""A score model fitted on X / c, answering for X: the estimator's guard against
extreme scales (data near the overflow or underflow limits of float64)."""

from __future__ import annotations

import numpy as np

from ._base import ScoreModel

__all__ = ["ScaledScore", "data_scale", "SCALE_ROWS"]

# Data whose root-mean-square deviation lies within 2^-LIMIT .. 2^LIMIT are used as
# they are; beyond, third moments (order 2) under- or overflow float64.
_LIMIT = 40
#: Rows read by :func:`data_scale` (the first ones; every fit path measures these).
SCALE_ROWS = 1024


def data_scale(X: np.ndarray) -> float:
    """A power of two c with X / c of unit scale, or 1.0 for data of ordinary scale.

    A power of two divides exactly (no rounding), so X / c is X in other units.
    """
    head = X[: min(len(X), SCALE_ROWS)]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        amax = float(np.max(np.abs(head - head[:1]))) if head.size else 0.0
    if not np.isfinite(amax) or amax == 0.0:
        return 1.0
    k = int(np.round(np.log2(amax)))
    return float(2.0**k) if abs(k) > _LIMIT else 1.0


class ScaledScore(ScoreModel):
    """s(x) = s_c(x / c) / c for a model fitted on X / c (c a power of two).

    ``SteinLatent`` fits on X / c when X is far from unit scale and exposes this
    wrapper as ``score_model_``, so ``score_model_.evaluate(X)`` is the score of X.
    """

    def __init__(self, model=None, scale=1.0):
        self.model = model
        self.scale = scale

    @property
    def smoothed(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.model, "smoothed", False))

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X, y=None):
        return self

    def evaluate(self, X) -> np.ndarray:
        c = self.scale
        return np.asarray(self.model.evaluate(np.asarray(X) / c)) / c

    def jacobian(self, X) -> np.ndarray:
        c = self.scale
        return np.asarray(self.model.jacobian(np.asarray(X) / c)) / c**2

    def divergence(self, X) -> np.ndarray:
        c = self.scale
        return np.asarray(self.model.divergence(np.asarray(X) / c)) / c**2

    def score(self, X, y=None) -> float:
        return float(self.model.score(np.asarray(X) / self.scale)) / self.scale**2

    def second_order_sum(self, X, w) -> np.ndarray:
        c = self.scale
        return np.asarray(self.model.second_order_sum(np.asarray(X) / c, w)) / c**2
