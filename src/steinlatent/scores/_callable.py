"""A user-supplied score function, e.g. the true score for oracle experiments."""

from __future__ import annotations

import numpy as np

from ._base import ScoreModel

__all__ = ["CallableScore"]


class CallableScore(ScoreModel):
    """Wrap a known score s(X) (and optionally its Jacobian) as a score model.

    The parameters are stored as instance attributes named ``score`` and
    ``score_jacobian``, so ``model.score(X)`` calls the user's function directly.

    Parameters
    ----------
    score : callable
        ``score(X) -> (n, p)`` returning s(x) = -grad log p(x) (the paper's sign).
    score_jacobian : callable or None, default=None
        ``score_jacobian(X) -> (n, p, p)`` returning grad s(x) (entry [i, a, b] is
        d s_a / d x_b); needed for second-order estimators.

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

    def __init__(self, score, score_jacobian=None):
        self.score = score
        self.score_jacobian = score_jacobian

    def score(self, X):  # replaced on the instance by the user's callable
        raise NotImplementedError

    def fit(self, X, y=None):
        """Check the callables and record ``n_features_in_``; nothing is estimated."""
        if not callable(self.score):
            raise TypeError("CallableScore(score=...) must be a callable X -> (n, p) array.")
        if self.score_jacobian is not None and not callable(self.score_jacobian):
            raise TypeError("CallableScore(score_jacobian=...) must be callable or None.")
        X = self._validate_X(X, reset=True)
        s = np.asarray(self.score(X[:2]))
        if s.shape != X[:2].shape:
            raise ValueError(
                f"CallableScore(score=...) returned shape {s.shape} for input of shape "
                f"{X[:2].shape}; it must return one score row per sample."
            )
        self.fitted_ = True
        return self

    def second_order_sum(self, X, w) -> np.ndarray:
        """Sum of w_i T(x_i) from the user's score and Jacobian (chunked)."""
        if self.score_jacobian is None:
            raise NotImplementedError(
                "CallableScore needs score_jacobian= for second-order estimators (order=2)."
            )
        return super().second_order_sum(X, w)
