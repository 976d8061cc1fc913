"""Tests of select_score_model (the rule behind score_model="auto") against known truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance
from steinlatent.scores import (
    GaussianScore,
    KDEScore,
    ScoreModel,
    StudentTScore,
    select_score_model,
)
from steinlatent.scores._auto import default_candidates


def _t_index_data(seed, n=500, p=6, nu=2.5):
    """Heavy-tailed (t, nu = 2.5) x and four responses of a 2-dimensional index."""
    rng = np.random.default_rng(seed)
    w = rng.chisquare(nu, size=n) / nu
    X = rng.normal(size=(n, p)) / np.sqrt(w)[:, None]
    B = np.linalg.qr(rng.normal(size=(p, 2)))[0]
    Z = X @ B
    F = np.column_stack([Z[:, 0] + Z[:, 1], Z[:, 0] - Z[:, 1], np.tanh(Z[:, 0]), Z[:, 1]])
    return X, F + 0.5 * rng.normal(size=(n, 4)), B


def test_heldout_hyvarinen_orders_by_true_score_error(rng):
    # For N(0, I) data the exact score is x; the objective differs from
    # E|s - x|^2 / 2 by a constant, so a shrunk Gaussian (a worse score) scores lower.
    X = rng.normal(size=(2000, 3))
    exact = GaussianScore().fit(X)
    shrunk = GaussianScore(shrinkage=0.9).fit(X * 3)  # deliberately wrong covariance
    Xt = rng.normal(size=(2000, 3))
    assert exact.score(Xt) > shrunk.score(Xt)
    # its value: -E[|x|^2 / 2 - p] = p / 2 for the exact score
    assert exact.score(Xt) == pytest.approx(1.5, abs=0.15)


def test_unsupervised_heavy_tails_pick_t_over_gaussian():
    rng = np.random.default_rng(0)
    X = rng.standard_t(3, size=(600, 3))
    best, table = select_score_model(X, candidates=["gaussian", "t", "kde"], random_state=0)
    crit = {r["candidate"]: r["criterion"] for r in table}
    assert isinstance(best, StudentTScore)
    assert crit["t"] > crit["gaussian"]
    assert [r["selected"] for r in table] == [False, True, False]
    assert all(r["rule"] == "hyvarinen" and r["fit_time"] > 0 for r in table)


def test_unsupervised_gaussian_data_do_not_pick_the_kde():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 3))
    best, table = select_score_model(X, candidates=["gaussian", "t", "kde"], random_state=0)
    assert not isinstance(best, KDEScore)
    crit = {r["candidate"]: r["criterion"] for r in table}
    assert crit["gaussian"] > crit["kde"]


def test_default_candidates_include_kernel_where_affordable():
    assert sorted(default_candidates(300, 5)) == ["gaussian", "kde", "kernel", "t"]
    assert "kernel" not in default_candidates(1500, 64)
    assert "kernel" not in default_candidates(5000, 2)
    assert default_candidates(10_000, 2)["kde"].n_neighbors == 200


@pytest.mark.parametrize("seed", [0, 1])
def test_supervised_choice_follows_the_subspace_not_the_density(seed):
    # Heavy tails: the KDE score is the worst for the Stein average here (its errors sit
    # in the tails, where y is large); the supervised rule must not pick it, and its
    # choice must be within 0.05 of the best candidate's distance to span(B).
    X, Y, B = _t_index_data(seed)
    cands = ["gaussian", "t", "kde"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best, table = select_score_model(X, Y, candidates=cands, n_components=2,
                                         random_state=0)
        dist = {c: subspace_distance(
            SteinLatent(2, order=1, score_model=c).fit(X, Y).components_.T, B)
            for c in cands}
    crit = {r["candidate"]: r["criterion"] for r in table}
    chosen = next(r["candidate"] for r in table if r["selected"])
    assert all(r["rule"] == "prediction" for r in table)
    assert chosen != "kde"
    assert crit["kde"] < min(crit["gaussian"], crit["t"])
    assert dist[chosen] <= min(dist.values()) + 0.05
    assert dist["kde"] > dist[chosen] + 0.1


def test_supervised_class_labels_and_unlabelled_rows(rng):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    best, table = select_score_model(X, y, candidates=["gaussian", "t"], random_state=0)
    assert all(0.8 <= r["criterion"] <= 1.0 for r in table)  # accuracies
    Yc = rng.normal(size=(150, 2)) + X[:, :2]
    Yc[::5] = np.nan  # unlabelled rows: semi-supervised Stein fit, scored on labelled rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the feature block with an unsmoothed score
        _, table = select_score_model(X, Yc, candidates=["gaussian"], random_state=0)
    assert np.isfinite(table[0]["criterion"])


class _Broken(ScoreModel):
    def fit(self, X, y=None):
        raise RuntimeError("cannot fit")

    def evaluate(self, X):  # pragma: no cover - never fitted
        return X


def test_failing_candidates_are_recorded_and_all_failing_raises(rng):
    X = rng.normal(size=(200, 2))
    best, table = select_score_model(X, candidates={"broken": _Broken(), "g": "gaussian"},
                                     random_state=0)
    assert isinstance(best, GaussianScore)
    assert table[0]["criterion"] == -np.inf and "cannot fit" in table[0]["error"]
    with pytest.raises(ValueError, match="Every candidate"):
        select_score_model(X, candidates=[_Broken()], random_state=0)
    with pytest.raises(ValueError, match="cv must be"):
        select_score_model(X, cv=1)
    with pytest.raises(ValueError, match="empty"):
        select_score_model(X, candidates=[])


def test_selection_is_seeded_and_returns_an_unfitted_clone(rng):
    X = rng.standard_t(4, size=(300, 3))
    a, ta = select_score_model(X, candidates=["gaussian", "t", "kde"], random_state=3)
    b, tb = select_score_model(X, candidates=["gaussian", "t", "kde"], random_state=3)
    assert [r["criterion"] for r in ta] == [r["criterion"] for r in tb]
    assert not hasattr(a, "location_") and not hasattr(a, "bandwidth_")
