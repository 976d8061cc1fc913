"""The refinement core: block-wise sums, the two MAVE K-steps, bandwidths, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steinlatent._refine import (
    GLOBAL_FACTOR,
    ArrayRows,
    LocalLinearSums,
    MaveStepSums,
    anchor_losses,
    bandwidth_rule,
    best_factor,
    choose_anchors,
    mave_step,
    prepare,
    refine_subspace,
    standardise_responses,
    whitening,
)
from steinlatent._refine._local_sums import _local_fits
from steinlatent.metrics import subspace_distance


def _single_index(rng, n=600, p=5, noise=0.1, link=np.sin):
    X = rng.normal(size=(n, p))
    b = np.linalg.qr(rng.normal(size=(p, 1)))[0]
    y = link(X @ b) + noise * rng.normal(size=(n, 1))
    return X, y, b


def _setup(rng, n=120, p=4, q=3, d=2, n_anchors=15):
    X = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
    R = standardise_responses(rng.normal(size=(n, q)) + X[:, :q] ** 2)
    mean, W = whitening(X)
    anchors = (X[choose_anchors(n, n_anchors, 0)] - mean) @ W
    K = np.linalg.qr(rng.normal(size=(p, d)))[0]
    return X, R, mean, W, anchors, K


@settings(max_examples=25, deadline=None)
@given(block=st.integers(1, 130), split=st.integers(1, 119))
def test_local_sums_blockwise_equal_one_shot(block, split):
    X, R, mean, W, anchors, K = _setup(np.random.default_rng(0))
    one = LocalLinearSums(mean, W, anchors, K, 0.8, R.shape[1]).update(X, R)
    blocks = LocalLinearSums(mean, W, anchors, K, 0.8, R.shape[1]).update(X, R, rows=block)
    a = LocalLinearSums(mean, W, anchors, K, 0.8, R.shape[1]).update(X[:split], R[:split])
    b = LocalLinearSums(mean, W, anchors, K, 0.8, R.shape[1]).update(X[split:], R[split:])
    merged = a.merge(b)
    assert merged.n_samples == one.n_samples == len(X)
    np.testing.assert_allclose(blocks.sums, one.sums, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(merged.sums, one.sums, rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(block=st.integers(1, 130), split=st.integers(1, 119))
def test_mave_sums_blockwise_equal_one_shot(block, split):
    X, R, mean, W, anchors, K = _setup(np.random.default_rng(1))
    slopes = np.random.default_rng(2).normal(size=(len(anchors), K.shape[1], R.shape[1]))
    intercepts = np.random.default_rng(3).normal(size=(len(anchors), R.shape[1]))

    def acc():
        return MaveStepSums(mean, W, anchors, K, 0.8, slopes)

    one = acc().update(X, R).finalize(intercepts)
    blocks = acc().update(X, R, rows=block).finalize(intercepts)
    merged = acc().update(X[:split], R[:split]).merge(acc().update(X[split:], R[split:]))
    assert subspace_distance(blocks, one) < 1e-8
    assert subspace_distance(merged.finalize(intercepts), one) < 1e-8


def test_fast_mave_step_equals_dense_step():
    # The K-step from row sums of d^2 x m^2 terms equals the one from per-anchor Gram
    # matrices (mave_step) for the same weights and local fits.
    X, R, mean, W, anchors, K = _setup(np.random.default_rng(4), n=300, p=5, d=2)
    h = 0.9
    dense = LocalLinearSums(mean, W, anchors, K, h, R.shape[1]).update(X, R).finalize()
    K_dense = mave_step(dense, K)
    local = LocalLinearSums(mean, W @ K, anchors @ K, np.eye(2), h, R.shape[1])
    a, D = _local_fits(local.update(X, R).finalize(), np.eye(2), 1e-3)
    K_fast = MaveStepSums(mean, W, anchors, K, h, D).update(X, R).finalize(a)
    assert subspace_distance(K_fast, K_dense) < 1e-8


def test_merge_rejects_other_pass():
    X, R, mean, W, anchors, K = _setup(np.random.default_rng(5))
    a = LocalLinearSums(mean, W, anchors, K, 0.8, R.shape[1])
    b = LocalLinearSums(mean, W, anchors, K, 0.5, R.shape[1])
    with pytest.raises(ValueError, match="Cannot merge"):
        a.merge(b)


def test_bandwidth_rule():
    # Normal reference when the neighbour target is met, wider otherwise.
    nr = (4 / 5) ** (1 / 7) * 5000 ** (-1 / 7)
    assert bandwidth_rule(5000, 3, 3, neighbours=0) == pytest.approx(nr)
    assert bandwidth_rule(5000, 3, 3) >= nr
    assert bandwidth_rule(5000, 30, 30) > bandwidth_rule(5000, 3, 3)
    assert bandwidth_rule(50_000, 3, 3) < bandwidth_rule(5000, 3, 3)


def test_opg_linear_single_index_is_near_exact():
    rng = np.random.default_rng(6)
    X, y, b = _single_index(rng, n=1000, p=6, link=lambda z: 2 * z)
    res = refine_subspace(X, standardise_responses(y), n_components=1, method="opg",
                          refine=False, random_state=0)
    assert subspace_distance(res.basis, b) < 0.03


@pytest.mark.parametrize("method", ["opg", "mave"])
def test_refinement_improves_on_first_pass(method):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(1500, 8))
    B = np.linalg.qr(rng.normal(size=(8, 2)))[0]
    Z = X @ B
    Y = np.column_stack([np.sin(Z[:, 0]) + Z[:, 1] ** 2, np.tanh(Z[:, 1]), Z[:, 0] * Z[:, 1]])
    Y += 0.2 * rng.normal(size=Y.shape)
    res = refine_subspace(X, standardise_responses(Y), n_components=2, method=method,
                          random_state=0)
    assert res.converged and res.n_iter == len(res.path) >= 1
    assert subspace_distance(res.basis, B) < 0.15
    assert subspace_distance(res.basis, B) < subspace_distance(res.initial_basis, B)


def test_start_from_truth_stays_and_start_space_option():
    rng = np.random.default_rng(8)
    X, y, b = _single_index(rng, n=1000, p=6)
    R = standardise_responses(y)
    extra = np.linalg.qr(np.hstack([b, rng.normal(size=(6, 1))]))[0]
    for kw in ({}, {"method": "opg", "space": "start"}):
        res = refine_subspace(X, R, extra, n_components=1, random_state=0, **kw)
        assert subspace_distance(res.basis, b) < 0.1


def test_affine_equivariance():
    # x -> A x + c maps span(B) to span(A^{-T} B): the whitened coordinates are the same.
    rng = np.random.default_rng(9)
    X, y, b = _single_index(rng, n=800, p=5)
    R = standardise_responses(y)
    A = rng.normal(size=(5, 5)) + 3 * np.eye(5)
    res = refine_subspace(X, R, n_components=1, random_state=0)
    res_t = refine_subspace(X @ A.T + 7.0, R, n_components=1, random_state=0)
    assert subspace_distance(res_t.basis, np.linalg.solve(A.T, res.basis)) < 1e-6


def test_cv_detects_linear_responses():
    rng = np.random.default_rng(10)
    grid = (1.0, GLOBAL_FACTOR)
    for link, want_global in ((lambda z: z, True), (lambda z: np.sin(2 * z), False)):
        X, y, b = _single_index(rng, n=800, p=4, link=link)
        problem = prepare(ArrayRows(X, y), n_anchors=200, random_state=0)
        K = problem.whitened(b)
        factor, _ = best_factor(anchor_losses(problem, K, grid), grid)
        assert (factor == GLOBAL_FACTOR) == want_global


def _heavy_tailed(seed, n=2000, p=10, r=3):
    """t(5) x with a random correlated Sigma; cubic and exponential links of B^T x."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(p, p)))[0]
    A = np.linalg.cholesky((Q * (np.abs(rng.normal(size=p)) + 1)) @ Q.T)
    g = rng.chisquare(5, size=n)
    X = (rng.normal(size=(n, p)) @ A.T) / np.sqrt(g / 5)[:, None] * np.sqrt(3 / 5)
    B = np.linalg.qr(rng.normal(size=(p, r)))[0]
    Z = X @ B
    Y = np.column_stack([f(Z[:, j]) for j in range(r) for f in (lambda z: z**3, np.exp)])
    return X, Y + 0.5 * rng.normal(size=Y.shape), B


@pytest.mark.parametrize("seed", [6, 7, 11])
def test_heavy_tailed_responses_keep_local_fits(seed):
    # A few anchors have huge responses. With a squared loss their leave-one-out errors
    # prefer global linear fits on these three data sets (distances 0.40-0.74); the
    # absolute loss keeps the local fits and the true subspace.
    X, Y, B = _heavy_tailed(seed)
    res = refine_subspace(X, standardise_responses(Y), n_components=3, random_state=0)
    assert not res.global_fits
    assert subspace_distance(res.basis, B) < 0.05


def test_standardise_responses_drops_constant_and_rescales():
    rng = np.random.default_rng(11)
    Y = np.column_stack([rng.normal(size=50), np.full(50, 3.0), rng.normal(size=50)])
    R = standardise_responses(Y)
    assert R.shape == (50, 2)
    np.testing.assert_allclose(R, standardise_responses(5 * Y - 2), atol=1e-12)
    with pytest.raises(ValueError, match="constant"):
        standardise_responses(np.ones((5, 2)))


def test_errors():
    rng = np.random.default_rng(12)
    X, y, b = _single_index(rng, n=100, p=4)
    R = standardise_responses(y)
    with pytest.raises(ValueError, match="at least n_components"):
        refine_subspace(X, R, b, n_components=2)
    with pytest.raises(ValueError, match="shape"):
        refine_subspace(X, R, np.ones((3, 2)), n_components=1)
    with pytest.raises(ValueError, match="method"):
        refine_subspace(X, R, n_components=1, method="sir")
    # A duplicated feature: the local fits run in the 4 directions that vary, and the
    # index they find is the true one.
    Xd = np.hstack([X, X[:, :1]])
    with pytest.warns(UserWarning, match="collinear"):
        res = refine_subspace(Xd, R, n_components=1)
    assert abs(np.corrcoef((Xd @ res.basis)[:, 0], (X @ b)[:, 0])[0, 1]) > 0.99
    with pytest.raises(ValueError, match="bandwidth"):
        refine_subspace(X, R, n_components=1, bandwidth="silverman")
