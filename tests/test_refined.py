"""RefinedSteinLatent: Stein start, refinement, responses, errors, scikit-learn API."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from steinlatent import RefinedSteinLatent, SteinLatent
from steinlatent.baselines import MAVE, OPG
from steinlatent.datasets import make_index_model
from steinlatent.metrics import subspace_distance


@parametrize_with_checks([RefinedSteinLatent(1)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _score_kw(name):
    key = "score_model" if "score_model" in SteinLatent().get_params() else "score"
    return {key: name}


@pytest.mark.parametrize("x_dist,score", [("normal", "gaussian"), ("t", "t")])
def test_beats_plain_stein_on_paper_design(x_dist, score):
    X, Y, B = make_index_model(2000, 12, 20, 3, x_dist=x_dist, link="pairs", random_state=0)
    est = RefinedSteinLatent(3, score_model=score, random_state=0).fit(X, Y)
    refined = subspace_distance(est.components_.T, B)
    plain = subspace_distance(est.stein_components_.T, B)
    assert refined < 0.1
    assert refined < 0.5 * plain
    assert est.n_start_ == 6 and est.start_components_.shape == (6, 12)
    assert est.converged_ and est.n_iter_ == len(est.refinement_path_) + 1


def test_plain_stein_estimate_is_one_argument_away():
    X, Y, B = make_index_model(800, 8, 10, 2, link="pairs", random_state=1)
    est = RefinedSteinLatent(2, random_state=0).fit(X, Y)
    plain = SteinLatent(2, order=1, **_score_kw("gaussian")).fit(X, Y)
    assert subspace_distance(est.stein_components_.T, plain.components_.T) < 1e-8


def test_unsupervised_raises():
    X = np.random.default_rng(2).normal(size=(100, 4))
    with pytest.raises(ValueError, match="requires y to be passed"):
        RefinedSteinLatent(2).fit(X)


def test_categorical_labels():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 6))
    b = np.linalg.qr(rng.normal(size=(6, 1)))[0]
    z = (X @ b)[:, 0]
    labels = np.where(z < -0.5, "low", np.where(z < 0.7, "mid", "high"))
    est = RefinedSteinLatent(1, random_state=0).fit(X, labels)
    assert set(est.classes_) == {"low", "mid", "high"}
    assert subspace_distance(est.components_.T, b) < 0.15


@pytest.mark.parametrize("Est", [RefinedSteinLatent, OPG, MAVE])
def test_two_classes_give_two_directions(Est):
    # Local slopes of P(y = 1 | x) vary over x, so two classes can give r = 2 directions
    # (the Stein start of RefinedSteinLatent then uses order="both").
    rng = np.random.default_rng(13)
    X = rng.normal(size=(3000, 6))
    B = np.linalg.qr(rng.normal(size=(6, 2)))[0]
    Z = X @ B
    logit = 2 * Z[:, 0] + 1.5 * (Z[:, 1] ** 2 - 1)
    y = np.where(rng.uniform(size=3000) < 1 / (1 + np.exp(-logit)), "yes", "no")
    est = Est(2, random_state=0).fit(X, y)
    assert est.classes_.tolist() == ["no", "yes"]
    assert subspace_distance(est.components_.T, B) < 0.35


@pytest.mark.parametrize("r", [1, 2])
def test_univariate_response(r):
    # q = 1 < r = 2: the start falls back to order="both".
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 6))
    B = np.eye(6)[:, :r]
    y = np.sin(X[:, 0]) + (X[:, 1] ** 2 if r == 2 else 0) + 0.1 * rng.normal(size=2000)
    est = RefinedSteinLatent(r, random_state=0).fit(X, y)
    assert est.components_.shape == (r, 6)
    assert subspace_distance(est.components_.T, B) < 0.2


# SteinLatent warns that the unsmoothed feature block adds only noise to the start.
@pytest.mark.filterwarnings("ignore:Semi-supervised first order:UserWarning")
def test_semi_supervised_refines_on_labelled_rows():
    X, Y, B = make_index_model(1500, 8, 10, 2, link="pairs", random_state=5)
    Y = Y.copy()
    Y[1000:] = np.nan
    est = RefinedSteinLatent(2, random_state=0).fit(X, Y)
    assert est.mode_ == "semi-supervised"
    assert est.anchors_.max() < 1000
    assert subspace_distance(est.components_.T, B) < 0.2


def test_rotation_equivariance():
    rng = np.random.default_rng(6)
    X, Y, B = make_index_model(800, 6, 8, 2, link="pairs", random_state=6)
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    base = RefinedSteinLatent(2, random_state=0).fit(X, Y).components_.T
    rotated = RefinedSteinLatent(2, random_state=0).fit(X @ Q, Y).components_.T
    assert subspace_distance(rotated, Q.T @ base) < 1e-6


def test_n_start_validation():
    X, Y, B = make_index_model(300, 5, 6, 2, link="pairs", random_state=7)
    with pytest.raises(ValueError, match="n_start=1"):
        RefinedSteinLatent(2, n_start=1).fit(X, Y)
    est = RefinedSteinLatent(2, n_start=5, random_state=0).fit(X, Y)
    assert est.n_start_ == 5


def test_opg_refinement_option():
    X, Y, B = make_index_model(1500, 8, 10, 2, link="pairs", random_state=8)
    est = RefinedSteinLatent(2, method="opg", random_state=0).fit(X, Y)
    assert subspace_distance(est.components_.T, B) < 0.2


def _even_links(n=2000, p=8, seed=0):
    """Links even about the centre (|z1|, z2^2): E[grad f] = 0, so the first-order Stein
    start sees only noise, while local slopes see both directions."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    B = np.linalg.qr(rng.normal(size=(p, 2)))[0]
    Z = X @ B
    Y = np.column_stack([np.abs(Z[:, 0]), Z[:, 1] ** 2, np.abs(Z[:, 0]) + Z[:, 1] ** 2])
    return X, Y + 0.1 * rng.normal(size=Y.shape), B


def test_wrong_candidates_predict_clearly_worse():
    X, Y, B = _even_links()
    est = RefinedSteinLatent(2, random_state=0).fit(X, Y)
    assert subspace_distance(est.stein_components_.T, B) > 0.5  # the plain Stein is blind
    assert subspace_distance(est.components_.T, B) < 0.15
    # The kept candidate predicts the anchors best, or within one standard error; the
    # least-squares span (blind to even links) is many standard errors worse.
    kept = est.candidates_[est.selected_]
    assert kept["excess"] <= kept["se"]
    wrong = [k for k, v in est.candidates_.items()
             if subspace_distance(v["components"].T, B) > 0.5]
    assert wrong == ["linear"]
    for k in wrong:
        assert est.candidates_[k]["excess"] > 3 * est.candidates_[k]["se"]


def test_candidates_attribute_and_single_candidate():
    X, Y, B = make_index_model(1200, 6, 8, 2, link="pairs", random_state=9)
    est = RefinedSteinLatent(2, random_state=0).fit(X, Y)
    assert set(est.candidates_) == {"stein", "mave", "ropg_mave", "ropg", "linear"}
    assert est.selected_ in est.candidates_
    for v in est.candidates_.values():
        assert v["components"].shape == (2, 6)
        assert {"loss", "excess", "se", "bandwidth_factor", "n_iter"} <= set(v)
    np.testing.assert_allclose(est.components_,
                               est.candidates_[est.selected_]["components"])
    only = RefinedSteinLatent(2, candidates=("stein",), random_state=0).fit(X, Y)
    assert only.selected_ == "stein" and set(only.candidates_) == {"stein"}
    assert subspace_distance(only.components_.T,
                             est.candidates_["stein"]["components"].T) < 1e-10
    with pytest.raises(ValueError, match="candidates"):
        RefinedSteinLatent(2, candidates=("sir",)).fit(X, Y)


def test_univariate_y_whose_spread_moves():
    # y = 2 tanh(z1) + (0.25 + |z2|) eps: z2 moves only the spread of y, which local fits
    # of E[y | x] cannot see. For one continuous y the candidates are judged on y and its
    # slices, and the plain Stein estimate (on the slices of y) is one of them.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8000, 6))
    B = np.linalg.qr(rng.normal(size=(6, 2)))[0]
    Z = X @ B
    y = 2 * np.tanh(Z[:, 0]) + (0.25 + np.abs(Z[:, 1])) * rng.normal(size=8000)
    est = RefinedSteinLatent(2, random_state=0).fit(X, y)
    assert "plain_stein" in est.candidates_
    assert subspace_distance(est.candidates_["stein"]["components"].T, B) > 0.5
    assert est.selected_ == "plain_stein"
    assert subspace_distance(est.components_.T, B) < 0.1


def test_candidates_compared_on_a_sample_then_refined_on_all_rows():
    X, Y, B = make_index_model(4000, 10, 6, 2, x_dist="t", link="pairs", random_state=3)
    full = RefinedSteinLatent(2, random_state=0, selection_rows=None).fit(X, Y)
    sampled = RefinedSteinLatent(2, random_state=0, selection_rows=1000).fit(X, Y)
    assert full.selection_rows_ == 4000 and sampled.selection_rows_ == 1000
    assert sampled.selected_ == full.selected_
    # The kept candidate refined on all rows lands where the fit on all rows does,
    # closer to B than its estimate on the sample.
    on_sample = sampled.candidates_[sampled.selected_]["components"]
    assert subspace_distance(sampled.components_.T, full.components_.T) < 0.01
    assert (subspace_distance(sampled.components_.T, B)
            < subspace_distance(on_sample.T, B))
    # Fewer rows than selection_rows: every row, as with None.
    small = RefinedSteinLatent(2, random_state=0, selection_rows=5000).fit(X, Y)
    assert small.selection_rows_ == 4000
    assert subspace_distance(small.components_.T, full.components_.T) < 1e-10


@pytest.mark.parametrize(("chosen", "p"), [("ropg", 8), ("ropg", 25), ("linear", 8),
                                          ("mave", 8)])
def test_each_kind_of_candidate_is_refined_on_all_rows(chosen, p):
    # rOPG above 20 features estimates its slopes in a span of 20 directions.
    X, Y, B = make_index_model(3000, p, 6, 2, x_dist="t", link="pairs", random_state=1)
    # rOPG's span of 20 slopes is fixed on the sample: it needs a sample large enough
    # for OPG's first pass in 25 coordinates.
    m = 1500 if p > 20 else 800
    est = RefinedSteinLatent(2, random_state=0, candidates=(chosen,),
                             selection_rows=m).fit(X, Y)
    assert est.selected_ == chosen and est.selection_rows_ == m
    full = RefinedSteinLatent(2, random_state=0, candidates=(chosen,),
                              selection_rows=None).fit(X, Y)
    # As accurate as the fit on all rows.
    assert (subspace_distance(est.components_.T, B)
            < subspace_distance(full.components_.T, B) + 0.01)


def test_selection_rows_is_validated():
    X, Y, _ = make_index_model(500, 5, 3, 2, random_state=0)
    with pytest.raises(ValueError, match="selection_rows"):
        RefinedSteinLatent(2, selection_rows=10).fit(X, Y)
