"""RefinedSteinLatent above 20 000 rows: candidates chosen on a sample against all rows.

On more than ``selection_rows`` labelled rows (default 20 000) ``RefinedSteinLatent``
fits and compares its candidates on a random sample of that many rows and refines the
kept one on all rows. This script checks that choice on every design of the design zoo
(``benchmarks/zoo``, held-out designs included) at ``--n`` rows and each design's main
p: ``RefinedSteinLatent(r, random_state=0)`` at its defaults against the same with
``selection_rows=None`` (every candidate on all rows), on the same data. It prints, per
design, the median subspace distance to the true B of each, the median distance between
the two, how often they kept the same candidate, and the median fit times; then the
worst difference of medians.

Seeds: ``SeedSequence([--seed, design index, rep])``, disjoint from the zoo's.

Run::

    OMP_NUM_THREADS=1 python benchmarks/selection_rows_check.py            # n = 60 000
    OMP_NUM_THREADS=1 python benchmarks/selection_rows_check.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import machine_line, table  # noqa: E402
from zoo.designs import get_designs  # noqa: E402


def one(design, n: int, p: int, seed, selection_rows=None) -> dict:
    """Both fits on one data set of ``design`` (``selection_rows``: the estimator's
    default when None)."""
    from steinlatent import RefinedSteinLatent
    from steinlatent.metrics import subspace_distance

    X, Y, B = design(n, p, seed)
    out = {}
    sampled = {} if selection_rows is None else {"selection_rows": selection_rows}
    for name, kw in (("sample", sampled), ("all", {"selection_rows": None})):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = RefinedSteinLatent(design.r, random_state=0, **kw).fit(X, Y)
        out[name] = (est, time.perf_counter() - t0, subspace_distance(est.components_.T, B))
    (a, ta, da), (b, tb, db) = out["sample"], out["all"]
    return {"d_sample": da, "d_all": db, "t_sample": ta, "t_all": tb,
            "between": subspace_distance(a.components_.T, b.components_.T),
            "same": a.selected_ == b.selected_}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--jobs", type=int, default=1, help="designs fitted side by side")
    ap.add_argument("--selection-rows", type=int, default=None,
                    help="selection_rows of the sampled fit (default: the estimator's)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: two designs, n = 1500, candidates on 600 rows")
    args = ap.parse_args(argv)
    designs = get_designs(holdout=True)
    if args.quick:
        designs, args.n, args.reps, args.selection_rows = designs[:2], 1500, 1, 600
    from joblib import Parallel, delayed

    units = [(i, d, rep) for i, d in enumerate(designs) for rep in range(args.reps)]
    print(machine_line(None), flush=True)
    print(f"{len(units)} data sets: {len(designs)} designs x {args.reps} reps, n = {args.n}",
          flush=True)
    results = Parallel(n_jobs=args.jobs, verbose=5)(
        delayed(one)(d, args.n, d.main[1], np.random.SeedSequence([args.seed, i, rep]),
                     args.selection_rows)
        for i, d, rep in units)
    rows, worst = [], 0.0
    for i, d in enumerate(designs):
        res = [r for (j, _, _), r in zip(units, results, strict=True) if j == i]
        med = {k: float(np.median([r[k] for r in res])) for k in res[0] if k != "same"}
        worst = max(worst, med["d_sample"] - med["d_all"])
        rows.append([d.name + (" *" if d.holdout else ""), str(d.main[1]),
                     f"{med['d_sample']:.4f}", f"{med['d_all']:.4f}", f"{med['between']:.4f}",
                     f"{sum(r['same'] for r in res)} / {len(res)}",
                     f"{med['t_sample']:.2f}", f"{med['t_all']:.2f}"])
    print(table(["design (* held out)", "p", "distance to B: sample", "all rows",
                 "between", "same candidate", "time (s): sample", "all rows"], rows))
    print(f"\nworst median distance of 'sample' over 'all rows': {worst:+.4f}")


if __name__ == "__main__":
    main()
