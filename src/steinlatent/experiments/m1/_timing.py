"""Wall time of real :class:`~steinlatent.SteinLatent` fits (score fit included), and a
check that each finds the subspace the cached shortcut of the main runs finds."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from .._common import task_seed, timed
from ._cache import precomputed
from ._config import N_TEST, SCORE_SETTINGS, kernel_score
from ._split import make_split
from ._tasks import supervised_basis

__all__ = ["time_methods", "write_timings"]


def _proj_diff(B, C) -> float:
    return float(np.max(np.abs(B @ B.T - C @ C.T)))


def time_methods(X, Y, settings: dict, *, h: int = 8, n_labelled: int = 50, seed: int = 0,
                 n_test: int = N_TEST, precomputed_scores: dict | None = None) -> list[dict]:
    """Wall time of real :class:`~steinlatent.SteinLatent` fits (score fit included).

    One split (repetition 0), ``h`` components. With ``precomputed_scores`` (name ->
    :class:`~steinlatent.PrecomputedStein` of the same setting's all-cell score) each
    fit's subspace is compared with the shortcut's: ``max_proj_diff`` = max
    |P_SteinLatent - P_shortcut| entry of the projections.
    """
    from sklearn.decomposition import PCA

    from ... import SteinLatent

    N = X.shape[0]
    test, labs = make_split(N, task_seed(seed, "m1", 0), n_test=n_test,
                            n_labelled=(n_labelled,))
    lab = labs[n_labelled]
    Ysemi = np.full_like(Y, np.nan)
    Ysemi[lab] = Y[lab]
    rows = []
    h = min(h, X.shape[1])
    h_sup = min(h, Y.shape[1])  # the supervised Stein matrix has rank <= q
    for name, setting in settings.items():
        def stein(k, s=setting, **kw):
            return SteinLatent(k, order=1, score_model=kernel_score(s, seed), decoder=None,
                               **kw)

        fits = {
            "semi": lambda: stein(h).fit(X, Ysemi),
            "sup_allx": lambda: stein(h_sup, include_features=False).fit(X, Ysemi),
            "unsup": lambda: stein(h).fit(X),
            "sup": lambda: stein(h_sup).fit(X[lab], Y[lab]),
        }
        for method, fit in fits.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est, seconds = timed(fit)
            hh = h_sup if method.startswith("sup") else h
            row = {"method": method, "score": name, "h": hh, "n_labelled": n_labelled,
                   "fit_time_s": round(seconds, 3), "n_iter": est.score_model_.n_iter_,
                   "lam": est.score_model_.lam_, "max_proj_diff": ""}
            C = est.components_.T
            if method == "sup":  # the labelled-only shortcut of the main runs
                B = supervised_basis(X, Y, lab, hh, setting, seed)
                row["max_proj_diff"] = _proj_diff(B, C)
            elif precomputed_scores is not None and name in precomputed_scores:
                kw = {"unsup": {},
                      "semi": {"Y": Y, "labelled": lab, "include_features": True},
                      "sup_allx": {"Y": Y, "labelled": lab, "include_features": False}}[method]
                row["max_proj_diff"] = _proj_diff(precomputed_scores[name].basis(hh, **kw), C)
            rows.append(row)
    _, seconds = timed(lambda: PCA(h).fit(X))
    rows.append({"method": "pca", "score": "", "h": h, "n_labelled": n_labelled,
                 "fit_time_s": round(seconds, 4), "n_iter": "", "lam": "",
                 "max_proj_diff": ""})
    return rows


def write_timings(out, cache, X, Y, scores, seed, n_test, h) -> None:
    """Time the fits of every score setting in ``scores``; write ``OUT/timings.csv``."""
    pre = {name: precomputed(cache, X, SCORE_SETTINGS[name], seed) for name in scores}
    rows = time_methods(X, Y, {s: SCORE_SETTINGS[s] for s in scores}, h=h, seed=seed,
                        n_test=n_test, precomputed_scores=pre)
    with (Path(out) / "timings.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
