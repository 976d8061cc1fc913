"""The score-model interface every family shares: divergence and the scalar ``score``."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from steinlatent.scores import (
    CallableScore,
    GaussianScore,
    HyperbolicScore,
    KDEScore,
    KernelScore,
    StudentTScore,
)


def _fd_trace(model, X, h=1e-5):
    """tr grad s by central differences of evaluate: an independent reference."""
    out = np.zeros(X.shape[0])
    for a in range(X.shape[1]):
        E = np.zeros(X.shape[1])
        E[a] = h
        out += (model.evaluate(X + E)[:, a] - model.evaluate(X - E)[:, a]) / (2 * h)
    return out


def _standard_score(X):
    return X.copy()


def _identity_jacobian(X):
    return np.broadcast_to(np.eye(X.shape[1]), (X.shape[0], X.shape[1], X.shape[1]))


MODELS = {
    "gaussian": lambda: GaussianScore(),
    "t": lambda: StudentTScore(),
    "hyperbolic": lambda: HyperbolicScore(),
    "callable_with_jac": lambda: CallableScore(_standard_score, _identity_jacobian),
    "callable_without_jac": lambda: CallableScore(_standard_score),
    "kde": lambda: KDEScore(bandwidth=0.7),
    "kernel": lambda: KernelScore(lam=1e-2, bandwidth_multiplier=1.0),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_score_is_minus_hyvarinen_objective(name):
    rng = np.random.default_rng(0)
    X = rng.standard_t(6, size=(300, 3))
    Xq = rng.standard_t(6, size=(80, 3))
    model = MODELS[name]().fit(X)
    s = model.evaluate(Xq)
    div_fd = _fd_trace(model, Xq)
    np.testing.assert_allclose(model.divergence(Xq), div_fd, rtol=1e-4, atol=1e-5)
    expected = -np.mean(0.5 * np.sum(s**2, axis=1) - div_fd)
    assert model.score(Xq) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_held_out_score_prefers_the_true_family():
    # Heavy tails: the t score fits held-out rows better than the Gaussian one.
    rng = np.random.default_rng(1)
    X = rng.standard_t(3, size=(4000, 3))
    train, test = X[:3000], X[3000:]
    t_score = StudentTScore().fit(train).score(test)
    gauss_score = GaussianScore().fit(train).score(test)
    assert t_score > gauss_score + 0.1


def test_gaussian_score_has_its_closed_form_value():
    # For N(0, I) fitted exactly, -(|x|^2 / 2 - p) averages to p / 2.
    X = np.random.default_rng(2).normal(size=(20000, 4))
    assert GaussianScore().fit(X).score(X) == pytest.approx(2.0, abs=0.05)


def test_grid_search_tunes_a_score_model():
    # An anisotropic Gaussian: shrinking towards a multiple of I fits worse.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 3)) * np.array([5.0, 1.0, 0.2])
    search = GridSearchCV(GaussianScore(), {"shrinkage": [0.0, 0.5, 0.9]}, cv=3).fit(X)
    assert search.best_params_ == {"shrinkage": 0.0}
