"""A user-supplied score function, e.g. the true score for oracle experiments."""

from __future__ import annotations

import numpy as np

from .._validation import renamed_parameters
from ._base import ScoreModel

__all__ = ["CallableScore"]


class CallableScore(ScoreModel):
    """Wrap a known score s(X) (and optionally its Jacobian) as a score model.

    Parameters
    ----------
    func : callable
        ``func(X) -> (n, p)`` returning s(x) = -grad log p(x) (the paper's sign).
    jac : callable or None, default=None
        ``jac(X) -> (n, p, p)`` returning grad s(x) (entry [i, a, b] is
        d s_a / d x_b); needed for second-order estimators. Without it,
        :meth:`~steinlatent.scores.ScoreModel.score` uses central differences of ``func``
        for the divergence.

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import CallableScore
    >>> eye = lambda X: np.broadcast_to(np.eye(X.shape[1]), (len(X),) + 2 * (X.shape[1],))
    >>> oracle = CallableScore(lambda X: X, eye)  # the N(0, I) score
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> oracle.fit(X).second_order_sum(X, np.ones(100)).shape
    (2, 2)
    """

    @renamed_parameters(score="func", score_jacobian="jac")
    def __init__(self, func, jac=None):
        self.func = func
        self.jac = jac

    def fit(self, X, y=None):
        """Check the callables and record ``n_features_in_``; nothing is estimated."""
        if not callable(self.func):
            raise TypeError("CallableScore(func=...) must be a callable X -> (n, p) array.")
        if self.jac is not None and not callable(self.jac):
            raise TypeError("CallableScore(jac=...) must be callable or None.")
        X = self._validate_X(X, reset=True)
        s = np.asarray(self.func(X[:2]))
        if s.shape != X[:2].shape:
            raise ValueError(
                f"CallableScore(func=...) returned shape {s.shape} for input of shape "
                f"{X[:2].shape}; it must return one score row per sample."
            )
        self.fitted_ = True
        return self

    def evaluate(self, X) -> np.ndarray:
        """Return ``func(X)``, the user's s(X)."""
        return np.asarray(self.func(X), dtype=float)

    def jacobian(self, X) -> np.ndarray:
        """Return ``jac(X)``, the user's grad s(X)."""
        if self.jac is None:
            raise NotImplementedError(
                "CallableScore needs jac= for second-order estimators (order=2)."
            )
        return np.asarray(self.jac(X), dtype=float)
