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
from steinlatent._refine._kernel import (
    DENSE_FRACTION,
    MAX_TILED_DIM,
    TRUNCATION,
    WEIGHT_CUT,
    GaussianKernel,
    tile,
)
from steinlatent._refine._local_sums import MultiBandwidthSums, _local_fits
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


# ---- the kernel: dense or truncated to tiles (steinlatent._refine._kernel) ----


def _tiled_setup(seed=13, n=4000, p=5, q=2, d=2, n_anchors=80):
    """Rows, responses and a 2-d kernel narrow enough for the tiled path."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
    R = standardise_responses(np.sin(X[:, :q]) + 0.1 * rng.normal(size=(n, q)))
    mean, W = whitening(X)
    anchors = (X[choose_anchors(n, n_anchors, 0)] - mean) @ W
    K = np.linalg.qr(rng.normal(size=(p, d)))[0]
    return X, R, mean, W, anchors, K


def _operand_bound(X, R, mean, coord_map):
    """Sum over rows of |[1, c, c c^T, r, c r^T]|: the dropped weights (each below
    WEIGHT_CUT) can move an anchor's sums by at most WEIGHT_CUT times this."""
    acc = LocalLinearSums(mean, coord_map, np.zeros((1, coord_map.shape[1])),
                          np.eye(coord_map.shape[1]), 1.0, R.shape[1])
    C = (X - mean) @ coord_map
    return np.abs(acc._operand(C, R)).sum(axis=0)


def test_kernel_weights_are_the_gaussian_kernel():
    rng = np.random.default_rng(14)
    Z, A, h = rng.normal(size=(300, 3)), rng.normal(size=(20, 3)), 0.3
    Z[:5] += 1e3  # far rows: weights underflow in the formula, tiny and finite here
    kernel = GaussianKernel(A, h)
    direct = np.exp(-((Z[:, None, :] - A[None]) ** 2).sum(axis=-1) / (2 * h * h))
    W = kernel.weights(kernel.scaled(Z))
    np.testing.assert_allclose(W, direct, rtol=1e-11, atol=1e-300)
    assert np.all((W >= 0) & (W <= 1)) and np.all(W[:5] < 1e-300)
    np.testing.assert_allclose(kernel.weights(kernel.scaled(Z), [3, 7]), W[:, [3, 7]])


def test_tiles_reach_every_pair_within_the_truncation_radius():
    X, R, mean, W, anchors, K = _tiled_setup()
    Z, A = (X - mean) @ W @ K, anchors @ K
    h = 0.1
    tiles = tile(Z)
    assert np.array_equal(np.sort(tiles.order), np.arange(len(Z)))
    plan = GaussianKernel(A, h).plan(tiles)
    assert plan.near is not None and plan.fraction < DENSE_FRACTION  # tiled, not dense
    covered = np.zeros((len(Z), len(A)), dtype=bool)
    for s, e, cols in plan.pieces(tiles, 0, len(Z)):
        covered[np.ix_(tiles.order[s:e], np.arange(len(A)) if cols is None else cols)] = True
    dist = np.sqrt(((Z[:, None, :] - A[None]) ** 2).sum(axis=-1))
    assert covered[dist <= TRUNCATION * h].all()
    assert covered.mean() == pytest.approx(plan.fraction)
    # Dense plans: no truncation, a kernel in many coordinates, or a wide bandwidth.
    assert GaussianKernel(A, h, truncation=None).plan(tiles).near is None
    assert GaussianKernel(A, 50.0).plan(tiles).near is None
    assert tile(np.zeros((5000, MAX_TILED_DIM + 1))) is None


def test_truncated_sums_are_the_dense_sums_within_the_stated_cut():
    # Every dropped weight is below WEIGHT_CUT: |truncated - dense| <= WEIGHT_CUT * sum |F|.
    X, R, mean, W, anchors, K = _tiled_setup()
    h = 0.1
    dense = LocalLinearSums(mean, W, anchors, K, h, R.shape[1], truncation=None).update(X, R)
    tiled = LocalLinearSums(mean, W, anchors, K, h, R.shape[1]).update(X, R)
    bound = WEIGHT_CUT * _operand_bound(X, R, mean, W) + 1e-12 * np.abs(dense.sums)
    assert np.all(np.abs(tiled.sums - dense.sums) <= bound)
    assert tiled.n_samples == dense.n_samples == len(X)
    # MAVE's K-step sums and the multi-bandwidth sums, truncated, to the same answers.
    local = LocalLinearSums(mean, W @ K, anchors @ K, np.eye(2), h, R.shape[1]).update(X, R)
    a, D = _local_fits(local.finalize(), np.eye(2), 1e-3)
    K_dense = MaveStepSums(mean, W, anchors, K, h, D, truncation=None).update(X, R).finalize(a)
    K_tiled = MaveStepSums(mean, W, anchors, K, h, D).update(X, R).finalize(a)
    assert subspace_distance(K_tiled, K_dense) < 1e-10
    hs = (0.05, 0.1, 0.3, 1e3)
    grid = MultiBandwidthSums(mean, W, anchors, K, hs, R.shape[1]).update(X, R)
    for h_i, sums in zip(hs, grid.sums, strict=True):
        one = LocalLinearSums(mean, W, anchors, K, h_i, R.shape[1], truncation=None)
        one.update(X, R)
        bound = WEIGHT_CUT * _operand_bound(X, R, mean, W) + 1e-12 * np.abs(one.sums)
        assert np.all(np.abs(sums - one.sums) <= bound)
    st = grid.finalize()
    assert len(st) == len(hs) and st[1]["S2"].shape == (len(anchors), 5, 5)


@settings(max_examples=15, deadline=None)
@given(split=st.integers(1, 3999))
def test_truncated_sums_blockwise_equal_one_shot(split):
    # Other blocks sort into other tiles and drop other pairs, all below the cut.
    X, R, mean, W, anchors, K = _tiled_setup()
    h = 0.1

    def acc():
        return LocalLinearSums(mean, W, anchors, K, h, R.shape[1])

    one = acc().update(X, R)
    merged = acc().update(X[:split], R[:split]).merge(acc().update(X[split:], R[split:]))
    bound = 2 * WEIGHT_CUT * _operand_bound(X, R, mean, W) + 1e-12 * np.abs(one.sums)
    assert np.all(np.abs(merged.sums - one.sums) <= bound)


def test_threads_split_the_work_and_restore_blas():
    from threadpoolctl import threadpool_info, threadpool_limits

    X, R, mean, W, anchors, K = _tiled_setup()
    results = {}
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            acc = LocalLinearSums(mean, W, anchors, K, 0.1, R.shape[1]).update(X, R)
            blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
            assert max(blas) == threads  # the one-thread limit of the pass is undone
        results[threads] = acc.sums
    np.testing.assert_allclose(results[2], results[1], rtol=1e-12, atol=1e-12)


def test_multi_bandwidth_merge_and_errors():
    X, R, mean, W, anchors, K = _tiled_setup(n=300)
    a = MultiBandwidthSums(mean, W, anchors, K, (0.5, 1.0), R.shape[1]).update(X[:100], R[:100])
    b = MultiBandwidthSums(mean, W, anchors, K, (0.5, 1.0), R.shape[1]).update(X[100:], R[100:])
    one = MultiBandwidthSums(mean, W, anchors, K, (0.5, 1.0), R.shape[1]).update(X, R)
    np.testing.assert_allclose(a.merge(b).sums, one.sums, rtol=1e-10, atol=1e-10)
    other = MultiBandwidthSums(mean, W, anchors, K, (0.5, 2.0), R.shape[1])
    with pytest.raises(ValueError, match="Cannot merge"):
        one.merge(other)
    with pytest.raises(ValueError, match="R has shape"):
        one.update(X, R[:, :1])
