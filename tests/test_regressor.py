"""Tests for SteinRegressor: scikit-learn conventions and recovery of a known index model."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from steinlatent._regressor import SteinRegressor
from steinlatent.metrics import subspace_distance


@parametrize_with_checks(
    [
        SteinRegressor(1, random_state=0),
        SteinRegressor(2, order="both", link=LinearRegression(), random_state=0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _single_index(n, p, rng):
    """y = (b^T x)^2 ... plus a linear term: one direction, a nonlinear link."""
    b = np.zeros(p)
    b[:2] = [0.6, 0.8]
    X = rng.standard_normal((n, p))
    z = X @ b
    y = np.column_stack([np.sin(z) + z, z + 0.3 * z**2]) + 0.1 * rng.standard_normal((n, 2))
    return X, y, b[:, None]


def test_recovers_direction_and_beats_full_regressor():
    rng = np.random.default_rng(0)
    X, y, b = _single_index(1600, 20, rng)
    Xtr, Xte, ytr, yte = X[:1200], X[1200:], y[:1200], y[1200:]
    knn = make_pipeline(StandardScaler(), KNeighborsRegressor(15))
    reg = SteinRegressor(1, link=knn, random_state=0).fit(Xtr, ytr)
    assert subspace_distance(reg.components_.T, b) < 0.1
    full = make_pipeline(StandardScaler(), KNeighborsRegressor(15)).fit(Xtr, ytr)
    # k-NN on 20 inputs, 19 of them noise, is badly hurt; on the one index it is not.
    assert reg.score(Xte, yte) > 0.9
    assert reg.score(Xte, yte) > full.score(Xte, yte) + 0.2


def test_default_link_and_shapes():
    rng = np.random.default_rng(1)
    X, y, _ = _single_index(400, 6, rng)
    reg = SteinRegressor(1, random_state=0).fit(X, y)
    assert isinstance(reg.link_.estimators_[0], HistGradientBoostingRegressor)
    assert reg.predict(X).shape == (400, 2)
    assert reg.transform(X).shape == (400, 1)
    reg1 = SteinRegressor(1, random_state=0).fit(X, y[:, 0])
    assert reg1.predict(X).shape == (400,)
    assert isinstance(reg1.link_, HistGradientBoostingRegressor)


def test_multi_output_link_is_not_wrapped():
    rng = np.random.default_rng(2)
    X, y, _ = _single_index(300, 5, rng)
    reg = SteinRegressor(1, link=KernelRidge(alpha=0.1, kernel="rbf")).fit(X, y)
    assert isinstance(reg.link_, KernelRidge)


def test_auto_dimension():
    rng = np.random.default_rng(3)
    X, y, b = _single_index(1500, 8, rng)
    reg = SteinRegressor("auto", selector="ratio", random_state=0).fit(X, y)
    assert reg.n_components_ == 1


def test_univariate_y_gives_several_directions():
    # One response has a rank-one first-order matrix; the default response_expansion
    # slices it (SIR's construction), and order="auto" can add the second order.
    rng = np.random.default_rng(4)
    X, y, _ = _single_index(200, 5, rng)
    assert SteinRegressor(2, order=1).fit(X, y[:, 0]).latent_.components_.shape == (2, 5)
    assert SteinRegressor(2).fit(X, y[:, 0]).latent_.order_ in (1, "both")


def test_bad_link():
    X = np.random.default_rng(5).standard_normal((50, 3))
    with pytest.raises(ValueError, match="link"):
        SteinRegressor(1, link="gbm").fit(X, X[:, 0])
