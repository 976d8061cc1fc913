"""inverse_transform: a decoder from latent coordinates back to x, so Stein is used like PCA."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsRegressor

from steinlatent import SteinLatent
from steinlatent.scores import GaussianScore


def _curve(n, seed):
    """x near a one-dimensional curve t -> (t, t^2, t^3/2) plus three small noise coordinates."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, n)
    return np.column_stack([t, t**2, t**3 / 2, 0.1 * rng.standard_normal((n, 3))])


def _mse(est, X):
    return float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))


SMOOTH = GaussianScore(shrinkage="ledoit_wolf")


def test_full_dimension_is_lossless():
    X = np.random.default_rng(0).standard_normal((300, 4)) @ np.diag([3, 2, 1, 0.5])
    est = SteinLatent(4, order=2).fit(X)
    np.testing.assert_allclose(est.inverse_transform(est.transform(X)), X, atol=1e-9)


def test_linear_decoder_solves_the_normal_equations():
    X = _curve(800, 1)
    est = SteinLatent(2, order=1, score_model=SMOOTH).fit(X)
    Z = est.transform(X)
    resid = X - est.inverse_transform(Z)
    # Least squares: residuals orthogonal to the latent coordinates and to constants.
    np.testing.assert_allclose(Z.T @ resid / len(X), 0, atol=1e-10)
    np.testing.assert_allclose(resid.mean(axis=0), 0, atol=1e-10)


def test_linear_reconstruction_is_bounded_by_pca():
    X = _curve(1500, 2)
    for k in (1, 2):
        est = SteinLatent(k, order=1, score_model=SMOOTH).fit(X)
        pca = PCA(k).fit(X)
        err_pca = _mse(pca, X)
        # PCA is the best rank-k linear reconstruction (Eckart-Young), so Stein cannot beat
        # it on training data; with a shrunk Gaussian score its space is PCA's (paper, Sec. 2).
        assert _mse(est, X) >= err_pca - 1e-12
        assert _mse(est, X) <= 1.05 * err_pca


def test_nonlinear_decoder_beats_linear_on_a_curve():
    Xtr, Xte = _curve(1500, 3), _curve(500, 4)
    lin = SteinLatent(1, order=1, score_model=SMOOTH).fit(Xtr)
    knn = SteinLatent(1, order=1, score_model=SMOOTH, decoder=KNeighborsRegressor(10)).fit(Xtr)
    # One coordinate along the curve determines x; a linear decoder cannot bend with it.
    assert _mse(knn, Xte) < 0.2 * _mse(lin, Xte)


def test_decoder_none_and_shape_errors():
    X = _curve(200, 5)
    est = SteinLatent(1, order=1, score_model=SMOOTH, decoder=None).fit(X)
    with pytest.raises(ValueError, match="decoder"):
        est.inverse_transform(est.transform(X))
    est = SteinLatent(2, order=1, score_model=SMOOTH).fit(X)
    with pytest.raises(ValueError, match="shape"):
        est.inverse_transform(np.zeros((3, 3)))
