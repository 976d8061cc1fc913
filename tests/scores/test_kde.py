"""Tests of KDEScore against finite differences of its own log density, per-sample sums,
the leave-one-out definition and the exact (untruncated) estimate."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from steinlatent import SteinLatent
from steinlatent.scores import KDEScore, resolve_score


def _fd_grad(f, X, h=1e-5):
    """Central differences of a row-wise scalar or vector function, last axis = x_b."""
    cols = []
    for b in range(X.shape[1]):
        E = np.zeros(X.shape[1])
        E[b] = h
        cols.append((f(X + E) - f(X - E)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.fixture
def fitted(rng):
    X = rng.standard_t(5, size=(200, 3))
    return X, KDEScore().fit(X)


def test_evaluate_is_minus_grad_of_log_prob(rng, fitted):
    X, model = fitted
    Xn = rng.normal(size=(15, 3))  # not training points: the LOO rule does not apply
    s = model.evaluate(Xn)
    np.testing.assert_allclose(s, -_fd_grad(model.log_prob, Xn), atol=1e-7)
    # and the closed form (x - sum_k w_k x_k) / sigma^2 from an explicit softmax
    sig = model.bandwidth_
    d2 = ((Xn[:, None, :] - X[None]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sig**2))
    w /= w.sum(1, keepdims=True)
    np.testing.assert_allclose(s, (Xn - w @ X) / sig**2, atol=1e-10)


def test_log_prob_is_the_normalised_kde(rng, fitted):
    from scipy.stats import multivariate_normal

    X, model = fitted
    Xn = rng.normal(size=(5, 3))
    sig = model.bandwidth_
    dens = np.mean([multivariate_normal(x, sig**2 * np.eye(3)).pdf(Xn) for x in X], axis=0)
    np.testing.assert_allclose(model.log_prob(Xn), np.log(dens), rtol=1e-10)


def test_jacobian_divergence_against_finite_differences(rng, fitted):
    X, model = fitted
    Xq = np.vstack([rng.normal(size=(10, 3)), 3 * rng.normal(size=(5, 3))])
    J = model.jacobian(Xq)
    np.testing.assert_allclose(J, _fd_grad(model.evaluate, Xq).transpose(0, 1, 2),
                               atol=1e-6)
    np.testing.assert_allclose(J, J.transpose(0, 2, 1), atol=1e-12)
    np.testing.assert_allclose(model.divergence(Xq), np.trace(J, axis1=1, axis2=2),
                               atol=1e-10)


def test_second_order_sum_equals_per_sample_sum(rng, fitted):
    X, model = fitted
    Xq = np.vstack([X[:40], rng.normal(size=(30, 3))])  # training rows (LOO) and new rows
    s = model.evaluate(Xq)
    T = s[:, :, None] * s[:, None, :] - model.jacobian(Xq)
    W = rng.normal(size=(len(Xq), 3))
    ref = np.einsum("ik,iab->kab", W, T)
    np.testing.assert_allclose(model.second_order_sum(Xq, W), ref, atol=1e-9)
    np.testing.assert_allclose(model.second_order_sum(Xq, W[:, 1]), ref[1], atol=1e-9)
    with pytest.raises(ValueError, match="one weight per"):
        model.second_order_sum(Xq, W[:-1])


def test_leave_one_out_at_training_rows_only(rng, fitted):
    X, model = fitted
    i = 17
    rest = KDEScore(bandwidth=model.bandwidth_).fit(np.delete(X, i, axis=0))
    for method in ("evaluate", "divergence", "jacobian", "log_prob"):
        np.testing.assert_allclose(getattr(model, method)(X[i:i + 1]),
                                   getattr(rest, method)(X[i:i + 1]), atol=1e-12)
    # Pointwise: a block of rows, or the rows in another order, give the same values
    # (to rounding: BLAS may order a block's sums differently from the whole's).
    full = model.evaluate(X)
    np.testing.assert_allclose(model.evaluate(X[50:60]), full[50:60], rtol=1e-13, atol=1e-15)
    perm = rng.permutation(len(X))
    np.testing.assert_allclose(model.evaluate(X[perm]), full[perm], atol=1e-12)
    # leave_one_out=False: the own kernel stays in at training rows, nothing else changes.
    plain = KDEScore(bandwidth=model.bandwidth_, leave_one_out=False).fit(X)
    assert np.abs(plain.evaluate(X) - full).max() > 1e-3
    Xn = rng.normal(size=(8, 3))
    np.testing.assert_allclose(plain.evaluate(Xn), model.evaluate(Xn), atol=1e-12)


def test_duplicated_rows_are_left_out_together(rng):
    X = rng.normal(size=(60, 2))
    Xd = np.vstack([X, X[:5]])  # rows 0..4 appear twice
    model = KDEScore(bandwidth=0.5).fit(Xd)
    for i in range(5):  # both copies of row i are left out, nothing else
        rest = KDEScore(bandwidth=0.5).fit(np.delete(Xd, [i, 60 + i], axis=0))
        np.testing.assert_allclose(model.evaluate(X[i:i + 1]), rest.evaluate(X[i:i + 1]),
                                   atol=1e-12)
        np.testing.assert_allclose(model.log_prob(X[i:i + 1]), rest.log_prob(X[i:i + 1]),
                                   atol=1e-12)
    with pytest.raises(ValueError, match="same point"):
        KDEScore().fit(np.ones((10, 2)))


def test_bandwidth_search_minimises_the_loo_hyvarinen_objective(rng):
    X = rng.normal(size=(150, 2))
    model = KDEScore().fit(X)
    res = model.cv_results_
    assert res["bandwidth"].shape == res["objective"].shape
    best = int(np.argmin(res["objective"]))
    assert model.bandwidth_ == res["bandwidth"][best]
    assert model.best_objective_ == res["objective"][best]
    # the default grid brackets the optimum and the refinement is between grid points
    assert res["bandwidth"].min() < model.bandwidth_ < res["bandwidth"].max()
    # cv="loo": the search objective is the leave-one-out Hyvarinen objective, which is
    # minus score() on the training rows of a model with that fixed bandwidth.
    for k in (0, 5, best):
        sig = res["bandwidth"][k]
        fixed = KDEScore(bandwidth=sig).fit(X)
        np.testing.assert_allclose(-fixed.score(X), res["objective"][k], rtol=1e-10)
    # K-fold agrees with leave-one-out to within the grid's resolution
    kfold = KDEScore(cv=5, random_state=0).fit(X)
    assert 0.6 < kfold.bandwidth_ / model.bandwidth_ < 1.6


def test_bandwidth_search_tracks_the_scale_and_the_true_score(rng):
    X = rng.normal(size=(400, 2))
    a = KDEScore().fit(X)
    b = KDEScore().fit(10 * X)
    np.testing.assert_allclose(b.bandwidth_, 10 * a.bandwidth_, rtol=1e-3)
    Xn = rng.normal(size=(200, 2))
    err = np.mean((a.evaluate(Xn) - Xn) ** 2) / np.mean(Xn**2)  # true score of N(0, I)
    assert err < 0.25


def test_grid_given_and_edge_warning(rng):
    X = rng.normal(size=(100, 2))
    with pytest.warns(UserWarning, match="end of the searched range"):
        model = KDEScore(bandwidth=[5.0, 8.0, 10.0]).fit(X)
    assert model.bandwidth_ == 5.0
    assert KDEScore(bandwidth=0.3).fit(X).cv_results_ is None
    with pytest.raises(ValueError, match="bandwidth"):
        KDEScore(bandwidth=[0.3, -1.0]).fit(X)


def test_truncation_with_all_neighbours_equals_exact(rng):
    X = rng.standard_t(4, size=(120, 3))
    exact = KDEScore().fit(X)
    trunc = KDEScore(n_neighbors=len(X)).fit(X)
    assert trunc.bandwidth_ == pytest.approx(exact.bandwidth_, rel=1e-9)
    Xq = np.vstack([X[:30], rng.normal(size=(20, 3))])
    W = rng.normal(size=(len(Xq), 2))
    for method, args in [("evaluate", ()), ("jacobian", ()), ("divergence", ()),
                         ("log_prob", ()), ("second_order_sum", (W,))]:
        np.testing.assert_allclose(getattr(trunc, method)(Xq, *args),
                                   getattr(exact, method)(Xq, *args), atol=1e-9)
    assert trunc.score(Xq) == pytest.approx(exact.score(Xq), rel=1e-10)


def test_few_neighbours_approximate_exact_at_small_bandwidth(rng):
    X = rng.normal(size=(500, 2))
    # sigma = 0.08: the 100th neighbour (distance >~ 0.45) has relative weight < 1e-6
    exact = KDEScore(bandwidth=0.08).fit(X)
    trunc = KDEScore(bandwidth=0.08, n_neighbors=100).fit(X)
    Xq = rng.normal(size=(50, 2))
    tol = 1e-5 / 0.08**2
    np.testing.assert_allclose(trunc.evaluate(Xq), exact.evaluate(Xq), atol=tol)
    np.testing.assert_allclose(trunc.evaluate(X[:20]), exact.evaluate(X[:20]), atol=tol)


def test_shortcut_smoothed_and_estimator(rng):
    assert isinstance(resolve_score("kde"), KDEScore)
    assert KDEScore.smoothed
    X = rng.normal(size=(300, 4)) * np.array([3.0, 2.0, 1.0, 0.5])
    Y = np.tanh(X[:, :1]) + 0.1 * rng.normal(size=(300, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SteinLatent(1, score_model="kde").fit(X, Y)
        assert abs(est.components_[0, 0]) > 0.9
        # smoothed: the unsupervised first-order mode is allowed; its matrix is not the
        # identity but ~ (Sigma + sigma^2 I)^-1 Sigma, led by the large variances
        un = SteinLatent(1, order=1, score_model="kde").fit(X)
    sv = un.singular_values_
    assert sv[0] > 1.2 * sv[-1]
    assert np.sum(un.components_[0, :2] ** 2) > 0.9


@parametrize_with_checks([KDEScore(), KDEScore(n_neighbors=5, cv=3, random_state=0)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny or integer data: edge-of-grid warnings
        check(estimator)
