"""Invariances that hold for any data: rotation of x, scaling of y, order of samples."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import special_ortho_group

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance

from .conftest import index_data

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
