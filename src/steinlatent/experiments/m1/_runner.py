"""The runner: all-cell scores (cached), the resumable main and smoothing stages, the
timings, and the summaries, tables and figures written at the end."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._common import ResultStore, run_tasks, task_seed
from ._cache import all_cell_score, load_data, save_data, smoothing_grid
from ._config import (
    COLUMNS,
    H_GRID,
    KEY_COLUMNS,
    N_LABELLED,
    N_TEST,
    SCORE_SETTINGS,
    SMOOTH_COLUMNS,
    SMOOTH_KEY_COLUMNS,
    SMOOTH_MULT,
    SMOOTH_REL_LAM,
)
from ._figures import plot_m1, plot_smoothing
from ._split import make_split
from ._tables import compare, report_tables, smoothing_summary, summarize
from ._tasks import main_task, smooth_task
from ._timing import write_timings

__all__ = ["run_m1"]


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
        Output folder (see :mod:`steinlatent.experiments.m1` for the files).
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
        saved in ``out/cache`` so that parallel workers can read them.
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
    cache = str(out / "cache")  # the joblib.Memory of the all-cell scores, and given data
    unknown = set(scores) - set(SCORE_SETTINGS)
    if unknown:
        raise ValueError(f"scores has unknown settings {sorted(unknown)}; "
                         f"allowed: {sorted(SCORE_SETTINGS)}.")
    if isinstance(reps, int):
        reps = {s: reps for s in scores}
    if data is not None:
        data_key = save_data(out, *(np.asarray(a, dtype=np.float64) for a in data))
    else:
        data_key = ("m1", "" if data_dir is None else str(data_dir))
    X, Y = load_data(data_key)
    make_split(X.shape[0], 0, n_test=n_test, n_labelled=n_labelled)  # checks the sizes
    if max(h) > min(X.shape):
        raise ValueError(f"h={tuple(h)} asks for more than min(n_cells, n_features) = "
                         f"{min(X.shape)} directions.")
    start = time.time()
    record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "reps": reps,
              "scores": list(scores), "smooth_reps": smooth_reps,
              "smooth_rel_lam": list(smooth_rel_lam), "smooth_mult": list(smooth_mult),
              "h": list(h), "n_test": n_test, "n_labelled": list(n_labelled),
              "n_cells": int(X.shape[0]), "n_jobs": n_jobs, "seed": seed}
    # What every task needs besides its own keys: the data, the split sizes, and where
    # the all-cell scores are cached (they were fitted with the base seed).
    common = {"data_key": data_key, "h": tuple(int(k) for k in h), "n_test": int(n_test),
              "n_labelled": tuple(int(k) for k in n_labelled), "cache": cache,
              "score_seed": seed}
    try:
        metas = {name: {"name": name, **all_cell_score(cache, X, SCORE_SETTINGS[name], seed)[1]}
                 for name in scores}
        tasks = [
            {"score": name, "rep": rep, "seed": task_seed(seed, "m1", rep),
             "setting": SCORE_SETTINGS[name], "sup": supervised, **common}
            for rep in range(max(reps.values(), default=0))
            for name in scores if rep < reps.get(name, 0)
        ]
        store = ResultStore(out / "m1.csv", KEY_COLUMNS, COLUMNS)
        run_tasks(main_task, tasks, store, n_jobs=n_jobs, progress=progress, desc="m1 splits")
        if timings and not (out / "timings.csv").exists():
            write_timings(out, cache, X, Y, scores, seed, n_test, max(h))
        if smooth_reps > 0:
            grid, smooth_metas = smoothing_grid(cache, X, seed, smooth_rel_lam, smooth_mult,
                                                show=progress)
            metas.update(smooth_metas)
            stasks = [{"rep": rep, "seed": task_seed(seed, "m1", rep), "grid": grid,
                       **common} for rep in range(smooth_reps)]
            sstore = ResultStore(out / "m1-smoothing.csv", SMOOTH_KEY_COLUMNS, SMOOTH_COLUMNS)
            run_tasks(smooth_task, stasks, sstore, n_jobs=n_jobs, progress=progress,
                      desc="m1 smoothing")
        (out / "scores.json").write_text(json.dumps(metas, indent=1))
    finally:
        record["wall_s"] = round(time.time() - start, 1)
        with (out / "runs.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    return _write_reports(out, metas, figures)


def _write_reports(out: Path, metas: dict, figures: bool):
    """summary.csv, comparisons.csv, smoothing-summary.csv, tables.md and the figures;
    returns the rows of m1.csv."""
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
