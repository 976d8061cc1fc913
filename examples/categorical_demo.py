"""Categorical labels: SteinLatent against LDA, SIR and SAVE
=========================================================

Three problems, each with a two-dimensional answer:

* ``softmax``: simulated, P(class | x) = softmax(W B^T x), 3 classes, p = 10, r = 2
  (the class means differ: every method should work);
* ``rings``: simulated, class = which of 3 rings ``|B^T x|`` falls in (even in B^T x: the
  class means are equal, so LDA, SIR and first-order Stein are blind; SAVE and
  second-order Stein on the ordered class code are not);
* ``wine``: scikit-learn's bundled wine data (178 samples, 13 standardised features,
  3 cultivars), 2 directions.

Methods: first-order Stein on the one-hot labels (with the Gaussian score its space is
LDA's: Sigma^-1 times the class-mean differences); second-order Stein with the class code
given as one numeric response (order 2 on one-hot labels is degenerate: the rows of a
one-hot matrix sum to one, so the row means that enter M2 are constant); LDA; SIR and
SAVE from statsmodels; PCA as an unsupervised reference.

For each method: the 2-D space it finds, then test accuracy of the same classifier
(k-nearest neighbours, k = 15) on those 2 coordinates; for the simulations also the
subspace distance to the true B. SIR / SAVE are statsmodels' ``SlicedInverseReg`` /
``SlicedAverageVarianceEstimation`` on the labels sorted by class, one slice per class
(slice_n = n / classes). 20 repetitions
(simulations) or 20 random 70/30 splits (wine); medians reported.

Writes docs/results/beyond/categorical.csv, categorical.md and categorical.png::

    OMP_NUM_THREADS=1 python examples/categorical_demo.py        # about 2 minutes

Results: docs/beyond.md, section 3 ("Categorical labels").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from steinlatent import SteinLatent
from steinlatent.metrics import subspace_distance

# Documentation switch: the docs build (docs/conf.py) sets STEINLATENT_GALLERY=1 to run
# this study at a small size and write its outputs to a temporary folder instead of
# docs/results/. Run without it, the script does the full study below.
GALLERY = os.environ.get("STEINLATENT_GALLERY") == "1"
OUT = (Path(tempfile.mkdtemp(prefix="steinlatent-gallery-")) if GALLERY
       else Path(__file__).resolve().parents[1] / "docs" / "results" / "beyond")


def simulate(kind, n, p, seed):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    B = Q[:, :2]
    X = rng.standard_normal((n, p))
    Z = X @ B
    if kind == "softmax":
        W = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
        L = Z @ W.T
        P = np.exp(L - L.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1)
    else:  # rings: chi^2_2 terciles of |z|^2, so the classes are balanced
        rad = (Z**2).sum(axis=1) + 0.3 * rng.standard_normal(n)
        y = np.digitize(rad, [0.81, 2.2])
    return X, y, B


def sir_directions(X, y, k):
    from statsmodels.regression.dimred import SlicedInverseReg

    order = np.argsort(y, kind="stable")
    n_classes = len(np.unique(y))
    res = SlicedInverseReg(y[order].astype(float), X[order]).fit(slice_n=len(y) // n_classes)
    return np.asarray(res.params)[:, :k]


def save_directions(X, y, k):
    from statsmodels.regression.dimred import SlicedAverageVarianceEstimation

    order = np.argsort(y, kind="stable")
    n_classes = len(np.unique(y))
    res = SlicedAverageVarianceEstimation(y[order].astype(float), X[order]).fit(
        slice_n=len(y) // n_classes)
    return np.asarray(res.params)[:, :k]


def methods(k):
    def stein_onehot(X, y):
        return SteinLatent(k, order=1, random_state=0).fit(X, y).components_.T

    def stein_code(X, y):
        # The class code as ONE numeric response (meaningful for ordered classes only):
        # order 2 then sees E[code | x], an even function of B^T x for the rings.
        est = SteinLatent(k, order=2, response_type="continuous", random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return est.fit(X, y.astype(float)).components_.T

    def lda(X, y):
        return LinearDiscriminantAnalysis(n_components=k).fit(X, y).scalings_[:, :k]

    def pca(X, y):
        return PCA(k).fit(X).components_.T

    return {
        "Stein order 1 (one-hot labels)": stein_onehot,
        "Stein order 2 (class code as a number)": stein_code,
        "LDA": lda,
        "SIR (statsmodels)": lambda X, y: sir_directions(X, y, k),
        "SAVE (statsmodels)": lambda X, y: save_directions(X, y, k),
        "PCA (unsupervised)": pca,
    }


def evaluate(D, Xtr, ytr, Xte, yte):
    mu = Xtr.mean(axis=0)
    clf = KNeighborsClassifier(15).fit((Xtr - mu) @ D, ytr)
    return clf.score((Xte - mu) @ D, yte)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    if GALLERY:
        ap.set_defaults(reps=1)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    rows = []
    for problem in ["softmax", "rings", "wine"]:
        for rep in range(args.reps):
            if problem == "wine":
                data = load_wine()
                Xtr, Xte, ytr, yte = train_test_split(
                    data.data, data.target, test_size=0.3, random_state=rep,
                    stratify=data.target)
                sc = StandardScaler().fit(Xtr)
                Xtr, Xte, B = sc.transform(Xtr), sc.transform(Xte), None
            else:
                X, y, B = simulate(problem, 3000, 10, rep)
                Xtr, Xte, ytr, yte = X[:2000], X[2000:], y[:2000], y[2000:]
            for name, fit in methods(2).items():
                D = fit(Xtr, ytr)
                rows.append(dict(
                    problem=problem, rep=rep, method=name,
                    accuracy=evaluate(D, Xtr, ytr, Xte, yte),
                    distance=np.nan if B is None else subspace_distance(D, B)))
    df = pd.DataFrame(rows)
    df.to_csv(OUT / "categorical.csv", index=False)
    med = df.groupby(["problem", "method"], sort=False)[["accuracy", "distance"]].median()
    lines = ["| problem | method | median test accuracy (kNN on 2 coords) | "
             "median dist to B |", "|---|---|---|---|"]
    for (prob, meth), r in med.iterrows():
        dist = "" if np.isnan(r.distance) else f"{r.distance:.3f}"
        lines.append(f"| {prob} | {meth} | {r.accuracy:.3f} | {dist} |")
    (OUT / "categorical.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = ["softmax", "rings", "wine"]
    names = list(methods(2))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    for ax, prob in zip(axes, probs, strict=True):
        data = [df[(df.problem == prob) & (df.method == m)].accuracy for m in names]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=35, ha="right",
                      fontsize="small")
        ax.set_title(prob)
    axes[0].set_ylabel("test accuracy, kNN on 2 coordinates")
    fig.tight_layout()
    fig.savefig(OUT / "categorical.png", dpi=120)


if __name__ == "__main__":
    main()
