"""The two task functions (one repetition each) and the labelled-only supervised fit.

A task is a dict of plain values (see :func:`~steinlatent.experiments.m1.run_m1`):
the data key, the split sizes, the latent dimensions, and where the cached all-cell
scores are (``cache``, ``setting``, ``score_seed``). Every task rebuilds its split from
its seed, so methods and score settings are compared on the same cells.
"""

from __future__ import annotations

import numpy as np

from .._common import timed
from ._cache import load_data, precomputed
from ._config import kernel_score
from ._split import make_split, pca_scores, readout_pmse

__all__ = ["main_task", "smooth_task", "supervised_basis", "supervised_latent"]


def supervised_basis(X, Y, lab, h, setting, seed) -> np.ndarray:
    """Supervised first-order Stein on the labelled cells only (score refitted on them),
    through the library's estimator; an orthonormal (p, h) basis."""
    from sklearn.frozen import FrozenEstimator

    from ... import SteinLatent

    model = FrozenEstimator(kernel_score(setting, seed).fit(X[lab]))
    h = min(h, Y.shape[1], X.shape[1])  # the first-order matrix has rank <= q
    est = SteinLatent(h, order=1, score_model=model, include_features=False, decoder=None)
    return est.fit(X[lab], Y[lab]).components_.T


def supervised_latent(X, Y, lab, h, setting, seed) -> np.ndarray:
    """Latent coordinates X @ :func:`supervised_basis` of all cells."""
    return X @ supervised_basis(X, Y, lab, h, setting, seed)


def _base_row(task, n_lab, n_cells):
    return {
        "score": task["score"],
        "rep": task["rep"],
        "seed": task["seed"],
        "n_labelled": n_lab,
        "n_unlabelled": n_cells - task["n_test"] - n_lab,
        "n_test": task["n_test"],
    }


def main_task(task) -> list[dict]:
    """Rows of ``m1.csv`` for one (score setting, repetition): every method, labelled-set
    size and h."""
    X, Y = load_data(task["data_key"])
    N = X.shape[0]
    test, labs = make_split(N, task["seed"], n_test=task["n_test"],
                            n_labelled=task["n_labelled"])
    hs = tuple(task["h"])
    hmax = max(hs)
    setting = task["setting"]
    st = precomputed(task["cache"], X, setting, task["score_seed"])
    rows = []

    def emit(n_lab, method, h, Z, seconds, status="ok"):
        row = _base_row(task, n_lab, N)
        pmse = readout_pmse(Z, Y, labs[n_lab], test) if status == "ok" else float("nan")
        row.update(method=method, h=h, pmse=round(pmse, 7), fit_time_s=round(seconds, 5),
                   status=status)
        rows.append(row)

    Z_unsup, t_unsup = timed(st.latent, hmax)
    Z_pca, t_pca = timed(pca_scores, X, hmax)
    for n_lab, lab in labs.items():
        emit(n_lab, "mean", 0, np.empty((N, 0)), 0.0)
        Z_semi, t_semi = timed(st.latent, hmax, Y=Y, labelled=lab, include_features=True)
        Z_allx, t_allx = timed(st.latent, hmax, Y=Y, labelled=lab, include_features=False)
        Z_sup, t_sup, status = None, float("nan"), "ok"
        if task.get("sup", True):
            try:
                Z_sup, t_sup = timed(supervised_latent, X, Y, lab, hmax, setting,
                                     task["seed"])
            except Exception as exc:  # a failed fit is a result, not a crash
                status = f"error: {type(exc).__name__}: {str(exc)[:150]}"
        for h in hs:
            emit(n_lab, "semi", h, Z_semi[:, :h], t_semi)
            emit(n_lab, "unsup", h, Z_unsup[:, :h], t_unsup)
            emit(n_lab, "pca", h, Z_pca[:, :h], t_pca)
            if h > Y.shape[1]:  # the supervised Stein matrix has rank <= q: no h-th direction
                continue
            emit(n_lab, "sup_allx", h, Z_allx[:, :h], t_allx)
            if Z_sup is not None or status != "ok":
                emit(n_lab, "sup", h, None if Z_sup is None else Z_sup[:, :h], t_sup, status)
    return rows


def smooth_task(task) -> list[dict]:
    """Rows of ``m1-smoothing.csv`` for one repetition: PCA, and unsup / semi at every
    point of the smoothing grid."""
    X, Y = load_data(task["data_key"])
    N = X.shape[0]
    test, labs = make_split(N, task["seed"], n_test=task["n_test"],
                            n_labelled=task["n_labelled"])
    hs = tuple(task["h"])
    hmax = max(hs)
    rows = []

    def emit(rel_lam, mult, n_lab, method, Z):
        for h in hs:
            rows.append({
                "rep": task["rep"], "seed": task["seed"], "rel_lam": rel_lam, "mult": mult,
                "n_labelled": n_lab, "method": method, "h": h,
                "pmse": round(readout_pmse(Z[:, :h], Y, labs[n_lab], test), 7),
            })

    Z_pca = pca_scores(X, hmax)
    for n_lab in labs:
        emit("", "", n_lab, "pca", Z_pca)
    for rel_lam, mult, setting in task["grid"]:
        st = precomputed(task["cache"], X, setting, task["score_seed"])
        Z_unsup = st.latent(hmax)
        for n_lab, lab in labs.items():
            emit(rel_lam, mult, n_lab, "unsup", Z_unsup)
            emit(rel_lam, mult, n_lab, "semi",
                 st.latent(hmax, Y=Y, labelled=lab, include_features=True))
    return rows
