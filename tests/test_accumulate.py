"""The accumulator protocol: any split of the rows gives the same Stein sums."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.frozen import FrozenEstimator

from steinlatent import SteinLatent
from steinlatent._accumulate import (
    AccumulatorSpec,
    EllipticalAccumulator,
    MomentAccumulator,
    ScoreAccumulator,
    make_accumulator,
    rademacher,
)
from steinlatent._responses import plan_responses
from steinlatent.scores import GaussianScore, StudentTScore
from steinlatent.scores import _student_t as student_t
from steinlatent.scores._hyperbolic import HyperbolicScore
from steinlatent.scores._registry import resolve_score

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
            if y is None:  # not asked for
                assert x is None, name + attr
                continue
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


# ------------------------------------------------------------ elliptical scores
ELLIPTICAL = {
    "t": lambda X: StudentTScore().fit(X),
    "hyperbolic": lambda X: HyperbolicScore().fit(X),
    "shrunk gaussian": lambda X: GaussianScore(shrinkage=0.2).fit(X),
}
SPECS = [AccumulatorSpec(first, second, null, pooling, seed=3)
         for first, second, null, pooling in [(True, False, False, "mean"),
                                              (True, False, True, "mean"),
                                              (False, True, True, "stacked"),
                                              (False, True, False, "mean"),
                                              (True, True, True, "stacked")]]


@pytest.mark.parametrize("name", sorted(ELLIPTICAL))
@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("features", [False, True])
@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_elliptical_moments_equal_the_score_evaluations(name, frozen, features, shift):
    # Radially weighted moments and the evaluated score (closed forms tested with the
    # score models) give the same sums, at every order, with and without the noise
    # floor, for labels and features, for data read in place (zero shift) and away
    # from the origin.
    X, Y = _data(shift=shift)
    model = ELLIPTICAL[name](X)
    score = resolve_score(FrozenEstimator(model)) if frozen else model
    plan = plan_responses(Y, include_features=features, response_type="continuous")
    for spec in SPECS:
        acc = make_accumulator(score, plan, spec, fitted=True)
        assert isinstance(acc, EllipticalAccumulator) and not acc.refine
        fast = _run(acc, X, Y, [100, 250])
        explicit = _run(ScoreAccumulator(score, plan, spec), X, Y, [100])
        _assert_sums_equal(fast, explicit, rtol=1e-9)
        assert fast.score_model is score


def _sampled_t(monkeypatch, X, rows=150, seed=0):
    monkeypatch.setattr(student_t, "EM_ALL_ROWS", rows)
    monkeypatch.setattr(student_t, "EM_SAMPLE_ROWS", rows)
    return StudentTScore(random_state=seed).fit(X)


def test_pass_step_is_the_em_m_step_over_all_rows(monkeypatch):
    # EM on 150 of 600 rows; the pass takes the M step on all 600 with the sample
    # fit's weights, and the first-order matrix is P' sum c (x - mu') (r - rbar)^T / n.
    X, Y = _data(n=600, shift=2.0)
    Y = np.where(np.isnan(Y), 0.5, Y)
    model = _sampled_t(monkeypatch, X)
    assert model.n_em_rows_ == 150 and model.refines_in_pass
    plan = plan_responses(Y, include_features=False, response_type="continuous")
    spec = AccumulatorSpec(True, False, False, "mean", seed=0)
    acc = make_accumulator(model, plan, spec, fitted=True)
    assert acc.refine
    sums = _run(acc, X, Y, [111])
    c, _ = model._radial(model.mahalanobis(X))
    mu = c @ X / c.sum()
    U = X - mu
    cov = (U * c[:, None]).T @ U / len(X)
    new = sums.score_model
    np.testing.assert_allclose(new.location_, mu, rtol=1e-10)
    np.testing.assert_allclose(new.covariance_, cov, rtol=1e-10, atol=1e-12)
    assert new.df_ == model.df_ and not new.refines_in_pass
    assert model.location_ is not new.location_  # the sample fit is left as it was
    first = np.linalg.solve(cov, (U * c[:, None]).T @ (Y - Y.mean(axis=0))) / len(X)
    np.testing.assert_allclose(sums.blocks["labels"].first, first, rtol=1e-8)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(1, 299), max_size=5))
def test_pass_step_does_not_depend_on_the_blocks(cuts):
    X, Y = _data()
    with pytest.MonkeyPatch.context() as mp:
        model = _sampled_t(mp, X, rows=100)
    plan = plan_responses(Y, include_features=True, response_type="continuous")
    whole = _run(EllipticalAccumulator(model, plan, SPEC), X, Y, [])
    _assert_sums_equal(_run(EllipticalAccumulator(model, plan, SPEC), X, Y, cuts), whole)
    left = EllipticalAccumulator(model, plan, SPEC).update(X[:120], Y[:120])
    right = EllipticalAccumulator(model, plan, SPEC)
    right.shift_x, right.shift_y, right.n_rows = left.shift_x, left.shift_y, 120
    right.update(X[120:], Y[120:])
    _assert_sums_equal(left.merge(right).finalize(), whole)
    np.testing.assert_allclose(whole.score_model.covariance_,
                               left.finalize().score_model.covariance_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore")  # semi-supervised first order, Gaussian x
def test_pass_step_gives_the_same_fit_on_every_path(monkeypatch):
    # fit, partial_fit and Dask fit the sampled t score on the same rows with the same
    # seed, and take the same step over all rows.
    X, Y = _data(n=900, shift=1.0)
    monkeypatch.setattr(student_t, "EM_ALL_ROWS", 300)
    monkeypatch.setattr(student_t, "EM_SAMPLE_ROWS", 300)
    kw = {"order": 1, "score_model": StudentTScore(random_state=4), "random_state": 0}
    full = SteinLatent(2, **kw).fit(X, Y)
    assert full.score_model_.n_em_rows_ == 300
    stream = SteinLatent(2, **kw)
    for a, b in [(0, 500), (500, 900)]:
        stream.partial_fit(X[a:b], Y[a:b])
    np.testing.assert_allclose(stream.stein_matrix_, full.stein_matrix_, rtol=1e-8,
                               atol=1e-12 * np.abs(full.stein_matrix_).max())
    da = pytest.importorskip("dask.array")
    import dask

    with dask.config.set(scheduler="sync"):
        lazy = SteinLatent(2, **kw).fit(da.from_array(X, chunks=250), Y)
    np.testing.assert_allclose(lazy.stein_matrix_, full.stein_matrix_, rtol=1e-8,
                               atol=1e-12 * np.abs(full.stein_matrix_).max())
    np.testing.assert_allclose(lazy.score_model_.covariance_, full.score_model_.covariance_,
                               rtol=1e-10)


def test_pass_step_keeps_the_accuracy_of_an_em_on_all_rows(monkeypatch):
    # A linear link, where the t score's covariance error moves the first-order span
    # directly: the sample fit alone is far off, the step brings it back to all rows.
    from steinlatent.datasets import make_index_model
    from steinlatent.metrics import subspace_distance

    X, Y, B = make_index_model(6000, 10, 6, 2, x_dist="t", link="linear", random_state=1)
    full = SteinLatent(2, order=1, score_model="t").fit(X, Y)
    model = _sampled_t(monkeypatch, X, rows=300, seed=1)
    step = SteinLatent(2, order=1, score_model=StudentTScore(random_state=1)).fit(X, Y)
    alone = SteinLatent(2, order=1, score_model=FrozenEstimator(model)).fit(X, Y)
    d_full, d_step, d_alone = (subspace_distance(e.components_.T, B)
                               for e in (full, step, alone))
    assert abs(d_step - d_full) < 0.1 * d_full < d_alone - d_full
