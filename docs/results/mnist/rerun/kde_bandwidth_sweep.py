"""KDE score at several bandwidths: linear-decoder NRSE of the first-order Stein encoder.

A side study of the MNIST rerun (``docs/reproduction.md``): the study's own KDE
bandwidth is the held-out score-matching choice, which in 784 dimensions is tiny (about
d_nn / sqrt(p)); this sweep reads the same encoder at larger bandwidths, as an earlier
pilot did. Same repetitions (seeds), training subsets and linear decoder as the study.

Run from the repository root (one thread, a few minutes per repetition)::

    OMP_NUM_THREADS=1 python docs/results/mnist/rerun/kde_bandwidth_sweep.py \
        --reps 0 1 2 --bandwidths 0.196 1 2 3 5 --out docs/results/mnist/rerun
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from steinlatent.experiments._common import task_seed
from steinlatent.experiments.mnist import first_order_basis, linear_rows
from steinlatent.experiments.mnist._data import split
from steinlatent.scores import KDEScore


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--bandwidths", type=float, nargs="+", default=[0.196, 1, 2, 3, 5])
    parser.add_argument("--h", type=int, nargs="+", default=[10, 14, 18])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", default="docs/results/mnist/rerun")
    args = parser.parse_args(argv)
    path = Path(args.out) / "kde-bandwidth.csv"
    rows = []
    for rep in args.reps:
        seed = task_seed(0, "mnist", rep)  # the study's seed for this repetition
        Xtr, _, Xte, _ = split(seed, 10_000, None, args.data_dir)
        from sklearn.decomposition import PCA

        bases = {"mean": Xtr.mean(axis=0), "pca": PCA(max(args.h)).fit(Xtr).components_}
        for bw in args.bandwidths:
            start = time.perf_counter()
            bases[f"stein1_kde@{bw:g}"] = first_order_basis(
                KDEScore(bandwidth=bw).fit(Xtr), Xtr, max(args.h)
            )
            print(f"rep {rep} bandwidth {bw:g}: {time.perf_counter() - start:.0f} s", flush=True)
        rows += linear_rows(rep, args.h, bases, Xtr, Xte)
        pd.DataFrame(rows).to_csv(path, index=False)  # after every repetition
    df = pd.DataFrame(rows)
    print(df.groupby(["encoder", "smoothing", "h"])[["nrse", "distance_to_pca"]].median())


if __name__ == "__main__":
    main()
