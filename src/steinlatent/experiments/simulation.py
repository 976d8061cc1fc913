"""Reproduction of the paper's simulation (method.md §5.1, paper Fig. 2, Figs. S1-S4).

Grid: p in {30, 50, 80, 100}, n in {300, ..., 9000}, x normal / t(10) / hyperbolic,
links linear / pairs / random_pairs, q = 20, r = 3, noise sd 0.5. In every repetition
a fresh design (B, Sigma, links) is drawn from a seed that depends on (p, x, link, rep)
but not on n, so the curves over n share their designs (common random numbers).

Methods (column ``method``; ``role`` says which are the paper's):

==============================  ======  ============================================================
method                          role    estimator
==============================  ======  ============================================================
``stein1``                      paper   first-order Stein, score fitted from X (Gaussian ML; t and
                                        hyperbolic by ECME), ``SteinLatent(order=1)``
``stein2``                      paper   second-order Stein, same fitted score (nonlinear links)
``rrr``                         paper   reduced-rank regression
``nim``                         paper   neural index model (torch; hidden 32, Adam, batch 0.5% n)
``stein1_oracle``               oracle  first order with the true score of x
``stein2_oracle``               oracle  second order with the true score (nonlinear links)
``sir_mean`` ...                peer    SIR / SAVE / pHd on the mean response and on the first
                                        principal component of Y; PLS; PCA of x (``_peers``)
``stein2_stacked``              new     second order with stacked pooling (one Stein matrix per
                                        response, each divided by its response's standard
                                        deviation; ``SteinLatent(pooling="stacked")``), same
                                        fitted score
``stein2_stacked_null``         new     the same with each block divided by the largest
                                        singular value of its own sign-flip noise floor (block
                                        scale "null" of ``steinlatent._stein.decompose``; not
                                        an estimator option)
``stein_both_null``             new     ``order="both"`` with those noise-scaled stacked blocks
``stein2_stacked_null_oracle``  oracle  ``stein2_stacked_null`` with the true score
``refined``                     peer    ``steinlatent.RefinedSteinLatent`` (Stein start, MAVE
                                        refinement), when it imports
``opg``, ``mave``               peer    ``steinlatent.baselines.OPG`` / ``MAVE``, when they
                                        import
==============================  ======  ============================================================

``stein2`` is Algorithm 2 as the paper writes it (``pooling="mean"``: T(x_i) weighted
by the row mean of the responses), pinned explicitly since the library's default
pooling stacks. The ``new`` rows are task group ``stacked`` and the local-linear peers
group ``local`` (both on the designs of the core tasks: same seeds, same data), so
the paper's rows are never recomputed when they are added.

Distances are :func:`steinlatent.metrics.subspace_distance` to the true B; fit times
are wall-clock seconds of ``fit`` (score fitting included) on one thread.

Results go to tidy CSVs in ``out`` (one row per repetition x method x setting):
``simulation-core.csv`` (every method but the network), ``simulation-nim.csv`` (the
network, kept apart so that its long run can be stopped without touching the rest),
``simulation-stacked.csv`` (the stacked rows) and ``simulation-local.csv`` (refined
Stein, OPG, MAVE).
Both are resumable: rerunning a command skips the tasks already on disk.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.frozen import FrozenEstimator

from ..datasets._simulation import index_model_oracle_score
from ._cli import add_mode, add_run_options, override, report, run_options, standalone
from ._common import ResultStore, run_tasks, task_seed, timed

__all__ = [
    "P_GRID",
    "N_GRID",
    "X_DISTS",
    "LINKS",
    "CORE_METHODS",
    "STACKED_METHODS",
    "LOCAL_METHODS",
    "local_peers",
    "plot_pooling",
    "simulation_tasks",
    "run_simulation",
    "load_results",
    "summarize",
    "report_tables",
    "add_arguments",
    "run_cli",
]

P_GRID = (30, 50, 80, 100)
N_GRID = (300, 500, 1000, 3000, 5000, 7000, 9000)
X_DISTS = ("normal", "t", "hyperbolic")
LINKS = ("linear", "pairs", "random_pairs")
Q_RESPONSES = 20
R_LATENT = 3
NOISE = 0.5
FITTED_SCORE = {"normal": "gaussian", "t": "t", "hyperbolic": "hyperbolic"}
PEER_METHODS = (
    "sir_mean",
    "sir_pc1",
    "save_mean",
    "save_pc1",
    "phd_mean",
    "phd_pc1",
    "pls",
    "pca",
)
CORE_METHODS = ("stein1", "stein2", "rrr", "stein1_oracle", "stein2_oracle") + PEER_METHODS
STACKED_METHODS = ("stein2_stacked", "stein2_stacked_null", "stein_both_null",
                   "stein2_stacked_null_oracle")
LOCAL_METHODS = ("refined", "opg", "mave")
GROUPS = ("core", "nim", "stacked", "local")

KEY_COLUMNS = ("group", "p", "n", "x_dist", "link", "rep")
COLUMNS = KEY_COLUMNS + (
    "seed",
    "method",
    "role",
    "score",
    "distance",
    "fit_time_s",
    "status",
    "detail",
)
QUICK = {
    "p": (30,),
    "n": (300, 1000),
    "reps": 2,
    "nim_reps": 1,
    "nim_n": (300, 1000),
    "nim_epochs": 5,
    "local_reps": 1,
    "local_n": (1000,),
}


# ------------------------------------------------------------------------------ tasks
def simulation_tasks(
    p: Sequence[int] = P_GRID,
    n: Sequence[int] = N_GRID,
    *,
    x_dists: Sequence[str] = X_DISTS,
    links: Sequence[str] = LINKS,
    reps: int = 100,
    nim_reps: int | None = None,
    nim_n: Sequence[int] | None = None,
    nim_epochs: int = 200,
    groups: Sequence[str] = ("core", "nim"),
    peers: bool = True,
    seed: int = 0,
    local_reps: int | None = None,
    local_n: Sequence[int] | None = None,
) -> list[dict]:
    """The task list of a simulation run, repetition-major.

    Repetition-major order means a run stopped early holds about the same number of
    repetitions in every cell. ``core`` tasks fit every method except the network;
    ``nim`` tasks fit the network only, for repetitions ``< nim_reps`` (default: all)
    and sample sizes in ``nim_n`` (default: all of ``n``), with ``nim_epochs`` epochs.
    ``peers=False`` leaves the classical peers out of the core tasks. ``stacked``
    tasks fit the stacked second order and ``order="both"`` on the core designs
    (nonlinear links only: second order is blind to linear links); ``local`` tasks fit
    refined Stein, OPG and MAVE (nonlinear links; repetitions ``< local_reps`` and
    sample sizes in ``local_n``, default all).
    """
    for name, values, allowed in (
        ("x_dists", x_dists, X_DISTS),
        ("links", links, LINKS),
        ("groups", groups, GROUPS),
    ):
        bad = set(values) - set(allowed)
        if bad:
            raise ValueError(f"{name} has unknown values {sorted(bad)}; allowed: {allowed}.")
    if reps < 1:
        raise ValueError(f"reps must be >= 1; got {reps}.")
    nim_reps = reps if nim_reps is None else min(nim_reps, reps)
    nim_n = tuple(n) if nim_n is None else tuple(nim_n)
    local_reps = reps if local_reps is None else min(local_reps, reps)
    local_n = tuple(n) if local_n is None else tuple(local_n)
    tasks = []
    for rep in range(reps):
        for pp in p:
            for xd in x_dists:
                for link in links:
                    design_seed = task_seed(seed, "simulation", pp, xd, link, rep)
                    for nn in n:
                        base = {
                            "p": int(pp),
                            "n": int(nn),
                            "x_dist": xd,
                            "link": link,
                            "rep": rep,
                            "seed": design_seed,
                        }
                        if "core" in groups:
                            tasks.append({"group": "core", "peers": peers, **base})
                        if "nim" in groups and rep < nim_reps and nn in nim_n:
                            tasks.append({"group": "nim", "nim_epochs": nim_epochs, **base})
                        if "stacked" in groups and link != "linear":
                            tasks.append({"group": "stacked", **base})
                        if ("local" in groups and link != "linear" and rep < local_reps
                                and nn in local_n):
                            tasks.append({"group": "local", **base})
    return tasks


def _simulate(task):
    from ..datasets._simulation import make_index_model

    return make_index_model(
        task["n"],
        task["p"],
        Q_RESPONSES,
        R_LATENT,
        x_dist=task["x_dist"],
        link=task["link"],
        noise=NOISE,
        random_state=task["seed"],
        return_params=True,
    )


def _distance(basis, B) -> float:
    from ..metrics import subspace_distance

    return subspace_distance(basis, B)


def _row(task, method, role, score, fit):
    """Run ``fit() -> p x r basis`` and turn it into a result row (errors recorded)."""
    row = {k: task[k] for k in KEY_COLUMNS + ("seed",)}
    row.update(method=method, role=role, score=score, detail="")
    try:
        basis, seconds = timed(fit)
        row.update(distance=_distance(basis, task["_B"]), fit_time_s=seconds, status="ok")
    except Exception as exc:  # a failed fit is a result (NaN distance), not a crash
        row.update(
            distance=float("nan"),
            fit_time_s=float("nan"),
            status=f"error: {type(exc).__name__}: {str(exc)[:200]}",
        )
    return row


def _stein_fit(X, Y, order, score, seed, pooling="mean", noise_floor=True):
    from .._estimator import SteinLatent

    def fit():
        # pooling="mean" is Algorithm 2 as written (the paper's rows); the library's
        # default stacks, so it is pinned here.
        est = SteinLatent(R_LATENT, order=order, score_model=score, pooling=pooling,
                          noise_floor=noise_floor, decoder=None, random_state=seed)
        return est.fit(X, Y).components_.T

    return fit


#: method -> (order, pooling, noise_floor) of the Stein rows. Stacked blocks are in
#: units of their noise floor; without the floor, of the response's standard deviation.
PAPER_FITS = {"stein1": (1, "mean", True), "stein2": (2, "mean", True)}
STACKED_FITS = {"stein2_stacked": (2, "stacked", True)}
#: method -> (order, block scale): the noise-scaled rows, fitted through the pipeline
#: functions (the block scale is not an estimator parameter).
NULL_FITS = {"stein2_stacked_null": (2, "null"), "stein_both_null": ("both", "null")}


def _null_scaled_fit(X, Y, order, model, seed, block_scale):
    """Stacked Stein directions with a given block scale, from the pipeline functions
    (what ``SteinLatent(R_LATENT, order=order, pooling="stacked", score_model=model,
    random_state=seed)`` computes, but with each block scaled by ``block_scale``)."""
    from .._pipeline import accumulate, new_accumulator
    from .._responses import plan_responses
    from .._stein import decompose
    from ..scores._registry import resolve_score

    def fit():
        plan = plan_responses(Y, include_features=False, response_type="continuous")
        acc = new_accumulator(resolve_score(FrozenEstimator(model)), True, plan,
                              order=order, noise_floor=True, pooling="stacked", seed=seed)
        sums = accumulate(acc, X, Y).finalize()
        dec = decompose(sums, order=order, features=False, labels=True, pooling="stacked",
                        noise_floor=True, block_scale=block_scale)
        return dec.vectors[:, :R_LATENT]

    return fit


def _stein_rows(task, X, Y, score, label, role, suffix, fits=None, null_fits=None):
    """Stein rows sharing one score fit: first and second order (paper) by default,
    ``fits`` (method -> (order, pooling, noise_floor)) and ``null_fits`` (method ->
    (order, block scale)) otherwise."""
    from ..scores._registry import resolve_score

    model = resolve_score(score)
    try:
        _, score_s = timed(model.fit, X)
    except Exception as exc:  # recorded as failed rows below
        model, score_s, error = None, float("nan"), exc
    if fits is None:
        # order 2 is blind to linear links
        fits = PAPER_FITS if task["link"] != "linear" else {"stein1": PAPER_FITS["stein1"]}
    plan = [(name, spec, False) for name, spec in fits.items()]
    plan += [(name, spec, True) for name, spec in (null_fits or {}).items()]
    rows = []
    for name, spec, scaled in plan:
        method = f"{name}{suffix}"
        if model is None:

            def fit(exc=error):
                raise exc
        elif scaled:
            fit = _null_scaled_fit(X, Y, spec[0], model, task["seed"], spec[1])
        else:
            order, pooling, floor = spec
            fit = _stein_fit(X, Y, order, FrozenEstimator(model), task["seed"], pooling,
                             floor)
        row = _row(task, method, role, label, fit)
        row["fit_time_s"] += score_s  # every Stein fit pays for its score once
        row["detail"] = f"score_fit_s={score_s:.4g}"
        rows.append(row)
    return rows


def _core_task(task) -> list[dict]:
    from ..baselines import ReducedRankRegression
    from ._peers import PEERS

    X, Y, B, design = _simulate(task)
    task = {**task, "_B": B}
    fitted = FITTED_SCORE[task["x_dist"]]
    oracle = index_model_oracle_score(design)
    rows = _stein_rows(task, X, Y, fitted, fitted, "paper", "")
    rows.append(
        _row(
            task,
            "rrr",
            "paper",
            "",
            lambda: ReducedRankRegression(R_LATENT).fit(X, Y).components_.T,
        )
    )
    rows += _stein_rows(task, X, Y, oracle, "oracle", "oracle", "_oracle")
    if task.get("peers", True):
        for name in PEER_METHODS:
            rows.append(_row(task, name, "peer", "", lambda f=PEERS[name]: f(X, Y, R_LATENT)))
    return rows


def _nim_task(task) -> list[dict]:
    from ..baselines import NeuralIndexModel

    X, Y, B, _ = _simulate(task)
    task = {**task, "_B": B}
    model = NeuralIndexModel(R_LATENT, max_epochs=task["nim_epochs"], random_state=task["seed"])
    row = _row(task, "nim", "paper", "", lambda: model.fit(X, Y).components_.T)
    row["detail"] = f"epochs={task['nim_epochs']};batch={getattr(model, 'batch_size_', '')}"
    return [row]


def _stacked_task(task) -> list[dict]:
    X, Y, B, design = _simulate(task)
    task = {**task, "_B": B}
    fitted = FITTED_SCORE[task["x_dist"]]
    rows = _stein_rows(task, X, Y, fitted, fitted, "new", "", STACKED_FITS, NULL_FITS)
    oracle = index_model_oracle_score(design)
    rows += _stein_rows(task, X, Y, oracle, "oracle", "oracle", "_oracle", {},
                        {"stein2_stacked_null": NULL_FITS["stein2_stacked_null"]})
    return rows


def local_peers() -> dict:
    """Refined Stein, OPG and MAVE constructors by method name; those that do not
    import (another module still in development) are left out."""
    peers = {}
    try:
        from .._refined import RefinedSteinLatent
    except ImportError:
        RefinedSteinLatent = None
    try:
        from ..baselines import MAVE, OPG
    except ImportError:
        MAVE = OPG = None
    if RefinedSteinLatent is not None:
        peers["refined"] = lambda score, seed: RefinedSteinLatent(
            R_LATENT, score_model=score, random_state=seed)
    if OPG is not None:
        peers["opg"] = lambda score, seed: OPG(R_LATENT, random_state=seed)
        peers["mave"] = lambda score, seed: MAVE(R_LATENT, random_state=seed)
    return peers


def _local_task(task) -> list[dict]:
    X, Y, B, _ = _simulate(task)
    task = {**task, "_B": B}
    fitted = FITTED_SCORE[task["x_dist"]]
    rows = []
    for name, make in local_peers().items():
        score = fitted if name == "refined" else ""
        model = make(fitted, task["seed"])
        rows.append(_row(task, name, "peer", score,
                         lambda m=model: m.fit(X, Y).components_.T))
    return rows


def _run_task(task) -> list[dict]:
    return {"core": _core_task, "nim": _nim_task, "stacked": _stacked_task,
            "local": _local_task}[task["group"]](task)


# ------------------------------------------------------------------------------ runner
def _store(out: Path, group: str) -> ResultStore:
    path = out / f"simulation-{group}.csv"
    packed = path.with_name(path.name + ".gz")
    if not path.exists() and packed.exists():
        # Resume from the committed (gzipped) results: unpack them to append to.
        import gzip
        import shutil

        with gzip.open(packed, "rb") as src, path.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return ResultStore(path, KEY_COLUMNS, COLUMNS)


def run_simulation(
    out,
    *,
    p: Sequence[int] = P_GRID,
    n: Sequence[int] = N_GRID,
    x_dists: Sequence[str] = X_DISTS,
    links: Sequence[str] = LINKS,
    reps: int = 100,
    nim_reps: int | None = None,
    nim_n: Sequence[int] | None = None,
    nim_epochs: int = 200,
    groups: Sequence[str] = ("core", "nim"),
    peers: bool = True,
    local_reps: int | None = None,
    local_n: Sequence[int] | None = None,
    n_jobs: int = 1,
    seed: int = 0,
    progress: bool = True,
    figures: bool = True,
):
    """Run (or resume) the simulation grid, then write the summary and the figures.

    Parameters
    ----------
    out : str or Path
        Output folder: ``simulation-{core,nim,stacked,local}.csv``,
        ``summary.csv`` (medians per cell), ``tables.md`` (:func:`report_tables`),
        ``runs.jsonl`` (one line per invocation,
        with its arguments and wall time) and ``simulation_p{p}.png`` figures.
    p, n, x_dists, links, reps
        The grid (defaults: the paper's, 100 repetitions).
    nim_reps, nim_n, nim_epochs
        Restrict the (slow) neural index model to the first ``nim_reps`` repetitions
        and the sample sizes ``nim_n``; ``nim_epochs`` epochs (the paper: 200).
    groups : subset of {"core", "nim", "stacked", "local"}
        Which task groups to run (see :func:`simulation_tasks`).
    peers : bool, default=True
        Fit the classical peers (SIR, SAVE, pHd, PLS, PCA) in the core tasks.
    local_reps, local_n
        Restrict the ``local`` group (refined Stein, OPG, MAVE: a few seconds per fit)
        to the first ``local_reps`` repetitions and the sample sizes ``local_n``.
    n_jobs : int, default=1
        joblib workers.
    seed : int, default=0
        Base seed; each task's seed is derived from it and the task's coordinates.
    progress, figures : bool

    Returns
    -------
    pandas.DataFrame
        All result rows in ``out`` (including earlier runs).

    Examples
    --------
    >>> import tempfile
    >>> from steinlatent.experiments.simulation import run_simulation
    >>> df = run_simulation(tempfile.mkdtemp(), p=[10], n=[400], x_dists=["normal"],
    ...                     links=["pairs"], reps=1, groups=["core"], progress=False,
    ...                     figures=False)
    >>> sorted(df.method)[:3]
    ['pca', 'phd_mean', 'phd_pc1']
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = simulation_tasks(
        p,
        n,
        x_dists=x_dists,
        links=links,
        reps=reps,
        nim_reps=nim_reps,
        nim_n=nim_n,
        nim_epochs=nim_epochs,
        groups=groups,
        peers=peers,
        seed=seed,
        local_reps=local_reps,
        local_n=local_n,
    )
    start = time.time()
    record = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "p": list(p),
        "n": list(n),
        "x_dists": list(x_dists),
        "links": list(links),
        "reps": reps,
        "nim_reps": nim_reps,
        "nim_n": None if nim_n is None else list(nim_n),
        "nim_epochs": nim_epochs,
        "groups": list(groups),
        "peers": peers,
        "local_reps": local_reps,
        "local_n": None if local_n is None else list(local_n),
        "n_jobs": n_jobs,
        "seed": seed,
    }
    try:
        for group in GROUPS:
            todo = [t for t in tasks if t["group"] == group]
            if todo:
                run_tasks(
                    _run_task,
                    todo,
                    _store(out, group),
                    n_jobs=n_jobs,
                    progress=progress,
                    desc=f"simulation {group}",
                )
    finally:
        record["wall_s"] = round(time.time() - start, 1)
        with (out / "runs.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    df = load_results(out)
    summarize(df).to_csv(out / "summary.csv", index=False)
    (out / "tables.md").write_text(report_tables(df))
    if figures:
        from ._figures import plot_simulation

        plot_simulation(df, out)
        if df.method.isin(STACKED_METHODS + LOCAL_METHODS).any():
            plot_pooling(df, out)
    return df


POOLING_STYLE = {
    "stein1": ("first order", "tab:blue", "-", "o"),
    "stein2": ("second order, mean pooling (Algorithm 2)", "tab:red", "-", "s"),
    "stein2_stacked": ("second order, stacked (sd scale; the estimator's)", "tab:purple",
                       "-", "D"),
    "stein2_stacked_null": ("second order, stacked (noise scale)", "tab:pink", "-.", "d"),
    "stein_both_null": ('order "both" (noise-scaled stacked)', "tab:green", "-", "^"),
    "stein2_stacked_null_oracle": ("stacked (noise scale), true score", "tab:pink", ":",
                                   None),
    "refined": ("refined Stein (MAVE step)", "tab:olive", "--", "v"),
    "opg": ("OPG", "tab:gray", "--", "x"),
    "mave": ("MAVE", "black", "--", "+"),
}


def plot_pooling(df, out) -> list:
    """``simulation_p{p}_pooling.png``: the paper's Stein rows beside the stacked rows
    and the local-linear peers (nonlinear links), median distance against n.

    Each panel's legend gives the repetitions behind each line (min over n).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summ = summarize(df)
    summ = summ[summ.method.isin(POOLING_STYLE) & summ.link.ne("linear")]
    paths = []
    for p in sorted(summ.p.unique()):
        cell = summ[(summ.p == p)]
        if not cell.method.isin(STACKED_METHODS + LOCAL_METHODS).any():
            continue
        links = [lk for lk in LINKS if lk in set(cell.link)]
        fig, axes = plt.subplots(len(links), 3, figsize=(13, 3.8 * len(links)),
                                 squeeze=False, sharey=True)
        for i, link in enumerate(links):
            for j, xd in enumerate(X_DISTS):
                ax = axes[i, j]
                sub = cell[(cell.link == link) & (cell.x_dist == xd)]
                for m, (label, colour, ls, marker) in POOLING_STYLE.items():
                    line = sub[sub.method == m].sort_values("n")
                    if line.empty:
                        continue
                    ax.plot(line.n, line.median_distance, ls=ls, color=colour,
                            marker=marker, label=f"{label} ({int(line.n_reps.min())} reps)")
                ax.set_xscale("log")
                ax.set_title(f"x {xd}, links {link}", fontsize=10)
                ax.set_xlabel("n")
                if j == 0:
                    ax.set_ylabel("median distance to B")
                if ax.lines:
                    ax.legend(fontsize=6.5)
        fig.suptitle(f"Simulation, p = {p}, q = 20, r = 3: second-order pooling", y=1.0)
        fig.tight_layout()
        path = Path(out) / f"simulation_p{p}_pooling.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def load_results(out):
    """All result rows of ``out`` (core and network CSVs) as one DataFrame.

    Reads ``simulation-{group}.csv``, or its gzipped copy ``.csv.gz`` (the committed
    form) when the plain file is absent. :func:`run_simulation` unpacks a gzipped copy
    before resuming.
    """
    import pandas as pd

    out = Path(out)
    files = {f.name[: -len(".gz")]: f for f in out.glob("simulation-*.csv.gz")}
    files.update({f.name: f for f in out.glob("simulation-*.csv")})
    frames = [pd.read_csv(files[name]) for name in sorted(files)]
    if not frames:
        raise FileNotFoundError(f"No simulation-*.csv results in {out}.")
    return pd.concat(frames, ignore_index=True)


def summarize(df):
    """Median distance, repetitions, failures and median fit time per cell and method."""
    keys = ["p", "n", "x_dist", "link", "method", "role", "score"]
    df = df.assign(score=df["score"].fillna(""), ok=df["status"].eq("ok"))
    g = df.groupby(keys, sort=True)
    res = g.agg(
        median_distance=("distance", "median"),
        q25_distance=("distance", lambda s: s.quantile(0.25)),
        q75_distance=("distance", lambda s: s.quantile(0.75)),
        n_reps=("ok", "sum"),
        n_failed=("ok", lambda s: int((~s).sum())),
        median_fit_time_s=("fit_time_s", "median"),
    )
    return res.reset_index()


def report_tables(df, *, ns: Sequence[int] = (1000, 9000)) -> str:
    """Markdown tables of a results frame: repetitions run, medians at ``ns``, fit times.

    Medians are over the successful repetitions of each cell; the repetition table
    says how many there were, so a partial run is never mistaken for the full grid.
    """
    summ = summarize(df)
    order = [m for m in CORE_METHODS[:5] + ("nim",) + STACKED_METHODS + LOCAL_METHODS
             + PEER_METHODS if m in set(summ.method)]
    lines = ["# Simulation results (generated by steinlatent.experiments.simulation)", ""]
    lines += ["## Repetitions per cell (successful fits: min-max over cells)", ""]
    reps = summ.groupby(["p", "method"]).n_reps.agg(["min", "max"]).reset_index()
    cells = summ.groupby(["p", "method"]).size().rename("cells").reset_index()
    reps = reps.merge(cells, on=["p", "method"])
    lines += [
        "| p | method | cells (n x x-law x link) | reps min | reps max |",
        "|---|---|---|---|---|",
    ]
    for r in reps.itertuples():
        lines.append(f"| {r.p} | {r.method} | {r.cells} | {r.min} | {r.max} |")
    failed = summ.groupby("method").n_failed.sum()
    failed = failed[failed > 0]
    lines += [
        "",
        "Failed fits (distance NaN): "
        + (", ".join(f"{m} {k}" for m, k in failed.items()) if len(failed) else "none"),
    ]
    for p in sorted(summ.p.unique()):
        for n in ns:
            cell = summ[(summ.p == p) & (summ.n == n)]
            if cell.empty:
                continue
            cols = [m for m in order if m in set(cell.method)]
            lines += [
                "",
                f"## Median distance, p = {p}, n = {n}",
                "",
                "| x | link | " + " | ".join(cols) + " |",
                "|---|---|" + "---|" * len(cols),
            ]
            for xd in X_DISTS:
                for link in LINKS:
                    sub = cell[(cell.x_dist == xd) & (cell.link == link)].set_index("method")
                    if sub.empty:
                        continue
                    vals = [
                        f"{sub.median_distance[m]:.3f}" if m in sub.index else "-" for m in cols
                    ]
                    lines.append(f"| {xd} | {link} | " + " | ".join(vals) + " |")
    lines += ["", "## Median fit time per method (seconds, one thread; all x-laws and links)", ""]
    for p in sorted(summ.p.unique()):
        sub = df[(df.p == p) & df.status.eq("ok")]
        tab = sub.groupby(["method", "n"]).fit_time_s.median().unstack("n")
        nn = list(tab.columns)
        lines += [
            f"p = {p}",
            "",
            "| method | " + " | ".join(f"n={n}" for n in nn) + " |",
            "|---|" + "---|" * len(nn),
        ]
        for m in [m for m in order if m in tab.index]:
            lines.append(
                f"| {m} | "
                + " | ".join("-" if np.isnan(v) else f"{v:.3g}" for v in tab.loc[m])
                + " |"
            )
        big = sub[sub.n == sub.n.max()].groupby("method").fit_time_s.median()
        if "nim" in big.index:
            for m in ("stein1", "stein2"):
                if m in big.index:
                    lines.append(
                        f"\nAt n = {sub.n.max()}: nim / {m} median fit time = "
                        f"{big['nim'] / big[m]:.0f}"
                    )
        lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``steinlatent reproduce simulation`` to ``parser``."""
    add_mode(parser,
             quick="pipeline check: p=30, n in {300, 1000}, 2 repetitions, "
             "network 5 epochs (a few minutes on 2 cores)",
             full="the paper's grid: every p, n, 100 repetitions, network 200 epochs")
    parser.add_argument("--p", type=int, nargs="+", help="override the p values")
    parser.add_argument("--n", type=int, nargs="+", help="override the n values")
    parser.add_argument("--x", nargs="+", choices=X_DISTS, help="distributions of x")
    parser.add_argument("--links", nargs="+", choices=LINKS, help="link mechanisms")
    parser.add_argument("--reps", type=int, help="repetitions (override)")
    parser.add_argument(
        "--nim-reps", type=int, help="repetitions that also fit the neural index model"
    )
    parser.add_argument(
        "--nim-n",
        type=int,
        nargs="+",
        help="sample sizes at which the neural index model is fitted",
    )
    parser.add_argument("--nim-epochs", type=int, help="epochs of the neural index model")
    parser.add_argument(
        "--groups",
        nargs="+",
        choices=GROUPS,
        default=["core", "nim", "stacked", "local"],
        help="task groups to run (stacked: stacked second order and order 'both'; "
        "local: refined Stein, OPG, MAVE)",
    )
    parser.add_argument("--local-reps", type=int,
                        help="repetitions that also fit refined Stein, OPG and MAVE")
    parser.add_argument("--local-n", type=int, nargs="+",
                        help="sample sizes at which refined Stein, OPG and MAVE are fitted")
    parser.add_argument("--no-peers", action="store_true", help="skip SIR, SAVE, pHd, PLS and PCA")
    return add_run_options(parser)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``steinlatent reproduce simulation`` from parsed arguments; returns an exit code."""
    cfg = (
        dict(QUICK)
        if args.quick
        else {
            "p": P_GRID,
            "n": N_GRID,
            "reps": 100,
            "nim_reps": None,
            "nim_n": None,
            "nim_epochs": 200,
            "local_reps": 20,
            "local_n": (1000, 3000, 9000),
        }
    )
    cfg = override(cfg, args, ("p", "n", "reps", "nim_reps", "nim_n", "nim_epochs",
                               "local_reps", "local_n"))
    df = run_simulation(args.out, x_dists=args.x or X_DISTS, links=args.links or LINKS,
                        groups=args.groups, peers=not args.no_peers, **run_options(args), **cfg)
    return report(df, args.out, "fits", "summary.csv")


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m steinlatent.experiments.simulation --quick --out DIR``."""
    return standalone("simulation", __doc__, add_arguments, run_cli, argv)


if __name__ == "__main__":
    raise SystemExit(main())
