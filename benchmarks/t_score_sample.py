"""Accuracy of first-order Stein with the t score when its EM runs on a sample of rows.

``StudentTScore`` runs its EM on all rows up to 10 000 and beyond on a seeded random
sample of max(5 000, 10 p) rows; inside ``SteinLatent`` the Stein pass over all rows
then takes the EM's M step once more (location and covariance from every row, weights
from the sample fit). This script measures what that costs in accuracy, on the paper's
simulator (:func:`steinlatent.datasets.make_index_model`, x multivariate t(10), q = 20,
r = 3, noise 0.5) with fresh seeds, as subspace distances of ``SteinLatent(3, order=1,
score_model=StudentTScore(random_state=seed))`` to the true B:

``default``       the library as installed (run this script under another version of
                  the library for its "before" column)
``all rows``      EM on every row (the size rule switched off)
``sample, step``  EM on a sample of ``--sample`` rows (max(sample, 10 p)), then the
                  M step in the Stein pass (what the size rule does beyond 10 000 rows)
``sample only``   the same sample fit used as it is (``FrozenEstimator``): no M step

Grids: ``paper`` (p in {30, 100}, n in {3000, 9000}, links linear, pairs,
random_pairs: the paper's t designs) and ``large`` (n = 10^5 at p = 30 and
2 x 10^5 at p = 200, links linear and pairs). Printed: the median distance of each
variant per cell and the largest |variant - all rows| over the repetitions.

Run::

    OMP_NUM_THREADS=1 python benchmarks/t_score_sample.py --reps 10          # paper grid
    OMP_NUM_THREADS=1 python benchmarks/t_score_sample.py --grid large --reps 3
    OMP_NUM_THREADS=1 python benchmarks/t_score_sample.py --quick             # smoke test
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from contextlib import contextmanager

import numpy as np
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from steinlatent import SteinLatent
from steinlatent.datasets import make_index_model
from steinlatent.metrics import subspace_distance
from steinlatent.scores import StudentTScore, _student_t

LINKS = ("linear", "pairs", "random_pairs")
GRIDS = {
    "paper": [(30, 3000), (30, 9000), (100, 3000), (100, 9000)],
    "large": [(30, 100_000), (200, 200_000)],
}


@contextmanager
def em_rows(rows):
    """Temporarily make the EM run on all rows up to ``rows`` and on a sample of
    max(rows, 10 p) beyond (None: leave the size rule as it is)."""
    names = ("EM_ALL_ROWS", "EM_SAMPLE_ROWS")
    old = [getattr(_student_t, name, None) for name in names]
    if rows is not None:
        for name in names:
            setattr(_student_t, name, rows)
    try:
        yield
    finally:
        if rows is not None:
            for name, value in zip(names, old, strict=True):
                setattr(_student_t, name, value)


def variants(sample: int) -> dict:
    """name -> (threshold of the size rule, whether the fitted score is frozen)."""
    out = {"default": (None, False)}
    if hasattr(_student_t, "EM_ALL_ROWS"):  # a version with the size rule
        out.update({"all rows": (10**12, False), "sample, step": (sample, False),
                    "sample only": (sample, True)})
    return out


def distance(X, Y, B, rows, frozen, seed) -> float:
    with em_rows(rows):
        seeded = "random_state" in StudentTScore().get_params()  # older versions: no
        score = StudentTScore(random_state=seed) if seeded else StudentTScore()
        if frozen:
            score = FrozenEstimator(score.fit(X))
        est = SteinLatent(3, order=1, score_model=score, random_state=seed).fit(X, Y)
    return subspace_distance(est.components_.T, B)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", choices=sorted(GRIDS), default="paper")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sample", type=int, default=1000,
                    help="rows of the forced sample (max(sample, 10 p) are drawn)")
    ap.add_argument("--quick", action="store_true", help="p = 30, n = 3000, 2 reps")
    args = ap.parse_args(argv)
    cells = GRIDS[args.grid]
    links = LINKS if args.grid == "paper" else LINKS[:2]
    reps = args.reps
    if args.quick:
        cells, links, reps = [(30, 3000)], LINKS[:2], 2
    names = variants(args.sample)
    warnings.simplefilter("ignore")
    print(f"grid {args.grid}, {reps} fresh designs per cell, forced sample {args.sample} "
          "rows; distances to the true B (median; max |variant - all rows|)\n")
    head = ["p", "n", "link"] + list(names)
    if "all rows" in names:
        head += [f"max |{k} - all rows|" for k in names if k != "all rows"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    t0 = time.perf_counter()
    with threadpool_limits(1):
        for (p, n), link in itertools.product(cells, links):
            d = {k: [] for k in names}
            for rep in range(reps):
                seed = 7_000 + rep
                rng = np.random.default_rng([2026, p, LINKS.index(link), rep])
                X, Y, B = make_index_model(n, p, 20, 3, x_dist="t", link=link,
                                           random_state=rng)
                for k, (rows, frozen) in names.items():
                    d[k].append(distance(X, Y, B, rows, frozen, seed))
            row = [p, n, link] + [f"{np.median(v):.4f}" for v in d.values()]
            if "all rows" in d:
                ref = np.array(d["all rows"])
                row += [f"{np.max(np.abs(np.array(v) - ref)):.4f}"
                        for k, v in d.items() if k != "all rows"]
            print("| " + " | ".join(str(c) for c in row) + " |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
