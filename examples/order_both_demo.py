"""order="both" where one order is blind
=====================================

Gaussian x (p = 10), r = 2, q = 4 responses, noise sd 0.3, 20 repetitions per n:

* ``even``: f_j(z) = a_j1 z1^2 - a_j2 cos(z2), a > 0: E[grad f] = 0 (first order blind);
* ``linear``: f_j(z) = c_j^T z: hess f = 0 (second order blind);
* ``paper pairs``: the paper's design (p = 30, q = 20, r = 3, link "pairs", normal x),
  where both orders see B, to show what joining costs when neither is blind.

Reports the median subspace distance to B for order 1, 2 and "both".
Writes docs/results/beyond/order_both.csv, order_both.md, order_both.png::

    OMP_NUM_THREADS=1 python examples/order_both_demo.py      # about 2 minutes

Results: docs/beyond.md, section 2 ("Both orders at once").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from steinlatent import SteinLatent
from steinlatent.datasets import make_index_model
from steinlatent.metrics import subspace_distance

# Documentation switch: the docs build (docs/conf.py) sets STEINLATENT_GALLERY=1 to run
# this study at a small size and write its outputs to a temporary folder instead of
# docs/results/. Run without it, the script does the full study below.
GALLERY = os.environ.get("STEINLATENT_GALLERY") == "1"
OUT = (Path(tempfile.mkdtemp(prefix="steinlatent-gallery-")) if GALLERY
       else Path(__file__).resolve().parents[1] / "docs" / "results" / "beyond")
ORDERS = [1, 2, "both"]


def blind_design(kind, n, seed, p=10):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    B = Q[:, :2]
    X = rng.standard_normal((n, p))
    Z = X @ B
    if kind == "even":
        A = np.abs(rng.standard_normal((4, 2))) + 0.5
        F = A[:, 0] * Z[:, [0]] ** 2 - A[:, 1] * np.cos(Z[:, [1]])
    else:
        F = Z @ rng.standard_normal((2, 4))
    return X, F + 0.3 * rng.standard_normal(F.shape), B


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--ns", type=int, nargs="+", default=[1000, 4000])
    if GALLERY:
        ap.set_defaults(reps=2, ns=[1000])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    rows = []
    for case in ["even", "linear", "paper pairs"]:
        for n in args.ns:
            for rep in range(args.reps):
                if case == "paper pairs":
                    X, Y, B = make_index_model(n, 30, 20, 3, link="pairs", random_state=rep)
                else:
                    X, Y, B = blind_design(case, n, rep)
                r = B.shape[1]
                for order in ORDERS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        est = SteinLatent(r, order=order, random_state=rep).fit(X, Y)
                    rows.append(dict(case=case, n=n, rep=rep, order=str(order),
                                     distance=subspace_distance(est.components_.T, B)))
    df = pd.DataFrame(rows)
    df.to_csv(OUT / "order_both.csv", index=False)
    med = df.pivot_table(index=["case", "n"], columns="order", values="distance",
                         aggfunc="median", sort=False)
    lines = ["| case | n | order 1 | order 2 | both |", "|---|---|---|---|---|"]
    for (case, n), r in med.iterrows():
        lines.append(f"| {case} | {n} | {r['1']:.3f} | {r['2']:.3f} | {r['both']:.3f} |")
    (OUT / "order_both.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(df.case))
    fig, axes = plt.subplots(1, len(cases), figsize=(4 * len(cases), 3.4), sharey=True)
    for ax, case in zip(axes, cases, strict=True):
        sub = df[df.case == case]
        width = 0.25
        for i, order in enumerate(["1", "2", "both"]):
            m = sub[sub.order == order].groupby("n").distance.median()
            ax.bar(np.arange(len(m)) + (i - 1) * width, m.values, width, label=f"order {order}")
        ax.set_xticks(range(len(args.ns)), [f"n={n}" for n in args.ns])
        ax.set_title(case)
    axes[0].set_ylabel("median subspace distance to B")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(OUT / "order_both.png", dpi=120)


if __name__ == "__main__":
    main()
