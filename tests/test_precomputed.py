"""PrecomputedStein: the factored first-order path against the explicitly formed Stein
matrix, against SteinLatent with a frozen score, and its input checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.utils.extmath import svd_flip

from steinlatent import PrecomputedStein, SteinLatent
from steinlatent.scores import GaussianScore


def _proj_diff(A, B):
    """Largest entry of |P_A - P_B| for orthonormal (p, h) bases (0 iff same span)."""
    return float(np.max(np.abs(A @ A.T - B @ B.T)))


def _data(n, p, q=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_t(6, size=(n, p)) * np.linspace(2.0, 0.5, p)
    S = np.tanh(X) + 0.3 * rng.normal(size=(n, p))  # any score values: the identity is exact
    Y = np.sin(X[:, :3]) @ rng.normal(size=(3, q)) + 0.1 * rng.normal(size=(n, q))
    return X, S, Y


def _reference(X, S, Y, lab, features, h):
    """Top-h left singular vectors (svd_flip signs) and singular values of the explicitly
    formed [S^T X_c / N, S_lab^T Y_c / n] (float64)."""
    blocks = []
    if features:
        blocks.append(S.T @ (X - X.mean(axis=0)) / X.shape[0])
    if Y is not None:
        Yl = Y[lab]
        blocks.append(S[lab].T @ (Yl - Yl.mean(axis=0)) / len(lab))
    U, s, _ = np.linalg.svd(np.hstack(blocks), full_matrices=False)
    U, _ = svd_flip(U[:, :h], None)
    return U, s[:h]


# --------------------------------------------------------------- vs the explicit matrix
@pytest.mark.parametrize("n, p", [(30, 80), (120, 15)])  # n < p (the point) and n > p
# without Y and without features there is no block: a bad input, tested below
@pytest.mark.parametrize("with_y, features", [("none", True), ("all", True), ("all", False),
                                              ("subset", True), ("subset", False)])
def test_subspace_is_that_of_the_explicit_first_order_matrix(n, p, with_y, features):
    X, S, Y = _data(n, p)
    lab = np.arange(n) if with_y == "all" else np.sort(
        np.random.default_rng(1).choice(n, n // 2, replace=False))
    Yarg = None if with_y == "none" else Y
    kw = {} if Yarg is None else {"Y": Y, "labelled": lab}
    h = 4  # <= q = 5, so also the labels block alone has h directions
    st = PrecomputedStein(X, S)
    B = st.basis(h, include_features=features, **kw)
    U, s = _reference(X, S, Yarg, lab, features, h)
    np.testing.assert_allclose(B.T @ B, np.eye(h), atol=1e-12)
    assert _proj_diff(B, U) < 1e-10
    np.testing.assert_allclose(B, U, atol=1e-9)  # same signs too (svd_flip)
    np.testing.assert_allclose(st.singular_values(h, include_features=features, **kw), s,
                               rtol=1e-9)
    np.testing.assert_allclose(st.latent(h, include_features=features, **kw), X @ B,
                               atol=1e-9)


def test_labelled_forms_agree():
    """Indices, a boolean mask and NaN rows of Y (labelled=None) are the same subset."""
    X, S, Y = _data(40, 60)
    lab = np.array([0, 3, 5, 8, 13, 21, 34])
    mask = np.zeros(40, dtype=bool)
    mask[lab] = True
    Ynan = np.full_like(Y, np.nan)
    Ynan[lab] = Y[lab]
    st = PrecomputedStein(X, S)
    B = st.basis(3, Y=Y, labelled=lab)
    np.testing.assert_allclose(st.basis(3, Y=Y, labelled=mask), B, atol=1e-12)
    np.testing.assert_allclose(st.basis(3, Y=Ynan), B, atol=1e-12)
    np.testing.assert_allclose(st.basis(3, Y=Ynan, labelled=lab), B, atol=1e-12)
    # "auto" takes the features exactly when rows are unlabelled (as SteinLatent)
    np.testing.assert_allclose(st.basis(3, Y=Y, labelled=lab, include_features=True), B,
                               atol=1e-12)
    B_all = st.basis(3, Y=Y)
    np.testing.assert_allclose(st.basis(3, Y=Y, include_features=False), B_all, atol=1e-12)
    assert _proj_diff(B, B_all) > 1e-3  # the cases differ: not one subspace compared


def test_univariate_y_is_one_column():
    X, S, Y = _data(25, 40)
    st = PrecomputedStein(X, S)
    np.testing.assert_allclose(st.basis(1, Y=Y[:, 0], include_features=False),
                               st.basis(1, Y=Y[:, :1], include_features=False), atol=1e-12)


# ------------------------------------------------------------ vs SteinLatent, frozen score
@pytest.mark.parametrize("n, p", [(40, 70), (300, 12)])
@pytest.mark.parametrize("mode", ["unsupervised", "supervised", "supervised+features",
                                  "semi-supervised", "semi-supervised, labels only"])
def test_agrees_with_steinlatent_given_a_frozen_gaussian_score(n, p, mode):
    """With a frozen score SteinLatent's first-order matrix is the same matrix: features
    block over all rows (1/N), labels block over the labelled rows (1/n), each centred
    by its own mean; no rescaling for a frozen score, and pooling plays no part at order
    1. Multi-column Y, so no slice expansion."""
    X, _, Y = _data(n, p)
    # shrinkage smooths the score, so unsupervised first order is not the identity
    score = GaussianScore(shrinkage=0.3).fit(X)
    S = score.evaluate(X)
    lab = np.sort(np.random.default_rng(2).choice(n, n // 3, replace=False))
    Ynan = np.full_like(Y, np.nan)
    Ynan[lab] = Y[lab]
    h = 3
    est_kw, fit_args, pre_kw = {
        "unsupervised": ({}, (X,), {}),
        "supervised": ({}, (X, Y), {"Y": Y}),
        "supervised+features": ({"include_features": True}, (X, Y),
                                {"Y": Y, "include_features": True}),
        "semi-supervised": ({}, (X, Ynan), {"Y": Y, "labelled": lab}),
        "semi-supervised, labels only": ({"include_features": False}, (X, Ynan),
                                         {"Y": Y, "labelled": lab, "include_features": False}),
    }[mode]
    est = SteinLatent(h, order=1, score_model=FrozenEstimator(score), decoder=None,
                      **est_kw).fit(*fit_args)
    st = PrecomputedStein(X, S)
    B = st.basis(h, **pre_kw)
    C = est.components_.T
    assert _proj_diff(B, C) < 1e-9
    np.testing.assert_allclose(B, C, atol=1e-8)  # same sign convention
    np.testing.assert_allclose(st.singular_values(h, **pre_kw), est.singular_values_[:h],
                               rtol=1e-8)


# ------------------------------------------------------------------------ bad input
@pytest.fixture
def fitted():
    X, S, Y = _data(20, 30)
    return PrecomputedStein(X, S), X, S, Y


def test_bad_x_and_scores():
    X, S, _ = _data(20, 30)
    with pytest.raises(ValueError, match="scores has shape"):
        PrecomputedStein(X, S[:, :-1])
    with pytest.raises(ValueError, match="scores has shape"):
        PrecomputedStein(X, S[:-1])
    with pytest.raises(ValueError, match="X must be a 2-D"):
        PrecomputedStein(X[0], S[0])
    Xbad = X.copy()
    Xbad[3, 4] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        PrecomputedStein(Xbad, S)
    Sbad = S.copy()
    Sbad[0, 0] = np.inf
    with pytest.raises(ValueError, match="scores contains NaN"):
        PrecomputedStein(X, Sbad)
    with pytest.raises(ValueError, match="at least 2 rows"):
        PrecomputedStein(X[:1], S[:1])


@pytest.mark.parametrize("h", [0, -1, 21, 2.0, True, "2"])
def test_n_components_out_of_range(fitted, h):
    st = fitted[0]
    with pytest.raises(ValueError, match="n_components"):
        st.basis(h)


def test_bad_labelled(fitted):
    st, _, _, Y = fitted
    with pytest.raises(ValueError, match="labelled has indices out of range"):
        st.basis(2, Y=Y, labelled=[0, 5, 20])
    with pytest.raises(ValueError, match="labelled has indices out of range"):
        st.basis(2, Y=Y, labelled=[-1, 0, 5])
    with pytest.raises(ValueError, match="labelled has repeated"):
        st.basis(2, Y=Y, labelled=[0, 5, 5])
    with pytest.raises(ValueError, match="labelled as a boolean mask"):
        st.basis(2, Y=Y, labelled=np.ones(19, dtype=bool))
    with pytest.raises(ValueError, match="labelled must be"):
        st.basis(2, Y=Y, labelled=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 labelled"):
        st.basis(2, Y=Y, labelled=[4])
    with pytest.raises(ValueError, match="labelled was given without Y"):
        st.basis(2, labelled=[0, 1, 2])


def test_bad_y_and_blocks(fitted):
    st, _, _, Y = fitted
    with pytest.raises(ValueError, match="Y must have shape"):
        st.basis(2, Y=Y[:-1])
    Ybad = Y.copy()
    Ybad[2, 1] = np.nan  # partly missing in a labelled row
    with pytest.raises(ValueError, match="Y has NaN in 1 row"):  # SteinLatent's rule
        st.basis(2, Y=Ybad)
    st.basis(2, Y=Ybad, labelled=[0, 1, 3])  # row 2 unlabelled: never read
    with pytest.raises(ValueError, match="include_features=False needs Y"):
        st.basis(2, include_features=False)
    with pytest.raises(ValueError, match="include_features must be"):
        st.basis(2, Y=Y, include_features="yes")
