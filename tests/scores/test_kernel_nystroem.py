"""The landmark (Nystroem) kernel score, the 2-D weighted sums, the size rule of
``n_landmarks="auto"`` and the cheap held-out lam search."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.utils import check_random_state
from sklearn.utils.estimator_checks import parametrize_with_checks

import steinlatent.scores._kernel as kernel_module
from steinlatent.scores import KernelScore
from steinlatent.scores._kernel_search import cv_folds

FIXED = dict(bandwidth=1.5, bandwidth_multiplier=1.0)


def _fd_jacobian(f, X, h=1e-5):
    n, d = X.shape
    J = np.zeros((n, d, d))
    for b in range(d):
        E = np.zeros(d)
        E[b] = h
        J[:, :, b] = (f(X + E) - f(X - E)) / (2 * h)
    return J


def _rel_mse(s, s_true):
    return float(np.mean(np.sum((s - s_true) ** 2, 1)) / np.mean(np.sum(s_true**2, 1)))


@pytest.mark.parametrize("kernel", ["curl_free_imq", "curl_free_rbf", "diagonal_imq"])
def test_all_samples_as_landmarks_is_the_exact_tikhonov_estimator(kernel):
    rng = np.random.default_rng(0)
    X, Xq = rng.normal(size=(40, 3)), rng.normal(size=(9, 3))
    kw = dict(kernel=kernel, lam=3e-2, tol=1e-10, **FIXED)
    exact = KernelScore("tikhonov", n_landmarks=None, **kw).fit(X)
    landmark = KernelScore("tikhonov", n_landmarks=40, **kw).fit(X)
    assert exact.n_landmarks_ is None and landmark.n_landmarks_ == 40
    for method in ("evaluate", "jacobian", "divergence"):
        ref = getattr(exact, method)(Xq)
        np.testing.assert_allclose(getattr(landmark, method)(Xq), ref, rtol=0,
                                   atol=1e-7 * np.abs(ref).max())


def test_landmark_derivatives_match_finite_differences():
    rng = np.random.default_rng(1)
    X = rng.standard_t(6, size=(300, 3))
    model = KernelScore(n_landmarks=60, lam=1e-2, random_state=0, **FIXED).fit(X)
    Xq = rng.normal(size=(5, 3))
    fd = _fd_jacobian(model.evaluate, Xq)
    scale = np.abs(fd).max()
    np.testing.assert_allclose(model.jacobian(Xq), fd, atol=1e-7 * scale)
    np.testing.assert_allclose(model.divergence(Xq), np.trace(fd, axis1=1, axis2=2),
                               atol=1e-7 * scale)
    grad = _fd_jacobian(lambda Z: model.energy(Z)[:, None], Xq)[:, 0, :]
    np.testing.assert_allclose(grad, -model.evaluate(Xq), atol=1e-7 * scale)


def test_landmark_accuracy_gaussian_and_t():
    rng = np.random.default_rng(2)
    p, nu = 4, 10.0
    X, Xf = rng.normal(size=(1500, p)), rng.normal(size=(2000, p))
    model = KernelScore(n_landmarks=150, random_state=0).fit(X)
    assert model.centers_.shape == (150, p)
    assert _rel_mse(model.evaluate(Xf), Xf) < 0.05  # measured 0.016

    def draw(m):
        z = rng.normal(size=(m, p))
        return z * np.sqrt((nu - 2) / rng.chisquare(nu, size=m))[:, None]

    X, Xf = draw(1500), draw(2000)
    s_true = (p + nu) * Xf / (nu - 2 + np.einsum("ij,ij->i", Xf, Xf))[:, None]
    err = _rel_mse(KernelScore(n_landmarks=150, random_state=0).fit(X).evaluate(Xf), s_true)
    assert err < 0.05  # measured 0.013


@pytest.mark.parametrize("kernel", ["curl_free_imq", "diagonal_rbf"])
@pytest.mark.parametrize("landmarks", [None, 30])
def test_second_order_sum_with_weight_columns(kernel, landmarks):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    model = KernelScore(kernel=kernel, n_landmarks=landmarks, lam=1e-2, chunk_size=7,
                        random_state=0, **FIXED).fit(X)
    Xq, W = rng.normal(size=(25, 3)), rng.normal(size=(25, 4))
    S = model.second_order_sum(Xq, W)
    assert S.shape == (4, 3, 3)
    cols = np.stack([model.second_order_sum(Xq, W[:, k]) for k in range(4)])
    np.testing.assert_allclose(S, cols, rtol=0, atol=1e-12 * np.abs(cols).max())
    s, J = model.evaluate(Xq), model.jacobian(Xq)
    explicit = np.einsum("ik,ia,ib->kab", W, s, s) - np.einsum("ik,iab->kab", W, J)
    np.testing.assert_allclose(S, explicit, rtol=0, atol=1e-11 * np.abs(explicit).max())
    # Pointwise in the rows: sums over two blocks add up to the sum over all rows.
    halves = model.second_order_sum(Xq[:11], W[:11]) + model.second_order_sum(Xq[11:], W[11:])
    np.testing.assert_allclose(halves, S, rtol=0, atol=1e-12 * np.abs(S).max())


def test_cheap_lam_search_matches_brute_force():
    # The nu path scores every stopping point T in one run per fold; refitting every T
    # on every fold from scratch must give the same objectives and the same choice.
    X = np.random.default_rng(4).standard_t(5, size=(240, 3))
    model = KernelScore(cv=2, random_state=7, **FIXED).fit(X)
    res = model.cv_results_
    folds = cv_folds(X.shape[0], 2, 0.2, check_random_state(7))
    brute = []
    for T in range(1, len(res["n_iter"]) + 1):
        objs = [-KernelScore(n_iter=T, **FIXED).fit(X[tr]).score(X[va]) for tr, va in folds]
        brute.append(np.mean(objs))
    np.testing.assert_array_equal(res["n_iter"], np.arange(1, len(brute) + 1))
    np.testing.assert_allclose(res["objective"], brute, rtol=1e-4)  # float32 search
    assert model.n_iter_ == int(np.argmin(brute)) + 1
    assert 1 < model.n_iter_ < len(brute)  # an interior minimum, so the test has teeth


def test_scale_equivariance():
    # Median bandwidth and lam relative to kappa: s_{cX}(c x) = s_X(x) / c, for the
    # searched exact form and for the landmark form at a fixed relative lam.
    X = np.random.default_rng(5).normal(size=(300, 3))
    a = KernelScore(n_landmarks=None, random_state=0).fit(X)
    kw = dict(n_landmarks=50, random_state=0, bandwidth_multiplier=1.0, tol=1e-9)
    la = KernelScore(lam=0.05 / 1.5**2, bandwidth=1.5, **kw).fit(X)
    for c in (1e-3, 1e3):
        b = KernelScore(n_landmarks=None, random_state=0).fit(c * X)
        assert b.lam_ * b.bandwidth_**2 == pytest.approx(a.lam_ * a.bandwidth_**2, rel=1e-9)
        np.testing.assert_allclose(c * b.evaluate(c * X[:40]), a.evaluate(X[:40]),
                                   rtol=1e-6, atol=1e-8)
        lb = KernelScore(lam=0.05 / (1.5 * c) ** 2, bandwidth=1.5 * c, **kw).fit(c * X)
        np.testing.assert_allclose(c * lb.evaluate(c * X[:40]), la.evaluate(X[:40]),
                                   rtol=1e-6, atol=1e-8)


def test_auto_rule_switches_to_landmarks_above_the_size_limit(monkeypatch):
    monkeypatch.setattr(kernel_module, "AUTO_EXACT_MAX_N", 100)
    monkeypatch.setattr(kernel_module, "AUTO_LANDMARKS", 40)
    rng = np.random.default_rng(6)
    small = KernelScore(lam=1e-2, random_state=0, **FIXED).fit(rng.normal(size=(100, 2)))
    large = KernelScore(lam=1e-2, random_state=0, **FIXED).fit(rng.normal(size=(101, 2)))
    assert small.n_landmarks_ is None and small.centers_.shape == (100, 2)
    assert large.n_landmarks_ == 40 and large.centers_.shape == (40, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        searched = KernelScore(random_state=0).fit(rng.normal(size=(300, 2)))
    assert searched.n_landmarks_ == 40 and searched.n_iter_ > 0


def test_landmark_errors():
    X = np.random.default_rng(8).normal(size=(50, 2))
    with pytest.raises(ValueError, match="n_landmarks=None"):
        KernelScore("spectral", n_landmarks=10, lam=1e-2).fit(X)
    with pytest.raises(ValueError, match="n_landmarks"):
        KernelScore(n_landmarks=0).fit(X)


@parametrize_with_checks([
    KernelScore(n_landmarks=10, lam=1e-2, bandwidth_multiplier=1.0, random_state=0),
    KernelScore(n_landmarks=None, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)
