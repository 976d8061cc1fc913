import numpy as np
import pytest
from scipy import stats

from steinlatent.scores import GaussianScore, ScoreModel

from ..conftest import random_covariance


def _fd_grad(f, X, h=1e-5):
    G = np.zeros_like(X)
    for j in range(X.shape[1]):
        E = np.zeros_like(X)
        E[:, j] = h
        G[:, j] = (f(X + E) - f(X - E)) / (2 * h)
    return G


def test_score_is_minus_grad_log_pdf(rng):
    p = 4
    cov = random_covariance(rng, p)
    X = rng.multivariate_normal(np.ones(p), cov, size=3000)
    model = GaussianScore().fit(X)
    pts = rng.normal(size=(20, p))
    dist = stats.multivariate_normal(model.location_, model.covariance_)
    np.testing.assert_allclose(model.evaluate(pts), -_fd_grad(dist.logpdf, pts), atol=1e-6)
    np.testing.assert_allclose(model.log_prob(pts), dist.logpdf(pts), atol=1e-10)


def test_maximum_likelihood_estimates(rng):
    X = rng.normal(size=(500, 3))
    model = GaussianScore().fit(X)
    np.testing.assert_allclose(model.location_, X.mean(0))
    np.testing.assert_allclose(model.covariance_, np.cov(X.T, bias=True))
    np.testing.assert_allclose(model.precision_ @ model.covariance_, np.eye(3), atol=1e-10)


def test_jacobian_and_second_order_sum_against_explicit(rng):
    p = 5
    X = rng.multivariate_normal(np.zeros(p), random_covariance(rng, p), size=400)
    model = GaussianScore().fit(X)
    J = model.jacobian(X[:3])
    np.testing.assert_allclose(J, np.broadcast_to(model.precision_, J.shape))
    w = rng.normal(size=len(X))
    P = model.precision_
    U = X - model.location_
    explicit = sum(wi * (P @ np.outer(u, u) @ P - P) for wi, u in zip(w, U, strict=False))
    np.testing.assert_allclose(model.second_order_sum(X, w), explicit, rtol=1e-10, atol=1e-10)
    # The generic chunked path of the base class agrees with the closed form.
    np.testing.assert_allclose(ScoreModel.second_order_sum(model, X, w), explicit, atol=1e-9)


@pytest.mark.parametrize("shrinkage", ["ledoit_wolf", "oas", 0.3])
def test_shrinkage_is_smoothed_and_pca_like(rng, shrinkage):
    X = rng.multivariate_normal(np.zeros(4), np.diag([4.0, 2.0, 1.0, 0.5]), size=2000)
    model = GaussianScore(shrinkage=shrinkage).fit(X)
    assert model.smoothed
    M = model.evaluate(X).T @ (X - X.mean(0)) / len(X)
    # (Sigma_s)^{-1} Sigma_hat is not the identity: its singular values increase with
    # the variance, so its leading directions are the principal axes (here e_1, e_2).
    U, s, _ = np.linalg.svd(M)
    assert s[0] - s[-1] > 1e-3
    assert abs(U[0, 0]) > 0.95 and abs(U[1, 1]) > 0.95
    assert not GaussianScore().smoothed


def test_singular_covariance_warns_and_uses_pseudo_inverse(rng):
    Z = rng.normal(size=(300, 2))
    X = np.column_stack([Z, Z[:, 0] + Z[:, 1]])
    with pytest.warns(UserWarning, match="singular or ill-conditioned"):
        model = GaussianScore().fit(X)
    assert np.all(np.isfinite(model.evaluate(X)))
    np.testing.assert_allclose(model.precision_, np.linalg.pinv(model.covariance_), atol=1e-8)


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        GaussianScore().fit(np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="minimum of 2"):
        GaussianScore().fit(np.ones((1, 3)))
    with pytest.raises(ValueError, match="shrinkage"):
        GaussianScore(shrinkage="bogus").fit(np.eye(3))
    with pytest.raises(ValueError, match="constant"):
        GaussianScore().fit(np.ones((5, 2)))
    model = GaussianScore().fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="3 features"):
        model.evaluate(np.ones((2, 4)))
