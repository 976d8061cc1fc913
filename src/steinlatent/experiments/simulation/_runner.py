"""The runner: one resumable CSV per task group, then the summary, tables and figures."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from .._common import ResultStore, run_tasks
from ._config import (
    COLUMNS,
    GROUPS,
    KEY_COLUMNS,
    LINKS,
    LOCAL_METHODS,
    N_GRID,
    P_GRID,
    STACKED_METHODS,
    X_DISTS,
)
from ._figures import plot_pooling
from ._tables import load_results, report_tables, summarize
from ._tasks import _run_task, simulation_tasks

__all__ = ["run_simulation"]


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
        from ._fig2 import plot_simulation

        plot_simulation(df, out)
        if df.method.isin(STACKED_METHODS + LOCAL_METHODS).any():
            plot_pooling(df, out)
    return df
