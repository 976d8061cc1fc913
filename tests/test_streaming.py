"""partial_fit against fit: every score family, chunk sizes, bad chunks, memory."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsRegressor

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance
from steinlatent.scores import GaussianScore

from .conftest import index_data, partial_fit_chunks, random_covariance

ATTRS = ["stein_matrix_", "components_", "mean_", "decoder_", "singular_values_",
         "eigenvalues_"]


def _data(rng, n=2400, p=6, q=4, shift=0.0):
    X, Y, _ = index_data(rng, n, p, q, 2, cov=random_covariance(rng, p))
    return X + shift, Y + 3.0


def _semi(Y, rng, frac=0.6):
    Ys = Y.copy()
    Ys[rng.random(len(Y)) < frac] = np.nan
    Ys[:5] = Y[:5]  # some labelled rows in every setting
    return Ys


def _assert_same(a, b, rtol=1e-10, null=True):
    assert subspace_distance(a.components_.T, b.components_.T) < 1e-8
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
def test_partial_fit_equals_fit(rng, kwargs, kind):
    X, Y = _inputs(rng, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = SteinLatent(3, random_state=0, **kwargs).fit(X, Y)
        inc = partial_fit_chunks(SteinLatent(3, random_state=0, **kwargs), X, Y,
                                 [300, 1000, 7, 593, 500])
    # the sign-flip noise floor is a sum over rows too: equal on both paths
    _assert_same(inc, full)
    assert inc.n_samples_seen_ == len(X)
    # The projection uses the same mean and components.
    np.testing.assert_allclose(inc.transform(X[:50]), full.transform(X[:50]), atol=1e-9)


@pytest.mark.parametrize("sizes", [[2400], [1200, 1200], [100] * 24, [1, 2399], [2399, 1]])
def test_chunk_size_invariance(rng, sizes):
    X, Y = _data(rng)
    Ys = _semi(Y, rng)
    ref = partial_fit_chunks(SteinLatent(3, order=2), X, Ys, [800, 800, 800])
    _assert_same(partial_fit_chunks(SteinLatent(3, order=2), X, Ys, sizes), ref, null=False)


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
    # Another score: the score fitted by fit is kept, later rows only add Stein sums.
    t = SteinLatent(2, order=1, score_model="t").fit(X[:1500], Y[:1500])
    t.partial_fit(X[1500:], Y[1500:])
    frozen = SteinLatent(2, order=1, score_model=FrozenEstimator(t.score_model_)).fit(X, Y)
    _assert_same(t, frozen)


def _bad_chunk_cases():
    return [
        ("nan_x", "chunk 3 of X contains NaN"),
        ("inf_x", "chunk 3 of X contains infinity"),
        ("width", "chunk 3: X has 5 features, but SteinLatent is expecting 6"),
        ("rows", "chunk 3: Y has 99 rows but X has 100"),
        ("ycols", "chunk 3: Y has 3 columns; the responses seen before had 4"),
        ("ypartial", "chunk 3: Y has NaN in 1 row"),
        ("yinf", "chunk 3: Input Y contains infinity"),
        ("ynone", "chunk 3: earlier chunks were passed with responses Y"),
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
    with pytest.raises(ValueError, match=match):
        est.partial_fit(Xb, Yb)
    # The bad chunk left no trace: continuing equals fitting the good rows.
    est.partial_fit(X[300:], Y[300:])
    _assert_same(est, SteinLatent(2, order=2).fit(X, Y), null=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
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
    # one chunk read from the memmap (12.5 % of the data) and its shifted copy
    assert peak_stream < 0.35 * X.nbytes, peak_stream
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


# ------------------------------------------------------------- every score model
def test_every_score_family_partial_fit_equals_fit(frozen_scores):
    # With a fitted score, chunks add Stein sums: partial_fit is fit, for every family,
    # at both orders and with the noise floor.
    X, Y, _ = frozen_scores["data"]
    for name, model in frozen_scores["models"].items():
        for order in (1, 2, "both") if name != "callable" else (1,):
            kw = {"order": order, "score_model": FrozenEstimator(model), "random_state": 5}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full = SteinLatent(2, **kw).fit(X, Y)
                est = partial_fit_chunks(SteinLatent(2, **kw), X, Y, [500, 1, 299, 400])
            _assert_same(est, full, rtol=1e-8)


@pytest.mark.parametrize("score", ["t", "hyperbolic"])
def test_unfitted_score_refitted_until_the_sample_is_complete(rng, score):
    X, Y = _data(rng, n=1200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Up to score_sample_size rows the score is refitted on all rows seen: = fit.
        est = partial_fit_chunks(SteinLatent(2, order=1, score_model=score), X, Y, [600, 600])
        _assert_same(est, SteinLatent(2, order=1, score_model=score).fit(X, Y), rtol=1e-8)
        # Beyond it, the score fitted on the first rows is kept (frozen).
        small = partial_fit_chunks(
            SteinLatent(2, order=1, score_model=score, score_sample_size=600), X, Y, [600, 600])
        first = SteinLatent(2, order=1, score_model=score).fit(X[:600], Y[:600])
        frozen = SteinLatent(2, order=1, score_model=FrozenEstimator(first.score_model_))
        _assert_same(small, frozen.fit(X, Y), rtol=1e-8)


def test_classes_seen_later_add_columns(rng):
    X, _ = _data(rng, n=900)
    labels = np.array(["a", "b", "c", "d"])[(X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0.5)]
    labels[:300] = np.where(labels[:300] == "d", "c", labels[:300])  # "d" appears later
    est = partial_fit_chunks(SteinLatent(2, order=1), X, labels, [300, 300, 300])
    assert est.classes_.tolist() == ["a", "b", "c", "d"]
    full = SteinLatent(2, order=1).fit(X, labels)
    assert subspace_distance(est.components_.T, full.components_.T) < 1e-8


def test_constant_y_warns_and_transform_says_why(rng):
    X, _ = _data(rng, n=200)
    est = SteinLatent(2, order=1)
    with pytest.warns(UserWarning, match="constant"):
        est.partial_fit(X[:100], np.ones(100))
    with pytest.raises(NotFittedError, match="constant"):
        est.transform(X[:3])
    with pytest.warns(UserWarning, match="labelled row"):
        SteinLatent(2, order=1).partial_fit(X[:100], np.full((100, 2), np.nan))
