"""Extreme scales: multiplying X by a constant leaves the subspace unchanged (no crash,
no underflow to a zero Stein matrix), from 1e-300 to 1e300."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance

SETTINGS = [
    ({"order": 2, "pooling": "mean"}, False),  # unsupervised: third moments of x
    ({"order": 2}, False),
    ({"order": 1}, True),
    ({"order": "both"}, True),
    ({"order": 2}, True),
]


def _data(seed=0, n=1500, p=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_t(5, size=(n, p)) @ np.diag([3.0, 2.0, 1.0, 1.0, 1.0])
    Y = np.c_[np.tanh(X[:, 0]), X[:, 1] ** 2]
    return X, Y


def _fit(kw, X, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SteinLatent(2, random_state=0, **kw).fit(X, Y)


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300])
@pytest.mark.parametrize("kw, supervised", SETTINGS)
def test_scaling_x_leaves_the_subspace_unchanged(scale, kw, supervised):
    X, Y = _data()
    Y = Y if supervised else None
    ref = _fit(kw, X, Y)
    est = _fit(kw, X * scale, Y)
    assert subspace_distance(est.components_.T, ref.components_.T) < 1e-6
    np.testing.assert_allclose(est.mean_, ref.mean_ * scale, rtol=1e-10)
    # the score model answers in the units of X
    S = est.score_model_.evaluate(X[:5] * scale)
    np.testing.assert_allclose(S * scale, ref.score_model_.evaluate(X[:5]), rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(exponent=st.integers(-150, 150), seed=st.integers(0, 3))
def test_fuzzed_scales_give_the_unit_scale_answer(exponent, seed):
    X, Y = _data(seed, n=800)
    for kw, supervised in SETTINGS[:3]:
        Yk = Y if supervised else None
        ref = _fit(kw, X, Yk)
        est = _fit(kw, X * 10.0**exponent, Yk)
        assert subspace_distance(est.components_.T, ref.components_.T) < 1e-6, (kw, exponent)
