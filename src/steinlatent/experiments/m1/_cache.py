"""Caches: the score values fitted on all cells and their factored Stein form
(:class:`joblib.Memory` in ``OUT/cache``), and the data (once per process).

The score depends on x only, and x of all cells is the same in every repetition, so
each all-cell score is fitted and evaluated once: :func:`all_cell_score` is memoised on
disk by its arguments (X, the KernelScore setting, the seed). Workers call it with the
same arguments and load S from the cache instead of refitting; the fit's metadata
(fit_s, eval_s, lam_, bandwidth_, ...) is part of the cached value, so the tables
report the fit that made S. :func:`precomputed` memoises the
:class:`~steinlatent.PrecomputedStein` of S the same way.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import numpy as np

from ..._precomputed import PrecomputedStein
from ..._utils import progress
from .._common import timed
from ._config import kernel_score, smooth_setting

__all__ = ["memory", "save_data", "load_data", "all_cell_score", "precomputed",
           "smoothing_grid"]


def memory(cache: str | Path):
    """The study's :class:`joblib.Memory` in the folder ``cache`` (``OUT/cache``)."""
    from joblib import Memory

    return Memory(cache, verbose=0)


# ------------------------------------------------------------------------------ data
def save_data(out, X, Y) -> tuple[str, str]:
    """Write given (X, Y) to ``OUT/cache`` for the workers; returns their data key.

    The file is named by a hash of its content, so a key never points at other data
    (and the per-process cache of :func:`load_data` never goes stale).
    """
    from joblib import hash as content_hash

    path = Path(out) / "cache" / f"data-{content_hash((X, Y))[:16]}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, X=X, Y=Y)
    return ("file", str(path))


# A plain in-process cache, not joblib: the data are already on disk (the M1 files or
# the npz above), so a disk memo would only copy them; each process, every worker
# included, reads them once.
@functools.cache
def load_data(key: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y) of a data key: ``("file", npz path)`` or ``("m1", data_dir or "")``."""
    kind, value = key
    if kind == "file":
        with np.load(value) as z:
            X, Y = z["X"], z["Y"]
    else:
        from ...datasets import load_m1_patchseq

        m1 = load_m1_patchseq(value or None)
        X, Y = m1.X, m1.Y
    for a in (X, Y):
        a.flags.writeable = False  # shared by every task of the process
    return X, Y


# ------------------------------------------------------------------------------ scores
def _fit_all_cell_score(X: np.ndarray, setting: dict, seed: int) -> tuple[np.ndarray, dict]:
    """Fit the kernel score on all cells, evaluate it there: (S, metadata)."""
    model = kernel_score(setting, seed)
    _, fit_s = timed(model.fit, X)
    S, eval_s = timed(model.evaluate, X)
    meta = {
        "setting": {k: (v if isinstance(v, str) else float(v)) for k, v in setting.items()},
        "fit_s": fit_s,
        "eval_s": eval_s,
        "lam_": model.lam_,
        "bandwidth_": model.bandwidth_,
        "bandwidth_multiplier_": model.bandwidth_multiplier_,
        "n_iter_": model.n_iter_,
        "kappa": 1.0 / model.bandwidth_**2,
    }
    return S, meta


def all_cell_score(cache: str | Path, X: np.ndarray, setting: dict,
                   seed: int) -> tuple[np.ndarray, dict]:
    """S (N, p) of the kernel score ``setting`` fitted on all rows of X, and its
    metadata, through the joblib cache in folder ``cache``."""
    return memory(cache).cache(_fit_all_cell_score)(X, setting, int(seed))


def _factor_all_cell_score(cache, X: np.ndarray, setting: dict, seed: int,
                           code: str) -> PrecomputedStein:
    # ``code`` is not used: it is part of the cache key, so that an entry made by another
    # version of PrecomputedStein is not unpickled into this one.
    S, _ = all_cell_score(cache, X, setting, seed)
    return PrecomputedStein(X, S)


def _source(obj) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # no source shipped: fall back to the package version
        from ... import __version__

        return __version__


_PRECOMPUTED_CODE = _source(PrecomputedStein)


def precomputed(cache: str | Path, X: np.ndarray, setting: dict,
                seed: int) -> PrecomputedStein:
    """The factored first-order Stein matrices of the cached all-cell score.

    The factorisation is cached too: every task of every repetition needs it, and on the
    M1 data loading it takes about 5 ms where refactoring takes 20, which would double
    the smoothing tasks (one factorisation per grid point and repetition).
    """
    factor = memory(cache).cache(_factor_all_cell_score, ignore=["cache"])
    return factor(cache, X, setting, int(seed), _PRECOMPUTED_CODE)


def smoothing_grid(cache: str | Path, X: np.ndarray, seed: int, rel_lams, mults, *,
                   show: bool = True) -> tuple[list, dict]:
    """Fit (or find in the cache) the all-cell score of every smoothing-sweep point.

    Returns the grid ``[(rel_lam, mult, setting), ...]`` and ``{name: metadata}``.
    """
    from ...scores._kernel_functions import median_distance

    med = median_distance(X, np.random.default_rng(seed), 1000)
    pairs = [(float(r), float(m)) for m in mults for r in rel_lams]
    grid, metas = [], {}
    with progress(total=len(pairs), show=show, desc="m1 smoothing scores", unit="fit") as bar:
        for rel, mult in pairs:
            setting = smooth_setting(rel, mult, med)
            name = f"smooth_rel{rel:g}_mult{mult:g}"
            metas[name] = {"name": name, **all_cell_score(cache, X, setting, seed)[1]}
            grid.append((rel, mult, setting))
            bar.update(1)
    return grid, metas
