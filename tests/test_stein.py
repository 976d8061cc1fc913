"""The Stein matrices (steinlatent._stein) and the row blocks they are computed on."""

from __future__ import annotations

import numpy as np
import pytest

import steinlatent._stein as stein
import steinlatent.scores._elliptical as elliptical
import steinlatent.scores._student_t as student_t
from steinlatent._stein import StackedResponses, first_order_matrix
from steinlatent.datasets import true_score
from steinlatent.scores import StudentTScore


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Row blocks of 7 rows, so every sum below runs over many uneven blocks."""
    for module in (stein, elliptical, student_t):
        monkeypatch.setattr(module, "chunk_rows", lambda n_columns: 7)


def _data(n=200, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_t(6, size=(n, p))
    Y = np.c_[np.sin(X[:, 0]), X[:, 1] ** 2, X[:, 0] * X[:, 2]]
    return X, Y - Y.mean(0)


def test_first_order_blocks_equal_the_dense_sums(tiny_blocks):
    X, Y = _data()
    score = true_score("t", np.eye(4), df=6)
    S = score.evaluate(X)
    Xc = X - X.mean(0)
    sup = first_order_matrix(score, X, StackedResponses(None, Y, slice(None)))
    np.testing.assert_allclose(sup, S.T @ Y / len(X), rtol=1e-12, atol=1e-14)
    mask = np.random.default_rng(1).random(len(X)) < 0.3
    semi = first_order_matrix(score, X, StackedResponses(Xc, Y[mask], mask))
    dense = np.hstack([S.T @ Xc / len(X), S[mask].T @ Y[mask] / mask.sum()])
    np.testing.assert_allclose(semi, dense, rtol=1e-12, atol=1e-14)


def test_elliptical_second_order_blocks_equal_the_explicit_sum(tiny_blocks):
    X, _ = _data(n=60, seed=2)
    score = true_score("t", np.diag([1.0, 2.0, 0.5, 1.5]), df=6)
    w = np.random.default_rng(3).normal(size=len(X))
    s, J = score.evaluate(X), score.jacobian(X)
    explicit = np.einsum("i,ia,ib->ab", w, s, s) - np.einsum("i,iab->ab", w, J)
    np.testing.assert_allclose(score.second_order_sum(X, w), explicit, rtol=1e-10,
                               atol=1e-12)


def test_student_t_em_does_not_depend_on_the_blocks(monkeypatch):
    X, _ = _data(n=500, p=3, seed=4)
    whole = StudentTScore().fit(X)
    monkeypatch.setattr(student_t, "chunk_rows", lambda n_columns: 7)
    blocks = StudentTScore().fit(X)
    assert blocks.n_iter_ == whole.n_iter_
    np.testing.assert_allclose(blocks.covariance_, whole.covariance_, rtol=1e-9)
    np.testing.assert_allclose(blocks.location_, whole.location_, rtol=1e-9, atol=1e-12)
    assert blocks.df_ == pytest.approx(whole.df_, rel=1e-7)
