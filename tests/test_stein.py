"""The decomposition step (steinlatent._stein) and the score models' row blocks."""

from __future__ import annotations

import numpy as np
import pytest

import steinlatent._accumulate as accumulate
import steinlatent.scores._elliptical as elliptical
import steinlatent.scores._student_t as student_t
from steinlatent import SteinLatent
from steinlatent._stein import decompose_first_order, decompose_second_order
from steinlatent.datasets import true_score
from steinlatent.scores import StudentTScore


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Row blocks of 7 rows, so every sum below runs over many uneven blocks."""
    monkeypatch.setattr(accumulate, "chunk_rows", lambda n_columns: 7)
    for module in (elliptical, student_t):
        monkeypatch.setattr(module, "chunk_rows", lambda n_columns: 7)


def _data(n=200, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_t(6, size=(n, p))
    Y = np.c_[np.sin(X[:, 0]), X[:, 1] ** 2, X[:, 0] * X[:, 2]]
    return X, Y


def test_first_order_matrix_equals_the_dense_sums(tiny_blocks):
    # M1 = (1/n) S^T (Y - Ybar); semi-supervised: [(1/N) S^T Xc, (1/n_L) S_L^T Yc_L].
    from sklearn.frozen import FrozenEstimator

    X, Y = _data()
    score = true_score("t", np.eye(4), df=6).fit(X)
    S = score.evaluate(X)
    frozen = FrozenEstimator(score)
    sup = SteinLatent(2, order=1, score_model=frozen).fit(X, Y).stein_matrix_
    np.testing.assert_allclose(sup, S.T @ (Y - Y.mean(0)) / len(X), rtol=1e-10, atol=1e-13)
    mask = np.random.default_rng(1).random(len(X)) < 0.3
    Ys = np.where(mask[:, None], Y, np.nan)
    semi = SteinLatent(2, order=1, score_model=frozen).fit(X, Ys).stein_matrix_
    Xc, Yl = X - X.mean(0), Y[mask] - Y[mask].mean(0)
    dense = np.hstack([S.T @ Xc / len(X), S[mask].T @ Yl / mask.sum()])
    np.testing.assert_allclose(semi, dense, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("pooling", ["mean", "stacked"])
def test_second_order_matrix_equals_the_explicit_sum(tiny_blocks, pooling):
    # M2_j = (1/n) sum_i (y_ij - ybar_j) T(x_i), T = s s^T - grad s; mean pooling averages
    # over j, stacked pooling puts M2_j / sd_j side by side.
    from sklearn.frozen import FrozenEstimator

    X, Y = _data(n=120, seed=2)
    score = true_score("t", np.diag([1.0, 2.0, 0.5, 1.5]), df=6).fit(X)
    s, J = score.evaluate(X), score.jacobian(X)
    T = np.einsum("ia,ib->iab", s, s) - J
    Yc = Y - Y.mean(0)
    Mj = np.einsum("ij,iab->jab", Yc, T) / len(X)
    est = SteinLatent(2, order=2, pooling=pooling, score_model=FrozenEstimator(score),
                      random_state=0).fit(X, Y)
    if pooling == "mean":
        expected = Mj.mean(0)
    else:
        expected = np.hstack(list(Mj / Y.std(0)[:, None, None]))
    np.testing.assert_allclose(est.stein_matrix_, expected, rtol=1e-9, atol=1e-12)


def test_elliptical_second_order_2d_weights_equal_the_columns(tiny_blocks):
    X, _ = _data(n=60, seed=2)
    score = true_score("t", np.diag([1.0, 2.0, 0.5, 1.5]), df=6).fit(X)
    W = np.random.default_rng(3).normal(size=(len(X), 3))
    s, J = score.evaluate(X), score.jacobian(X)
    explicit = np.einsum("ik,ia,ib->kab", W, s, s) - np.einsum("ik,iab->kab", W, J)
    np.testing.assert_allclose(score.second_order_sum(X, W), explicit, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(score.second_order_sum(X, W[:, 1]), explicit[1], rtol=1e-10,
                               atol=1e-12)


def test_decompositions_fix_signs_and_order():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 3))
    U, s = decompose_first_order(M)
    assert np.all(np.diff(s) <= 0)
    assert np.all(U[np.argmax(np.abs(U), axis=0), range(3)] > 0)
    A = rng.normal(size=(5, 5))
    vecs, vals = decompose_second_order(A + A.T)
    assert np.all(np.diff(np.abs(vals)) <= 1e-12)
    np.testing.assert_allclose((A + A.T) @ vecs, vecs * vals, atol=1e-10)


def test_student_t_em_does_not_depend_on_the_blocks(monkeypatch):
    X, _ = _data(n=500, p=3, seed=4)
    whole = StudentTScore().fit(X)
    monkeypatch.setattr(student_t, "chunk_rows", lambda n_columns: 7)
    blocks = StudentTScore().fit(X)
    assert blocks.n_iter_ == whole.n_iter_
    # Rounding of the block sums moves the log-likelihood by an ulp, and a maximum in
    # nu is resolved to ~sqrt(ulp / curvature) (~1e-7 here): nu and what follows it
    # agree to that, not to the rounding of a sum.
    np.testing.assert_allclose(blocks.covariance_, whole.covariance_, rtol=1e-6)
    np.testing.assert_allclose(blocks.location_, whole.location_, rtol=1e-6, atol=1e-12)
    assert blocks.df_ == pytest.approx(whole.df_, rel=1e-5)
