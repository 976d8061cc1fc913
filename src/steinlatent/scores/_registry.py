"""String shortcuts for the common score models."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from ._base import ScoreModel

__all__ = ["SCORE_SHORTCUTS", "resolve_score"]


def _gaussian():
    from ._gaussian import GaussianScore

    return GaussianScore()


def _student_t():
    from ._student_t import StudentTScore

    return StudentTScore()


def _hyperbolic():
    from ._hyperbolic import HyperbolicScore

    return HyperbolicScore()


def _kernel():
    # n_landmarks="auto": the exact estimator up to 5000 rows, 500 landmarks above, so
    # "kernel" on 10^5 rows is a linear-cost fit, not an hour of O(n^2) work.
    from ._kernel import KernelScore

    return KernelScore()


def _kde():
    from ._kde import KDEScore

    return KDEScore()


def _denoising():
    from ._denoising import DenoisingScore

    return DenoisingScore()


SCORE_SHORTCUTS = {
    "gaussian": _gaussian,
    "t": _student_t,
    "hyperbolic": _hyperbolic,
    "kernel": _kernel,
    "kde": _kde,
    "denoising": _denoising,
}


class _FrozenScore(ScoreModel):
    """A fitted score model wrapped in ``sklearn.frozen.FrozenEstimator``, used as it is.

    ``fit`` does nothing and the wrapped model answers every call, so one expensive fit
    (a kernel or denoising score) serves several estimators.
    """

    def __init__(self, frozen=None):
        self.frozen = frozen

    @property
    def smoothed(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.model, "smoothed", False))

    @property
    def model(self):
        return self.frozen.estimator

    @property
    def n_features_in_(self) -> int:
        return self.model.n_features_in_

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X, y=None):
        p = getattr(self.model, "n_features_in_", None)
        if p is not None and np.shape(X)[1] != p:
            raise ValueError(
                f"The frozen score model was fitted on {p} features; X has {np.shape(X)[1]}."
            )
        return self

    def evaluate(self, X):
        return self.model.evaluate(X)

    def jacobian(self, X):
        return self.model.jacobian(X)

    def divergence(self, X):
        return self.model.divergence(X)

    def score(self, X, y=None):
        return self.model.score(X)

    def log_prob(self, X):
        return self.model.log_prob(X)

    def second_order_sum(self, X, w):
        return self.model.second_order_sum(X, w)


def resolve_score(score, *, name: str = "score_model") -> ScoreModel:
    """Return an unfitted score model from a shortcut string or a ScoreModel instance.

    Instances are cloned, so the user's object is never fitted in place. A fitted model
    wrapped in ``sklearn.frozen.FrozenEstimator`` is used as it is, without refitting.
    """
    if isinstance(score, FrozenEstimator):
        if not all(hasattr(score.estimator, m) for m in ("evaluate", "second_order_sum")):
            raise TypeError(
                f"{name}=FrozenEstimator(...) must wrap a fitted score model; got "
                f"{type(score.estimator).__name__}."
            )
        return _FrozenScore(score)
    if isinstance(score, str):
        try:
            factory = SCORE_SHORTCUTS[score]
        except KeyError:
            valid = ", ".join(repr(k) for k in SCORE_SHORTCUTS)
            raise ValueError(
                f"Unknown {name}={score!r}; valid shortcuts are {valid}, or pass a "
                "steinlatent.scores.ScoreModel instance."
            ) from None
        return factory()
    if isinstance(score, ScoreModel):
        return clone(score)
    if all(hasattr(score, m) for m in ("fit", "evaluate", "second_order_sum")):
        return clone(score)
    raise TypeError(
        f"{name} must be a string shortcut ({', '.join(SCORE_SHORTCUTS)}) or a score "
        f"model with fit, evaluate and second_order_sum; got {type(score).__name__}."
    )
