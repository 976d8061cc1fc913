"""String shortcuts and frozen (pre-fitted) score models in SteinLatent."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression

from steinlatent import SteinLatent
from steinlatent.scores import GaussianScore
from steinlatent.scores._registry import resolve_score


class CountingGaussian(GaussianScore):
    fits = 0

    def fit(self, X, y=None):
        type(self).fits += 1
        return super().fit(X, y)


def test_frozen_score_is_used_without_refitting():
    rng = np.random.default_rng(0)
    X, Xother = rng.normal(size=(300, 4)), 3.0 + 2.0 * rng.normal(size=(300, 4))
    Y = np.tanh(X[:, :2]) + 0.1 * rng.normal(size=(300, 2))
    score = CountingGaussian().fit(Xother)  # fitted on other data on purpose
    CountingGaussian.fits = 0
    est = clone(SteinLatent(2, order=1, score_model=FrozenEstimator(score))).fit(X, Y)
    assert CountingGaussian.fits == 0
    # The Stein matrix uses Xother's mean and covariance, not X's: check against them.
    S = np.linalg.solve(np.cov(Xother.T, bias=True), (X - Xother.mean(0)).T).T
    M = S.T @ (Y - Y.mean(0)) / len(X)
    np.testing.assert_allclose(est.stein_matrix_, M, rtol=1e-8, atol=1e-12)


def test_frozen_score_checks_features_and_type():
    X = np.random.default_rng(1).normal(size=(50, 3))
    with pytest.raises(ValueError, match="fitted on 3 features"):
        SteinLatent(1, score_model=FrozenEstimator(GaussianScore().fit(X))).fit(
            X[:, :2], X[:, 0]
        )
    with pytest.raises(TypeError, match="must wrap a fitted score model"):
        resolve_score(FrozenEstimator(LinearRegression().fit(X, X[:, 0])))


def test_unknown_shortcut_names_argument():
    with pytest.raises(ValueError, match="Unknown score_model='gauss'"):
        SteinLatent(1, score_model="gauss").fit(np.eye(5), np.arange(5.0))
