"""Invariances that hold for any data: rotation of x, scaling of y, order of samples,
and the path the rows take (fit, partial_fit, Dask)."""

import functools
import os
import warnings

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from scipy.stats import special_ortho_group

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance

from .conftest import assert_same_fit, index_data, partial_fit_chunks

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def _data(seed, n=400, p=5, q=3, r=2):
    rng = np.random.default_rng(seed)
    X, Y, _ = index_data(rng, n, p, q, r)
    return rng, X, Y


@settings(max_examples=25, deadline=None)
@given(seed=seeds, order=st.sampled_from([1, 2]), score=st.sampled_from(["gaussian", "t"]))
def test_rotating_x_rotates_components(seed, order, score):
    rng, X, Y = _data(seed)
    O = special_ortho_group.rvs(X.shape[1], random_state=seed)
    est = SteinLatent(2, order=order, score_model=score).fit(X, Y)
    rot = SteinLatent(2, order=order, score_model=score).fit(X @ O.T, Y)
    # x' = O x, so B' = O B: the rotated estimate spans O span(B_hat).
    tol = 1e-8 if score == "gaussian" else 1e-4  # the t fit stops at an EM tolerance
    assert subspace_distance(O @ est.components_.T, rot.components_.T) < tol


@settings(max_examples=25, deadline=None)
@given(
    seed=seeds,
    order=st.sampled_from([1, 2]),
    scale=st.floats(min_value=1e-3, max_value=1e3).map(lambda c: c)
    | st.floats(min_value=-1e3, max_value=-1e-3),
    shift=st.floats(min_value=-100, max_value=100),
)
def test_rescaling_and_shifting_y_leaves_span_unchanged(seed, order, scale, shift):
    _, X, Y = _data(seed)
    a = SteinLatent(2, order=order).fit(X, Y)
    b = SteinLatent(2, order=order).fit(X, scale * Y + shift)
    assert subspace_distance(a.components_.T, b.components_.T) < 1e-6


@settings(max_examples=25, deadline=None)
@given(seed=seeds, order=st.sampled_from([1, 2]), semi=st.booleans())
def test_permuting_samples_leaves_span_unchanged(seed, order, semi):
    rng, X, Y = _data(seed)
    score = "gaussian"
    if semi:
        from steinlatent.scores import GaussianScore

        score = GaussianScore(shrinkage=0.1)
        Y[rng.random(len(Y)) < 0.5] = np.nan
        Y[:3] = rng.normal(size=(3, Y.shape[1]))  # keep a few labelled rows
    perm = rng.permutation(len(X))
    a = SteinLatent(2, order=order, score_model=score).fit(X, Y)
    b = SteinLatent(2, order=order, score_model=score).fit(X[perm], Y[perm])
    assert subspace_distance(a.components_.T, b.components_.T) < 1e-6
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-6)


# ------------------------------------------------- fit = partial_fit = Dask fit
# How a path that cannot know its rows names the setting when it cannot agree with fit.
_NAMED = ("n_components='auto'", "include_features=True", "response_expansion=",
          "score_model='auto'")
# Warnings by which partial_fit says that it cannot give fit's estimator.
_DIVERGES = ("FixedSlices", "first appear in this chunk")
_KINDS = ("continuous", "int", "str", "univariate", "semi", "none")


@functools.cache
def _score_models():
    """One of each way a score model is fitted: moments, rows (t, callable), frozen."""
    from sklearn.frozen import FrozenEstimator

    from steinlatent.scores import CallableScore, GaussianScore, KernelScore

    ref = np.random.default_rng(99).standard_normal((300, 4))
    kernel = KernelScore(lam=1e-2, bandwidth_multiplier=1.0, random_state=0).fit(ref)
    return {
        "gaussian": "gaussian",
        "shrunk": GaussianScore(shrinkage=0.3),
        "t": "t",
        "frozen kernel": FrozenEstimator(kernel),
        "callable": CallableScore(lambda Z: np.asarray(Z, dtype=float),
                                  lambda Z: np.broadcast_to(np.eye(4), (len(Z), 4, 4))),
    }


_SCORES = ("gaussian", "shrunk", "t", "frozen kernel", "callable")


def _responses(kind, X, rng):
    n, z1, z2 = len(X), X[:, 0], X[:, 1]
    if kind == "none":
        return None
    if kind in ("int", "str"):
        lab = (z1 > 0).astype(int) + 2 * (z2 > 0.3)
        return lab if kind == "int" else np.array(list("abcd"))[lab]
    if kind == "univariate":
        return z1 / (0.5 + (z2 + 1.5) ** 2) + 0.2 * rng.standard_normal(n)
    Y = np.c_[np.tanh(z1), z2**2, z1 * z2] + 0.2 * rng.standard_normal((n, 3))
    if kind == "semi":
        Y[rng.random(n) < 0.4] = np.nan
    return Y


def _paths(params, X, Y, sizes, dask_y):
    """{path: (estimator or the ValueError raised, [UserWarning messages])}."""
    import dask
    import dask.array as da

    out = {}
    for path in ("fit", "partial_fit", "dask"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = SteinLatent(**params)
            try:
                if path == "fit":
                    est.fit(X, Y)
                elif path == "partial_fit":
                    partial_fit_chunks(est, X, Y, sizes)
                else:
                    Yd = Y
                    if Y is not None and dask_y:
                        Yd = da.from_array(Y, chunks=(tuple(sizes),) + (-1,) * (Y.ndim - 1))
                    with dask.config.set(scheduler="sync"):
                        est.fit(da.from_array(X, chunks=(tuple(sizes), -1)), Yd)
            except ValueError as exc:
                est = exc
        out[path] = est, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return out


def _written_out(fit, params):
    """The settings of ``fit`` written out: its settled spec as parameters."""
    from steinlatent._responses import FixedSlices

    plan = fit.spec_.plan
    expansion = FixedSlices(plan.edges) if plan.expansion == "slices" else plan.expansion
    return {**params, "n_components": fit.n_components_, "order": fit.order_,
            "pooling": fit.pooling_, "include_features": fit.spec_.include_features,
            "response_type": "categorical" if plan.categorical else "continuous",
            "response_expansion": expansion}


@settings(max_examples=int(os.environ.get("STEINLATENT_PATH_EXAMPLES", 40)), deadline=None)
@given(
    seed=seeds,
    kind=st.sampled_from(_KINDS),
    order=st.sampled_from([1, 2, "both", "auto"]),
    pooling=st.sampled_from(["auto", "mean", "stacked"]),
    score=st.sampled_from(_SCORES),
    n_components=st.sampled_from([1, 2, "auto"]),
    random_state=st.sampled_from([None, 0, 7]),
    cuts=st.lists(st.integers(1, 239), max_size=3, unique=True),
    dask_y=st.booleans(),
)
def test_fit_partial_fit_and_dask_give_one_estimator(seed, kind, order, pooling, score,
                                                     n_components, random_state, cuts,
                                                     dask_y):
    """fit, partial_fit over random chunks and a Dask fit over the same chunks give the
    same fitted attributes (names, and values to 1e-8) at default settings; where a
    path cannot know what fit knows it raises or warns naming the setting. With fit's
    settled spec written out, all three agree without a word, and equal the default fit.
    STEINLATENT_PATH_EXAMPLES=400 runs a longer search."""
    pytest.importorskip("dask")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((240, 4)) @ np.diag([1.5, 1.0, 1.0, 0.7])
    Y = _responses(kind, X, rng)
    sizes = np.diff([0, *sorted(cuts), 240]).tolist()
    params = {"n_components": n_components, "order": order, "pooling": pooling,
              "score_model": _score_models()[score], "random_state": random_state}
    if n_components == "auto":
        from steinlatent.selection import LadleSelector

        params["selector"] = LadleSelector(10)
    out = _paths(params, X, Y, sizes, dask_y)
    fit = out["fit"][0]
    if isinstance(fit, ValueError):  # a setting fit refuses: every path refuses it
        event("fit refuses the setting")
        assert all(isinstance(out[p][0], ValueError) for p in out), (fit, out)
        return
    for path in ("partial_fit", "dask"):
        est, said = out[path]
        if isinstance(est, ValueError):
            event(f"{path} raises naming the setting: {str(est)[:60]}")
            assert any(name in str(est) for name in _NAMED), (path, est)
        elif path == "partial_fit" and any(w in m for m in said for w in _DIVERGES):
            event(f"{path} warns naming the setting")
            assert any(s in m for m in said for s in ("response_expansion", "order=")), said
        else:
            event(f"{path} equals fit")
            assert not any(w in m for m in said for w in _DIVERGES), (path, said)
            assert_same_fit(est, fit, rtol=1e-8, X=X)
    written = _paths(_written_out(fit, params), X, Y, sizes, dask_y)
    wfit = written["fit"][0]
    assert not isinstance(wfit, ValueError), wfit
    for path, (est, said) in written.items():
        assert not isinstance(est, ValueError), (path, est)
        assert not any(w in m for m in said for w in _DIVERGES), (path, said)
        assert_same_fit(est, wfit, rtol=1e-8, X=X)
    if n_components != "auto":
        assert_same_fit(wfit, fit, rtol=1e-8, X=X)
