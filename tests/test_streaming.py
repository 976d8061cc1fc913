"""partial_fit and the sufficient-statistics fit against explicit formulas and against fit."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.covariance import OAS, ShrunkCovariance
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsRegressor

from steinlatent import SteinLatent
from steinlatent._sufficient import SufficientStats, weighted_gram
from steinlatent.scores import GaussianScore

from .conftest import index_data, random_covariance

ATTRS = ["stein_matrix_", "components_", "mean_", "decoder_", "singular_values_",
         "eigenvalues_"]


class _ExplicitGaussian(GaussianScore):
    """Same score, but a subclass: SteinLatent then takes the generic, score-based path."""


def _data(rng, n=2400, p=6, q=4, shift=0.0):
    X, Y, _ = index_data(rng, n, p, q, 2, cov=random_covariance(rng, p))
    return X + shift, Y + 3.0


def _semi(Y, rng, frac=0.6):
    Ys = Y.copy()
    Ys[rng.random(len(Y)) < frac] = np.nan
    Ys[:5] = Y[:5]  # some labelled rows in every setting
    return Ys


def _assert_same(a, b, rtol=1e-10, null=True):
    for name in ATTRS:
        if not hasattr(b, name):
            assert not hasattr(a, name), name
            continue
        va, vb = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        scale = max(np.abs(vb).max(), 1e-300)
        np.testing.assert_allclose(va, vb, rtol=0, atol=rtol * scale, err_msg=name)
    assert a.mode_ == b.mode_ and a.n_labelled_ == b.n_labelled_ and a.order_ == b.order_
    if null:
        if b.null_level_ is None:
            assert a.null_level_ is None
        else:
            assert abs(a.null_level_ - b.null_level_) <= rtol * b.null_level_


def _stream(est, X, Y, sizes):
    start = 0
    for size in sizes:
        sl = slice(start, start + size)
        est.partial_fit(X[sl], None if Y is None else Y[sl])
        start += size
    assert start == len(X)
    return est


SETTINGS = [
    pytest.param({"order": 1}, "sup", id="supervised-order1"),
    pytest.param({"order": 2}, "sup", id="supervised-order2"),
    pytest.param({"order": 2}, "unsup", id="unsupervised-order2"),
    pytest.param({"order": 1}, "semi", id="semi-order1"),
    pytest.param({"order": 2}, "semi", id="semi-order2"),
    pytest.param({"order": 2, "include_features": False}, "semi", id="semi-order2-labels"),
    pytest.param({"order": 1, "score_model": GaussianScore(shrinkage=0.3)}, "unsup", id="shrunk"),
    pytest.param({"order": 1, "score_model": GaussianScore(shrinkage="oas")}, "semi", id="oas"),
]


def _inputs(rng, kind, shift=0.0):
    X, Y = _data(rng, shift=shift)
    return X, {"sup": Y, "unsup": None, "semi": _semi(Y, rng)}[kind]


@pytest.mark.parametrize("kwargs, kind", SETTINGS)
def test_sufficient_fit_equals_explicit_score_path(rng, kwargs, kind):
    # The row-sum formulas against sum_i s(x_i) y_i^T and sum_i w_i T(x_i) built from
    # the score itself (the generic path), null level (same permutation) included.
    X, Y = _inputs(rng, kind)
    score = kwargs.get("score_model", GaussianScore())
    explicit = _ExplicitGaussian(**score.get_params())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = SteinLatent(3, random_state=7, **kwargs).fit(X, Y)
        slow = SteinLatent(3, random_state=7, **{**kwargs, "score_model": explicit}).fit(X, Y)
    assert hasattr(fast, "_stats") and not hasattr(slow, "_stats")
    _assert_same(fast, slow)
    if fast.order_ == 2:
        assert fast.null_level_ > 0


@pytest.mark.parametrize("kwargs, kind", SETTINGS)
def test_partial_fit_equals_fit(rng, kwargs, kind):
    X, Y = _inputs(rng, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = SteinLatent(3, **kwargs).fit(X, Y)
        inc = _stream(SteinLatent(3, **kwargs), X, Y, [300, 1000, 7, 593, 500])
    _assert_same(inc, full, null=False)
    assert inc.null_level_ is None and inc.n_samples_seen_ == len(X)
    # The projection uses the same mean and components.
    np.testing.assert_allclose(inc.transform(X[:50]), full.transform(X[:50]), atol=1e-9)


@pytest.mark.parametrize("sizes", [[2400], [1200, 1200], [100] * 24, [1, 2399], [2399, 1]])
def test_chunk_size_invariance(rng, sizes):
    X, Y = _data(rng)
    Ys = _semi(Y, rng)
    ref = _stream(SteinLatent(3, order=2), X, Ys, [800, 800, 800])
    _assert_same(_stream(SteinLatent(3, order=2), X, Ys, sizes), ref, null=False)


def test_large_offset_keeps_precision(rng):
    # Shifted sums: X^T X - N mu mu^T would lose ~12 digits at this offset.
    X, Y = _inputs(rng, "sup", shift=1e6)
    X0 = X - 1e6
    a = _stream(SteinLatent(3, order=2), X, Y, [700, 1700])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this link is nearly linear: the null warning
        b = SteinLatent(3, order=2).fit(X0, Y)
    for name in ["stein_matrix_", "components_", "eigenvalues_"]:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0,
                                   atol=1e-6 * np.abs(getattr(b, name)).max())


def test_first_order_is_precision_times_cross_covariance(rng):
    X, Y = _data(rng)
    est = _stream(SteinLatent(2, order=1), X, Y, [1000, 1400])
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expected = np.linalg.solve(Xc.T @ Xc, Xc.T @ Yc)  # P Cov(x, y), n cancels
    np.testing.assert_allclose(est.stein_matrix_, expected, atol=1e-10)


def test_weighted_gram_matches_explicit_sum(rng):
    Z = rng.normal(size=(300, 4))
    w = rng.normal(size=300)
    w[::7] = 0.0
    explicit = sum(wi * np.outer(z, z) for wi, z in zip(w, Z, strict=True))
    np.testing.assert_allclose(weighted_gram(Z, w), explicit, atol=1e-12)


def test_stats_merge_is_concatenation(rng):
    X, Y = _data(rng, n=500)
    Ys = _semi(Y, rng)
    lab = ~np.isnan(Ys).all(axis=1)

    def new():
        return SufficientStats(6, 4, True, True, shift_x=X[:10].mean(0), shift_y=Y[:10].mean(0))

    whole = new().update(X, Ys, lab)
    parts = new().update(X[:123], Ys[:123], lab[:123]).merge(
        new().update(X[123:], Ys[123:], lab[123:])
    )
    for name in ["gram", "gram_lab", "gram_feature_weighted", "gram_label_weighted"]:
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), atol=1e-9)
    assert whole.n_samples == 500 and whole.n_labelled == int(lab.sum())
    np.testing.assert_allclose(whole.covariance(), np.cov(X.T, bias=True), atol=1e-12)


@pytest.mark.parametrize("shrinkage", [None, 0.3, "oas"])
def test_gaussian_fit_from_moments_matches_fit(rng, shrinkage):
    X = rng.multivariate_normal(np.ones(5), random_covariance(rng, 5), size=300)
    ref = GaussianScore(shrinkage=shrinkage).fit(X)
    mom = GaussianScore(shrinkage=shrinkage)._fit_moments(300, X.mean(0), np.cov(X.T, bias=True))
    np.testing.assert_allclose(mom.covariance_, ref.covariance_, atol=1e-12)
    np.testing.assert_allclose(mom.precision_, ref.precision_, atol=1e-10)
    # ... and the sklearn estimators they stand for
    if shrinkage == "oas":
        np.testing.assert_allclose(mom.covariance_, OAS().fit(X).covariance_, atol=1e-12)
    elif shrinkage == 0.3:
        sk = ShrunkCovariance(shrinkage=0.3).fit(X).covariance_
        np.testing.assert_allclose(mom.covariance_, sk, atol=1e-12)
    with pytest.raises(NotImplementedError, match="fourth moments"):
        GaussianScore(shrinkage="ledoit_wolf")._fit_moments(300, X.mean(0), ref.covariance_)


def test_unlabelled_first_chunk_waits_then_fits(rng):
    X, Y = _data(rng)
    Ys = Y.copy()
    Ys[:600] = np.nan
    est = SteinLatent(2, order=1).partial_fit(X[:600], Ys[:600])
    with pytest.raises(NotFittedError):
        est.transform(X[:5])
    assert est.n_features_in_ == 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(X[600:], Ys[600:])
        full = SteinLatent(2, order=1).fit(X, Ys)
    _assert_same(est, full, null=False)


def test_partial_fit_after_fit_continues(rng):
    X, Y = _data(rng)
    est = SteinLatent(2, order=2).fit(X[:1500], Y[:1500]).partial_fit(X[1500:], Y[1500:])
    _assert_same(est, SteinLatent(2, order=2).fit(X, Y), null=False)
    # A generic fit (another score) leaves nothing for partial_fit to continue.
    with pytest.raises(ValueError, match="EM"):
        SteinLatent(2, order=1, score_model="t").fit(X, Y).partial_fit(X, Y)


def _bad_chunk_cases():
    return [
        ("nan_x", "chunk 3 of X contains NaN"),
        ("inf_x", "chunk 3 of X contains infinity"),
        ("width", "chunk 3 of X has 5 features; earlier chunks had 6"),
        ("rows", "chunk 3: Y has 99 rows but X has 100"),
        ("ycols", "chunk 3 of Y has 3 columns; earlier chunks had 4"),
        ("ypartial", "chunk 3 of Y has NaN in 1 row"),
        ("yinf", "chunk 3 of Y contains infinity"),
        ("ynone", "chunk 3: earlier chunks were passed with responses Y"),
        ("labels", "chunk 3 of Y holds class labels"),
    ]


@pytest.mark.parametrize("case, match", _bad_chunk_cases())
def test_bad_chunks_name_the_chunk_and_leave_state_unchanged(rng, case, match):
    X, Y = _data(rng, n=700)
    est = SteinLatent(2, order=2)
    for k in range(3):
        est.partial_fit(X[k * 100 : (k + 1) * 100], Y[k * 100 : (k + 1) * 100])
    Xb, Yb = X[300:400].copy(), Y[300:400].copy()
    if case == "nan_x":
        Xb[17, 2] = np.nan
    elif case == "inf_x":
        Xb[17, 2] = np.inf
    elif case == "width":
        Xb = Xb[:, :5]
    elif case == "rows":
        Yb = Yb[:99]
    elif case == "ycols":
        Yb = Yb[:, :3]
    elif case == "ypartial":
        Yb[4, 1] = np.nan
    elif case == "yinf":
        Yb[4, 1] = -np.inf
    elif case == "ynone":
        Yb = None
    elif case == "labels":
        Yb = np.arange(100) % 3
    with pytest.raises(ValueError, match=match):
        est.partial_fit(Xb, Yb)
    # The bad chunk left no trace: continuing equals fitting the good rows.
    est.partial_fit(X[300:], Y[300:])
    _assert_same(est, SteinLatent(2, order=2).fit(X, Y), null=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"score_model": "t"}, "EM"),
        ({"score_model": "hyperbolic"}, "several passes"),
        ({"score_model": GaussianScore(shrinkage="ledoit_wolf")}, "GaussianScore"),
        ({"order": "both"}, "order='both'"),
        ({"n_components": "auto"}, "n_components='auto'"),
        ({"decoder": KNeighborsRegressor()}, "decoder="),
    ],
)
def test_unsupported_settings_raise_clearly(rng, kwargs, match):
    X, Y = _data(rng, n=200)
    with pytest.raises(ValueError, match=match):
        SteinLatent(**{"n_components": 2, **kwargs}).partial_fit(X, Y)


def test_unsupervised_first_order_exact_score_raises_at_first_chunk(rng):
    X, _ = _data(rng, n=200)
    with pytest.raises(ValueError, match="identity matrix"):
        SteinLatent(2, order=1).partial_fit(X)


def test_memmap_fit_memory_is_bounded(tmp_path, rng):
    # 64 MB on disk; the fit traces one chunk buffer and O(p^2), not the data.
    n, p, q = 160_000, 50, 3
    X = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64,
                                  shape=(n, p))
    for s in range(0, n, 40_000):
        X[s : s + 40_000] = rng.normal(size=(40_000, p))
    Y = np.tanh(X[:, :q]) + 0.1 * rng.normal(size=(n, q))
    X.flush()
    X = np.load(tmp_path / "x.npy", mmap_mode="r")
    est = SteinLatent(2, order=1)
    tracemalloc.start()
    try:
        for s in range(0, n, 20_000):
            est.partial_fit(X[s : s + 20_000], Y[s : s + 20_000])
        peak_stream = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        full = SteinLatent(2, order=1).fit(X, Y)  # the in-memory path reads the memmap too
        peak_fit = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_stream < 0.25 * X.nbytes, peak_stream
    assert peak_fit < 0.75 * X.nbytes, peak_fit
    _assert_same(est, full, null=False)


def test_noise_floor_false_skips_only_the_null(rng):
    X, Y = _data(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = SteinLatent(3, order=2, random_state=0).fit(X, Y)
        b = SteinLatent(3, order=2, noise_floor=False).fit(X, Y)
        c = SteinLatent(3, order=2, score_model="t", noise_floor=False).fit(X, Y)
    assert a.null_level_ > 0 and b.null_level_ is None and c.null_level_ is None
    _assert_same(b, a, null=False)
    with pytest.raises(ValueError, match="noise_floor=True"):
        SteinLatent(2, order="both", noise_floor=False).fit(X, Y)
