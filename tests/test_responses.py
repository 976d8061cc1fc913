"""Response plans: expansion of a univariate y into slices (SIR) or a callable."""

import warnings

import numpy as np
import pytest

from steinlatent import SteinLatent
from steinlatent._accumulate import AccumulatorSpec, ScoreAccumulator
from steinlatent._responses import (
    FixedSlices,
    n_slices,
    plan_responses,
    resolve_expansion,
    slice_edges,
)
from steinlatent.metrics import subspace_distance
from steinlatent.scores import GaussianScore


def _li(n=1500, p=6, seed=0, noise=0.2):
    """Li (1991): y = z1 / (0.5 + (z2 + 1.5)^2) + noise, B = span(e1, e2)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = X[:, 0] / (0.5 + (X[:, 1] + 1.5) ** 2) + noise * rng.standard_normal(n)
    return X, y, np.eye(p)[:, :2]


def _sir(X, y, edges, r):
    """Sliced inverse regression from its definition, with the given slices."""
    idx = np.searchsorted(edges, y, side="right")
    mu, S = X.mean(0), np.cov(X, rowvar=False, bias=True)
    vals, vecs = np.linalg.eigh(S)
    isq = (vecs / np.sqrt(vals)) @ vecs.T
    Z = (X - mu) @ isq
    V = sum(np.mean(idx == h) * np.outer(Z[idx == h].mean(0), Z[idx == h].mean(0))
            for h in range(len(edges) + 1))
    w, e = np.linalg.eigh(V)
    return isq @ e[:, np.argsort(-w)[:r]]


def test_slices_with_the_gaussian_score_are_sir():
    X, y, B = _li()
    edges = slice_edges(y, 3)  # k + 1 slices: the two spans coincide exactly
    est = SteinLatent(2, order=1, response_expansion=FixedSlices(edges)).fit(X, y)
    assert subspace_distance(est.components_.T, _sir(X, y, edges, 2)) < 1e-8
    assert subspace_distance(est.components_.T, B) < 0.3


def test_slices_match_statsmodels_sir():
    dimred = pytest.importorskip("statsmodels.regression.dimred")
    X, y, B = _li(n=1500)
    # statsmodels sorts y and cuts it into slices of slice_n rows: 3 slices of 500,
    # the same as the quantile edges at 1/3 and 2/3.
    sm = np.asarray(dimred.SlicedInverseReg(y, X).fit(slice_n=500).params)[:, :2]
    est = SteinLatent(2, order=1, response_expansion=FixedSlices(slice_edges(y, 3)))
    assert subspace_distance(est.fit(X, y).components_.T, sm) < 1e-6


def test_default_expands_a_univariate_y_when_more_directions_are_asked():
    X, y, B = _li(n=2000)
    est = SteinLatent(2, random_state=0).fit(X, y)  # response_expansion="auto"
    assert est.order_ == 1 and est.stein_matrix_.shape == (6, n_slices(2000, 2))
    assert subspace_distance(est.components_.T, B) < 0.3
    with pytest.raises(ValueError, match="rank"):
        SteinLatent(2, order=1, response_expansion=None).fit(X, y)
    one = SteinLatent(1, random_state=0).fit(X, y)  # one direction: y is kept as is
    assert one.stein_matrix_.shape == (6, 1)


def test_second_order_on_slices_sees_even_links():
    """The SAVE/pHd case: y even in both directions, E[x | y] = 0, first order blind."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 6))
    y = X[:, 0] ** 2 + 2 * np.cos(X[:, 1]) + 0.3 * rng.standard_normal(3000)
    B = np.eye(6)[:, :2]
    second = SteinLatent(2, order=2, response_expansion="slices", random_state=0).fit(X, y)
    assert second.pooling_ == "stacked" and second.stein_matrix_.shape == (6, 60)
    assert subspace_distance(second.components_.T, B) < 0.3
    # order=2 alone keeps y ("auto"): its matrix has full rank already (pHd).
    raw = SteinLatent(2, order=2, random_state=0).fit(X, y)
    assert raw.stein_matrix_.shape == (6, 6)
    assert subspace_distance(raw.components_.T, B) < 0.3
    first = SteinLatent(2, order=1, random_state=0).fit(X, y)
    assert subspace_distance(first.components_.T, B) > 0.8


def test_n_slices_rule_and_edges():
    assert n_slices(2000, 2) == 10
    assert n_slices(300, 2) == 3
    assert n_slices(300, "auto") == 4
    assert n_slices(5000, 12) == 13
    assert n_slices(5000, 2, n_distinct=4) == 4
    y = np.repeat([0.0, 1.0, 2.0], 10)
    e = slice_edges(y, 10)  # ties merge repeated quantiles
    assert np.all(np.diff(e) > 0)


def test_resolve_expansion():
    y = np.arange(10.0)
    assert resolve_expansion("auto", y, 2, categorical=False) == "slices"
    assert resolve_expansion("auto", y, "auto", categorical=False) == "slices"
    assert resolve_expansion("auto", y, 1, categorical=False) is None
    assert resolve_expansion("auto", np.c_[y, y], 2, categorical=False) is None
    assert resolve_expansion("auto", y, 2, categorical=True) is None
    assert resolve_expansion("auto", y, 2, categorical=False, order=2) is None
    assert resolve_expansion("auto", y, 2, categorical=False, order="both") == "slices"
    assert resolve_expansion("auto", y, 2, categorical=False, pooling="mean") is None
    assert resolve_expansion(None, y, 2, categorical=False) is None
    with pytest.raises(ValueError, match="response_expansion"):
        resolve_expansion("bins", y, 2, categorical=False)


def test_plan_encodes_blocks_with_fixed_edges_and_unlabelled_rows():
    y = np.linspace(0, 1, 1000)
    plan = plan_responses(y, include_features="auto", response_type="auto",
                          response_expansion="slices", n_components=2)
    L, lab = plan.encode(np.array([0.05, np.nan, 0.95]), 3)
    assert L.shape == (3, 10) and lab.tolist() == [True, False, True]
    assert L[0, 0] == 1 and L[2, 9] == 1 and not L[1].any()
    with pytest.raises(ValueError, match="univariate"):
        plan.encode(np.zeros((3, 2)), 3)


def test_callable_expansion():
    X, y, B = _li(n=2000)

    def expand(v):
        return np.column_stack([v, np.abs(v), v**2])

    est = SteinLatent(2, order=1, response_expansion=expand).fit(X, y)
    assert est.stein_matrix_.shape == (6, 3)
    assert subspace_distance(est.components_.T, B) < 0.4
    with pytest.raises(ValueError, match="shape"):
        SteinLatent(2, response_expansion=lambda v: v[:5]).fit(X, y)


def test_blocks_with_one_plan_equal_one_pass():
    """The plan is fixed once; accumulating any split of the rows gives the same sums
    (what partial_fit and the Dask path rely on)."""
    X, y, _ = _li(n=1200)
    plan = plan_responses(y[:400], include_features=False, response_type="continuous",
                          response_expansion="slices", n_components=2, streaming=True)
    model = GaussianScore().fit(X)
    spec = AccumulatorSpec(first=True, second=True, null=True, pooling="stacked", seed=1)
    whole = ScoreAccumulator(model, plan, spec).update(X, y).finalize()
    parts = [ScoreAccumulator(model, plan, spec) for _ in range(3)]
    for acc, rows in zip(parts, np.array_split(np.arange(1200), 3), strict=True):
        acc.n_rows = int(rows[0])  # global offset of the block (noise-floor signs)
        acc.shift_x, acc.shift_y = whole_shifts(X, y, plan)
        acc.update(X[rows], y[rows])
    merged = parts[0].merge(parts[1]).merge(parts[2]).finalize()
    a, b = whole.blocks["labels"], merged.blocks["labels"]
    np.testing.assert_allclose(a.first, b.first, atol=1e-12)
    np.testing.assert_allclose(a.second, b.second, atol=1e-12)
    np.testing.assert_allclose(a.second_null, b.second_null, atol=1e-12)


def whole_shifts(X, y, plan):
    L, lab = plan.encode(y, len(y))
    return X.mean(0), L[lab].mean(0)


# Every path settles its response plan in _session.settle: with fixed edges partial_fit
# and Dask equal fit (Dask reads a univariate y whole, so it equals fit at "auto" too).


def test_partial_fit_with_fixed_slices_equals_fit():
    X, y, _ = _li(n=1500)
    expand = FixedSlices(slice_edges(y, 4))
    full = SteinLatent(2, order=1, response_expansion=expand, random_state=0).fit(X, y)
    est = SteinLatent(2, order=1, response_expansion=expand, random_state=0)
    for rows in np.array_split(np.arange(1500), 3):
        est.partial_fit(X[rows], y[rows])
    np.testing.assert_allclose(est.components_, full.components_, atol=1e-10)


def test_dask_with_fixed_slices_equals_fit():
    da = pytest.importorskip("dask.array")
    X, y, _ = _li(n=1500)
    expand = FixedSlices(slice_edges(y, 4))
    full = SteinLatent(2, order=1, response_expansion=expand, random_state=0).fit(X, y)
    est = SteinLatent(2, order=1, response_expansion=expand, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(da.from_array(X, chunks=(500, 6)), da.from_array(y, chunks=500))
    np.testing.assert_allclose(est.components_, full.components_, atol=1e-10)


def test_partial_fit_auto_slices_use_the_first_chunk_edges():
    X, y, B = _li(n=3000)
    est = SteinLatent(2, order=1, random_state=0)
    with pytest.warns(UserWarning, match="response_expansion"):
        for rows in np.array_split(np.arange(3000), 3):
            est.partial_fit(X[rows], y[rows])
    full = SteinLatent(2, order=1, random_state=0).fit(X, y)
    # edges from the first 1000 rows instead of all 3000: close, not equal
    from steinlatent.metrics import subspace_distance

    assert subspace_distance(est.components_.T, full.components_.T) < 0.15
