"""The zoo's designs: shapes, orthonormal truth, seeds, and that B is the truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from zoo.designs import DESIGNS, X_LAWS, get_designs

ALL = list(DESIGNS)


@pytest.mark.parametrize("name", ALL)
def test_shapes_types_and_orthonormal_basis(name):
    d = DESIGNS[name]
    p = d.main[1]
    X, Y, B = d(300, p, 0)
    assert X.shape == (300, p) and B.shape == (p, d.r)
    np.testing.assert_allclose(B.T @ B, np.eye(d.r), atol=1e-12)
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(Y))
    if d.response == "labels":
        assert Y.shape == (300,) and Y.dtype.kind == "i"
        assert set(np.unique(Y)) <= set(range(d.n_classes))
    else:
        assert (Y.shape == (300,)) if d.q == 1 else (Y.shape == (300, d.q))


@pytest.mark.parametrize("name", ALL)
def test_seeds_reproducible_and_design_shared_over_n(name):
    d = DESIGNS[name]
    X1, Y1, B1 = d(200, 10, 5)
    X2, Y2, B2 = d(200, 10, 5)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)
    np.testing.assert_array_equal(B1, B2)
    _, _, B3 = d(400, 10, 5)  # same seed, other n: the same design
    np.testing.assert_array_equal(B1, B3)
    X4, _, B4 = d(200, 10, 6)
    assert not np.allclose(B1, B4) and not np.allclose(X1, X4)


@pytest.mark.parametrize("law", list(X_LAWS))
def test_x_laws_have_their_shape(law):
    """The laws are what their names say, on 20 000 rows."""
    rng = np.random.default_rng(0)
    X = X_LAWS[law](10, rng)(20_000, np.random.default_rng(1))
    skew = stats.skew(X, axis=0)
    kurt = stats.kurtosis(X, axis=0)
    if law == "skewed":
        assert np.all(skew > 1.0)
    elif law == "t5":
        assert np.all(kurt > 1.0)  # t5: excess kurtosis 6; the sample value is noisy
    elif law == "illcond":
        ev = np.linalg.eigvalsh(np.cov(X, rowvar=False))
        assert 500 < ev[-1] / ev[0] < 2000
    elif law == "discrete":
        n_discrete = sum(len(np.unique(col)) < 30 for col in X.T)
        assert n_discrete == 2  # a fifth of 10 columns
    elif law == "mixture":
        # In whitened coordinates, the mode direction is the one with the least fourth
        # moment; along it the two modes give a negative excess kurtosis.
        Xc = X - X.mean(axis=0)
        W = Xc @ np.linalg.inv(np.linalg.cholesky(np.cov(X, rowvar=False))).T
        M4 = (W * np.sum(W**2, axis=1, keepdims=True)).T @ W / len(W)
        u = np.linalg.eigh(M4)[1][:, 0]
        assert stats.kurtosis(W @ u) < -0.3
    else:
        assert np.all(np.abs(skew) < 0.1) and np.all(np.abs(kurt) < 0.2)


def _features(Y, response):
    """Targets that see the whole law of y | x: normal scores of y and their squares."""
    if response == "labels":
        return Y
    Y = Y.reshape(len(Y), -1)
    Z = stats.norm.ppf((stats.rankdata(Y, axis=0) - 0.5) / len(Y))
    return np.column_stack([Z, Z**2])


def _cv_score(V, X, T, response):
    """5-fold k-NN score of the targets from the whitened projection X V."""
    P = X @ V
    L = np.linalg.cholesky(np.atleast_2d(np.cov(P, rowvar=False)))
    P = (P - P.mean(0)) @ np.linalg.inv(L).T
    if response == "labels":
        pred = cross_val_predict(KNeighborsClassifier(60), P, T, cv=5, method="predict_proba")
        return float(np.mean(np.log(np.clip(pred[np.arange(len(T)), T], 1e-3, 1))))
    pred = cross_val_predict(KNeighborsRegressor(60), P, T, cv=5)
    return float(1 - np.mean((T - pred) ** 2) / np.mean(np.var(T, axis=0)))


@pytest.mark.parametrize("name", ALL)
def test_truth_every_direction_of_b_matters(name):
    """With B itself, k-NN predicts y (its normal scores and their squares, or the class)
    better than with any one direction of B swapped for a direction uncorrelated with
    B^T x, and better than with a random subspace."""
    d = DESIGNS[name]
    X, Y, B = d(6000, 10, 3)
    T = _features(Y, d.response)
    rng = np.random.default_rng(0)
    S = np.cov(X, rowvar=False)
    oracle = _cv_score(B, X, T, d.response)
    for k in range(d.r):
        w = rng.standard_normal(10)
        w = w - B @ np.linalg.solve(B.T @ S @ B, B.T @ S @ w)  # Cov(w^T x, B^T x) = 0
        V = B.copy()
        V[:, k] = w / np.linalg.norm(w)
        assert oracle > _cv_score(V, X, T, d.response) + 0.03, f"direction {k}"
    R = np.linalg.qr(rng.standard_normal((10, d.r)))[0]
    assert oracle > _cv_score(R, X, T, d.response) + 0.03


@pytest.mark.parametrize("name", [d.name for d in DESIGNS.values() if d.response == "labels"])
def test_labels_balanced_enough(name):
    d = DESIGNS[name]
    _, Y, _ = d(20_000, d.main[1], 1)
    freq = np.bincount(Y, minlength=d.n_classes) / len(Y)
    assert freq.min() > 0.5 / d.n_classes


def test_heteroscedastic_truth_is_central_not_mean_subspace():
    """b2 moves the spread of y, not its mean: E[y | B^T x] does not depend on b2^T x,
    |y - E[y | b1^T x]| does."""
    d = DESIGNS["hetero_normal"]
    X, y, B = d(20_000, 10, 0)
    Z = (X @ B - (X @ B).mean(0)) @ np.linalg.inv(
        np.linalg.cholesky(np.cov(X @ B, rowvar=False))).T
    resid = y - 2 * np.tanh(Z[:, 0])
    assert abs(np.corrcoef(resid, Z[:, 1])[0, 1]) < 0.03
    assert np.corrcoef(np.abs(resid), np.abs(Z[:, 1]))[0, 1] > 0.3


def test_holdout_designs_only_on_request():
    names = {d.name for d in get_designs()}
    held = {d.name for d in DESIGNS.values() if d.holdout}
    assert 3 <= len(held) <= 4 and not names & held
    assert held <= {d.name for d in get_designs(holdout=True)}
    with pytest.raises(ValueError, match="unknown design"):
        get_designs(["nope"])
    with pytest.raises(ValueError, match="held out: run them with --holdout"):
        get_designs(sorted(held)[:1])
    assert get_designs(sorted(held)[:1], holdout=True)[0].holdout


def test_axes_are_covered():
    """Every level of every axis appears at least once among the designs that run."""
    designs = get_designs(holdout=True)
    laws = {d.x_law for d in designs}
    assert {"normal", "t5", "mixture", "skewed", "illcond", "discrete"} <= laws
    sizes = {s for d in designs for s in d.sizes}
    assert {n for n, _ in sizes} >= {500, 3000, 20000}
    assert {p for _, p in sizes} >= {10, 30, 100}
    links = " ".join(d.link for d in designs)
    for word in ("pairs", "monotone", "z1*z2", "sin/cos", "cubic+exp", "heteroscedastic",
                 "logistic", "classes", "linear"):
        assert word in links
