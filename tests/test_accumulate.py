"""The accumulator protocol: any split of the rows gives the same Stein sums."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steinlatent._accumulate import (
    AccumulatorSpec,
    MomentAccumulator,
    ScoreAccumulator,
    rademacher,
)
from steinlatent._responses import plan_responses
from steinlatent.scores import GaussianScore, StudentTScore

from .conftest import index_data


def _data(n=300, p=4, q=3, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    X, Y, _ = index_data(rng, n, p, q, 2)
    Y = Y.copy()
    Y[rng.random(n) < 0.3] = np.nan  # semi-supervised: every block type
    Y[:3] = 1.0 + np.arange(3)  # labelled rows in the first block
    return X + shift, Y + shift


SPEC = AccumulatorSpec(first=True, second=True, null=True, pooling="stacked", seed=7)


def _run(acc, X, Y, cuts):
    bounds = [0, *sorted(cuts), len(X)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            acc.update(X[a:b], Y[a:b])
    return acc.finalize()


def _assert_sums_equal(a, b, rtol=1e-9):
    assert a.n_samples == b.n_samples and a.n_labelled == b.n_labelled
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=1e-12)
    for name in a.blocks:
        for attr in ("first", "first_null", "second", "second_null", "response_var"):
            x, y = getattr(a.blocks[name], attr), getattr(b.blocks[name], attr)
            scale = max(np.abs(y).max(), 1e-300)
            np.testing.assert_allclose(x, y, rtol=0, atol=rtol * scale, err_msg=name + attr)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 299), max_size=6), moments=st.booleans())
def test_any_blocks_give_the_same_sums(cuts, moments):
    X, Y = _data()
    plan = plan_responses(Y, include_features=True, response_type="continuous")
    if moments:  # the one-pass Gaussian: the score comes from the same sums
        make = lambda: MomentAccumulator(GaussianScore(), plan, SPEC)  # noqa: E731
    else:
        model = StudentTScore().fit(X)
        make = lambda: ScoreAccumulator(model, plan, SPEC)  # noqa: E731
    whole = _run(make(), X, Y, [])
    _assert_sums_equal(_run(make(), X, Y, cuts), whole)


@settings(max_examples=15, deadline=None)
@given(split=st.integers(1, 299))
def test_merge_is_concatenation(split):
    X, Y = _data()
    plan = plan_responses(Y, include_features=True, response_type="continuous")
    model = StudentTScore().fit(X)
    whole = _run(ScoreAccumulator(model, plan, SPEC), X, Y, [])
    left = ScoreAccumulator(model, plan, SPEC)
    left.update(X[:split], Y[:split])
    right = ScoreAccumulator(model, plan, SPEC)
    right.shift_x, right.shift_y, right.n_rows = left.shift_x, left.shift_y, split
    right.update(X[split:], Y[split:])
    _assert_sums_equal(left.merge(right).finalize(), whole)


@pytest.mark.parametrize("shift", [0.0, 1e4])
def test_moments_equal_the_score_evaluations(shift):
    # The one-pass Gaussian moments and the explicit Gaussian score give the same sums,
    # also for data far from the origin (the shifts avoid the cancellation).
    X, Y = _data(shift=shift)
    plan = plan_responses(Y, include_features=True, response_type="continuous")
    mom = _run(MomentAccumulator(GaussianScore(), plan, SPEC), X, Y, [100])
    explicit = _run(ScoreAccumulator(GaussianScore().fit(X), plan, SPEC), X, Y, [100])
    _assert_sums_equal(mom, explicit, rtol=1e-7 if shift else 1e-9)


def test_rademacher_signs_do_not_depend_on_the_chunks():
    whole = rademacher(3, 0, 1000)
    parts = np.concatenate([rademacher(3, 0, 13), rademacher(3, 13, 500),
                            rademacher(3, 513, 487)])
    np.testing.assert_array_equal(whole, parts)
    assert set(np.unique(whole)) == {-1.0, 1.0} and abs(whole.mean()) < 0.1
