"""SteinRegressor against the same regressor on all features
=========================================================

1. The paper's simulation (p = 30, q = 20, r = 3, link "pairs", x normal or t):
   SteinRegressor(3) with the matching plug-in score and gradient boosting on the three
   latent coordinates, against the same gradient boosting on all 30 features, and
   against gradient boosting on the TRUE B^T x (the oracle reduction). Training sizes
   n = 1000 and 3000, 2000 test samples, 3 designs each.
2. M1 Patch-seq (real, multi-response): the 176 cells of the physiological-temperature
   set with 1000 genes (x) and 16 electrophysiological features (y), both standardised
   (``steinlatent.datasets.load_m1_patchseq``). SteinRegressor(k), k = 4, 8, 16, with a
   Ledoit-Wolf shrunk Gaussian score (p > n), against the same regressor on all 1000
   genes and on the first k principal components, for two regressors: gradient
   boosting and k-nearest neighbours (k = 10, distance weights, standardised inputs);
   ridge regression on all genes is a linear reference. 2 x repeated 5-fold CV.

Score: held-out R^2 per response, averaged (mean-R^2) and its median over responses
(median-R^2; t-distributed x makes a few responses, e.g. exp(z), extremely heavy-tailed,
and one outlier can swing their R^2). HistGradientBoostingRegressor(random_state=0)
throughout (one per response, via SteinRegressor or MultiOutputRegressor).

Writes docs/results/beyond/regressor_sim.csv, regressor_m1.csv, regressor.md, regressor.png::

    OMP_NUM_THREADS=1 python examples/regressor_demo.py     # ~1 h on a busy 2-core machine

Results: docs/beyond.md, section 4 ("Prediction").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import RepeatedKFold
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from steinlatent import SteinRegressor
from steinlatent.datasets import load_m1_patchseq, make_index_model, sample_index_model
from steinlatent.scores import GaussianScore

# Documentation switch: the docs build (docs/conf.py) sets STEINLATENT_GALLERY=1 to run
# this study at a small size and write its outputs to a temporary folder instead of
# docs/results/. Run without it, the script does the full study below.
GALLERY = os.environ.get("STEINLATENT_GALLERY") == "1"
OUT = (Path(tempfile.mkdtemp(prefix="steinlatent-gallery-")) if GALLERY
       else Path(__file__).resolve().parents[1] / "docs" / "results" / "beyond")
SCORES = {"normal": "gaussian", "t": "t"}


def gbm():
    if GALLERY:  # fewer boosting iterations at the gallery's small size
        return HistGradientBoostingRegressor(max_iter=10, random_state=0)
    return HistGradientBoostingRegressor(random_state=0)


def knn():
    """k-nearest neighbours (k = 10, distance weights) on standardised inputs."""
    return make_pipeline(StandardScaler(), KNeighborsRegressor(10, weights="distance"))


def r2(model, Xtr, Ytr, Xte, Yte):
    """(mean, median) over responses of the test R^2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(Xtr, Ytr)
    per = r2_score(Yte, model.predict(Xte), multioutput="raw_values")
    return float(np.mean(per)), float(np.median(per))


class _Project:
    """Fixed linear reduction x -> x @ B (for the oracle), as a scikit-learn transformer."""

    def __init__(self, B=None):
        self.B = B

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X @ self.B

    def get_params(self, deep=True):
        return {"B": self.B}

    def set_params(self, **p):
        self.B = p.get("B", self.B)
        return self


def simulation(reps, ns, rows, progress):
    for x_dist in ["normal", "t"]:
        for n in ns:
            for rep in range(reps):
                Xtr, Ytr, B, design = make_index_model(
                    n, 30, 20, 3, x_dist=x_dist, link="pairs", random_state=rep,
                    return_params=True)
                Xte, Yte = sample_index_model(design, 2000, random_state=10_000 + rep)
                models = {
                    "SteinRegressor(3) + GB": SteinRegressor(
                        3, link=gbm(), score_model=SCORES[x_dist], random_state=0),
                    "GB on all 30 features": MultiOutputRegressor(gbm()),
                    "GB on true B^T x (oracle)": make_pipeline(
                        _Project(B), MultiOutputRegressor(gbm())),
                }
                for name, model in models.items():
                    mean, med = r2(model, Xtr, Ytr, Xte, Yte)
                    rows.append(dict(data="simulation", x_dist=x_dist, n=n, rep=rep,
                                     method=name, r2=mean, r2_median=med))
                    if progress:
                        print(rows[-1], flush=True)


def m1(ks, repeats, rows, progress):
    data = load_m1_patchseq()
    X, Y = data.X, data.Y
    cv = RepeatedKFold(n_splits=5, n_repeats=repeats, random_state=0)
    for fold, (tr, te) in enumerate(cv.split(X)):
        base = {
            "GB on all 1000 genes": MultiOutputRegressor(gbm()),
            "kNN on all 1000 genes": knn(),
            "ridge on all genes (linear reference)": RidgeCV(alphas=np.logspace(-1, 5, 25)),
        }
        for name, model in base.items():
            mean, med = r2(model, X[tr], Y[tr], X[te], Y[te])
            rows.append(dict(data="m1", k=np.nan, fold=fold, method=name, r2=mean,
                             r2_median=med))
        for k in ks:
            shrunk = GaussianScore(shrinkage="ledoit_wolf")
            models = {
                "SteinRegressor(k) + GB": SteinRegressor(
                    k, link=gbm(), score_model=shrunk, random_state=0),
                "PCA(k) + GB": make_pipeline(PCA(k), MultiOutputRegressor(gbm())),
                "SteinRegressor(k) + kNN": SteinRegressor(
                    k, link=knn(), score_model=shrunk, random_state=0),
                "PCA(k) + kNN": make_pipeline(PCA(k), knn()),
            }
            for name, model in models.items():
                mean, med = r2(model, X[tr], Y[tr], X[te], Y[te])
                rows.append(dict(data="m1", k=k, fold=fold, method=name, r2=mean,
                                 r2_median=med))
        if progress:
            print(f"m1 fold {fold}: done", flush=True)


def report(sim, m1df):
    lines = ["### Simulation (p = 30, q = 20, r = 3, link pairs; 2000 test samples)", "",
             "Per design: test R^2 averaged over the 20 responses (mean) and its median over",
             "responses (robust to the few heavy-tailed responses); then the median over designs.",
             "", "| x | n train | method | designs | mean-R^2 | median-R^2 |",
             "|---|---|---|---|---|---|"]
    for (xd, n, meth), g in sim.groupby(["x_dist", "n", "method"], sort=False):
        lines.append(f"| {xd} | {n} | {meth} | {len(g)} | {g.r2.median():.3f} | "
                     f"{g.r2_median.median():.3f} |")
    lines += ["", "### M1 Patch-seq (176 cells, 1000 genes -> 16 features; 2 x 5-fold CV)", "",
              "| method | k | CV mean-R^2 | sd over folds | CV median-R^2 |",
              "|---|---|---|---|---|"]
    for (meth, k), g in m1df.groupby(["method", "k"], sort=False, dropna=False):
        kk = "" if np.isnan(k) else int(k)
        lines.append(f"| {meth} | {kk} | {g.r2.mean():.3f} | {g.r2.std():.3f} | "
                     f"{g.r2_median.mean():.3f} |")
    text = "\n".join(lines) + "\n"
    (OUT / "regressor.md").write_text(text)
    print(text)


def plot(sim, m1df):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    ax = axes[0]
    labels, data = [], []
    for (xd, n, meth), g in sim.groupby(["x_dist", "n", "method"], sort=False):
        labels.append(f"{xd}, n={n}\n{meth}")
        data.append(g.r2_median.values)
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=90, fontsize="x-small")
    ax.set_ylabel("test R^2 (median over 20 responses)")
    ax.set_title("paper's simulation")
    ax = axes[1]
    colour = {"GB": "C0", "kNN": "C1", "ridge": "0.4"}
    for meth, g in m1df[m1df.k.notna()].groupby("method"):
        m = g.groupby("k").r2.mean()
        c = colour["GB" if "GB" in meth else "kNN"]
        ax.plot(m.index, m.values, "o-" if "Stein" in meth else "s:", color=c, label=meth)
    for meth, g in m1df[m1df.k.isna()].groupby("method"):
        c = colour["GB" if "GB" in meth else "kNN" if "kNN" in meth else "ridge"]
        ax.axhline(g.r2.mean(), ls="--", lw=1, label=meth, color=c)
    ax.set_xlabel("k (latent dimension)")
    ax.set_ylabel("CV R^2 (mean over 16 features)")
    ax.set_title("M1 Patch-seq (5-fold CV)")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(OUT / "regressor.png", dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ns", type=int, nargs="+", default=[1000, 3000])
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--cv-repeats", type=int, default=2)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--parts", nargs="+", choices=["sim", "m1"], default=["sim", "m1"],
                    help="which studies to (re)run; the report reads both CSV files")
    if GALLERY:  # the simulation only: the M1 part needs the data folder
        ap.set_defaults(reps=1, ns=[300], parts=["sim"])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    if "sim" in args.parts:
        rows: list[dict] = []
        simulation(args.reps, args.ns, rows, args.progress)
        pd.DataFrame(rows).to_csv(OUT / "regressor_sim.csv", index=False)
    if "m1" in args.parts:
        rows = []
        m1(args.ks, args.cv_repeats, rows, args.progress)
        pd.DataFrame(rows).to_csv(OUT / "regressor_m1.csv", index=False)
    sim = pd.read_csv(OUT / "regressor_sim.csv")
    if (OUT / "regressor_m1.csv").exists():
        m1df = pd.read_csv(OUT / "regressor_m1.csv")
    else:  # only the simulation was run here (gallery)
        m1df = pd.DataFrame(columns=["data", "k", "fold", "method", "r2", "r2_median"],
                            dtype=float)
    report(sim, m1df)
    plot(sim, m1df)


if __name__ == "__main__":
    main()
