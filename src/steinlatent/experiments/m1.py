"""Reproduction of the M1 Patch-seq semi-supervised study (Section 5 of the paper, Fig. 4).

Data: :func:`steinlatent.datasets.load_m1_patchseq`, the 185-cell physiological-temperature
set of Scala, Kobak et al. (2021) (176 cells after quality control), x = the 1000 most
variable genes, y~ = 16 electrophysiological features, all standardised. The paper used
the 1213-cell main set, whose counts are not available here, so the splits are scaled down:

* ``N_TEST = 45`` test cells (the paper: 213 of 1213);
* labelled sets of ``N_LABELLED = (25, 50, 75)`` cells (the paper: 50, 75, 100), nested
  within a repetition (25 of the 50, 50 of the 75) and disjoint from the test cells;
* the other 176 - 45 - n cells are unlabelled (the paper: 900).

Estimation is transductive, as in the paper: the score and the feature block use x of
all 176 cells (test cells included); the electrophysiology of test and unlabelled cells
is never used. The split of a repetition depends only on (seed, rep), so every method
and score setting sees the same splits (paired comparisons).

Estimators (first order, :class:`steinlatent.scores.KernelScore`, ``method`` column):

==================  ==========================================================================
``semi``            semi-supervised, ``SteinLatent(h, order=1)`` on all cells with y~ NaN
                    outside the labelled set: SVD of [S^T X / N, S_lab^T Y_lab / n]
``sup``             supervised on the labelled cells only (the paper's "labelled cells
                    only"): the kernel score is refitted on the labelled x, in every
                    repetition
``sup_allx``        extra: supervised block alone with the score fitted on all x
                    (``include_features=False``), to separate the two effects of the
                    unlabelled cells (a better score vs the feature block)
``unsup``           unsupervised, y = x on all cells
``pca``             PCA of x on all cells
``mean``            reference: predict the labelled mean (no genes; ``h = 0``)
==================  ==========================================================================

Quality: ordinary least squares (with intercept) from B^T x to y~ on the labelled cells;
PMSE = mean over test cells and the 16 features of the squared error (standardised units,
so predicting 0 gives about 1).

Score settings (``score`` column; all nu-method, curl-free IMQ kernel, median bandwidth):

* ``paper``: lam = e^{-5} read literally (:data:`~steinlatent.scores._kernel.PAPER_LAM`
  = 6.7e-3) with kscore's iteration count (``normalize="kscore"``, 13 iterations);
* ``paper_1e-5``: lam = 1e-5, kscore's own example value (317 iterations);
* ``auto``: lam and bandwidth multiplier chosen by 5-fold held-out score matching.

Speed. The score depends on x only, and x of all cells is the same in every repetition,
so each all-cell score is fitted once and evaluated once (S, N x p, cached in
``out/cache``). For S^T = Q R (thin QR), every first-order Stein matrix built from S is
Q W with W = [R X_c / N, R_lab Y_c / n] (N x q), so its left singular vectors are Q times
the eigenvectors of the N x N matrix W W^T: the same subspace as ``SteinLatent``
(checked by the tests and, on the real data, in ``timings.csv``) at a fraction of the cost.
Only the labelled-only ``sup`` fits refit a score per repetition.

The smoothing sweep refits the all-cell score over lam / kappa in ``SMOOTH_REL_LAM``
(kappa = 1 / sigma^2, the largest eigenvalue scale of the kernel operator;
``normalize="kernel"``) and bandwidth multipliers ``SMOOTH_MULT``, and records ``unsup``
and ``semi`` against ``pca`` on the same splits (``m1-smoothing.csv``).

Outputs in ``out``: ``m1.csv`` (one row per rep x score x n_labelled x method x h),
``m1-smoothing.csv``, ``summary.csv`` (medians), ``comparisons.csv`` (paired
differences and win rates), ``smoothing-summary.csv``, ``timings.csv`` (real
``SteinLatent`` fits, score included), ``tables.md``, ``m1_pmse.png`` (like Fig. 4),
``m1_smoothing.png``, ``runs.jsonl``. Every CSV is resumable.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._cli import add_mode, add_run_options, report, run_options, standalone
from ._common import ResultStore, run_tasks, task_seed, timed

__all__ = [
    "N_TEST",
    "N_LABELLED",
    "H_GRID",
    "SCORE_SETTINGS",
    "SMOOTH_REL_LAM",
    "SMOOTH_MULT",
    "make_split",
    "readout_pmse",
    "StackedStein",
    "pca_scores",
    "run_m1",
    "summarize",
    "compare",
    "report_tables",
    "add_arguments",
    "run_cli",
]

N_TEST = 45
N_LABELLED = (25, 50, 75)
H_GRID = (4, 5, 6, 7, 8)
#: KernelScore keyword arguments of each score setting (solver="nu" throughout).
SCORE_SETTINGS = {
    "paper": {"lam": float(np.exp(-5.0)), "bandwidth_multiplier": 1.0, "normalize": "kscore"},
    "paper_1e-5": {"lam": 1e-5, "bandwidth_multiplier": 1.0, "normalize": "kscore"},
    "auto": {"lam": "auto", "bandwidth_multiplier": "auto"},
}
SMOOTH_REL_LAM = (1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4, 1e-4)
SMOOTH_MULT = (0.5, 1.0, 2.0, 4.0)
METHODS = ("semi", "sup", "sup_allx", "unsup", "pca", "mean")

KEY_COLUMNS = ("score", "rep")
COLUMNS = KEY_COLUMNS + (
    "seed",
    "n_labelled",
    "n_unlabelled",
    "n_test",
    "method",
    "h",
    "pmse",
    "fit_time_s",
    "status",
)
SMOOTH_KEY_COLUMNS = ("rep",)
SMOOTH_COLUMNS = ("rep", "seed", "rel_lam", "mult", "n_labelled", "method", "h", "pmse")

QUICK = {
    "reps": {"paper": 3},
    "smooth_reps": 3,
    "smooth_rel_lam": (0.1, 1e-3),
    "smooth_mult": (1.0,),
}
FULL = {
    # the labelled-only score refit makes a repetition of these ~10x dearer than "paper"
    "reps": {"paper": 200, "paper_1e-5": 100, "auto": 100},
    "smooth_reps": 200,
    "smooth_rel_lam": SMOOTH_REL_LAM,
    "smooth_mult": SMOOTH_MULT,
}


# ------------------------------------------------------------------------------ pieces
def make_split(n_cells: int, seed: int, *, n_test: int = N_TEST,
               n_labelled: Sequence[int] = N_LABELLED) -> tuple[np.ndarray, dict]:
    """Test cells and nested labelled sets of one repetition.

    Returns ``(test, labelled)`` with ``labelled[n]`` the first n of one random order of
    the non-test cells, so smaller labelled sets are subsets of larger ones.

    Examples
    --------
    >>> test, lab = make_split(176, 0)
    >>> len(test), [len(lab[n]) for n in (25, 50, 75)]
    (45, [25, 50, 75])
    """
    n_labelled = tuple(int(n) for n in n_labelled)
    if n_test < 1 or min(n_labelled) < 2 or n_test + max(n_labelled) > n_cells:
        raise ValueError(
            f"n_test={n_test} and n_labelled={n_labelled} do not fit in {n_cells} cells "
            "(need n_test >= 1, n_labelled >= 2 and n_test + max(n_labelled) <= n_cells)."
        )
    perm = np.random.default_rng(seed).permutation(n_cells)
    test = np.sort(perm[:n_test])
    rest = perm[n_test:]
    return test, {n: np.sort(rest[:n]) for n in n_labelled}


def readout_pmse(Z: np.ndarray, Y: np.ndarray, labelled, test) -> float:
    """PMSE of least squares (with intercept) from Z to Y fitted on ``labelled``.

    Mean over the ``test`` rows and all columns of Y of the squared prediction error.
    A ``Z`` with no columns gives the labelled mean as the prediction.
    """
    Zl = np.column_stack([np.ones(len(labelled)), Z[labelled]])
    coef, *_ = np.linalg.lstsq(Zl, Y[labelled], rcond=None)
    pred = np.column_stack([np.ones(len(test)), Z[test]]) @ coef
    return float(np.mean((Y[test] - pred) ** 2))


class StackedStein:
    """First-order Stein subspaces from one evaluation of the score at all samples.

    With S the (N, p) scores at the rows of X and S^T = Q R, the Stein matrix
    [S^T X_c / N, S_lab^T Y_c / n] equals Q W, W = [R X_c / N, R[:, lab] Y_c / n], so its
    top-h left singular vectors are Q V_h with V_h the top-h eigenvectors of W W^T
    (N x N). ``X_c`` is X minus its mean over all rows, ``Y_c`` the labelled responses
    minus their mean: exactly :class:`~steinlatent.SteinLatent`'s matrix.

    Parameters
    ----------
    S : ndarray of shape (N, p)
        Scores (the paper's sign) at the rows of X.
    X : ndarray of shape (N, p)

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(30, 5))
    >>> st = StackedStein(X @ np.diag([3.0, 1, 1, 1, 1]), X)  # a Gaussian-type score
    >>> st.basis(1, features=True).shape
    (5, 1)
    """

    def __init__(self, S: np.ndarray, X: np.ndarray):
        N = X.shape[0]
        self.X = X
        self.Q, self.R = np.linalg.qr(S.T)  # (p, k), (k, k) with k = min(N, p)
        self.XQ = X @ self.Q  # latent coordinates are XQ @ V
        W = self.R @ (X - X.mean(axis=0)) / N
        self.G_features = W @ W.T

    def _gram(self, Y, labelled, features):
        G = self.G_features.copy() if features else np.zeros_like(self.G_features)
        if Y is not None:
            Yl = Y[labelled]
            Wl = self.R[:, labelled] @ (Yl - Yl.mean(axis=0)) / len(labelled)
            G += Wl @ Wl.T
        return G

    def eigvecs(self, h, *, Y=None, labelled=None, features=True) -> np.ndarray:
        """Top-h eigenvectors V of W W^T (columns), largest first."""
        vals, vecs = np.linalg.eigh(self._gram(Y, labelled, features))
        return vecs[:, ::-1][:, :h]

    def basis(self, h, *, Y=None, labelled=None, features=True) -> np.ndarray:
        """Orthonormal (p, h) basis of the estimated latent space."""
        return self.Q @ self.eigvecs(h, Y=Y, labelled=labelled, features=features)

    def latent(self, h, *, Y=None, labelled=None, features=True) -> np.ndarray:
        """Latent coordinates X @ basis, (N, h)."""
        return self.XQ @ self.eigvecs(h, Y=Y, labelled=labelled, features=features)


def pca_scores(X: np.ndarray, h: int) -> np.ndarray:
    """Top-h principal component scores of X (centred), (N, h)."""
    U, s, _ = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    return U[:, :h] * s[:h]


def _kernel_score(setting: dict, random_state):
    from ..scores import KernelScore

    return KernelScore("nu", kernel="curl_free_imq", random_state=random_state, **setting)


def _smooth_setting(rel_lam: float, mult: float, kappa_of_mult) -> dict:
    # lam in units of kappa = 1 / sigma^2 (sigma = mult * median distance)
    return {"lam": float(rel_lam) * kappa_of_mult(mult), "bandwidth_multiplier": float(mult),
            "normalize": "kernel"}


# ------------------------------------------------------------------------------ cache
def _data_hash(X, Y) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(np.ascontiguousarray(Y).tobytes())
    return h.hexdigest()[:16]


def _cache_path(out: Path, name: str) -> Path:
    return out / "cache" / f"{name}.npz"


def _fit_all_cell_score(out: Path, name: str, setting: dict, X, data_hash: str, seed: int):
    """Fit the score on all cells and cache S (or reuse a cache made from the same X)."""
    path = _cache_path(out, name)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("data") == data_hash and meta.get("setting") == _jsonable(setting):
                return meta
    model = _kernel_score(setting, seed)
    _, fit_s = timed(model.fit, X)
    S, eval_s = timed(model.evaluate, X)
    meta = {
        "name": name,
        "setting": _jsonable(setting),
        "data": data_hash,
        "fit_s": fit_s,
        "eval_s": eval_s,
        "lam_": model.lam_,
        "bandwidth_": model.bandwidth_,
        "bandwidth_multiplier_": model.bandwidth_multiplier_,
        "n_iter_": model.n_iter_,
        "kappa": 1.0 / model.bandwidth_**2,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, S=S, meta=json.dumps(meta))
    return meta


def _jsonable(setting: dict) -> dict:
    return {k: (v if isinstance(v, str) else float(v)) for k, v in setting.items()}


def _stacked(path: str, data_key) -> StackedStein:
    return _stacked_cached(path, data_key, Path(path).stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _stacked_cached(path: str, data_key, mtime: int) -> StackedStein:
    X = _data(data_key)[0]
    with np.load(path, allow_pickle=False) as z:
        return StackedStein(z["S"], X)


# The data are loaded once per process; workers reload them from the recorded source.
_DATA_CACHE: dict = {}


def _data(key):
    if key not in _DATA_CACHE:
        kind, value = key
        if kind == "file":
            with np.load(value) as z:
                _DATA_CACHE[key] = (z["X"], z["Y"])
        else:  # "m1": a data_dir (or "" for the default)
            from ..datasets import load_m1_patchseq

            m1 = load_m1_patchseq(value or None)
            _DATA_CACHE[key] = (m1.X, m1.Y)
    return _DATA_CACHE[key]


# ------------------------------------------------------------------------------ tasks
def _base_row(task, n_lab, n_cells):
    return {
        "score": task["score"],
        "rep": task["rep"],
        "seed": task["seed"],
        "n_labelled": n_lab,
        "n_unlabelled": n_cells - task["n_test"] - n_lab,
        "n_test": task["n_test"],
    }


def _main_task(task) -> list[dict]:
    X, Y = _data(task["data_key"])
    N = X.shape[0]
    test, labs = make_split(N, task["seed"], n_test=task["n_test"],
                            n_labelled=task["n_labelled"])
    hs = tuple(task["h"])
    hmax = max(hs)
    st = _stacked(task["cache"], task["data_key"])
    setting = SCORE_SETTINGS[task["score"]] if task["score"] in SCORE_SETTINGS else None
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
        Z_semi, t_semi = timed(st.latent, hmax, Y=Y, labelled=lab)
        Z_allx, t_allx = timed(st.latent, hmax, Y=Y, labelled=lab, features=False)
        Z_sup, t_sup, status = None, float("nan"), "ok"
        if setting is not None and task.get("sup", True):
            try:
                Z_sup, t_sup = timed(_supervised_latent, X, Y, lab, hmax, setting,
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


def _supervised_basis(X, Y, lab, h, setting, seed):
    """Supervised first-order Stein on the labelled cells only (score refitted on them),
    through the library's estimator."""
    from sklearn.frozen import FrozenEstimator

    model = FrozenEstimator(_kernel_score(setting, seed).fit(X[lab]))
    from .. import SteinLatent

    h = min(h, Y.shape[1], X.shape[1])  # the first-order matrix has rank <= q
    est = SteinLatent(h, order=1, score_model=model, include_features=False, decoder=None)
    return est.fit(X[lab], Y[lab]).components_.T


def _supervised_latent(X, Y, lab, h, setting, seed):
    return X @ _supervised_basis(X, Y, lab, h, setting, seed)


def _smooth_task(task) -> list[dict]:
    X, Y = _data(task["data_key"])
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
    for rel_lam, mult, path in task["grid"]:
        st = _stacked(path, task["data_key"])
        Z_unsup = st.latent(hmax)
        for n_lab, lab in labs.items():
            emit(rel_lam, mult, n_lab, "unsup", Z_unsup)
            emit(rel_lam, mult, n_lab, "semi", st.latent(hmax, Y=Y, labelled=lab))
    return rows


# ------------------------------------------------------------------------------ timing
def time_methods(X, Y, settings: dict, *, h: int = 8, n_labelled: int = 50, seed: int = 0,
                 n_test: int = N_TEST, stacked: dict | None = None) -> list[dict]:
    """Wall time of real :class:`~steinlatent.SteinLatent` fits (score fit included).

    One split (repetition 0), ``h`` components. With ``stacked`` (name -> StackedStein of
    the same setting) each fit's subspace is compared with the shortcut's:
    ``max_proj_diff`` = max |P_SteinLatent - P_shortcut| entry of the projections.
    """
    import warnings

    from sklearn.decomposition import PCA

    from .._estimator import SteinLatent

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
        fits = {
            "semi": (lambda s=setting: SteinLatent(h, order=1, score_model=_kernel_score(s, seed),
                                                   decoder=None).fit(X, Ysemi)),
            "sup_allx": (lambda s=setting: SteinLatent(
                h_sup, order=1, score_model=_kernel_score(s, seed), include_features=False,
                decoder=None).fit(X, Ysemi)),
            "unsup": (lambda s=setting: SteinLatent(h, order=1, score_model=_kernel_score(s, seed),
                                                    decoder=None).fit(X)),
            "sup": (lambda s=setting: SteinLatent(h_sup, order=1,
                                                  score_model=_kernel_score(s, seed),
                                                  decoder=None).fit(X[lab], Y[lab])),
        }
        for method, fit in fits.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est, seconds = timed(fit)
            hh = h_sup if method.startswith("sup") else h
            row = {"method": method, "score": name, "h": hh, "n_labelled": n_labelled,
                   "fit_time_s": round(seconds, 3), "n_iter": est.score_model_.n_iter_,
                   "lam": est.score_model_.lam_, "max_proj_diff": ""}
            if method == "sup":  # the labelled-only shortcut of the main runs
                B = _supervised_basis(X, Y, lab, hh, setting, seed)
                C = est.components_.T
                row["max_proj_diff"] = float(np.max(np.abs(B @ B.T - C @ C.T)))
            elif stacked is not None and name in stacked:
                kw = {"unsup": {}, "semi": {"Y": Y, "labelled": lab},
                      "sup_allx": {"Y": Y, "labelled": lab, "features": False}}[method]
                B = stacked[name].basis(hh, **kw)
                C = est.components_.T
                row["max_proj_diff"] = float(np.max(np.abs(B @ B.T - C @ C.T)))
            rows.append(row)
    _, seconds = timed(lambda: PCA(h).fit(X))
    rows.append({"method": "pca", "score": "", "h": h, "n_labelled": n_labelled,
                 "fit_time_s": round(seconds, 4), "n_iter": "", "lam": "",
                 "max_proj_diff": ""})
    return rows


# ------------------------------------------------------------------------------ runner
def run_m1(
    out,
    *,
    reps: dict | int = 200,
    scores: Sequence[str] = tuple(SCORE_SETTINGS),
    smooth_reps: int = 200,
    smooth_rel_lam: Sequence[float] = SMOOTH_REL_LAM,
    smooth_mult: Sequence[float] = SMOOTH_MULT,
    h: Sequence[int] = H_GRID,
    n_test: int = N_TEST,
    n_labelled: Sequence[int] = N_LABELLED,
    supervised: bool = True,
    timings: bool = True,
    data_dir=None,
    data: tuple | None = None,
    n_jobs: int = 1,
    seed: int = 0,
    progress: bool = True,
    figures: bool = True,
):
    """Run (or resume) the M1 study, then write summaries, tables and figures.

    Parameters
    ----------
    out : str or Path
        Output folder (see the module docstring for the files).
    reps : int or dict
        Repetitions per score setting (a dict maps setting -> repetitions).
    scores : sequence of str
        Score settings, keys of :data:`SCORE_SETTINGS`.
    smooth_reps, smooth_rel_lam, smooth_mult
        The smoothing sweep (``smooth_reps=0`` skips it).
    h, n_test, n_labelled
        Latent dimensions, test-set size and labelled-set sizes.
    supervised : bool, default=True
        Fit the labelled-only ``sup`` method (the only per-repetition score fit).
    timings : bool, default=True
        Time real ``SteinLatent`` fits once (``timings.csv``; skipped when present).
    data_dir : path or None
        Data root for :func:`~steinlatent.datasets.load_m1_patchseq`.
    data : (X, Y) or None
        Use these arrays instead of the M1 data (tests, other data sets); they are
        saved to ``out/cache/data.npz`` so that parallel workers can read them.
    n_jobs, seed, progress, figures
        Workers, base seed, progress bars, PNG figures.

    Returns
    -------
    pandas.DataFrame
        All rows of ``m1.csv``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from steinlatent.experiments.m1 import run_m1
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 8)); Y = X[:, :4] + 0.1 * rng.normal(size=(120, 4))
    >>> df = run_m1(tempfile.mkdtemp(), reps=1, scores=["paper"], smooth_reps=0,
    ...             timings=False, data=(X, Y), progress=False, figures=False)
    >>> sorted(df.method.unique())
    ['mean', 'pca', 'semi', 'sup', 'sup_allx', 'unsup']
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(scores) - set(SCORE_SETTINGS)
    if unknown:
        raise ValueError(f"scores has unknown settings {sorted(unknown)}; "
                         f"allowed: {sorted(SCORE_SETTINGS)}.")
    if isinstance(reps, int):
        reps = {s: reps for s in scores}
    if data is not None:
        X, Y = (np.asarray(a, dtype=np.float64) for a in data)
        path = out / "cache" / "data.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, X=X, Y=Y)
        data_key = ("file", str(path))
        _DATA_CACHE.pop(data_key, None)  # the file was just (re)written
    else:
        data_key = ("m1", "" if data_dir is None else str(data_dir))
    X, Y = _data(data_key)
    make_split(X.shape[0], 0, n_test=n_test, n_labelled=n_labelled)  # checks the sizes
    dhash = _data_hash(X, Y)
    start = time.time()
    record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "reps": reps,
              "scores": list(scores), "smooth_reps": smooth_reps,
              "smooth_rel_lam": list(smooth_rel_lam), "smooth_mult": list(smooth_mult),
              "h": list(h), "n_test": n_test, "n_labelled": list(n_labelled),
              "n_cells": int(X.shape[0]), "n_jobs": n_jobs, "seed": seed}
    common = {"data_key": data_key, "h": tuple(int(k) for k in h), "n_test": int(n_test),
              "n_labelled": tuple(int(k) for k in n_labelled)}
    try:
        metas = {}
        for name in scores:
            metas[name] = _fit_all_cell_score(out, name, SCORE_SETTINGS[name], X, dhash, seed)
        tasks = [
            {"score": name, "rep": rep, "seed": task_seed(seed, "m1", rep),
             "cache": str(_cache_path(out, name)), "sup": supervised, **common}
            for rep in range(max(reps.values(), default=0))
            for name in scores if rep < reps.get(name, 0)
        ]
        store = ResultStore(out / "m1.csv", KEY_COLUMNS, COLUMNS)
        run_tasks(_task_function("_main_task"), tasks, store, n_jobs=n_jobs,
                  progress=progress,
                  desc="m1 splits")
        if timings and not (out / "timings.csv").exists():
            _write_timings(out, X, Y, scores, seed, n_test, max(h))
        if smooth_reps > 0:
            grid = _smoothing_grid(out, X, dhash, seed, smooth_rel_lam, smooth_mult,
                                   progress)
            metas.update({m["name"]: m for m in grid[1]})
            stasks = [{"rep": rep, "seed": task_seed(seed, "m1", rep), "grid": grid[0],
                       **common} for rep in range(smooth_reps)]
            sstore = ResultStore(out / "m1-smoothing.csv", SMOOTH_KEY_COLUMNS, SMOOTH_COLUMNS)
            run_tasks(_task_function("_smooth_task"), stasks, sstore, n_jobs=n_jobs,
                      progress=progress,
                      desc="m1 smoothing")
        (out / "scores.json").write_text(json.dumps(metas, indent=1))
    finally:
        record["wall_s"] = round(time.time() - start, 1)
        with (out / "runs.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    import pandas as pd

    df = pd.read_csv(out / "m1.csv")
    summarize(df).to_csv(out / "summary.csv", index=False)
    compare(df).to_csv(out / "comparisons.csv", index=False)
    sm = None
    if (out / "m1-smoothing.csv").exists():
        sm = smoothing_summary(pd.read_csv(out / "m1-smoothing.csv"))
        sm.to_csv(out / "smoothing-summary.csv", index=False)
    tim = pd.read_csv(out / "timings.csv") if (out / "timings.csv").exists() else None
    (out / "tables.md").write_text(report_tables(df, sm, tim, metas))
    if figures:
        plot_m1(df, out / "m1_pmse.png")
        if sm is not None:
            plot_smoothing(sm, out / "m1_smoothing.png")
    return df


def _task_function(name: str):
    """The task function from the importable module, so that joblib workers can unpickle
    it also when this file runs as ``python -m`` (where it is ``__main__``)."""
    from importlib import import_module

    return getattr(import_module("steinlatent.experiments.m1"), name)


def _write_timings(out, X, Y, scores, seed, n_test, h):
    import csv

    stacked = {}
    for name in scores:
        with np.load(_cache_path(out, name)) as z:
            stacked[name] = StackedStein(z["S"], X)
    rows = time_methods(X, Y, {s: SCORE_SETTINGS[s] for s in scores}, h=h, seed=seed,
                        n_test=n_test, stacked=stacked)
    with (out / "timings.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _smoothing_grid(out, X, dhash, seed, rel_lams, mults, progress):
    from ..scores._kernel_functions import median_distance

    med = median_distance(X, np.random.default_rng(seed), 1000)
    grid, metas = [], []
    pairs = [(float(r), float(m)) for m in mults for r in rel_lams]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pairs), desc="m1 smoothing scores", unit="fit")
    try:
        for rel, mult in pairs:
            setting = _smooth_setting(rel, mult, lambda m: 1.0 / (m * med) ** 2)
            name = f"smooth_rel{rel:g}_mult{mult:g}"
            meta = _fit_all_cell_score(out, name, setting, X, dhash, seed)
            metas.append(meta)
            grid.append((rel, mult, str(_cache_path(out, name))))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return grid, metas


# ------------------------------------------------------------------------------ summaries
def summarize(df):
    """Median PMSE (and quartiles, repetitions, median fit time) per cell and method."""
    ok = df[df.status.eq("ok")]
    g = ok.groupby(["score", "n_labelled", "method", "h"], sort=True)
    res = g.agg(
        median_pmse=("pmse", "median"),
        q25_pmse=("pmse", lambda s: s.quantile(0.25)),
        q75_pmse=("pmse", lambda s: s.quantile(0.75)),
        n_reps=("pmse", "size"),
        median_fit_time_s=("fit_time_s", "median"),
    ).reset_index()
    failed = df[~df.status.eq("ok")].groupby(["score", "n_labelled", "method", "h"]).size()
    res["n_failed"] = [int(failed.get(tuple(k), 0)) for k in
                       res[["score", "n_labelled", "method", "h"]].itertuples(index=False)]
    return res


_PAIRS = (("semi", "unsup"), ("semi", "sup"), ("semi", "sup_allx"), ("unsup", "pca"),
          ("semi", "pca"), ("sup", "pca"))


def compare(df):
    """Paired comparisons a vs b on the same splits: median of PMSE_a - PMSE_b, share a < b."""
    import pandas as pd

    ok = df[df.status.eq("ok")]
    wide = ok.pivot_table(index=["score", "n_labelled", "h", "rep"], columns="method",
                          values="pmse").reset_index()
    rows = []
    for (score, n_lab, h), sub in wide.groupby(["score", "n_labelled", "h"]):
        for a, b in _PAIRS:
            if a not in sub or b not in sub:
                continue
            d = (sub[a] - sub[b]).dropna()
            if d.empty:
                continue
            rows.append({"score": score, "n_labelled": n_lab, "h": h, "a": a, "b": b,
                         "median_diff": d.median(), "share_a_better": float((d < 0).mean()),
                         "n_reps": len(d)})
    return pd.DataFrame(rows)


def smoothing_summary(sdf):
    """Median PMSE of unsup / semi per (lam / kappa, multiplier) and paired gap to PCA."""
    import pandas as pd

    pca = sdf[sdf.method.eq("pca")][["rep", "n_labelled", "h", "pmse"]].rename(
        columns={"pmse": "pca"})
    rest = sdf[~sdf.method.eq("pca")].merge(pca, on=["rep", "n_labelled", "h"])
    rest = rest.assign(diff=rest.pmse - rest.pca, better=rest.pmse < rest.pca)
    g = rest.groupby(["method", "rel_lam", "mult", "n_labelled", "h"])
    res = g.agg(median_pmse=("pmse", "median"), median_pca=("pca", "median"),
                median_diff_vs_pca=("diff", "median"), share_better_than_pca=("better", "mean"),
                n_reps=("pmse", "size")).reset_index()
    return pd.DataFrame(res)


def report_tables(df, sm=None, tim=None, metas=None) -> str:
    """Markdown tables: medians at h = 4, 6, 8, paired comparisons, smoothing, timings."""
    summ = summarize(df)
    cmp_ = compare(df)
    lines = ["# M1 Patch-seq results (generated by steinlatent.experiments.m1)", ""]
    lines += ["Median PMSE on the test cells (standardised units); repetitions per cell "
              "in brackets.", ""]
    methods = [m for m in METHODS if m in set(summ.method)]
    for score in summ.score.unique():
        s = summ[summ.score.eq(score)]
        nrep = int(s.n_reps.min())
        lines += [f"## Score setting `{score}` ({nrep}-{int(s.n_reps.max())} repetitions)", ""]
        if metas and score in metas:
            m = metas[score]
            lines += [f"Kernel score on all cells: lam_ = {m['lam_']:.3g}, T = {m['n_iter_']}, "
                      f"sigma = {m['bandwidth_']:.3g} (multiplier "
                      f"{m['bandwidth_multiplier_']:g}), kappa = 1/sigma^2 = "
                      f"{m['kappa']:.3g}; fit {m['fit_s']:.2f} s.", ""]
        lines += ["| n labelled | h | " + " | ".join(methods) + " |",
                  "|---|---|" + "---|" * len(methods)]
        for n_lab in sorted(s.n_labelled.unique()):
            for h in (4, 6, 8):
                cell = s[s.n_labelled.eq(n_lab)]
                vals = []
                for m in methods:
                    hh = 0 if m == "mean" else h
                    v = cell[cell.method.eq(m) & cell.h.eq(hh)].median_pmse
                    vals.append(f"{v.iloc[0]:.3f}" if len(v) else "-")
                lines.append(f"| {n_lab} | {h} | " + " | ".join(vals) + " |")
        lines.append("")
        c = cmp_[cmp_.score.eq(score)]
        if not c.empty:
            lines += ["Paired comparisons (median PMSE_a - PMSE_b; share of repetitions "
                      "with a better):", "",
                      "| a vs b | n labelled | " + " | ".join(f"h={h}" for h in H_GRID) + " |",
                      "|---|---|" + "---|" * len(H_GRID)]
            for a, b in _PAIRS:
                for n_lab in sorted(c.n_labelled.unique()):
                    sub = c[c.a.eq(a) & c.b.eq(b) & c.n_labelled.eq(n_lab)].set_index("h")
                    if sub.empty:
                        continue
                    vals = [f"{sub.median_diff[h]:+.3f} ({sub.share_a_better[h]:.0%})"
                            if h in sub.index else "-" for h in H_GRID]
                    lines.append(f"| {a} vs {b} | {n_lab} | " + " | ".join(vals) + " |")
            lines.append("")
    if sm is not None and not sm.empty:
        lines += ["## Smoothing: unsupervised Stein minus PCA (median paired PMSE "
                  "difference, share of repetitions where Stein wins), n labelled = 50", ""]
        sub = sm[sm.method.eq("unsup") & sm.n_labelled.eq(50 if 50 in set(sm.n_labelled)
                                                           else sm.n_labelled.max())]
        mults = sorted(sub.mult.astype(float).unique())
        for h in (4, 6, 8):
            hs = sub[sub.h.eq(h)]
            if hs.empty:
                continue
            lines += [f"h = {h}", "", "| lam / kappa | " + " | ".join(
                f"mult {m:g}" for m in mults) + " |", "|---|" + "---|" * len(mults)]
            for rel in sorted(hs.rel_lam.astype(float).unique(), reverse=True):
                vals = []
                for m in mults:
                    r = hs[(hs.rel_lam.astype(float) == rel) & (hs.mult.astype(float) == m)]
                    vals.append(f"{r.median_diff_vs_pca.iloc[0]:+.3f} "
                                f"({r.share_better_than_pca.iloc[0]:.0%})" if len(r) else "-")
                lines.append(f"| {rel:g} | " + " | ".join(vals) + " |")
            lines.append("")
    if tim is not None:
        lines += ["## Wall time of one real fit (h = 8, 50 labelled cells, one thread, "
                  "score fit included)", "",
                  "| method | score | seconds | score iterations | lam_ | max abs diff of "
                  "projections vs the shortcut |", "|---|---|---|---|---|---|"]
        for r in tim.itertuples():
            diff = "" if (isinstance(r.max_proj_diff, float) and np.isnan(r.max_proj_diff)) \
                else r.max_proj_diff
            lam = "" if (isinstance(r.lam, float) and np.isnan(r.lam)) else r.lam
            if isinstance(lam, float):
                lam = f"{lam:.3g}"
            if isinstance(diff, float):
                diff = f"{diff:.1e}"
            it = "" if (isinstance(r.n_iter, float) and np.isnan(r.n_iter)) else r.n_iter
            sc = "" if not isinstance(r.score, str) else r.score
            lines.append(f"| {r.method} | {sc} | {r.fit_time_s} | {it} | {lam} | {diff} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ figures
def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib ships with the extras
        raise ImportError('Figures need matplotlib: pip install "steinlatent[plot]"') from exc
    return plt


_STYLE = {"semi": ("C3", "o", "semi-supervised"), "sup": ("C0", "s", "supervised (labelled only)"),
          "sup_allx": ("C0", "x", "supervised, score from all x"),
          "unsup": ("C2", "^", "unsupervised Stein"), "pca": ("k", "D", "PCA")}


def plot_m1(df, path) -> None:
    """Median PMSE against h, one panel per (score setting, labelled-set size), like Fig. 4."""
    plt = _plt()
    summ = summarize(df)
    scores = list(summ.score.unique())
    nlabs = sorted(summ.n_labelled.unique())
    fig, axes = plt.subplots(len(scores), len(nlabs), figsize=(4 * len(nlabs),
                             3.2 * len(scores)), squeeze=False, sharey="row")
    for i, score in enumerate(scores):
        for j, n_lab in enumerate(nlabs):
            ax = axes[i, j]
            s = summ[summ.score.eq(score) & summ.n_labelled.eq(n_lab)]
            for m, (color, marker, label) in _STYLE.items():
                c = s[s.method.eq(m)].sort_values("h")
                if c.empty:
                    continue
                ax.plot(c.h, c.median_pmse, color=color, marker=marker, label=label,
                        ls=":" if m == "sup_allx" else "-")
            mean = s[s.method.eq("mean")].median_pmse
            if len(mean):
                ax.axhline(mean.iloc[0], color="grey", ls="--", lw=0.8, label="labelled mean")
            ax.set_title(f"{score}: {n_lab} labelled, {int(s.n_reps.min())} reps", fontsize=9)
            ax.set_xlabel("h")
            if j == 0:
                ax.set_ylabel("median test PMSE")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_smoothing(sm, path, *, n_labelled: int = 50) -> None:
    """Median paired PMSE difference (unsup - PCA, semi - PCA) against lam / kappa."""
    plt = _plt()
    if n_labelled not in set(sm.n_labelled):
        n_labelled = int(sm.n_labelled.max())
    hs = [h for h in (4, 6, 8) if h in set(sm.h)]
    fig, axes = plt.subplots(2, len(hs), figsize=(4 * len(hs), 6.4), squeeze=False,
                             sharey="row")
    for i, method in enumerate(("unsup", "semi")):
        for j, h in enumerate(hs):
            ax = axes[i, j]
            sub = sm[sm.method.eq(method) & sm.h.eq(h) & sm.n_labelled.eq(n_labelled)]
            for k, mult in enumerate(sorted(sub.mult.astype(float).unique())):
                c = sub[sub.mult.astype(float) == mult].copy()
                c["rel"] = c.rel_lam.astype(float)
                c = c.sort_values("rel")
                ax.plot(c.rel, c.median_diff_vs_pca, marker="o", color=f"C{k}",
                        label=f"bandwidth x {mult:g}")
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.set_title(f"{method} - PCA, h = {h}, {n_labelled} labelled", fontsize=9)
            ax.set_xlabel("lam / kappa (more smoothing to the right)")
            if j == 0:
                ax.set_ylabel("median paired PMSE difference")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# --------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``steinlatent reproduce m1`` to ``parser``."""
    add_mode(parser,
             quick="pipeline check: score setting 'paper', 3 repetitions, a 2-point "
             "smoothing sweep (under a minute)",
             full="all score settings (paper 200, paper_1e-5 and auto 100 "
             "repetitions), smoothing sweep 9 x 4 settings, 200 repetitions")
    parser.add_argument("--scores", nargs="+", choices=tuple(SCORE_SETTINGS),
                        help="score settings to run")
    parser.add_argument("--reps", type=int, help="repetitions of every score setting")
    parser.add_argument("--smooth-reps", type=int, help="repetitions of the smoothing sweep "
                        "(0 skips it)")
    parser.add_argument("--no-supervised", action="store_true",
                        help="skip the labelled-only supervised fits (the slow part)")
    parser.add_argument("--no-timings", action="store_true",
                        help="skip the timing of real SteinLatent fits")
    parser.add_argument("--data-dir", help="data root holding m1_patchseq/")
    return add_run_options(parser)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``steinlatent reproduce m1`` from parsed arguments; returns an exit code."""
    cfg = dict(QUICK if args.quick else FULL)
    reps = dict(cfg["reps"])
    scores = list(args.scores) if args.scores else list(reps)
    if args.reps is not None:
        reps = {s: args.reps for s in scores}
    else:
        reps = {s: reps.get(s, max(reps.values())) for s in scores}
    df = run_m1(
        args.out,
        reps=reps,
        scores=scores,
        smooth_reps=cfg["smooth_reps"] if args.smooth_reps is None else args.smooth_reps,
        smooth_rel_lam=cfg["smooth_rel_lam"],
        smooth_mult=cfg["smooth_mult"],
        supervised=not args.no_supervised,
        timings=not args.no_timings,
        data_dir=args.data_dir,
        **run_options(args),
    )
    return report(df, args.out, "fits", "tables.md")


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m steinlatent.experiments.m1 --quick --out DIR``."""
    return standalone("m1", __doc__, add_arguments, run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
