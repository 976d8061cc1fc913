"""One fit session: the settled spec, and fit, partial_fit and Dask agreeing at defaults."""

import copy
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from steinlatent import SteinLatent, SteinRegressor
from steinlatent._responses import FixedSlices, slice_edges
from steinlatent._session import pinned_refit, settle
from steinlatent.scores import KernelScore, StudentTScore

from .conftest import assert_same_fit, fitted_names, partial_fit_chunks

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _li(n=3000, p=6, seed=0):
    """Li (1991): a univariate y of two directions."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = X[:, 0] / (0.5 + (X[:, 1] + 1.5) ** 2) + 0.2 * rng.standard_normal(n)
    return X, y


def _three_ways(est, X, Y, sizes, dask_chunks=500, dask_y=False):
    full = _quiet(clone(est).fit, X, Y)
    inc = _quiet(partial_fit_chunks, clone(est), X, Y, sizes)
    Yd = Y if (Y is None or not dask_y) else da.from_array(Y, chunks=dask_chunks)
    with dask.config.set(scheduler="sync"):
        lazy = _quiet(clone(est).fit, da.from_array(X, chunks=(dask_chunks, -1)), Yd)
    return full, inc, lazy


def test_default_pooling_is_settled_the_same_on_every_path():
    # 10 responses and 60 features: x does not join a supervised fit, so "auto" stacks
    # the 10 responses on every path (partial_fit once counted 70 columns: mean pooling).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 60))
    Y = np.sin(X[:, :2]) @ rng.standard_normal((2, 10)) + 0.1 * rng.standard_normal((4000, 10))
    full, inc, lazy = _three_ways(SteinLatent(2, order=2), X, Y, [500] * 8)
    for est in (full, inc, lazy):
        assert est.pooling_ == "stacked" and est.spec_.include_features is False
        assert hasattr(est, "singular_values_") and not hasattr(est, "eigenvalues_")
    assert_same_fit(inc, full, X=X)
    assert_same_fit(lazy, full, X=X)


def test_spec_records_how_every_auto_resolved():
    X, y = _li()
    est = SteinLatent(2).fit(X, y)
    spec = est.spec_
    assert spec.path == "fit" and spec.order == 1 and spec.pooling == "stacked"
    assert spec.plan.expansion == "slices" and len(spec.plan.edges) == 9
    assert spec.include_features is False and spec.scale == 1.0 and spec.seed == 0
    assert spec.score_fit == "moments"
    L, labelled = spec.plan.encode(y[:5], 5)
    assert L.shape == (5, 10) and labelled.all() and np.all(L.sum(axis=1) == 1)
    # written out, the spec gives the same estimator
    written = SteinLatent(2, order=spec.order, pooling=spec.pooling, include_features=False,
                          response_expansion=FixedSlices(spec.plan.edges)).fit(X, y)
    assert_same_fit(written, est)


@pytest.mark.parametrize("dask_y", [False, True])
def test_dask_integer_class_labels_equal_numpy(dask_y):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 6))
    labels = (X[:, 0] > 0.8).astype(int) + 2 * (X[:, 1] > -0.3)  # 4 unbalanced classes
    full = SteinLatent(2, random_state=0).fit(X, labels)
    Y = da.from_array(labels, chunks=500) if dask_y else labels
    with dask.config.set(scheduler="sync"):
        lazy = SteinLatent(2, random_state=0).fit(da.from_array(X, chunks=500), Y)
    assert lazy.classes_.tolist() == [0, 1, 2, 3] and lazy.stein_matrix_.shape == (6, 4)
    assert_same_fit(lazy, full, rtol=1e-10, X=X)


def test_univariate_y_dask_equals_fit_and_partial_fit_says_where_it_cannot():
    X, y = _li()
    est = SteinLatent(2)
    full, inc, lazy = _three_ways(est, X, y, [1000, 1000, 1000], dask_y=True)
    assert full.stein_matrix_.shape == (6, 10)
    assert_same_fit(lazy, full, rtol=1e-10)
    # partial_fit places the slices on its first chunk, and says so
    with pytest.warns(UserWarning, match="response_expansion.*FixedSlices"):
        SteinLatent(2).partial_fit(X[:1000], y[:1000])
    # with the edges written out every path agrees
    fixed = SteinLatent(2, response_expansion=FixedSlices(slice_edges(y, 10)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone(fixed).partial_fit(X[:1000], y[:1000])
    full, inc, lazy = _three_ways(fixed, X, y, [1000, 1000, 1000], dask_y=True)
    assert_same_fit(inc, full)
    assert_same_fit(lazy, full)


def test_score_models_draw_only_from_random_state():
    rng = np.random.default_rng(2)
    X = rng.standard_t(5, size=(300, 3))
    Y = np.tanh(X[:, :2]) + 0.1 * rng.standard_normal((300, 2))
    # random landmarks: the draw must come from random_state, not numpy's global state
    est = SteinLatent(2, order=1, score_model=KernelScore(n_landmarks=50, lam=1e-2),
                      random_state=0)
    state = np.random.get_state()  # noqa: NPY002 (moved on purpose, then restored)
    try:
        np.random.seed(0)  # noqa: NPY002
        a = clone(est).fit(X, Y)
        np.random.seed(2)  # noqa: NPY002
        b = clone(est).fit(X, Y)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    np.testing.assert_array_equal(a.stein_matrix_, b.stein_matrix_)
    assert a.spec_.score_model.random_state == 0
    for shortcut in ("kernel", "kde"):
        spec, _ = settle(SteinLatent(score_model=shortcut, random_state=3).get_params(),
                         X, Y, n_rows=300, n_features=3, path="fit")
        assert spec.score_model.random_state == 3
    # a model's own seed is kept
    spec, _ = settle(SteinLatent(score_model=KernelScore(random_state=9)).get_params(),
                     X, Y, n_rows=300, n_features=3, path="fit")
    assert spec.score_model.random_state == 9


def test_order_both_is_a_function_of_the_data_without_random_state():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, 5))
    Y = np.tanh(X[:, :2]) + X[:, :2] ** 2 + 0.3 * rng.standard_normal((2000, 2))
    a = SteinLatent(2, order="both").fit(X, Y)
    b = SteinLatent(2, order="both").fit(X, Y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.spec_.seed == 0
    c = SteinLatent(2, order="both", random_state=5).fit(X, Y)
    assert c.spec_.seed == 5 and c.null_level_ == 1.0


def test_binary_float_y_gives_two_directions():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 4))
    y_int = (rng.random(300) < 1 / (1 + np.exp(-2 * X[:, 0] - X[:, 1] ** 2 + 1))).astype(int)
    a = SteinLatent(2, random_state=0).fit(X, y_int.astype(float))  # one slice per value
    b = SteinLatent(2, random_state=0).fit(X, y_int)  # class labels
    assert a.spec_.plan.edges.tolist() == [0.5] and a.order_ == b.order_ == "both"
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-10)
    reg = SteinRegressor(2, random_state=0).fit(X, y_int.astype(float))
    assert reg.components_.shape == (2, 4)


def _state(est):
    """A deep copy of everything an estimator holds (buffers, accumulators, classes)."""
    return copy.deepcopy(vars(est))


def _assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        va, vb = a[k], b[k]
        if k == "_session" and va is not None:
            assert va.n_rows == vb.n_rows and va.n_chunks == vb.n_chunks
            assert (va.buffer is None) == (vb.buffer is None)
            assert va.buffer is None or len(va.buffer) == len(vb.buffer)
            assert str(va.spec.plan.classes) == str(vb.spec.plan.classes)
            np.testing.assert_array_equal(va.acc.ZZ, vb.acc.ZZ)
        elif isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb)
        elif hasattr(vb, "get_params"):
            assert repr(va) == repr(vb), k
        elif k not in ("spec_", "score_model_"):
            assert va == vb, k


@pytest.mark.parametrize("bad", ["nan", "width", "unknown_y_cols"])
def test_failed_chunk_leaves_the_state_unchanged(bad):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((600, 4))
    labels = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    labels[:200] = np.where(labels[:200] == "c", "b", labels[:200])  # "c" comes later
    est = SteinLatent(1, order=1, score_model=StudentTScore(), score_sample_size=10_000)
    _quiet(partial_fit_chunks, est, X[:400], labels[:400], [200, 200])  # buffered t score
    before = _state(est)
    Xb, yb = X[400:].copy(), labels[400:].copy()
    yb[:3] = "d"  # a new class in the failing chunk
    if bad == "nan":
        Xb[7, 1] = np.nan
    elif bad == "width":
        Xb = Xb[:, :3]
    else:
        yb = np.c_[yb, yb]
    with pytest.raises(ValueError, match="chunk 2"):
        est.partial_fit(Xb, yb)
    _assert_state_equal(_state(est), before)
    assert est.classes_.tolist() == ["a", "b", "c"] and est.n_samples_seen_ == 400


def test_chunk_failing_after_its_sums_leaves_the_fitted_score_unchanged():
    # The Gaussian score is refitted from the moments when a chunk finishes; a chunk
    # that fails afterwards (here the dimension check) must not move it.
    rng = np.random.default_rng(10)
    X = rng.standard_normal((600, 4))
    Y = np.tanh(X[:, :2]) + 0.1 * rng.standard_normal((600, 2))
    est = SteinLatent(2, order=1).partial_fit(X[:300], Y[:300])
    precision = est.score_model_.precision_.copy()
    est.set_params(n_components=3)
    before = _state(est)
    with pytest.raises(ValueError, match="n_components=3 exceeds"):
        est.partial_fit(X[300:], Y[300:])
    np.testing.assert_array_equal(est.score_model_.precision_, precision)
    _assert_state_equal(_state(est), before)
    assert not hasattr(est.spec_.score_model, "precision_")  # the spec's model is unfitted


def test_failed_first_chunk_leaves_the_estimator_unfitted():
    X = np.random.default_rng(6).standard_normal((50, 3))
    est = SteinLatent(2)
    with pytest.raises(ValueError, match="Y has 49 rows"):
        est.partial_fit(X, np.ones(49))
    assert not fitted_names(est) and getattr(est, "_session", None) is None
    with pytest.raises(ValueError):
        est.fit(X, np.ones((49, 2)))
    assert not fitted_names(est)


def test_late_unlabelled_rows_raise_naming_include_features():
    # 60 features and 10 responses: x joining would change the pooling (70 columns), so
    # a labelled first chunk does not accumulate x; unlabelled rows later cannot be fitted.
    rng = np.random.default_rng(7)
    X = rng.standard_normal((1500, 60))
    Y = np.sin(X[:, :2]) @ rng.standard_normal((2, 10)) + 0.1 * rng.standard_normal((1500, 10))
    Ys = Y.copy()
    Ys[1000:1200] = np.nan
    est = _quiet(SteinLatent(2, order=2).partial_fit, X[:500], Ys[:500])
    est = _quiet(est.partial_fit, X[500:1000], Ys[500:1000])
    before = est.n_samples_seen_
    with pytest.raises(ValueError, match="include_features=True"):
        est.partial_fit(X[1000:], Ys[1000:])
    assert est.n_samples_seen_ == before
    # x joins whatever the chunks hold when asked for: then partial_fit is fit
    full = _quiet(SteinLatent(2, order=2, include_features=True).fit, X, Ys)
    inc = _quiet(partial_fit_chunks, SteinLatent(2, order=2, include_features=True), X, Ys,
                 [500, 500, 500])
    assert full.pooling_ == inc.pooling_ == "mean"
    assert_same_fit(inc, full)
    # where x joining changes nothing, it is accumulated in case: no error
    small = _quiet(partial_fit_chunks, SteinLatent(2, order=2), X[:, :6], Ys, [500] * 3)
    assert small.mode_ == "semi-supervised"
    assert_same_fit(small, _quiet(SteinLatent(2, order=2).fit, X[:, :6], Ys))


def test_classes_that_change_an_auto_setting_warn_naming_it():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((900, 5))
    labels = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    first = np.where(labels[:300] > 1, 1, labels[:300])  # two classes in the first chunk
    est = _quiet(SteinLatent(2).partial_fit, X[:300], first)
    assert est.order_ == "both"  # one first-order direction from two classes
    with pytest.warns(UserWarning, match="order="):
        est.partial_fit(X[300:], labels[300:])
    assert est.order_ == "both" and est.classes_.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("factor", [1e200, 1e-200])
def test_extreme_scale_guard_runs_on_every_path(factor):
    rng = np.random.default_rng(9)
    X = rng.standard_t(6, size=(2000, 4))
    Y = np.c_[np.tanh(X[:, 0]), X[:, 1] ** 2]
    ref = SteinLatent(2, order=2, random_state=0).fit(X, Y)
    full, inc, lazy = _three_ways(SteinLatent(2, order=2, random_state=0), X * factor, Y,
                                  [700, 1300], dask_chunks=300)
    for est in (full, inc, lazy):
        assert est.spec_.scale != 1.0
        np.testing.assert_allclose(est.components_, ref.components_, atol=1e-8)
    assert_same_fit(inc, full)
    assert_same_fit(lazy, full)


def test_refits_read_the_settled_responses():
    X, y = _li(n=1200)
    est = SteinLatent(2, random_state=0).fit(X, y)
    params, Y = pinned_refit(est, y[:100])
    assert params["response_expansion"] is None and params["order"] == est.order_
    np.testing.assert_array_equal(Y, FixedSlices(est.spec_.plan.edges)(y[:100]))
    # bootstrap pins the same settings as the selectors: y is not re-sliced per resample
    from steinlatent.inference import _pinned

    boot_params, boot_Y = _pinned(est, y)
    assert {k: boot_params[k] for k in params} == params
    assert boot_params["n_components"] == 2 and boot_Y.shape == (1200, 10)
    labels = np.array(list("abc"))[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    cat = SteinLatent(2, random_state=0).fit(X, labels)
    _, onehot = pinned_refit(cat, labels[:20])
    assert onehot.shape == (20, 3) and np.all(onehot.sum(axis=1) == 1)
